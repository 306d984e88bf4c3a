"""The config block of a spool, shared by every collector that keeps one (plugin API).

A collector nests :class:`SpoolOptions` (or a subclass with keys of its own and
its own ``model``, or :meth:`SpoolOptions.sized` for other defaults) under its
``spool`` key; it loads into a :class:`SpoolConfig` that
:meth:`~tracker.spool.sink.OutboxCollector.make_outbox` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import fields, validate

from tracker.plugins import Options


@dataclass(frozen=True)
class SpoolConfig:
    """A loaded ``spool`` block."""

    directory: str
    max_bytes: int
    segment_bytes: int


def _max_bytes(default: int) -> fields.Integer:
    return fields.Integer(
        load_default=default,
        validate=validate.Range(min=1 << 20),
        metadata={
            "description": (
                "Cap on the spool's bytes on disk, over every worker. At the cap nothing more is "
                "spooled: what the collector cannot deliver is lost and counted in "
                '`tracker_collector_failures_total{reason="spool_full"}`, except on a `durable` '
                "path of the kafka collector, which answers 503."
            )
        },
    )


def _segment_bytes(default: int) -> fields.Integer:
    return fields.Integer(
        load_default=default,
        validate=validate.Range(min=64 << 10),
        metadata={"description": "Size at which a spool segment is closed and a new one started."},
    )


class SpoolOptions(Options):
    """Where and how much the collector spools."""

    model = SpoolConfig

    directory = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "Where the spool's segments go, shared by the collector's workers (and by a later "
                "pod's, on a volume that outlives the pod); mount a volume there (delivery.md)."
            )
        },
    )
    max_bytes = _max_bytes(1 << 30)
    segment_bytes = _segment_bytes(16 << 20)

    @classmethod
    def sized(cls, max_bytes: int, segment_bytes: int, doc: str) -> type[SpoolOptions]:
        """Return the schema with other defaults for the cap and the segment size.

        Args:
            max_bytes: Default of ``max_bytes``.
            segment_bytes: Default of ``segment_bytes``.
            doc: The block's summary in the config reference (the class docstring).
        """
        body = {
            "max_bytes": _max_bytes(max_bytes),
            "segment_bytes": _segment_bytes(segment_bytes),
            "__doc__": doc,
            "__module__": cls.__module__,
        }
        return type(cls.__name__, (cls,), body)
