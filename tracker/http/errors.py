"""The central error handlers: every refusal and failure is answered here.

A :class:`~tracker.intake.refusals.Rejected` raised anywhere on the request path (the
request limits, the body reader, validation, a click's landing-URL checks)
reaches :class:`RejectionHandler`, which counts it, logs it (sampled: see
:class:`SampledLog`) and answers it as its path is configured to: a titled
4xx with the reason and field errors, the pixel with the reason in a header,
or the click's fallback redirect. Falcon's own refusals, an unknown path (404)
and a method the route does not take (405), are counted, logged and offered
to the stream the same way (:meth:`RejectionHandler.routing_refusal`). Anything
unexpected is logged with its traceback and answered with a titled 500, which
a test treats as a bug.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import falcon
import orjson

from tracker.adtech import landing
from tracker.config import PathConfig
from tracker.http import responses
from tracker.http.extract import request_copy
from tracker.intake.privacy import FieldCopy
from tracker.intake.refusals import REQUEST_LABEL, Rejected, RejectedStream, count_rejection

log = logging.getLogger(__name__)


def rejection_body(rejected: Rejected) -> bytes:
    """Return the JSON body of a refusal: Falcon's title and description, the reason, the errors.

    The same document Falcon's own error serialiser writes for an
    ``HTTPError`` with that title and description, encoded by orjson without
    content negotiation (the tracker answers refusals in JSON only): about a
    tenth of what going through Falcon's error machinery cost a refusal.
    """
    body: dict[str, Any] = {
        "title": _status_line(rejected.status)[4:],
        "description": rejected.description,
        "reason": rejected.reason,
    }
    if rejected.errors:
        body["errors"] = rejected.errors
    return orjson.dumps(body)


@functools.cache
def _status_line(code: int) -> str:
    """Falcon's status line for ``code`` (``"400 Bad Request"``), built once per code."""
    return falcon.code_to_http_status(code)


def answer_rejection(resp: falcon.Response, rejected: Rejected) -> None:
    """Write the titled 4xx of a refusal, with ``Retry-After`` for a 429."""
    resp.status = _status_line(rejected.status)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = rejection_body(rejected)
    if rejected.retry_after is not None:
        resp.set_header("Retry-After", str(rejected.retry_after))


class RejectionHandler:
    """Answer and count a :class:`~tracker.intake.refusals.Rejected`; the only place that does both.

    The path is found from the route Falcon matched (``req.uri_template``);
    a refusal before routing is counted under ``_request``. With a
    rejected-requests stream, the refusal is offered to it too. A 429 is
    always answered as such, with ``Retry-After``, never with the pixel or
    the fallback redirect, so that the client sees the limit.
    """

    def __init__(
        self,
        paths: Iterable[PathConfig],
        stream: RejectedStream | None = None,
        sampled_log: SampledLog | None = None,
    ) -> None:
        self.log = sampled_log or SampledLog()
        self.paths = {path.route: path for path in paths}
        self.copies = {route: FieldCopy(path) for route, path in self.paths.items()}
        self.stream = stream
        self.fallbacks = {
            path.route: landing.to_location(path.response.redirect.fallback_url)
            for path in self.paths.values()
            if path.response.redirect is not None and path.response.redirect.fallback_url
        }

    def __call__(self, req: falcon.Request, resp: falcon.Response, ex: Rejected, params) -> None:
        """Count and log the refusal, then answer it."""
        path = self._record(req, ex, params)
        if path is None or ex.retry_after is not None:
            answer_rejection(resp, ex)
            return
        fallback = self.fallbacks.get(path.route)
        if fallback is not None:
            resp.set_header(responses.ERROR_HEADER, ex.summary())
            raise falcon.HTTPFound(fallback, headers=dict(responses.NO_CACHE))
        if path.response.always:
            responses.pixel(resp)
            resp.set_header(responses.ERROR_HEADER, ex.summary())
            return
        answer_rejection(resp, ex)

    def routing_refusal(
        self, req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params
    ) -> None:
        """Count, log, offer and answer Falcon's own 404 or 405 like any refusal.

        The 405 keeps Falcon's ``Allow``, the route's methods.
        """
        rejected = _ROUTING_REFUSALS[ex.status_code]
        self._record(req, rejected, params)
        answer_rejection(resp, rejected)
        if ex.headers:
            resp.set_headers(ex.headers)

    def _record(self, req: falcon.Request, ex: Rejected, params) -> PathConfig | None:
        path = self.paths.get(req.uri_template)
        label = path.name if path is not None else REQUEST_LABEL
        count_rejection(label, ex.reason)
        self.log(req.method, label, ex)
        if self.stream is not None:
            fields = self.copies[path.route] if path is not None else _NO_FIELDS
            self.stream.offer(label, ex, lambda limit: request_copy(req, limit, fields, params))
        return path


#: Falcon's own refusals (an unknown path, a method the route lacks), built once: only
#: counted, logged, offered to the stream and answered, never raised.
_ROUTING_REFUSALS = {
    404: Rejected(404, "unknown_path", "No tracking path or endpoint at this URL."),
    405: Rejected(405, "method_not_allowed", "The path does not take this method."),
}
#: A refusal before routing has no path: every parameter is copied by name only.
_NO_FIELDS = FieldCopy(None)
#: The exceptions :meth:`RejectionHandler.routing_refusal` is registered for.
ROUTING_ERRORS = (falcon.HTTPNotFound, falcon.HTTPMethodNotAllowed)


class SampledLog:
    """Log rejections at INFO, at most ``per_second`` lines a second.

    Every rejection is counted in the metrics; the log only samples them, so a
    flood of bad requests (a broken integration, a scanner) cannot make the
    tracker spend its time writing log lines. The first rejections of each
    second are logged; the line after a quiet spell says, in ``suppressed``,
    how many were left out since the previous line.
    """

    def __init__(self, per_second: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self.window_end = 0.0
        self.left = 0
        self.suppressed = 0

    def __call__(self, method: str, label: str, ex: Rejected) -> None:
        """Log the rejection of a ``method`` request to ``label``, unless over the rate."""
        if not log.isEnabledFor(logging.INFO):
            return
        now = self.clock()
        if now >= self.window_end:
            self.window_end = now + 1.0
            self.left = self.per_second
        if self.left <= 0:
            self.suppressed += 1
            return
        self.left -= 1
        suppressed, self.suppressed = self.suppressed, 0
        log.info(
            "rejected %s %s: %s",
            method,
            label,
            ex.summary(),
            extra={
                "path": label,
                "reason": ex.reason,
                "errors": ex.errors,
                "suppressed": suppressed,
            },
        )


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
    """Log an unexpected exception and answer a titled 500.

    Falcon picks the handler of the most specific class in the exception's MRO,
    so an ``HTTPError`` never gets here: Falcon's own handler answers it.
    """
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(
        title="Internal Server Error", description="The tracker failed; the error is logged."
    )
