"""HTTP resources: one tracking resource per configured path, plus health."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
from falcon.uri import parse_query_string
from marshmallow import Schema, ValidationError

from tracker import lifecycle, metrics, responses
from tracker.clientip import ClientIp
from tracker.config import PathConfig
from tracker.errors import Rejected, RejectedError
from tracker.event import Event
from tracker.fields import build_event_parts, gather
from tracker.pipeline import ACCEPTED, UNSAFE, Pipeline, Route

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"


class TrackingResource:
    """Turn requests to one configured path into events.

    Only the configured methods get a responder, so Falcon answers any other
    with 405 and an ``Allow`` header.
    """

    def __init__(
        self,
        path: PathConfig,
        schema: Schema,
        route: Route,
        pipeline: Pipeline,
        client_ip: ClientIp,
    ) -> None:
        self.path = path
        self.schema = schema
        self.route = route
        self.pipeline = pipeline
        self.client_ip = client_ip
        self.respond = {
            "pixel": lambda resp, event_id: responses.pixel(resp),
            "no_content": lambda resp, event_id: responses.no_content(resp),
            "json": responses.accepted_json,
        }[path.response.type]
        for method in path.methods:
            setattr(self, f"on_{method.lower()}", self.handle)

    def handle(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Validate, build the event, dispatch it and respond."""
        try:
            event = self.build(req, params)
        except Rejected as ex:
            metrics.REQUESTS.labels(self.path.name, "rejected").inc()
            metrics.REJECTED.labels(self.path.name, ex.reason).inc()
            log.info(
                "rejected %s %s: %s",
                req.method,
                self.path.name,
                ex.header_value(),
                extra={"path": self.path.name, "reason": ex.reason, "errors": ex.errors},
            )
            if self.path.response.always:
                responses.pixel(resp)
                resp.set_header(responses.ERROR_HEADER, ex.header_value())
                return
            raise RejectedError(ex) from None
        outcome = self.pipeline.dispatch(self.route, event)
        metrics.REQUESTS.labels(self.path.name, outcome).inc()
        if outcome == UNSAFE:
            # Never a pixel here: the caller (an exchange) must see the failure and retry.
            retry_after = self.path.delivery.retry_after
            log.error("event %s on %s could not be made durable", event.id, self.path.name)
            raise falcon.HTTPServiceUnavailable(
                title="Service Unavailable",
                description="The event could not be stored durably; retry later.",
                retry_after=retry_after,
            )
        self.respond(resp, event.id if outcome == ACCEPTED else None)

    def build(self, req: falcon.Request, params: dict[str, str]) -> Event:
        """Build the event for a request, or raise :class:`Rejected`."""
        body = self.read_body(req) if req.method == "POST" else {}
        sources = {"query": req.params, "body": body, "cookie": req.cookies, "path": params}

        def lookup(source: str, key: str) -> Any:
            if source == "header":
                return req.get_header(key)
            value = sources[source].get(key)
            return value[0] if isinstance(value, list) and value else value

        try:
            values = self.schema.load(gather(self.path, lookup))
        except ValidationError as ex:
            raise Rejected(
                falcon.HTTP_400,
                "invalid_fields",
                "One or more fields are missing or invalid.",
                errors=ex.normalized_messages(),
            ) from None
        dimensions, event_metrics = build_event_parts(self.path, values)
        return Event(
            type=self.path.event_type,
            path=self.path.name,
            dimensions=dimensions,
            metrics=event_metrics,
            context={
                "ip": self.client_ip.resolve(req.remote_addr, req.get_header("X-Forwarded-For")),
                "user_agent": req.user_agent,
                "referer": req.referer,
            },
        )

    def read_body(self, req: falcon.Request) -> dict[str, Any]:
        """Read a JSON or form body within the path's size limit."""
        limit = self.path.max_body_bytes
        length = req.content_length
        if length is not None and length > limit:
            raise Rejected(
                falcon.HTTP_413, "body_too_large", f"The body is over the {limit}-byte limit."
            )
        data = req.bounded_stream.read(limit + 1)
        if len(data) > limit:
            raise Rejected(
                falcon.HTTP_413, "body_too_large", f"The body is over the {limit}-byte limit."
            )
        if not data:
            return {}
        media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media_type == FORM:
            return parse_query_string(_decode(data), keep_blank=False)
        if media_type not in ("application/json", ""):
            raise Rejected(
                falcon.HTTP_415,
                "unsupported_media_type",
                f"The body must be application/json or {FORM}.",
            )
        try:
            parsed = json.loads(data)
        except ValueError:
            raise Rejected(falcon.HTTP_400, "invalid_json", "The body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise Rejected(falcon.HTTP_400, "invalid_json", "The body must be a JSON object.")
        return parsed


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(falcon.HTTP_400, "invalid_encoding", "The body is not UTF-8.") from None


class HealthResource:
    """``/healthz``: the process is alive and serving."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 without touching any collector."""
        resp.media = {"status": "ok"}


class ReadyResource:
    """``/readyz``: the worker is not draining and every collector can take events."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 200 when ready, else 503 with the reason."""
        health = self.pipeline.health()
        unhealthy = sorted(name for name, (ok, _) in health.items() if not ok)
        draining = lifecycle.DRAINING.is_set()
        if draining:
            status = "draining"
        elif unhealthy:
            status = "unavailable"
        else:
            status = "ready"
        resp.status = falcon.HTTP_200 if status == "ready" else falcon.HTTP_503
        resp.media = {
            "status": status,
            "unhealthy": unhealthy,
            "collectors": {name: state for name, (_, state) in health.items()},
        }


class MetricsResource:
    """``/metrics``: Prometheus exposition of every worker's counters."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Render the metrics."""
        resp.data, resp.content_type = metrics.exposition()
