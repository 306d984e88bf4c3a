"""The plugin contract: collectors and preprocessors, found through entry points.

A plugin is a class registered under the ``tracker.collectors`` or
``tracker.preprocessors`` entry-point group of its distribution, for example in
``setup.cfg``::

    [options.entry_points]
    tracker.collectors =
        s3 = my_package.s3:S3Collector

and named by ``type`` in a ``collectors:`` or ``preprocessors:`` block of the
tracker config. The built-in plugins are registered the same way.

Lifecycle (one instance per configured block, per worker process):

1. ``__init__(name, options)`` in the master, when the config is read. It must
   not open files, sockets or threads: the worker processes are forked after.
2. ``open()`` in each worker, after the fork.
3. ``collect(event)`` / ``process(event)`` on the request path, or
   ``deliver(event, timeout)`` on a path whose delivery class is ``durable``.
4. ``flush(timeout)`` of every collector, then ``close(timeout)`` of every
   plugin, when the worker stops, within one shared deadline.

``setup(timeout)`` is separate: ``tracker setup`` calls it once per deployment
to create external resources such as Kafka topics.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

from marshmallow import Schema

from tracker.event import Event

COLLECTOR_GROUP = "tracker.collectors"
PREPROCESSOR_GROUP = "tracker.preprocessors"


class Plugin:
    """Base of collectors and preprocessors.

    Attributes:
        options_schema: Marshmallow schema class that validates the plugin's
            config block (without its ``type`` key). Unknown keys are errors.
            ``None`` means the plugin takes no options.
    """

    options_schema: ClassVar[type[Schema] | None] = None

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        """Keep the validated options; do not open anything here.

        Args:
            name: The block's name in the config (``collectors.<name>``).
            options: The block's options as loaded by ``options_schema``.
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

    def healthy(self) -> bool:
        """Return whether the plugin can currently do its work (for readiness)."""
        return True

    def status(self) -> str:
        """Describe the plugin's state in a few words, for ``/readyz``."""
        return "ok" if self.healthy() else "unhealthy"


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

    def collect(self, event: Event) -> None:
        """Take one event; called on the request path.

        Must not block on the network or disk sync and must not raise: a
        failure is counted and logged by the collector itself. Must not change
        the event: other collectors get the same object.
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

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for buffered events to be delivered.

        Returns:
            The number of events still pending.
        """
        return 0


class Preprocessor(Plugin):
    """Transforms, enriches, flags or drops an event before collection."""

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
    return cls


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "unknown"
