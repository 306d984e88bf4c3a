"""From a built event to the collectors: preprocessors, then routing.

The pipeline owns the plugin instances of one process. It is built in the
master from the config (nothing opened) and opened in each worker after the
fork. It knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tracker.metrics as metrics
from tracker.config.model import Config, DeliveryConfig, FieldFilter
from tracker.event import Event
from tracker.intake.filters import EventFilter
from tracker.plugins import Collector, Health, Plugin, Preprocessor

log = logging.getLogger(__name__)

#: Outcomes of :meth:`Pipeline.dispatch`.
ACCEPTED = "accepted"
DROPPED = "dropped"
UNSAFE = "unsafe"


@dataclass(frozen=True)
class Route:
    """The plugins one path's events go through, resolved at start-up."""

    preprocessors: tuple[Preprocessor, ...]
    delivery: DeliveryConfig
    #: Each collector with the filter its events go through (or None).
    targets: tuple[tuple[Collector, Callable[[Event], Event] | None], ...]
    #: The collectors among ``targets`` that may refuse an event first (:meth:`Collector.admit`).
    admitters: tuple[tuple[Collector, Callable[[Event], Event] | None], ...] = ()


class Pipeline:
    """The plugin instances of one process and the routes between them."""

    def __init__(
        self,
        collectors: Mapping[str, Collector],
        preprocessors: Mapping[str, Preprocessor],
        filters: Mapping[str, FieldFilter | None] | None = None,
    ) -> None:
        self.collectors = dict(collectors)
        self.preprocessors = dict(preprocessors)
        self.filters = {
            name: EventFilter(spec) for name, spec in (filters or {}).items() if spec is not None
        }
        self._opened: list[Plugin] = []

    @classmethod
    def from_config(cls, config: Config) -> Pipeline:
        """Instantiate every configured plugin, without opening any."""
        return cls(
            collectors={n: p.create() for n, p in config.collectors.items()},
            preprocessors={n: p.create() for n, p in config.preprocessors.items()},
            filters={n: p.filter for n, p in config.collectors.items()},
        )

    def route(
        self, preprocessors: tuple[str, ...], collectors: tuple[str, ...], delivery: DeliveryConfig
    ) -> Route:
        """Resolve plugin names (already checked by the config) to instances."""
        targets = tuple((self.collectors[n], self.filters.get(n)) for n in collectors)
        return Route(
            preprocessors=tuple(self.preprocessors[n] for n in preprocessors),
            delivery=delivery,
            targets=targets,
            # Only overriding collectors are asked: a path without one pays nothing.
            admitters=tuple(t for t in targets if type(t[0]).admit is not Collector.admit),
        )

    def open(self) -> None:
        """Open every plugin; called once per worker after the fork."""
        for plugin in (*self.preprocessors.values(), *self.collectors.values()):
            plugin.open()
            self._opened.append(plugin)

    def close(self, timeout: float) -> int:
        """Close every collector at once, then every preprocessor, within ``timeout`` in all.

        The collectors close in parallel, so one slow collector cannot eat the
        time another needs to deliver or spool what it holds.

        Returns:
            How many events the collectors reported as undelivered.
        """
        deadline = time.monotonic() + timeout
        opened, self._opened = self._opened, []
        collectors = [p for p in opened if isinstance(p, Collector)]
        lost = [0] * len(collectors)

        def close(i: int, collector: Collector) -> None:
            try:
                lost[i] = collector.close(max(0.0, deadline - time.monotonic()))
            except Exception:
                log.exception("collector %s failed to close", collector.name)

        threads = [
            threading.Thread(target=close, args=(i, c), name=f"close-{c.name}", daemon=True)
            for i, c in enumerate(collectors)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for plugin in reversed([p for p in opened if not isinstance(p, Collector)]):
            try:
                plugin.close(max(0.0, deadline - time.monotonic()))
            except Exception:
                log.exception("plugin %s failed to close", plugin.name)
        return sum(lost)

    def health(self) -> dict[str, tuple[bool, str]]:
        """Report each collector's health and state, by name."""
        return {name: _health(c) for name, c in self.collectors.items()}

    def dispatch(self, route: Route, event: Event) -> str:
        """Run the route's preprocessors, then hand the event to its collectors.

        On a ``durable`` route each collector's :meth:`~Collector.deliver`
        waits until the event is safe.

        Returns:
            :data:`ACCEPTED`; :data:`DROPPED` when a preprocessor dropped the
            event; :data:`UNSAFE` when a durable route could not make it safe.

        Raises:
            Refused: A collector's :meth:`~Collector.admit` refused the event;
                no collector has taken it.
        """
        for preprocessor in route.preprocessors:
            result = preprocessor.process(event)
            if result is None:
                metrics.inc(metrics.DROPPED, preprocessor.name)
                return DROPPED
            event = result
        if route.admitters:
            wait = route.delivery.timeout if route.delivery.mode == "durable" else None
            for collector, only in route.admitters:
                collector.admit(only(event) if only else event, wait)
        metrics.inc(metrics.EVENTS, event.type)
        if route.delivery.mode == "durable":
            timeout = route.delivery.timeout
            safe = [self._deliver(c, f(event) if f else event, timeout) for c, f in route.targets]
            return ACCEPTED if all(safe) else UNSAFE
        for collector, only in route.targets:
            try:
                collector.collect(only(event) if only else event)
            except Exception:
                # The contract says collect() never raises; contain a plugin that does.
                log.exception("collector %s raised on event %s", collector.name, event.id)
                metrics.FAILED.labels(collector.name, "exception").inc()
        return ACCEPTED

    @staticmethod
    def _deliver(collector: Collector, event: Event, timeout: float) -> bool:
        try:
            return collector.deliver(event, timeout)
        except Exception:
            log.exception("collector %s raised on event %s", collector.name, event.id)
            metrics.FAILED.labels(collector.name, "exception").inc()
            return False


def _health(collector: Collector) -> tuple[bool, str]:
    health: Health = collector.health()
    return health.ok, health.detail
