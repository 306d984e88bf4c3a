"""``POST`` a JSON array of events for other paths; each item is judged on its own."""

from __future__ import annotations

from typing import Any

import falcon

import tracker.metrics as metrics
from tracker.config import PathConfig
from tracker.http.extract import GPC_HEADER, ContextReader, read_body, request_copy
from tracker.intake.fields.schema import Lookup
from tracker.intake.intake import Intake
from tracker.intake.pipeline import ACCEPTED, UNSAFE
from tracker.intake.privacy import FieldCopy
from tracker.intake.refusals import Rejected, RejectedStream, count_rejection


def item_lookup(item: dict[str, Any]) -> Lookup:
    """Return a lookup over one batch item: every field is read from the item by its name."""
    return lambda source, key: item.get(key)


class BatchResource:
    """Judge each item of a batch with the intake of the path it names.

    An item is an object with ``"event"`` naming one of the batch's paths and
    that path's fields by their names. The answer lists, in order, what became
    of each item. A refused item gets no HTTP answer of its own, so it is
    counted here, against its own path; a refused batch is answered and
    counted by the central handler like any request.
    """

    def __init__(
        self,
        path: PathConfig,
        targets: dict[str, Intake],
        context: ContextReader,
        stream: RejectedStream | None = None,
    ) -> None:
        self.path = path
        self.targets = targets
        self.context = context
        self.stream = stream
        self.copies = {name: FieldCopy(intake.path) for name, intake in targets.items()}
        # The batch's own fields: none, so its query is copied by name only.
        self.own = FieldCopy(None)
        self.on_post = self.handle

    def handle(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate and dispatch each item; answer 200 with per-item results."""
        items = read_body(req, self.path.max_body_bytes)
        if not isinstance(items, list):
            raise Rejected(400, "invalid_json", "The body must be a JSON array.")
        limit = self.path.batch.max_items
        if len(items) > limit:
            raise Rejected(
                413, "batch_too_large", f"The batch has {len(items)} items; the limit is {limit}."
            )
        context = self.context(req)
        gpc = req.env.get(GPC_HEADER) == "1"
        results = [self.item(i, item, context, req, gpc) for i, item in enumerate(items)]
        metrics.inc(metrics.REQUESTS, self.path.name, ACCEPTED)
        resp.media = {"results": results}

    def item(
        self, index: int, item: Any, context: dict[str, Any], req: falcon.Request, gpc: bool
    ) -> dict[str, Any]:
        """Judge one item; never raises. A refused item is offered to the rejected stream."""
        name = item.get("event") if isinstance(item, dict) else None
        intake = self.targets.get(name) if isinstance(name, str) else None
        if intake is None:
            names = ", ".join(self.targets)
            return _item_error(index, "unknown_event", f'Each item needs "event": one of {names}.')
        try:
            values = intake.validate(item_lookup(item))
            event = intake.build(values, dict(context))
            if intake.guard is not None and not intake.guard.allows(values, gpc):
                intake.guard.scrub(event)
            outcome = intake.dispatch(event)  # a collector may refuse it (Collector.admit)
        except Rejected as ex:
            count_rejection(intake.path.name, ex.reason)
            if self.stream is not None:
                self.stream.offer(
                    intake.path.name, ex, lambda limit: self._copy(req, name, item, index, limit)
                )
            return _item_error(index, ex.reason, ex.description, ex.errors)
        if outcome == UNSAFE:
            return _item_error(index, "unavailable", "Not stored durably; send this item again.")
        return {"index": index, "status": outcome, "id": event.id if outcome == ACCEPTED else None}

    def _copy(
        self, req: falcon.Request, name: str, item: dict, index: int, limit: int
    ) -> dict[str, Any]:
        """The copy of a refused item: the batch request, and the item as its path sees it."""
        fields = {k: v for k, v in item.items() if k != "event"}
        copy = self.copies[name](item_lookup(fields), {}, fields, limit)
        return {**request_copy(req, limit, self.own), "item": {"index": index, **copy}}


def _item_error(index: int, reason: str, description: str, errors: dict | None = None) -> dict:
    result = {"index": index, "status": "rejected", "reason": reason, "description": description}
    if errors:
        result["errors"] = errors
    return result
