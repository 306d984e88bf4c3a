"""HTTP resources: one tracking resource per configured path, batches, and health."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import falcon
from marshmallow import Schema, ValidationError

from tracker import lifecycle, metrics, openrtb, responses
from tracker.clicks import Redirector
from tracker.consent import may_store_identifier
from tracker.errors import Rejected, RejectedError
from tracker.event import Event
from tracker.extract import ContextReader, Lookup, item_lookup, read_body, request_lookup
from tracker.fields import EventMapper, gather
from tracker.model import PathConfig, UserCookieConfig
from tracker.pipeline import ACCEPTED, UNSAFE, Pipeline, Route

log = logging.getLogger(__name__)


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
        context: ContextReader,
        user_cookie: UserCookieConfig,
    ) -> None:
        self.path = path
        self.schema = schema
        self.mapper = EventMapper(path)
        self.route = route
        self.pipeline = pipeline
        self.context = context
        self.user_cookie = user_cookie
        redirect = path.response.redirect
        self.redirector = Redirector(redirect) if redirect else None
        self.respond = {
            "pixel": lambda resp, event_id: responses.pixel(resp),
            "no_content": lambda resp, event_id: responses.no_content(resp),
            "json": responses.accepted_json,
            "redirect": None,
        }[path.response.type]
        for method in path.methods:
            setattr(self, f"on_{method.lower()}", self.handle)

    def handle(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Validate, build the event, dispatch it and respond."""
        try:
            body = read_body(req, self.path.max_body_bytes) if req.method == "POST" else {}
            if not isinstance(body, dict):
                raise Rejected(falcon.HTTP_400, "invalid_json", "The body must be a JSON object.")
            values = self.validate(request_lookup(req, params, body))
            event = self.make_event(values, self.context(req))
            location = (
                self.redirector.location(values, req.params, event) if self.redirector else None
            )
        except Rejected as ex:
            self.refuse(req, resp, ex)
            return
        if self.path.user_id:
            self.identify(req, resp, values, event)
        outcome = self.dispatch(event)
        if location is not None:
            raise falcon.HTTPFound(location, headers=dict(responses.NO_CACHE))
        self.respond(resp, event.id if outcome == ACCEPTED else None)

    def validate(self, lookup: Lookup) -> dict[str, Any]:
        """Gather and validate the path's fields, or raise :class:`Rejected`."""
        raw = gather(self.path, lookup)
        try:
            return self.schema.load(raw)
        except ValidationError as ex:
            macro = any(isinstance(v, str) and openrtb.unsubstituted_macro(v) for v in raw.values())
            raise Rejected(
                falcon.HTTP_400,
                "unsubstituted_macro" if macro else "invalid_fields",
                "One or more fields are missing or invalid.",
                errors=ex.normalized_messages(),
            ) from None

    def make_event(self, values: dict[str, Any], context: dict[str, Any]) -> Event:
        """Build the event from validated values; the id is derived when the path says so."""
        dimensions, event_metrics = self.mapper.parts(values)
        event = Event(
            type=self.path.event_type,
            path=self.path.name,
            dimensions=dimensions,
            metrics=event_metrics,
            context=context,
        )
        derived = self.mapper.event_id(values)
        if derived is not None:
            event.id = derived
        return event

    def dispatch(self, event: Event) -> str:
        """Hand the event to the pipeline; a durable path that fails answers 503."""
        outcome = self.pipeline.dispatch(self.route, event)
        metrics.REQUESTS.labels(self.path.name, outcome).inc()
        if outcome == UNSAFE:
            # Never a pixel here: the caller (an exchange) must see the failure and retry.
            log.error("event %s on %s could not be made durable", event.id, self.path.name)
            raise falcon.HTTPServiceUnavailable(
                title="Service Unavailable",
                description="The event could not be stored durably; retry later.",
                retry_after=self.path.delivery.retry_after,
            )
        return outcome

    def refuse(self, req: falcon.Request, resp: falcon.Response, ex: Rejected) -> None:
        """Count and log a refusal, then answer it as the path is configured to."""
        metrics.REQUESTS.labels(self.path.name, "rejected").inc()
        metrics.REJECTED.labels(self.path.name, ex.reason).inc()
        log.info(
            "rejected %s %s: %s",
            req.method,
            self.path.name,
            ex.header_value(),
            extra={"path": self.path.name, "reason": ex.reason, "errors": ex.errors},
        )
        if self.redirector is not None and self.redirector.fallback:
            resp.set_header(responses.ERROR_HEADER, ex.header_value())
            raise falcon.HTTPFound(self.redirector.fallback, headers=dict(responses.NO_CACHE))
        if self.path.response.always:
            responses.pixel(resp)
            resp.set_header(responses.ERROR_HEADER, ex.header_value())
            return
        raise RejectedError(ex)

    def identify(
        self, req: falcon.Request, resp: falcon.Response, values: dict[str, Any], event: Event
    ) -> None:
        """Put the user id in the event and refresh its cookie, only with consent."""
        decision = may_store_identifier(
            values.get("gdpr"),
            values.get("gdpr_consent"),
            values.get("us_privacy"),
            values.get("gpp"),
            values.get("gpp_sid"),
            require_signal=self.user_cookie.require_consent_signal,
        )
        if not decision.allowed:
            return
        cookie = self.user_cookie
        user_id = _valid_uuid(req.cookies.get(cookie.name)) or str(uuid.uuid4())
        event.dimensions["user_id"] = user_id
        resp.set_cookie(
            cookie.name,
            user_id,
            max_age=cookie.max_age,
            domain=cookie.domain,
            path="/",
            secure=True,
            http_only=True,
            same_site="None",
        )


