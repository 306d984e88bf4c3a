"""The ``kafka`` collector's config block and the producer settings it starts from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from tracker.plugins import Options
from tracker.spool import SpoolConfig, SpoolOptions

#: Producer settings that favour no loss, no duplicates and bounded memory;
#: the config's ``producer`` block overrides them. ``linger.ms`` 50: a worker's
#: events go out in a few large batches a second rather than one every 5 ms; each
#: batch is a produce request for the broker and a wake-up of the outbox thread
#: for its delivery reports (docs/performance.md, stalls).
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 50,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 50_000,
    "queue.buffering.max.kbytes": 32_768,
    "message.timeout.ms": 60_000,
}


@dataclass(frozen=True)
class Routing:
    """Topic and message key of an event type."""

    topic: str
    key: str


@dataclass(frozen=True)
class TopicConfig:
    """How ``tracker setup`` creates the topics."""

    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass(frozen=True)
class KafkaSpool(SpoolConfig):
    """The kafka collector's ``spool`` block."""

    sync_interval: float
    quarantine_directory: str | None


@dataclass(frozen=True)
class KafkaConfig:
    """The loaded options of a ``kafka`` block."""

    bootstrap_servers: str
    topic: str
    key: str
    events: Mapping[str, Routing]
    producer: Mapping[str, Any]
    topics: TopicConfig
    spool: KafkaSpool
    poll_interval: float
    probe_interval: float
    max_pending: int


def _check_key(value: str) -> None:
    if value in ("id", "none") or value.startswith(("dimensions.", "context.")):
        return
    raise ValidationError("Must be id, none, dimensions.<name> or context.<name>.")


def _key_field() -> fields.String:
    return fields.String(
        load_default="id",
        validate=_check_key,
        metadata={
            "description": (
                "Message key: `id` (the event id), `none`, `dimensions.<name>` or `context.<name>`."
            )
        },
    )


class EventRouting(Options):
    """Topic and key for one event type."""

    model = Routing

    topic = fields.String(
        required=True,
        validate=validate.Length(min=1, max=249),
        metadata={"description": ("Topic of this event type.")},
    )
    key = _key_field()


class TopicSettings(Options):
    """How ``tracker setup`` creates the topics."""

    model = TopicConfig

    partitions = fields.Integer(
        load_default=3,
        validate=validate.Range(min=1),
        metadata={"description": ("Partitions of each topic `tracker setup` creates.")},
    )
    replication_factor = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": ("Replication factor of each topic `tracker setup` creates.")},
    )
    config = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=dict,
        metadata={
            "description": (
                "Topic configs of each topic `tracker setup` creates (e.g. `retention.ms`)."
            )
        },
    )


class SpoolSettings(SpoolOptions):
    """Where and how much the collector spools."""

    model = KafkaSpool

    sync_interval = fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0.01, max=60),
        metadata={
            "description": (
                "Seconds between the background thread's fsyncs of fast-path records and its re-"
                "scans of the directory (other workers' segments, the size cap, the age metric); "
                "durable paths wait for their own fsync."
            )
        },
    )
    quarantine_directory = fields.String(
        load_default=None,
        validate=validate.Length(min=1),
        metadata={
            "description": (
                "Where records Kafka refuses for good (too large, not authorised, no such topic) "
                "go, in `<reason>/` subdirectories capped at `max_bytes` each, for a replay by "
                "hand; default `<directory>/quarantine` (delivery.md)."
            )
        },
    )


class KafkaOptions(Options):
    """Options of the ``kafka`` collector."""

    model = KafkaConfig

    bootstrap_servers = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": ("Broker list. The shipped config reads `TRACKER_KAFKA_BOOTSTRAP`.")
        },
    )
    topic = fields.String(
        required=True,
        validate=validate.Length(min=1, max=249),
        metadata={"description": ("Topic for event types not listed in `events`.")},
    )
    key = _key_field()
    events = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(EventRouting),
        load_default=dict,
        metadata={"description": ("Per event type: `{topic: ..., key: ...}`.")},
    )
    producer = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        load_default=dict,
        metadata={
            "description": (
                "librdkafka settings, passed through (for example `linger.ms`, `compression.type`, "
                "`security.protocol`, `sasl.*`; `tracker setup` uses the `security.*`, `sasl.*`, "
                "`ssl.*`, `socket.*` and `client.*` ones too). They override the defaults: "
                "`enable.idempotence: true`, `acks: all`, `linger.ms: 50`, "
                "`compression.type: lz4`, "
                "`queue.buffering.max.messages: 50000`, `queue.buffering.max.kbytes: 32768` (a "
                "bounded queue: past it events go to the spool), `message.timeout.ms: 60000`."
            )
        },
    )
    topics = fields.Nested(
        TopicSettings,
        load_default=lambda: TopicSettings().load({}),
        metadata={"description": ("How `tracker setup` creates missing topics.")},
    )
    spool = fields.Nested(
        SpoolSettings,
        required=True,
        metadata={"description": ("The durable spool for events Kafka cannot take (delivery.md).")},
    )
    poll_interval = fields.Float(
        load_default=0.1,
        validate=validate.Range(min=0.001, max=5),
        metadata={
            "description": (
                "Longest wait of the background thread between two turns (it also wakes on "
                "delivery reports and when `max_pending` events wait): each turn produces what "
                "was collected meanwhile, serves delivery reports and replays the spool."
            )
        },
    )
    max_pending = fields.Integer(
        load_default=10_000,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "Events a worker keeps in memory, waiting for the background thread or for their "
                "delivery reports; past it they go to the spool (reason `queue_full`)."
            )
        },
    )
    probe_interval = fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0.1, max=60),
        metadata={
            "description": (
                "Seconds between metadata probes while the broker is down or topics are missing."
            )
        },
    )

    @validates("producer")
    def _no_bootstrap(self, value: dict, **kwargs: Any) -> None:
        if "bootstrap.servers" in value:
            raise ValidationError("Set bootstrap_servers, not producer.bootstrap.servers.")
