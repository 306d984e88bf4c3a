"""Response bodies and headers, precomputed once."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

import falcon

#: A transparent 1x1 GIF89a (42 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

# Read-only: Falcon's redirect errors write into the headers they are given.
NO_CACHE = MappingProxyType(
    {
        "Cache-Control": "no-cache, no-store, must-revalidate, private",
        "Pragma": "no-cache",
        "Expires": "0",
    }
)

ERROR_HEADER = "X-Tracker-Error"


def pixel(resp: falcon.Response) -> None:
    """Answer with the transparent GIF and headers that defeat every cache."""
    resp.status = falcon.HTTP_200
    resp.content_type = "image/gif"
    resp.set_headers(NO_CACHE)
    resp.data = PIXEL


def no_content(resp: falcon.Response) -> None:
    """Answer 204 with no body."""
    resp.status = falcon.HTTP_204
    resp.set_headers(NO_CACHE)


def accepted_json(resp: falcon.Response, event_id: str | None) -> None:
    """Answer 200 with the event id (``null`` when a preprocessor dropped it)."""
    resp.status = falcon.HTTP_200
    resp.content_type = falcon.MEDIA_JSON
    resp.set_headers(NO_CACHE)
    resp.data = json.dumps({"status": "accepted", "id": event_id}).encode()
