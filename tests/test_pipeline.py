"""Preprocessing and collector routing, without HTTP."""

from __future__ import annotations

from collectors.memory import MemoryCollector
from tracker.event import Event
from tracker.pipeline import Pipeline
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
        "a": MemoryCollector("a", {"healthy": True}),
        "b": MemoryCollector("b", {"healthy": False}),
        "bad": Raising("bad", {}),
    }
    preprocessors = {"drop": DropBots("drop", {}), "tag": Tag("tag", {})}
    return Pipeline(collectors, preprocessors), collectors


def test_events_reach_only_the_routed_collectors():
    pipeline, collectors = make_pipeline()
    only_a = pipeline.route((), ("a",))
    both = pipeline.route(("tag",), ("a", "b"))
    first, second = Event(type="x", path="p"), Event(type="y", path="q")
    assert pipeline.dispatch(only_a, first)
    assert pipeline.dispatch(both, second)
    assert collectors["a"].events == [first, second]
    assert collectors["b"].events == [second]
    assert second.dimensions == {"tagged": "tag"}
    assert first.dimensions == {}


def test_a_preprocessor_can_drop_an_event():
    pipeline, collectors = make_pipeline()
    route = pipeline.route(("drop", "tag"), ("a",))
    assert not pipeline.dispatch(route, Event(type="x", path="p", dimensions={"bot": True}))
    assert collectors["a"].events == []


def test_a_raising_collector_does_not_stop_the_others(caplog):
    pipeline, collectors = make_pipeline()
    route = pipeline.route((), ("bad", "a"))
    event = Event(type="x", path="p")
    assert pipeline.dispatch(route, event)
    assert collectors["a"].events == [event]
    assert f"collector bad raised on event {event.id}" in caplog.text


def test_open_close_and_health():
    pipeline, collectors = make_pipeline()
    pipeline.open()
    assert collectors["a"].opened
    assert pipeline.healthy() == {"a": True, "b": False, "bad": True}
    assert pipeline.close(1.0) == 0
    assert collectors["a"].closed and collectors["b"].closed
