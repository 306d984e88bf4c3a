"""What a path answers, in OpenAPI: its success, its refusals, the shared components.

Every tracking path can refuse before or after routing (400, 413, 414, 431),
and the HTTP server (meinheld) refuses some requests itself, in plain text;
a POST adds 415, a ``durable`` path 503. The success follows the path's
``response.type``: pixel, 204, JSON or redirect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracker.config import PathConfig

ERROR = {"$ref": "#/components/schemas/Error"}
NO_CACHE = {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}}
SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "A refusal: its HTTP title, a reason a caller can act on, field errors.",
        "required": ["title"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "reason": {"type": "string", "examples": ["invalid_fields", "body_too_large"]},
            "errors": {"type": "object", "description": "Messages per field name."},
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["status", "id"],
        "properties": {
            "status": {"const": "accepted"},
            "id": {"type": ["string", "null"], "description": "null if a preprocessor dropped it"},
        },
    },
}
HEADERS = {
    "Cache-Control": {
        "description": "Every tracking answer defeats caches.",
        "schema": {"const": "no-cache, no-store, must-revalidate, private"},
    },
    "X-Tracker-Error": {
        "description": "Why a request was refused, on answers that cannot carry a body.",
        "schema": {"type": "string"},
    },
}
#: Refusals every tracking path can give, before or after routing.
REFUSALS = {
    "400": "Invalid fields, a malformed URL or body, an unsubstituted macro.",
    "413": "The body is over the limit (`body_too_large`; a gzip body also once inflated), or "
    "a batch has too many items.",
    "414": "Path and query over `server.max_url_length` (`uri_too_long`).",
    "431": "Headers over `server.max_header_bytes` (`headers_too_large`).",
}

#: A POST body the tracker cannot read.
_UNSUPPORTED_BODY = (
    "A body that is neither JSON nor a form (`unsupported_media_type`), or has a "
    "`Content-Encoding` other than gzip (`unsupported_content_encoding`)."
)

#: What the HTTP server (meinheld) refuses itself, answered in plain text.
MEINHELD_REFUSALS = {
    "400": "A request that is not valid HTTP gets the HTTP server's own plain-text 400.",
    "413": "A body over the HTTP server's own limit gets its plain-text 413.",
    "414": "A request target over 8 KB gets the HTTP server's own plain-text 414.",
    "431": "A header field over 8 KB (or over 128 fields, 80 KB in all) gets the HTTP "
    "server's own plain-text 431.",
}


def error(description: str) -> dict[str, Any]:
    """Return a refusal's answer: ``description`` and the JSON error body."""
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def refusals() -> dict[str, Any]:
    """Return the refusals of every tracking path, by status code (a fresh dict each call)."""
    answers = {code: error(text) for code, text in REFUSALS.items()}
    # meinheld refuses some requests before the app sees them, with a one-line text
    # (scripts/meinheld/lingering-close.patch).
    for code, text in MEINHELD_REFUSALS.items():
        answers[code]["description"] += " " + text
        answers[code]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return answers


def responses(
    path: PathConfig, method: str, collector_refusals: Iterable[dict[int | str, str]] = ()
) -> dict[str, Any]:
    """Return what a tracking path answers to ``method``: its success, then its refusals.

    ``collector_refusals`` are the ``refusals`` of the path's collectors: what
    their ``admit()`` may answer before any collector takes the event.
    """
    response = path.response
    answers = refusals()
    if method == "POST":
        answers["415"] = error(_UNSUPPORTED_BODY)
    if response.type == "pixel":
        pixel = {
            "description": "The 1x1 transparent GIF.",
            "headers": dict(NO_CACHE),
            "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
        }
        if response.always:
            pixel["description"] += " Also for a refused request, with its reason."
            pixel["headers"]["X-Tracker-Error"] = {"$ref": "#/components/headers/X-Tracker-Error"}
        answers["200"] = pixel
    elif response.type == "no_content":
        answers["204"] = {"description": "Accepted.", "headers": dict(NO_CACHE)}
    elif response.type == "json":
        answers["200"] = {
            "description": "Accepted.",
            "headers": dict(NO_CACHE),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
    else:
        # Falcon labels the empty body of a redirect with its default media type.
        answers["302"] = {
            "description": "To the landing URL; to the fallback URL if it is refused. "
            "The body is empty.",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {}},
        }
    for declared in collector_refusals:
        for status, text in declared.items():
            if status in answers:
                answers[status]["description"] += " " + text
            else:
                answers[status] = error(text)
    if path.delivery.mode == "durable":
        answers["503"] = {
            "description": "Not stored durably in time: send it again after `Retry-After`.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": ERROR}},
        }
    return dict(sorted(answers.items()))


def batch_responses() -> dict[str, Any]:
    """Return what a batch path answers: one result per item, or a refusal of the whole."""
    result = {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer"},
            "status": {"enum": ["accepted", "rejected"]},
            "id": {"type": ["string", "null"]},
            "reason": {"type": "string"},
            "description": {"type": "string"},
            "errors": {"type": "object"},
        },
    }
    answers = refusals()
    answers["415"] = error(_UNSUPPORTED_BODY.replace("neither JSON nor a form", "not JSON"))
    answers["200"] = {
        "description": "One result per item, in order.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {"results": {"type": "array", "items": result}},
                }
            }
        },
    }
    return dict(sorted(answers.items()))


def health(summary: str, unready: bool = False) -> dict[str, Any]:
    """Return the operation of a probe (``/healthz``, or ``/readyz`` with ``unready``)."""
    answers = {
        "200": {
            "description": summary,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    if unready:
        answers["503"] = {
            "description": "Draining, or a collector cannot take events.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return {"summary": summary, "responses": answers}
