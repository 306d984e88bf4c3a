"""Domain errors and the central error handlers.

Resources raise :class:`Rejected` for bad input; the app turns it into a
titled HTTP error a caller can act on. Anything unexpected is logged with its
traceback and answered with a titled 500, which a test treats as a bug.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A request that cannot become an event.

    Attributes:
        status: HTTP status to answer with.
        reason: Short machine-friendly reason, also the metrics label.
        description: Human-readable explanation.
        errors: Per-field messages, for validation failures.
    """

    def __init__(
        self,
        status: str,
        reason: str,
        description: str,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.reason = reason
        self.description = description
        self.errors = errors or {}

    def header_value(self) -> str:
        """Summarise the rejection for a response header (pixel paths)."""
        if self.errors:
            fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(self.errors.items()))
            return f"{self.reason}: {fields}"[:512]
        return f"{self.reason}: {self.description}"[:512]


class RejectedError(falcon.HTTPError):
    """The HTTP form of :class:`Rejected`, with per-field errors in the body."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(
            rejected.status,
            title=falcon.code_to_http_status(rejected.status)[4:],
            description=rejected.description,
        )
        self.reason = rejected.reason
        self.errors = rejected.errors

    def to_dict(self, obj_type: Any = dict) -> Any:
        """Add the reason and the field errors to Falcon's title and description."""
        body = super().to_dict(obj_type)
        body["reason"] = self.reason
        if self.errors:
            body["errors"] = self.errors
        return body


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
    """Log an unexpected exception and answer a titled 500."""
    if isinstance(ex, falcon.HTTPError):
        raise ex
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(
        title="Internal Server Error", description="The tracker failed; the error is logged."
    )
