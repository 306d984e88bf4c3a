"""Serve the browser tag: ``/tracker.js`` and its content-hashed, immutable twin.

The tag (``static/tracker.js`` beside this module) is minified with rjsmin
once, at start-up, and gzipped once; a request only picks the precomputed
variant and compares ETags. The plain name is cached for ``browser.tag.max_age``
seconds, so a new release reaches pages within that time; the hashed name
(``/tracker.<hash>.js``, the hash of the minified text) never changes content
and is cached for a year as ``immutable``.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import falcon
import rjsmin

SOURCE = Path(__file__).with_name("static") / "tracker.js"
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPE = "text/javascript; charset=utf-8"


@dataclass(frozen=True)
class Tag:
    """The minified tag, its gzip form and the names it is served under.

    Attributes:
        text: The minified script.
        gzipped: ``text`` gzipped (level 9, no timestamp: the bytes are stable).
        digest: The first 16 hex digits of the SHA-256 of ``text``.
    """

    text: bytes
    gzipped: bytes
    digest: str

    @classmethod
    def load(cls, source: Path = SOURCE) -> Tag:
        """Minify and compress ``source``."""
        text = rjsmin.jsmin(source.read_text(encoding="utf-8")).encode()
        digest = hashlib.sha256(text).hexdigest()[:16]
        return cls(text=text, gzipped=gzip.compress(text, 9, mtime=0), digest=digest)

    def hashed_route(self, route: str) -> str:
        """Return the immutable name for ``route``: ``x.js`` becomes ``x.<hash>.js``."""
        return f"{route[: -len('.js')]}.{self.digest}.js"


class TagResource:
    """``GET``/``HEAD`` the tag with ``ETag``, ``304`` and gzip when accepted."""

    def __init__(self, tag: Tag, cache_control: str) -> None:
        self.tag = tag
        self.cache_control = cache_control
        self.etags = {"identity": f'"{tag.digest}"', "gzip": f'"{tag.digest}-gz"'}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the tag, or 304 when the client's copy is current."""
        encoding = "gzip" if _accepts_gzip(req.get_header("Accept-Encoding")) else "identity"
        resp.cache_control = [self.cache_control]
        resp.vary = ("Accept-Encoding",)
        resp.set_header("ETag", self.etags[encoding])
        if _matches(req.get_header("If-None-Match"), self.etags.values()):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = CONTENT_TYPE
        resp.set_header("X-Content-Type-Options", "nosniff")
        if encoding == "gzip":
            resp.set_header("Content-Encoding", "gzip")
            resp.data = self.tag.gzipped
        else:
            resp.data = self.tag.text

    on_head = on_get


def add_tag_routes(app: falcon.App, route: str, max_age: int, tag: Tag | None = None) -> Tag:
    """Add the tag's plain and hashed routes to ``app``; return the tag."""
    tag = tag or Tag.load()
    app.add_route(route, TagResource(tag, f"public, max-age={max_age}"))
    app.add_route(tag.hashed_route(route), TagResource(tag, IMMUTABLE))
    return tag


def _accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _matches(header: str | None, etags) -> bool:
    """Whether ``If-None-Match`` names one of our ETags (weak comparison, as RFC 9110 says)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = {t.strip().removeprefix("W/") for t in header.split(",")}
    return any(etag in wanted for etag in etags)
