"""Preprocessing and collector routing, without HTTP."""

from __future__ import annotations

from collectors.memory import MemoryCollector, MemoryConfig
from tracker.event import Event
from tracker.intake.pipeline import ACCEPTED, DROPPED, UNSAFE, Pipeline
from tracker.plugins import Collector, Preprocessor


class DropBots(Preprocessor):
    def process(self, event):
        return None if event.dimensions.get("bot") else event


class Tag(Preprocessor):
    def process(self, event):
        event.dimensions["tagged"] = self.name
        return event


class Raising(Collector):
    def collect(self, event):
        raise RuntimeError("plugin bug")


def make_pipeline():
    collectors = {
        "a": MemoryCollector("a", MemoryConfig(healthy=True)),
        "b": MemoryCollector("b", MemoryConfig(healthy=False)),
        "bad": Raising("bad", {}),
    }
    preprocessors = {"drop": DropBots("drop", {}), "tag": Tag("tag", {})}
    return Pipeline(collectors, preprocessors), collectors


def test_events_reach_only_the_routed_collectors(delivery):
    pipeline, collectors = make_pipeline()
    only_a = pipeline.route((), ("a",), delivery())
    both = pipeline.route(("tag",), ("a", "b"), delivery())
    first, second = Event(type="x", path="p"), Event(type="y", path="q")
    assert pipeline.dispatch(only_a, first) == ACCEPTED
    assert pipeline.dispatch(both, second) == ACCEPTED
    assert collectors["a"].events == [first, second]
    assert collectors["b"].events == [second]
    assert second.dimensions == {"tagged": "tag"}
    assert first.dimensions == {}


def test_a_preprocessor_can_drop_an_event(delivery):
    pipeline, collectors = make_pipeline()
    route = pipeline.route(("drop", "tag"), ("a",), delivery())
    assert pipeline.dispatch(route, Event(type="x", path="p", dimensions={"bot": True})) == DROPPED
    assert collectors["a"].events == []


def test_a_raising_collector_does_not_stop_the_others(caplog, delivery):
    pipeline, collectors = make_pipeline()
    route = pipeline.route((), ("bad", "a"), delivery())
    event = Event(type="x", path="p")
    assert pipeline.dispatch(route, event) == ACCEPTED
    assert collectors["a"].events == [event]
    assert f"collector bad raised on event {event.id}" in caplog.text


def test_open_close_and_health():
    pipeline, collectors = make_pipeline()
    pipeline.open()
    assert collectors["a"].opened
    assert pipeline.health() == {
        "a": (True, "ok"),
        "b": (False, "unhealthy"),
        "bad": (True, "ok"),
    }
    assert pipeline.close(1.0) == 0
    assert collectors["a"].closed and collectors["b"].closed


class Unsafe(Collector):
    def collect(self, event):
        self.seen = event

    def deliver(self, event, timeout):
        self.timeout = timeout
        return False


def test_durable_route_waits_on_every_collector_and_reports_unsafe(delivery):
    pipeline, collectors = make_pipeline()
    pipeline.collectors["unsafe"] = unsafe = Unsafe("unsafe", {})
    durable = delivery(**{"class": "durable", "timeout": 2.5})
    event = Event(type="x", path="p")
    assert pipeline.dispatch(pipeline.route((), ("a",), durable), event) == ACCEPTED
    assert pipeline.dispatch(pipeline.route((), ("unsafe", "a"), durable), event) == UNSAFE
    assert unsafe.timeout == 2.5
    # Every collector still got the event, even after one failed.
    assert collectors["a"].events == [event, event]
    # A collector that raises on a durable route makes the event unsafe, not a 500.
    assert pipeline.dispatch(pipeline.route((), ("bad",), durable), event) == UNSAFE
