"""The intake every tracking resource shares: validate, build the event, dispatch it.

Nothing here knows HTTP. A resource reads the request into a lookup (see
:mod:`tracker.http.extract`), and :class:`Intake` turns it into an event for
the pipeline, or raises :class:`Rejected`. The HTTP layer turns a
:class:`Rejected` into an answer and counts it in one place
(:mod:`tracker.http.errors`); a batch item, which gets no answer of its own,
is counted with the same
:func:`~tracker.intake.refusals.count_rejection`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

import tracker.metrics as metrics
from tracker.adtech import openrtb
from tracker.config import PathConfig, UserCookieConfig
from tracker.event import Event, new_id
from tracker.intake.fields.checks import Loader
from tracker.intake.fields.mapping import EventMapper
from tracker.intake.fields.schema import Lookup, build_schema, gather
from tracker.intake.pipeline import Pipeline
from tracker.intake.privacy import ConsentGuard
from tracker.intake.refusals import Rejected
from tracker.plugins import Refused


class Intake:
    """Validate one path's fields, build its event and hand it to the pipeline.

    Everything is compiled at start-up: the marshmallow schema (loaded
    through :class:`~tracker.intake.fields.checks.Loader`, which stops at the first
    failing field when ``fail_fast``), the mapping
    onto dimensions and metrics, the resolved route of plugins, and, with the
    consent rules (``server.user_cookie``), the path's
    :class:`~tracker.intake.privacy.ConsentGuard` (None when it stores no
    identifier and no personal URL).
    """

    def __init__(
        self,
        path: PathConfig,
        pipeline: Pipeline,
        fail_fast: bool = False,
        consent: UserCookieConfig | None = None,
    ) -> None:
        self.path = path
        self.guard = ConsentGuard.for_path(path, consent) if consent is not None else None
        self.schema = build_schema(path)
        self.loader = Loader(self.schema, fail_fast)
        self.mapper = EventMapper(path)
        self.pipeline = pipeline
        self.route = pipeline.route(path.preprocessors, path.collectors, path.delivery)

    def validate(self, lookup: Lookup) -> dict[str, Any]:
        """Gather and validate the path's fields, or raise :class:`Rejected`."""
        raw = gather(self.path, lookup)
        try:
            return self.loader.load(raw)
        except ValidationError as ex:
            errors = ex.normalized_messages()
            # A macro left in a string fails that field's checks: only failed fields can hold one.
            macro = any(
                isinstance(v := raw.get(name), str) and openrtb.unsubstituted_macro(v)
                for name in errors
            )
            raise Rejected(
                400,
                "unsubstituted_macro" if macro else "invalid_fields",
                "One or more fields are missing or invalid.",
                errors=errors,
            ) from None

    def build(self, values: dict[str, Any], context: dict[str, Any]) -> Event:
        """Build the event from validated values; the id is derived when the path says so."""
        dimensions, event_metrics = self.mapper.parts(values)
        derived = self.mapper.event_id(values)
        return Event(
            type=self.path.event_type,
            path=self.path.name,
            dimensions=dimensions,
            metrics=event_metrics,
            context=context,
            id=new_id() if derived is None else derived,
        )

    def dispatch(self, event: Event) -> str:
        """Hand the event to the pipeline and count the outcome.

        Returns:
            The pipeline's outcome: ``accepted``, ``dropped`` or ``unsafe``
            (a durable path could not make the event safe).

        Raises:
            Rejected: A collector refused the event before any took it.
        """
        try:
            outcome = self.pipeline.dispatch(self.route, event)
        except Refused as ex:
            raise Rejected(ex.status, ex.reason, ex.description) from None
        metrics.inc(metrics.REQUESTS, self.path.name, outcome)
        return outcome
