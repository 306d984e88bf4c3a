"""tracker: tracking URLs in, validated events out to Kafka and other collectors.

The top of the package holds only what every part shares, which is also the
plugin API, the only part of ``tracker`` a collector or preprocessor (built in
or third party) may import:

- :mod:`tracker.plugins`: ``Plugin``, ``Collector``, ``Preprocessor`` (the
  contract, in the module's docstring), ``Health``, ``Delivery``, ``Options``
  (options into a frozen dataclass), ``Refused`` (what ``Collector.admit``
  raises) and ``PluginLoadError``.
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

Everything else is internal and may change, one package per role:
:mod:`tracker.config` (loading and validating the YAML into frozen objects),
:mod:`tracker.intake` (the request-to-event domain: fields, validation,
refusals, the pipeline), :mod:`tracker.http` (the Falcon app),
:mod:`tracker.adtech` (OpenRTB, signing, landing URLs, consent),
:mod:`tracker.preprocessors` and :mod:`tracker.process` (the CLI, the WSGI
app, gunicorn workers, draining, logs, replay). :mod:`tracker.wsgi` and
:mod:`tracker.workers` re-export the app and the workers of
:mod:`tracker.process` under the names gunicorn is given.
``docs/architecture.md`` walks through it.
"""
