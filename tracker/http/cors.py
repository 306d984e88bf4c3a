"""CORS for the paths the browser tag posts to: an allow-list of origins, preflight included.

Only origins listed in ``browser.cors.allowed_origins`` get CORS headers, and
the ``Access-Control-Allow-Origin`` value is the configured string, never the
request's header (which is user input). With ``credentials`` (cookies: the user
id is set only with consent) a wildcard is refused when the config is loaded;
without them ``*`` may be listed and is answered as ``*``. A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) from an unlisted origin, or
for a method the path does not take, is refused with 403 (a ``Rejected``,
answered and counted by the central handler under the path's name). Requests
without an ``Origin`` (pixels, server-to-server calls) pass untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import falcon

from tracker.config import CorsConfig, PathConfig
from tracker.intake import Rejected

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

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params):
        """Answer a preflight on a CORS route before its responder runs."""
        methods = self.methods.get(req.uri_template)
        if methods is None or req.method != "OPTIONS":
            return
        asked = req.get_header("Access-Control-Request-Method")
        if asked is None:
            return
        allow = self.allowed(req.get_header("Origin"))
        if allow is None:
            raise Rejected(403, "origin_not_allowed", "This origin may not call this path.")
        if asked.upper() not in methods.split(", "):
            raise Rejected(403, "method_not_allowed", f"This path takes {methods}.")
        self.decorate(resp, allow)
        resp.set_header("Access-Control-Allow-Methods", methods)
        resp.set_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        resp.set_header("Access-Control-Max-Age", self.max_age)
        resp.status = falcon.HTTP_204
        resp.complete = True

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok: bool):
        """Add the CORS headers to an answer for a listed origin on a CORS route."""
        if req.uri_template not in self.methods or req.method == "OPTIONS":
            return
        allow = self.allowed(req.get_header("Origin"))
        if allow is not None:
            self.decorate(resp, allow)
        else:
            resp.append_header("Vary", "Origin")

    def decorate(self, resp: falcon.Response, allow: str) -> None:
        """Set the headers every CORS answer for an allowed origin carries."""
        resp.set_header("Access-Control-Allow-Origin", allow)
        if self.credentials:
            resp.set_header("Access-Control-Allow-Credentials", "true")
        resp.append_header("Vary", "Origin")
