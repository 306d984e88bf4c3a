"""Collector.admit: a collector refuses an event before any collector of its path takes it."""

from __future__ import annotations

import falcon.testing

from collectors.memory import MemoryCollector, MemoryConfig
from tests import ROOT
from tracker.config import load_file
from tracker.http.app import Tracker
from tracker.intake.pipeline import Pipeline
from tracker.plugins import Refused


class Picky(MemoryCollector):
    """Refuses billing notices of campaign ``nope``; on durable paths, says it was asked."""

    asked: list[float | None]

    def admit(self, event, timeout):
        self.asked.append(timeout)
        if event.dimensions.get("campaign_id") == "nope":
            raise Refused(409, "picky", "Campaign nope is refused.")


def app():
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    memory = {name: MemoryCollector(name, MemoryConfig(healthy=True)) for name in config.collectors}
    memory["banker"] = Picky("banker", MemoryConfig(healthy=True))
    memory["banker"].asked = []
    preprocessors = {name: p.create() for name, p in config.preprocessors.items()}
    filters = {name: p.filter for name, p in config.collectors.items()}
    tracker = Tracker(config, Pipeline(memory, preprocessors, filters))
    tracker.open()
    return falcon.testing.TestClient(tracker.wsgi), memory


def test_a_refused_event_is_a_4xx_and_no_collector_has_it():
    client, memory = app()
    refused = client.simulate_get("/bill", params={"aid": "a", "cid": "nope", "price": "1"})
    assert refused.status_code == 409
    assert refused.json["reason"] == "picky"
    assert memory["kafka"].events == memory["banker"].events == []
    ok = client.simulate_get("/bill", params={"aid": "a", "cid": "fine", "price": "1"})
    assert ok.status_code == 204
    assert [len(memory[n].events) for n in ("kafka", "banker")] == [1, 1]
    assert memory["banker"].asked == [5.0, 5.0]  # /bill is durable: its timeout


def test_a_refused_batch_item_is_answered_as_such_and_the_others_taken():
    client, memory = app()
    items = [
        {"event": "billing", "aid": "a1", "cid": "nope", "price": "1"},
        {"event": "billing", "aid": "a2", "cid": "fine", "price": "1"},
    ]
    answer = client.simulate_post("/events", json=items)
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json["results"]] == ["rejected", "accepted"]
    assert answer.json["results"][0]["reason"] == "picky"
    assert [e.dimensions["campaign_id"] for e in memory["kafka"].events] == ["fine"]
