"""The ``webhook`` collector: POST events in JSON batches to an HTTP endpoint.

An example of a third-party collector plugin, packaged on its own with the
``tracker.collectors`` entry point ``webhook``. It is built on the tracker's
outbox (:class:`tracker.spool.OutboxCollector`), so it only says how to POST a
batch and what the answer means. The outbox does the rest: the request path
only queues, one background thread per worker sends every ``interval`` seconds
(never per event), and while the endpoint is down events go to a durable spool
that is replayed once it answers again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import ClassVar

from marshmallow import fields, validate

from tracker.event import Event
from tracker.plugins import Options
from tracker.spool import OutboxCollector, Report, SpoolConfig, SpoolOptions


@dataclass(frozen=True)
class WebhookConfig:
    """The loaded options of a ``webhook`` block."""

    url: str
    batch_size: int
    interval: float
    max_queue: int
    timeout: float
    spool: SpoolConfig


class WebhookOptions(Options):
    """Options of the ``webhook`` collector."""

    model = WebhookConfig
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    batch_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))
    interval = fields.Float(load_default=1.0, validate=validate.Range(min=0.01, max=60))
    max_queue = fields.Integer(load_default=10_000, validate=validate.Range(min=1))
    timeout = fields.Float(load_default=2.0, validate=validate.Range(min=0.1, max=30))
    spool = fields.Nested(
        SpoolOptions, load_default=lambda: SpoolOptions().load({"directory": "var/spool/webhook"})
    )


class WebhookCollector(OutboxCollector):
    """Send events to ``url`` as JSON arrays of up to ``batch_size``."""

    options_schema: ClassVar = WebhookOptions
    sink_noun = "endpoint"

    def __init__(self, name: str, options: WebhookConfig) -> None:
        super().__init__(name, options)
        self.make_outbox(
            options.spool,
            interval=options.interval,
            max_pending=options.max_queue,
            batch_size=options.batch_size,
        )

    def send(self, records: list[Event], report: Report) -> None:
        """POST one batch: 2xx delivers it, another 4xx refuses it for good, else retry."""
        request = urllib.request.Request(
            self.options.url,
            data=json.dumps([event.to_dict() for event in records]).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as response:
                response.read()
        except urllib.error.HTTPError as ex:
            if 400 <= ex.code < 500 and ex.code not in (408, 429):
                for event in records:
                    report.refuse(event, f"http_{ex.code}", str(ex))
                return
            error: OSError = ex
        except OSError as ex:
            error = ex
        else:
            report.ack(len(records))
            return
        for event in records:
            report.retry(event, "post_failed")
        self.outbox.set_down("endpoint_down", str(error))
