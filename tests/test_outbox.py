"""The outbox, through a small sink of the kind a plugin writes: no broker, no Redis."""

from __future__ import annotations

import time
import uuid

from prometheus_client import REGISTRY

from tracker.event import Event
from tracker.plugins import Delivery
from tracker.spool import OutboxCollector, Spool, SpoolOptions


class Sink(OutboxCollector):
    """Takes events while ``up``; refuses for good those of type ``poison``."""

    sink_noun = "sink"

    def __init__(self, directory, **settings):
        name = f"o{uuid.uuid4().hex[:8]}"
        super().__init__(name, None)
        spool = SpoolOptions().load({"directory": str(directory)})
        self.make_outbox(spool, interval=0.01, sync_interval=0.02, backoff=(0.02, 0.05), **settings)
        self.up = True
        self.raises = False
        self.got: list[str] = []

    def send(self, records, report):
        if self.raises:
            raise RuntimeError("client bug")
        for event in records:
            if not self.up:
                report.retry(event, "sink_down")
                self.outbox.set_down("sink_down", "refused")
            elif event.type == "poison":
                report.refuse(event, "poison", "never")
            else:
                self.got.append(event.id)
                report.ack()


def sample(name: str, collector: Sink, **labels) -> float:
    value = REGISTRY.get_sample_value(name, {"collector": collector.name, **labels})
    return value or 0.0


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def events(n: int, kind: str = "hit") -> list[Event]:
    return [Event(type=kind, path="p", dimensions={"n": i}) for i in range(n)]


def test_acknowledged_and_refused_records_are_counted_and_the_refused_quarantined(tmp_path):
    sink = Sink(tmp_path / "spool")
    sink.open()
    good, bad = events(5), events(1, "poison")
    for event in [*good, *bad]:
        sink.collect(event)
    assert wait_for(lambda: sink.pending() == 0)
    assert sink.got == [e.id for e in good]
    assert wait_for(lambda: sample("tracker_collector_delivered_total", sink) == 5)
    assert sample("tracker_quarantined_total", sink, reason="poison") == 1
    assert sink.close(1.0) == 0
    (quarantined,) = (tmp_path / "spool" / "quarantine" / "poison").glob("*.seg")
    assert quarantined.stat().st_size > 0


def test_a_sink_that_is_down_gets_its_events_from_the_spool_once_back(tmp_path):
    sink = Sink(tmp_path / "spool")
    sink.open()
    sink.up = False
    first = events(3)
    for event in first:
        sink.collect(event)
    assert wait_for(lambda: not sink.outbox.up)
    later = events(4)
    for event in later:
        sink.collect(event)  # while down: straight to the spool
    assert sample("tracker_spooled_total", sink, reason="sink_down") >= 4
    assert wait_for(lambda: sample("tracker_spool_bytes", sink) > 0)
    assert sink.health().ok and sink.health().detail.startswith("sink down (refused), spooling")
    sink.up = True
    assert wait_for(lambda: len(sink.got) == 7)
    assert sorted(sink.got) == sorted(e.id for e in [*first, *later])
    assert wait_for(lambda: sample("tracker_spool_bytes", sink) == 0)
    assert sample("tracker_replayed_total", sink) >= 4
    assert not list((tmp_path / "spool").glob("*.seg"))
    sink.close(1.0)


def test_damage_in_a_segment_is_skipped_counted_and_the_rest_delivered(tmp_path):
    directory = tmp_path / "spool"
    spool = Spool(directory, 1 << 20)
    spool.open()
    kept = events(4)
    for event in kept:
        spool.append(event.to_json())
    spool.close()
    (path,) = directory.glob("*.seg")
    path.write_bytes(path.read_bytes() + b"\x00\x00\x02\x00torn")  # a torn tail
    sink = Sink(directory)
    sink.open()
    assert wait_for(lambda: len(sink.got) == 4)
    assert wait_for(lambda: not path.exists())
    # Before: the banker never counted damage, nor set the spool gauges.
    assert sample("tracker_spool_damaged_total", sink) == 1
    sink.close(1.0)


def test_a_sink_that_raises_loses_nothing(tmp_path):
    sink = Sink(tmp_path / "spool")
    sink.open()
    sink.raises = True
    batch = events(3)
    for event in batch:
        sink.collect(event)
    assert wait_for(lambda: not sink.outbox.up)
    assert sink.health().detail.startswith("send error (RuntimeError: client bug), spooling")
    sink.raises = False
    assert wait_for(lambda: len(sink.got) == 3)
    sink.close(1.0)


def test_redeliver_says_what_became_of_each_event(tmp_path):
    sink = Sink(tmp_path / "spool")
    sink.open()
    result = sink.redeliver([*events(3), *events(1, "poison")], 5.0)
    assert result == Delivery(acknowledged=3, quarantined=1, failed=0)
    sink.up = False
    assert sink.redeliver(events(2), 5.0) == Delivery(failed=2)
    sink.close(1.0)
