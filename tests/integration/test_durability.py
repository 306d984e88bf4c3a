"""Disk errors, crash debris, poison records, missing topics: what a user sees (issue 10).

Each test runs real gunicorn against the real broker and then reads the
topics: every request answered 200 must be there exactly once, by id, and
the metrics and /readyz must say what happened.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from tests.integration.live import BOOTSTRAP, ROOT, tmpfs
from tests.integration.test_faults import (
    PacedLoad,
    assert_exactly_once,
    conversion,
    impression,
    topic_ids,
    wait_until,
)
from tracker.event import Event
from tracker.spool import Spool

SET = AlterConfigOpType.SET
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a disk that really fills (ENOSPC, short writes)."""
    yield from tmpfs(tmp_path / "disk", "1m")


def fill(path: Path, leave: int) -> None:
    """Write ``path`` until the disk is full, then give ``leave`` bytes back."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as ex:
            assert ex.errno == errno.ENOSPC
    os.truncate(path, max(0, path.stat().st_size - leave))


def readyz(server) -> tuple[int, dict]:
    status, _, body = server.get("/readyz")
    return status, json.loads(body)


def spool_dir(server) -> Path:
    return Path(server.env["TRACKER_SPOOL_DIR"]) / "kafka"


def spooled_segments(server) -> list[Path]:
    """Segments waiting for replay (the quarantine not included)."""
    return sorted(spool_dir(server).glob("*.seg"))


def test_missing_topics_make_the_tracker_unready_and_lose_nothing(server_factory):
    server = server_factory()
    server.start()  # `tracker setup` not run, and the broker does not auto-create topics
    # Both Kafka collectors of the shipped config, the events' and the rejected
    # stream's, check their topics on their own background threads, in each worker:
    # wait for an answer in which both say so, and read that answer.
    kafkas = ("kafka", "rejected")
    seen: list[dict] = []

    def both_say_so() -> bool:
        status, body = readyz(server)
        states = body["collectors"]
        seen.append(body)
        return status == 503 and all(states[n].startswith("topics missing: ") for n in kafkas)

    assert wait_until(both_say_so, 15, step=0.2), seen[-1]
    body = seen[-1]
    state = body["collectors"]["kafka"]
    assert body["unhealthy"] == list(kafkas)
    assert body["collectors"]["rejected"].startswith("topics missing: tracker-rejected-")
    assert state.startswith("topics missing: tracker-auctions-"), state
    assert "(run tracker setup); spooling" in state
    assert "topics missing: tracker-auctions-" in server.output.read_text()
    with PacedLoad(server.port, 100, impression("missing")) as load:
        time.sleep(3)
    accepted = load.accepted()
    assert len(accepted) == len(load.outcomes) > 200
    # Before: 200 for every one, none delivered, and nothing said so.
    age = "tracker_spool_oldest_age_seconds"
    assert wait_until(lambda: server.metric(age) >= 3, 5), "the spool's age does not show"
    server.setup_topics()
    assert wait_until(lambda: readyz(server)[0] == 200, 15, step=0.2), readyz(server)
    assert wait_until(lambda: not spooled_segments(server), 30), "the spool did not drain"
    assert wait_until(lambda: server.metric(age) == 0, 5)
    seen = topic_ids(server, ["tracker-impressions"], len(accepted), "impression_id")
    assert_exactly_once(seen, accepted)
    assert server.metric("tracker_spooled_total", reason="topics_missing") > 0
    assert server.metric("tracker_kafka_topics_missing_total") > 0


def test_a_disk_that_fills_loses_no_acknowledged_event(small_disk, server_factory):
    server = server_factory(
        durable=("conversion",), TRACKER_SPOOL_DIR=str(small_disk), TRACKER_WORKERS="1"
    )
    server.start()  # no topics yet: every durable event stays in the spool until setup
    filler = small_disk / "filler"
    with PacedLoad(server.port, 60, conversion("full"), threads=2) as load:
        time.sleep(1)
        fill(filler, leave=6000)  # a few records' worth of room, then ENOSPC mid-record
        time.sleep(2)
        filler.unlink()  # space comes back (a log rotated, say): appends succeed again
        time.sleep(1.5)
    outcomes = list(load.outcomes.values())
    statuses = Counter(outcomes)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, "the disk never filled"
    assert outcomes[-10:] == [200] * 10, "appends did not recover once space came back"
    assert (
        server.metric("tracker_collector_failures_total", reason="spool_error") == (statuses[503])
    )
    accepted = load.accepted()
    server.setup_topics()
    assert wait_until(lambda: not spooled_segments(server), 30), "the spool did not drain"
    seen = topic_ids(server, ["tracker-conversions"], len(accepted), "order_id")
    # Before: the torn record ended its segment on replay, and the events
    # acknowledged after it in the same segment were deleted unsent.
    assert_exactly_once(seen, accepted)
    assert server.metric("tracker_spool_damaged_total") == 0, "a torn record was left behind"


def crash_debris(directory: Path) -> list[str]:
    """Write what a crash can leave; return the ids of the intact events in it."""
    directory.mkdir(parents=True)
    events = [
        Event(type="impression", path="impression", dimensions={"impression_id": f"crash-{i}"})
        for i in range(20)
    ]
    spool = Spool(directory, 1 << 20)
    spool.open()
    for event in events:
        spool.append(event.to_json())
    spool.close()
    (path,) = directory.glob("*.seg")
    data = bytearray(path.read_bytes())
    # A bad block in the middle: record 10's CRC fails. 8 bytes of file header,
    # then per record 8 bytes of length and CRC and the payload.
    start = 8 + sum(8 + len(e.to_json()) for e in events[:10])
    data[start + 8 + 20] ^= 0xFF
    path.write_bytes(bytes(data) + b"\x00\x00\x02\x00\x12")  # and a torn tail
    broken = events[10].id
    # Power cut after the rename, before the header reached the disk.
    (directory / "00000000000000000001-1-000001.seg").write_bytes(b"")
    (directory / "00000000000000000002-1-000001.seg").write_bytes(secrets.token_bytes(3000))
    return [e.dimensions["impression_id"] for e in events if e.id != broken]


def test_a_corrupt_segment_left_by_a_crash_costs_only_its_bad_record(server_factory):
    server = server_factory()
    intact = crash_debris(spool_dir(server))
    assert len(intact) == 19
    server.setup_topics()
    server.start()
    with PacedLoad(server.port, 100, impression("after-crash")) as load:
        time.sleep(3)
    accepted = load.accepted()
    assert len(accepted) == len(load.outcomes) > 200
    assert wait_until(lambda: not spooled_segments(server), 30), "the debris was not replayed"
    seen = topic_ids(server, ["tracker-impressions"], len(accepted) + 19, "impression_id")
    # Before: the empty segment killed the background thread (nothing replayed
    # again), and the bad record ended its segment: crash-10.. were deleted unsent.
    assert_exactly_once(seen, accepted | set(intact))
    assert server.metric("tracker_spool_damaged_total") >= 4
    assert server.metric("tracker_outbox_restarts_total") == 0
    assert readyz(server)[0] == 200


def huge_impression(event_id: str) -> str:
    consent = secrets.token_urlsafe(2400)[:3000]  # incompressible: lz4 cannot shrink it
    query = {"cid": "c-1", "iid": event_id, "gdpr_consent": consent}
    return f"/imp?{urllib.parse.urlencode(query)}"


def limit_topics(server, max_message_bytes: int) -> None:
    """Create topics that refuse messages over ``max_message_bytes``."""
    data = yaml.safe_load(server.config.read_text())
    kafka = data["collectors"]["kafka"]
    kafka["topics"]["config"] = {"max.message.bytes": str(max_message_bytes)}
    kafka["producer"]["batch.num.messages"] = 1  # the limit is per batch: one message each
    server.config.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_message_over_the_topic_limit_is_quarantined_and_blocks_nothing(server_factory):
    server = server_factory()
    limit_topics(server, 2048)
    server.setup_topics()
    server.start()
    with PacedLoad(server.port, 100, impression("small")) as load:
        time.sleep(1.5)
        assert server.get(huge_impression("huge-1"))[0] == 200
        time.sleep(3)
    accepted = load.accepted()
    assert len(accepted) == len(load.outcomes) > 300
    assert wait_until(
        lambda: server.metric("tracker_quarantined_total", reason="too_large") == 1, 30
    )
    seen = topic_ids(server, ["tracker-impressions"], len(accepted), "impression_id")
    # Before: the refused record was retried every 10 ms forever and every
    # record behind it waited.
    assert_exactly_once(seen, accepted)
    assert server.metric("tracker_collector_up", collector="kafka") >= 1
    quarantined = sorted((spool_dir(server) / "quarantine" / "too_large").glob("*.seg"))
    assert quarantined, "no quarantine segment to inspect"
    # The operator raises the topic's limit and re-sends the quarantine.
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    limit = ConfigEntry("max.message.bytes", "1048576", incremental_operation=SET)
    topic = ConfigResource(
        "topic", server.topic("tracker-impressions"), incremental_configs=[limit]
    )
    for future in admin.incremental_alter_configs([topic]).values():
        future.result(30)
    server.stop()
    replay = subprocess.run(
        [sys.executable, "-m", "tracker", "replay", "--collector", "kafka", *map(str, quarantined)],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == f"kafka: 1 events sent\nreplayed segments deleted: {len(quarantined)}\n"
    seen = topic_ids(server, ["tracker-impressions"], len(accepted) + 1, "impression_id")
    assert_exactly_once(seen, accepted | {"huge-1"})
    # Before: the quarantine kept what was sent, and the operator's next replay of
    # quarantine/too_large/*.seg sent it again.
    assert not [p for p in quarantined if p.exists()]
    assert not list((spool_dir(server) / "quarantine" / "too_large").glob("*.seg"))
