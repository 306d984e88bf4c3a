"""The ``banker`` collector's config block, validated by its own schema (docs/config.md)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

_NAME = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="Must be a dimension or metric name.")


def _check_url(value: str) -> None:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValidationError("Must be a redis://, rediss:// or unix:// URL.")


class BudgetTopic(Schema):
    """Where the banker announces exhausted budgets (confluent-kafka)."""

    bootstrap_servers = fields.String(required=True, validate=validate.Length(min=1))
    topic = fields.String(load_default="tracker-budget", validate=validate.Length(min=1, max=249))
    producer = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    partitions = fields.Integer(load_default=3, validate=validate.Range(min=1))
    replication_factor = fields.Integer(load_default=1, validate=validate.Range(min=1))


class BankerSpool(Schema):
    """Where pending spend goes while Redis is down for longer than the bound."""

    directory = fields.String(required=True, validate=validate.Length(min=1))
    max_bytes = fields.Integer(load_default=256 << 20, validate=validate.Range(min=1 << 20))
    segment_bytes = fields.Integer(load_default=4 << 20, validate=validate.Range(min=64 << 10))


class BankerOptions(Schema):
    """Options of the ``banker`` collector."""

    redis_url = fields.String(required=True, validate=_check_url)
    cluster = fields.Boolean(load_default=False)
    key_prefix = fields.String(
        load_default="bank", validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,32}$")
    )
    events = fields.Dict(
        keys=fields.String(validate=_NAME),
        values=fields.String(validate=_NAME),
        load_default=lambda: {"billing": "spend_micros"},
    )
    campaign_dimension = fields.String(load_default="campaign_id", validate=_NAME)
    line_item_dimension = fields.String(load_default="line_item_id", validate=_NAME)
    currency_dimension = fields.String(load_default="currency", validate=_NAME)
    default_currency = fields.String(
        load_default="USD", validate=validate.Regexp(r"^[A-Z]{3}$", error="Must be ISO 4217.")
    )
    bot_dimension = fields.String(load_default="is_bot", validate=_NAME)
    auction_time_dimension = fields.String(load_default="auction_ts", validate=_NAME)
    late_after = fields.Float(load_default=3600.0, validate=validate.Range(min=1))
    flush_interval = fields.Float(load_default=0.1, validate=validate.Range(min=0.005, max=60))
    batch_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10_000))
    max_pending = fields.Integer(load_default=50_000, validate=validate.Range(min=1))
    id_ttl = fields.Integer(load_default=259_200, validate=validate.Range(min=60))
    day_ttl = fields.Integer(load_default=90 * 86_400, validate=validate.Range(min=86_400))
    socket_timeout = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=30))
    backoff_initial = fields.Float(load_default=0.1, validate=validate.Range(min=0.01, max=60))
    backoff_max = fields.Float(load_default=5.0, validate=validate.Range(min=0.01, max=600))
    spool = fields.Nested(BankerSpool, required=True)
    budget_events = fields.Nested(BudgetTopic, load_default=None, allow_none=True)

    @validates("events")
    def _some_events(self, value: dict, **kwargs) -> None:
        if not value:
            raise ValidationError("Name at least one event type and its spend metric.")
