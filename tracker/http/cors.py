"""CORS for the paths the browser tag posts to: an allow-list of origins, preflight included.

Only origins listed in ``browser.cors.allowed_origins`` get CORS headers, and
the ``Access-Control-Allow-Origin`` value is the configured string, never the
request's header (which is user input). With ``credentials`` (cookies: the user
id is set only with consent) a wildcard is refused when the config is loaded;
without them ``*`` may be listed and is answered as ``*``. A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) from an unlisted origin, or
for a method the path does not take, is refused with 403 (a ``Rejected``,
answered and counted by the central handler under the path's name). Other
answers on these routes get ``Vary: Origin`` only; other routes are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import falcon

from tracker.config import CorsConfig, PathConfig
from tracker.intake.refusals import Rejected

#: Request headers a page may send: the tag needs none beyond the CORS-safelisted ones,
#: page code that posts JSON needs Content-Type.
ALLOWED_HEADERS = "Content-Type"


class Cors:
    """Falcon middleware adding CORS headers on the configured paths' routes."""

    def __init__(self, config: CorsConfig, paths: Iterable[PathConfig]) -> None:
        self.origins = {origin: origin for origin in config.allowed_origins}
        self.any_origin = "*" in self.origins
        self.credentials = config.credentials
        self.max_age = str(config.max_age)
        wanted = set(config.paths)
        self.methods = {
            p.route: ", ".join((*p.methods, "OPTIONS")) for p in paths if p.name in wanted
        }

    def allowed(self, origin: str | None) -> str | None:
        """Return the ``Access-Control-Allow-Origin`` value for ``origin``, or ``None``."""
        if origin is None:
            return None
        if origin in self.origins:
            return self.origins[origin]
        return "*" if self.any_origin else None

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok: bool):
        """Answer a preflight, or add the CORS headers for a listed origin, on a CORS route.

        One hook, not two: every request pays for it, so it returns at once
        off the CORS routes. A preflight reaches it after Falcon's default
        ``OPTIONS`` responder, whose answer it replaces.
        """
        methods = self.methods.get(req.uri_template)
        if methods is None:
            return
        allow = self.allowed(req.get_header("Origin"))
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            self.preflight(req, resp, allow, methods)
        elif allow is not None:
            self.decorate(resp, allow)
        else:
            resp.append_header("Vary", "Origin")

    def preflight(
        self, req: falcon.Request, resp: falcon.Response, allow: str | None, methods: str
    ) -> None:
        """Answer 204 with what the path allows, or raise :class:`Rejected` (403)."""
        if allow is None:
            raise Rejected(403, "origin_not_allowed", "This origin may not call this path.")
        asked = req.get_header("Access-Control-Request-Method").upper()
        if asked not in methods.split(", "):
            raise Rejected(403, "method_not_allowed", f"This path takes {methods}.")
        self.decorate(resp, allow)
        resp.set_header("Access-Control-Allow-Methods", methods)
        resp.set_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        resp.set_header("Access-Control-Max-Age", self.max_age)
        resp.status = falcon.HTTP_204
        resp.data = b""

    def decorate(self, resp: falcon.Response, allow: str) -> None:
        """Set the headers every CORS answer for an allowed origin carries."""
        resp.set_header("Access-Control-Allow-Origin", allow)
        if self.credentials:
            resp.set_header("Access-Control-Allow-Credentials", "true")
        resp.append_header("Vary", "Origin")
