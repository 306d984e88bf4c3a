"""tracker: tracking URLs in, validated events out to Kafka and other collectors.

The plugin API, the only part of ``tracker`` a collector or preprocessor
(built in or third party) may import:

- :mod:`tracker.plugins`: ``Plugin``, ``Collector``, ``Preprocessor`` (the
  contract, in the module's docstring), ``Health``, ``Delivery``, ``Options``
  (options into a frozen dataclass) and ``PluginLoadError``.
- :mod:`tracker.event`: ``Event``, what every collector receives.
- :mod:`tracker.spool`: ``OutboxCollector``, the base of a collector whose sink
  can be down (it writes ``send``; the outbox queues, spools, replays and
  quarantines), ``Report``; ``Spool``, ``Segment``, ``Quarantine`` and
  ``FileOps``, the durable local queue beneath; ``SpoolOptions``, the schema of
  its config block, and ``SpoolConfig``, what it loads into.
- :mod:`tracker.metrics`: the collector-agnostic counters (``COLLECTED``,
  ``DELIVERED``, ``FAILED``, ``SPOOLED``, ``REPLAYED``, ``QUARANTINED``,
  ``PENDING``, ``SPOOL_BYTES``, ``SPOOL_AGE``, ``SPOOL_DAMAGED``, ``SINK_UP``,
  ``THREAD_RESTARTS``), each labelled by the collector's block name, and
  ``inc``, which counts on the request path without ``labels()``'s per-call
  cost; a plugin defines any metric of its own in its own module.

Everything else (``tracker.config``, ``tracker.http``, ``tracker.adtech``,
``tracker.intake.intake``...) is internal and may change. The package is laid out
by role; ``docs/architecture.md`` walks through it.
"""
