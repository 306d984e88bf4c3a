"""The ``banker`` collector's config block, validated by its own schema (docs/config.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from tracker.plugins import Options
from tracker.spool import SpoolConfig, SpoolOptions

_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="Must be a dimension or metric name.")


@dataclass(frozen=True)
class BudgetConfig:
    """A loaded ``budget_events`` block."""

    bootstrap_servers: str
    topic: str
    producer: Mapping[str, Any]
    partitions: int
    replication_factor: int


@dataclass(frozen=True)
class BankerConfig:
    """The loaded options of a ``banker`` block."""

    redis_url: str
    cluster: bool
    key_prefix: str
    events: Mapping[str, str]
    campaign_dimension: str
    line_item_dimension: str
    currency_dimension: str
    default_currency: str
    auction_dimension: str
    token_dimension: str
    token_ttl: int
    bot_dimension: str
    auction_time_dimension: str
    late_after: float
    flush_interval: float
    batch_size: int
    max_pending: int
    id_ttl: int
    day_ttl: int
    socket_timeout: float
    backoff_initial: float
    backoff_max: float
    spool: SpoolConfig
    budget_events: BudgetConfig | None


def _check_url(value: str) -> None:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValidationError("Must be a redis://, rediss:// or unix:// URL.")


class BudgetTopic(Options):
    """Where the banker announces exhausted budgets (confluent-kafka)."""

    model = BudgetConfig

    bootstrap_servers = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Brokers of the budget topic."},
    )
    topic = fields.String(
        load_default="tracker-budget",
        validate=validate.Length(min=1, max=249),
        metadata={"description": "Topic where an exhausted budget is announced."},
    )
    producer = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        load_default=dict,
        metadata={"description": "librdkafka settings of its producer, passed through."},
    )
    partitions = fields.Integer(
        load_default=3,
        validate=validate.Range(min=1),
        metadata={"description": "Partitions of the topic `tracker setup` creates."},
    )
    replication_factor = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": "Replication factor of the topic `tracker setup` creates."},
    )


#: The spool's block, with smaller defaults than the kafka collector's: notices are small.
BankerSpool = SpoolOptions.sized(
    256 << 20, 4 << 20, "Where pending spend goes while Redis is down for longer than the bound."
)


class BankerOptions(Options):
    """Options of the ``banker`` collector."""

    model = BankerConfig

    redis_url = fields.String(
        required=True,
        validate=_check_url,
        metadata={
            "description": (
                "`redis://host:port/db`, `rediss://` (TLS) or `unix://`. The shipped "
                "config reads `${TRACKER_REDIS_URL:-redis://127.0.0.1:6379/0}`. For a "
                "cluster, any one node."
            )
        },
    )
    cluster = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "Talk Redis Cluster (`RedisCluster`); the keys' hash tags keep each "
                "step in one slot."
            )
        },
    )
    key_prefix = fields.String(
        load_default="bank",
        validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,32}$"),
        metadata={"description": "First part of every key (`[A-Za-z0-9_.-]{1,32}`)."},
    )
    events = fields.Dict(
        keys=fields.String(validate=_NAME),
        values=fields.String(validate=_NAME),
        load_default=lambda: {"billing": "spend_micros"},
        metadata={
            "description": (
                "Event types that are spent, each with the integer metric that holds "
                "the spend in micro-units (for win notices: `win: "
                "clearing_price_micros`). Other types are counted as skipped."
            )
        },
    )
    campaign_dimension = fields.String(
        load_default="campaign_id",
        validate=_NAME,
        metadata={
            "description": (
                "Where the notice names them. A notice without a campaign is not spent;"
                " without a line item it is spent on the campaign only."
            )
        },
    )
    line_item_dimension = fields.String(
        load_default="line_item_id",
        validate=_NAME,
        metadata={
            "description": (
                "Where the notice names them. A notice without a campaign is not spent;"
                " without a line item it is spent on the campaign only."
            )
        },
    )
    currency_dimension = fields.String(
        load_default="currency",
        validate=_NAME,
        metadata={
            "description": (
                "Where the notice names them. A notice without a campaign is not spent;"
                " without a line item it is spent on the campaign only."
            )
        },
    )
    default_currency = fields.String(
        load_default="USD",
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Must be ISO 4217."),
        metadata={
            "description": (
                "Currency every campaign is billed in, unless `tracker banker set-budget "
                "--currency` set its own; also that of a notice naming none. A notice in "
                "another currency is refused (400 `currency_mismatch`), never spent."
            )
        },
    )
    auction_dimension = fields.String(
        load_default="auction_id",
        validate=_NAME,
        metadata={"description": "The auction id an encrypted price token is bound to."},
    )
    token_dimension = fields.String(
        load_default="price_token",
        validate=_NAME,
        metadata={
            "description": (
                "The digest of a notice's encrypted price token (`price.token`); a token "
                "already seen under another auction is not spent."
            )
        },
    )
    token_ttl = fields.Integer(
        load_default=259_200,
        validate=validate.Range(min=3600),
        metadata={
            "description": (
                "Seconds a price token is remembered with its auction (72 h; at least the "
                "exchange's retry window). About 200 bytes of Redis memory per token."
            )
        },
    )
    bot_dimension = fields.String(
        load_default="is_bot",
        validate=_NAME,
        metadata={
            "description": (
                "A notice with this dimension `true` is not spent. (`billable: false`, "
                "an `AUDIT` render, is never spent.)"
            )
        },
    )
    auction_time_dimension = fields.String(
        load_default="auction_ts",
        validate=_NAME,
        metadata={
            "description": (
                "Epoch seconds or milliseconds of the auction; with it, a notice "
                "received more than `late_after` seconds later is flagged late (still "
                "spent)."
            )
        },
    )
    late_after = fields.Float(
        load_default=3600.0, validate=validate.Range(min=1), metadata={"description": "Seconds."}
    )
    flush_interval = fields.Float(
        load_default=0.1,
        validate=validate.Range(min=0.005, max=60),
        metadata={
            "description": (
                "Seconds between flushes to Redis, per worker (0.005 to 60). Spend is "
                "visible about this long after the notice."
            )
        },
    )
    batch_size = fields.Integer(
        load_default=500,
        validate=validate.Range(min=1, max=10_000),
        metadata={
            "description": (
                "Notices per Lua call (one campaign per call; every call of a flush "
                "goes in one pipelined round trip)."
            )
        },
    )
    max_pending = fields.Integer(
        load_default=50_000,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "Notices a worker keeps in memory while Redis is down; past it they go "
                "to the spool."
            )
        },
    )
    id_ttl = fields.Integer(
        load_default=259_200,
        validate=validate.Range(min=60),
        metadata={
            "description": (
                "Seconds a notice id is remembered (72 h): duplicates within it are "
                "refused. About 360 bytes of Redis memory per id (its campaign's record "
                "and its claim)."
            )
        },
    )
    day_ttl = fields.Integer(
        load_default=90 * 86_400,
        validate=validate.Range(min=86_400),
        metadata={"description": "Seconds the per-day hashes are kept (90 days)."},
    )
    socket_timeout = fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0.01, max=30),
        metadata={"description": "Seconds redis-py waits to connect and for a reply."},
    )
    backoff_initial = fields.Float(
        load_default=0.1,
        validate=validate.Range(min=0.01, max=60),
        metadata={"description": "Retry delays while Redis is down, doubling."},
    )
    backoff_max = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0.01, max=600),
        metadata={"description": "Retry delays while Redis is down, doubling."},
    )
    spool = fields.Nested(
        BankerSpool,
        required=True,
        metadata={
            "description": (
                "The banker's durable spool (below): shared by the workers, replayed "
                "exactly once when Redis answers."
            )
        },
    )
    budget_events = fields.Nested(
        BudgetTopic,
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                "tracker-budget, producer: {}, partitions: 3, replication_factor: 1}`: "
                "where an exhausted budget is announced. `tracker setup` creates the "
                "topic. Without it, only the Redis sets are updated."
            )
        },
    )

    @validates("events")
    def _some_events(self, value: dict, **kwargs) -> None:
        if not value:
            raise ValidationError("Name at least one event type and its spend metric.")
