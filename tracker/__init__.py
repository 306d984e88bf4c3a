"""tracker: tracking URLs in, validated events out to Kafka and other collectors.

The plugin API, the only part of ``tracker`` a collector or preprocessor
(built in or third party) may import:

- :mod:`tracker.plugins`: ``Plugin``, ``Collector``, ``Preprocessor`` (the
  contract, in their docstrings), ``Refused`` (what ``Collector.admit`` raises)
  and ``PluginLoadError``.
- :mod:`tracker.event`: ``Event``, what every collector receives.
- :mod:`tracker.spool`: ``Spool`` and ``Segment``, a durable local queue for a
  collector whose sink can be down, and ``SpoolOptions``, the schema of its
  config block (``directory``, ``max_bytes``, ``segment_bytes``).
- :mod:`tracker.metrics`: the collector-agnostic counters (``COLLECTED``,
  ``DELIVERED``, ``FAILED``, ``SPOOLED``, ``REPLAYED``, ``SPOOL_BYTES``,
  ``SPOOL_AGE``, ``SPOOL_DAMAGED``, ``SINK_UP``), each labelled by the
  collector's block name, and ``inc``, which counts on the request path
  without ``labels()``'s per-call cost; a plugin defines any metric of its
  own in its own module.

Everything else (``tracker.config``, ``tracker.http``, ``tracker.adtech``,
``tracker.intake.intake``...) is internal and may change. The package is laid out
by role; ``docs/architecture.md`` walks through it.
"""
