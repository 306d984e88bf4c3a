"""The request-to-event domain, which knows no HTTP.

- :mod:`tracker.intake.fields`: one home for field handling: the marshmallow
  field types and the schema each path's fields compile to (``schema``), the
  cheap loader and its checks (``checks``), and the mapping of loaded values
  onto the event's id, dimensions and metrics (``mapping``). The YAML schema
  of a field's *declaration* is config, in :mod:`tracker.config.schemas.field`.
- :mod:`tracker.intake.intake`: :class:`~tracker.intake.intake.Intake`, which
  every resource shares: validate, build the event, dispatch it.
- :mod:`tracker.intake.refusals`: one home for refusals: ``Rejected``, their
  counting, and the sampled rejected-requests stream.
- :mod:`tracker.intake.privacy`: what a path's ``personal`` fields let out:
  the rejected stream's copy of a request, and an event without consent.
- :mod:`tracker.intake.pipeline` and :mod:`tracker.intake.filters`: routing an
  event through preprocessors to collectors, and per-route field filters.
"""