def _valid_uuid(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class BatchResource:
    """``POST`` a JSON array of events for other paths; each item is judged on its own.

    An item is an object with ``"event"`` naming one of the batch's paths and
    that path's fields by their names. The answer lists, in order, what became
    of each item.
    """

    def __init__(
        self, path: PathConfig, targets: dict[str, TrackingResource], context: ContextReader
    ) -> None:
        self.path = path
        self.targets = targets
        self.context = context
        self.on_post = self.handle

    def handle(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate and dispatch each item; answer 200 with per-item results."""
        try:
            items = read_body(req, self.path.max_body_bytes)
            if not isinstance(items, list):
                raise Rejected(falcon.HTTP_400, "invalid_json", "The body must be a JSON array.")
            if len(items) > self.path.batch.max_items:
                raise Rejected(
                    falcon.HTTP_413,
                    "batch_too_large",
                    f"The batch has {len(items)} items; the limit is {self.path.batch.max_items}.",
                )
        except Rejected as ex:
            metrics.REQUESTS.labels(self.path.name, "rejected").inc()
            metrics.REJECTED.labels(self.path.name, ex.reason).inc()
            raise RejectedError(ex) from None
        context = self.context(req)
        results = [self.item(i, item, context) for i, item in enumerate(items)]
        metrics.REQUESTS.labels(self.path.name, "accepted").inc()
        resp.media = {"results": results}

    def item(self, index: int, item: Any, context: dict[str, Any]) -> dict[str, Any]:
        """Judge one item; never raises."""
        name = item.get("event") if isinstance(item, dict) else None
        target = self.targets.get(name) if isinstance(name, str) else None
        if target is None:
            names = ", ".join(self.targets)
            return _item_error(index, "unknown_event", f'Each item needs "event": one of {names}.')
        try:
            values = target.validate(item_lookup(item))
        except Rejected as ex:
            metrics.REQUESTS.labels(target.path.name, "rejected").inc()
            metrics.REJECTED.labels(target.path.name, ex.reason).inc()
            return _item_error(index, ex.reason, ex.description, ex.errors)
        event = target.make_event(values, dict(context))
        outcome = target.pipeline.dispatch(target.route, event)
        metrics.REQUESTS.labels(target.path.name, outcome).inc()
        if outcome == UNSAFE:
            return _item_error(index, "unavailable", "Not stored durably; send this item again.")
        return {"index": index, "status": outcome, "id": event.id if outcome == ACCEPTED else None}


def _item_error(index: int, reason: str, description: str, errors: dict | None = None) -> dict:
    result = {"index": index, "status": "rejected", "reason": reason, "description": description}
    if errors:
        result["errors"] = errors
    return result


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
