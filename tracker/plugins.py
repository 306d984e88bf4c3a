"""The plugin contract: collectors and preprocessors, found through entry points.

A plugin is a class registered under the ``tracker.collectors`` or
``tracker.preprocessors`` entry-point group of its distribution, for example in
``setup.cfg``::

    [options.entry_points]
    tracker.collectors =
        s3 = my_package.s3:S3Collector

and named by ``type`` in a ``collectors:`` or ``preprocessors:`` block of the
tracker config. The built-in plugins are registered the same way.

What the core needs from a collector, and when it calls it (one instance per
configured block, per worker process):

1. ``__init__(name, options)`` in the master, when the config is read. It must
   not open files, sockets or threads: the worker processes are forked after.
2. ``open()`` in each worker, after the fork.
3. ``collect(event)`` on the request path (the one method a collector must
   write), or ``deliver(event, timeout)`` on a path whose delivery class is
   ``durable``; before either, ``admit(event, timeout)`` of every collector of
   the path, which may refuse the event (:class:`Refused`).
4. ``health()`` for ``/readyz``.
5. ``close(timeout)`` when the worker stops: deliver or keep what is buffered,
   release; every collector is closed at once, within one shared deadline.

``redeliver(events, timeout)`` is how ``tracker replay`` learns what became of
re-sent events (a :class:`Delivery`); a collector that does not say keeps every
spool segment it was given. ``setup(timeout)`` is run once per deployment by
``tracker setup`` (topics, tables). A collector whose sink can be down
subclasses :class:`tracker.spool.sink.OutboxCollector` and writes only ``send``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

from marshmallow import Schema, post_load

from tracker.event import Event

COLLECTOR_GROUP = "tracker.collectors"
PREPROCESSOR_GROUP = "tracker.preprocessors"

#: Methods of the contract before 0.2 that the core no longer calls, and what to do instead.
REMOVED = {
    "flush": "the core no longer calls flush(timeout): deliver what is buffered in close(timeout)",
    "healthy": "readiness is health(): return Health(ok, detail) instead of healthy() and status()",
    "status": "readiness is health(): return Health(ok, detail) instead of healthy() and status()",
}


@dataclass(frozen=True)
class Health:
    """Whether a plugin can do its work (``ok``, for readiness) and its state in a few words."""

    ok: bool
    detail: str = "ok"


@dataclass(frozen=True)
class Delivery:
    """What became of events handed to a collector: the result ``tracker replay`` reads.

    Attributes:
        acknowledged: Taken for good: acknowledged by the sink, written to the
            collector's final file, or nothing to send (a notice a ledger does
            not spend).
        quarantined: Refused for good by the sink and kept in the collector's
            quarantine, for an operator.
        failed: Neither: not delivered, still in flight, spooled for later, lost.
    """

    acknowledged: int = 0
    quarantined: int = 0
    failed: int = 0

    @property
    def complete(self) -> bool:
        """Whether every event is accounted for (acknowledged or quarantined)."""
        return self.failed == 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(
            self.acknowledged + other.acknowledged,
            self.quarantined + other.quarantined,
            self.failed + other.failed,
        )


class Options(Schema):
    """A plugin's options schema whose ``load`` returns a frozen dataclass, ``model``.

    The core's config is read the same way: marshmallow validates, a frozen
    dataclass is what the plugin reads (``self.options.url``, not
    ``self.options["url"]``). Nested blocks nest their own ``Options``.
    """

    model: ClassVar[type | None] = None

    @post_load
    def _to_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return data if self.model is None else self.model(**data)


class Plugin:
    """Base of collectors and preprocessors.

    Attributes:
        options_schema: Marshmallow schema class that validates the plugin's
            config block (without its ``type`` key). Unknown keys are errors.
            ``None`` means the plugin takes no options. An :class:`Options`
            schema loads them into its frozen dataclass.
    """

    options_schema: ClassVar[type[Schema] | None] = None

    def __init__(self, name: str, options: Any) -> None:
        """Keep the validated options; do not open anything here.

        Args:
            name: The block's name in the config (``collectors.<name>``).
            options: The block's options as loaded by ``options_schema`` (a
                frozen dataclass for an :class:`Options` schema, else a dict).
        """
        self.name = name
        self.options = options

    def setup(self, timeout: float) -> list[str]:
        """Create what the plugin needs outside the process (topics, tables...).

        Run once per deployment by ``tracker setup``, never by the workers. It
        must be idempotent.

        Returns:
            One line per thing created or found, for the operator.
        """
        return []

    def open(self) -> None:
        """Open files, clients and threads; called once per worker after the fork."""

    def close(self, timeout: float) -> int:
        """Release resources within ``timeout`` seconds.

        Returns:
            The number of events that could not be delivered.
        """
        return 0

    def health(self) -> Health:
        """Return whether the plugin can do its work now, and its state, for ``/readyz``."""
        return Health(True)


class Refused(Exception):
    """An event a collector refuses in :meth:`Collector.admit`, before any collector takes it.

    The caller gets ``status`` (a 4xx) with ``reason`` and ``description``,
    counted and offered to the rejected stream like any refusal.
    """

    def __init__(self, status: int, reason: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.reason = reason
        self.description = description


class Collector(Plugin):
    """Receives events after preprocessing and delivers them somewhere.

    Attributes:
        refusals: Status and description of each refusal :meth:`admit` may
            answer, for the OpenAPI document of the paths that use the collector.
    """

    refusals: ClassVar[dict[str, str]] = {}

    def admit(self, event: Event, timeout: float | None) -> None:
        """Refuse the event (raise :class:`Refused`) before any collector of its path takes it.

        Called only for collectors that override it, after the preprocessors.
        ``timeout`` is the path's delivery timeout on a ``durable`` path, where
        the request already waits and a round trip is allowed; ``None`` on a
        fast path, where this must not block. It must raise nothing else.
        """

    def late_refusal(self, path: str, refused: Refused, fields: dict[str, Any]) -> None:
        """Offer the rejected stream an event refused after its request was answered.

        For what a collector can only decide later (the banker's ledger step:
        a price token another worker took first). The core replaces this
        no-op, before :meth:`open`, when a rejected stream is configured; call
        it from any thread. ``fields`` identify the event (ids, never personal
        data); the stream's record says ``status`` 202: the request was taken.
        """

    def collect(self, event: Event) -> None:
        """Take one event; called on the request path.

        Must not block on the network or disk sync and must not raise: a
        failure is counted and logged by the collector itself. Must not change
        the event: other collectors get the same object. A collector of the
        rejected stream also gets, from another collector's thread, the
        records offered through :meth:`late_refusal`: its ``collect`` must be
        thread-safe.
        """
        raise NotImplementedError

    def deliver(self, event: Event, timeout: float) -> bool:
        """Take one event on a ``durable`` path, and wait until it is safe.

        Safe means acknowledged by the sink, or written and fsynced to local
        storage that outlives the process (see :mod:`tracker.spool`). The
        request waits for this, up to ``timeout`` seconds. The default, for
        collectors with nothing to wait for, is :meth:`collect`.

        Returns:
            ``False`` if the event is not safe; the caller answers 503.
        """
        self.collect(event)
        return True

    def redeliver(self, events: list[Event], timeout: float) -> Delivery | None:
        """Take events ``tracker replay`` re-sends; say what became of them.

        Wait up to ``timeout`` seconds for the sink's answers. The default
        collects each event and says nothing (``None``): ``tracker replay``
        then keeps every spool segment the events came from, since nothing
        says they arrived.
        """
        for event in events:
            self.collect(event)
        return None


class Preprocessor(Plugin):
    """Transforms, enriches, flags or drops an event before collection."""

    #: The reasons it counts in ``tracker_enrichment_failures_total``: each
    #: series is created when the worker opens, not on the request that first
    #: fails (see :meth:`tracker.http.app.Tracker.open`).
    failure_reasons: ClassVar[tuple[str, ...]] = ()

    def process(self, event: Event) -> Event | None:
        """Return the (possibly modified) event, or ``None`` to drop it.

        Called on the request path; must be fast and must not block.
        """
        raise NotImplementedError


class PluginLoadError(Exception):
    """A plugin named in the config could not be found or loaded."""


def load_plugin(group: str, type_name: str, base: type[Plugin]) -> type[Plugin]:
    """Find the class registered as ``type_name`` in entry-point ``group``.

    Raises:
        PluginLoadError: Nothing is registered under that name, or the entry
            point fails to import, or it is not a subclass of ``base``. The
            message names the plugin and the distribution that provides it.
    """
    found = entry_points(group=group, name=type_name)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=group))
        raise PluginLoadError(
            f"no plugin {type_name!r} in entry-point group {group!r} "
            f"(installed: {', '.join(known) or 'none'})"
        )
    ep: EntryPoint = next(iter(found))
    origin = f"{ep.value} from distribution {_distribution(ep)!r}"
    try:
        cls = ep.load()
    except Exception as ex:
        raise PluginLoadError(f"plugin {type_name!r} ({origin}) failed to load: {ex}") from ex
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginLoadError(
            f"plugin {type_name!r} ({origin}) is not a subclass of "
            f"{base.__module__}.{base.__name__}"
        )
    for method, advice in REMOVED.items():
        if _defines(cls, method):
            raise PluginLoadError(
                f"plugin {type_name!r} ({origin}) defines {method}(), which tracker 0.2 "
                f"no longer calls: {advice} (see CHANGELOG.md)"
            )
    return cls


def _defines(cls: type, method: str) -> bool:
    """Whether a class outside the core (the plugin or its own bases) defines ``method``."""
    return any(
        method in vars(klass)
        for klass in cls.__mro__
        if klass.__module__ != "tracker" and not klass.__module__.startswith("tracker.")
    )


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "unknown"
