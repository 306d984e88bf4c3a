"""The ``kafka`` collector's config block and the producer settings it starts from."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

#: Producer settings that favour no loss, no duplicates and bounded memory;
#: the config's ``producer`` block overrides them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 50_000,
    "queue.buffering.max.kbytes": 32_768,
    "message.timeout.ms": 60_000,
}


def _check_key(value: str) -> None:
    if value in ("id", "none") or value.startswith(("dimensions.", "context.")):
        return
    raise ValidationError("Must be id, none, dimensions.<name> or context.<name>.")


class EventRouting(Schema):
    """Topic and key for one event type."""

    topic = fields.String(required=True, validate=validate.Length(min=1, max=249))
    key = fields.String(load_default="id", validate=_check_key)


class TopicSettings(Schema):
    """How ``tracker setup`` creates the topics."""

    partitions = fields.Integer(load_default=3, validate=validate.Range(min=1))
    replication_factor = fields.Integer(load_default=1, validate=validate.Range(min=1))
    config = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class SpoolSettings(Schema):
    """Where and how much the collector spools."""

    directory = fields.String(required=True, validate=validate.Length(min=1))
    max_bytes = fields.Integer(load_default=1 << 30, validate=validate.Range(min=1 << 20))
    segment_bytes = fields.Integer(load_default=16 << 20, validate=validate.Range(min=64 << 10))
    sync_interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=60))
    quarantine_directory = fields.String(load_default=None, validate=validate.Length(min=1))


class KafkaOptions(Schema):
    """Options of the ``kafka`` collector."""

    bootstrap_servers = fields.String(required=True, validate=validate.Length(min=1))
    topic = fields.String(required=True, validate=validate.Length(min=1, max=249))
    key = fields.String(load_default="id", validate=_check_key)
    events = fields.Dict(
        keys=fields.String(), values=fields.Nested(EventRouting), load_default=dict
    )
    producer = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    topics = fields.Nested(TopicSettings, load_default=lambda: TopicSettings().load({}))
    spool = fields.Nested(SpoolSettings, required=True)
    poll_interval = fields.Float(load_default=0.1, validate=validate.Range(min=0.001, max=5))
    probe_interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.1, max=60))

    @validates("producer")
    def _no_bootstrap(self, value: dict, **kwargs: Any) -> None:
        if "bootstrap.servers" in value:
            raise ValidationError("Set bootstrap_servers, not producer.bootstrap.servers.")
