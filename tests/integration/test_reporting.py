"""Reporting end to end: real gunicorn, Kafka, Redis (the banker), `tracker load` into chdb.

Events for three campaigns arrive with exchange duplicates, bots, AUDIT renders
and a notice in another currency; then the same events again through
`tracker replay` of a spool segment and of the log files, while its data directory
is full, and with the loader SIGKILLed twice: holding a batch it could not
write (disk full), and while replayed copies stream in. Afterwards
`tracker report` (asking the running loader) equals the distinct events sent,
per campaign and metric, and its spend equals `tracker banker spend`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import ROOT
from tests.integration.live import free_ports, request, send_all, tmpfs
from tests.integration.test_banker import banker_servers
from tests.integration.test_durability import fill
from tracker.event import Event
from tracker.reporting import query
from tracker.spool import Spool

pytest.importorskip("chdb", reason="the [reporting] extra is not installed")
pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

CAMPAIGNS = ("alpha", "beta", "gamma")
BOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0"}


@pytest.fixture(scope="module")
def redis(redis_node):
    """The session's Redis, emptied: the report is compared with the whole ledger.

    Not a node of its own on the same port: stopping it at the end of this
    module stopped the session's Redis under every later test that uses it.
    """
    redis_node.fresh()
    return redis_node


class Loader:
    """`tracker load` as a child process, on its own admin port."""

    def __init__(self, server, database: Path) -> None:
        self.server = server
        self.database = database
        self.port = 0
        self.env = {**server.env, "TRACKER_REPORTING_URL": f"chdb:{database}"}
        self.proc: subprocess.Popen | None = None
        self.log = server.tmp_path / "loader.log"

    def start(self) -> Loader:
        # A fresh port each time: the one a killed loader held may be some client's now.
        (self.port,) = free_ports(1)
        self.env["TRACKER_LOADER_ADMIN_BIND"] = f"127.0.0.1:{self.port}"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "load", "--interval", "0.2"],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
        assert wait_until(lambda: self.get("/healthz")[0] == 200, 30), self.log.read_text()
        return self

    def get(self, target: str) -> tuple[int, dict, bytes]:
        try:
            return request(self.port, "GET", target)
        except OSError:
            return 0, {}, b""

    def metric(self, name: str) -> float:
        text = self.get("/metrics")[2].decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        )

    def caught_up(self) -> bool:
        """Every partition of the 7 event topics has a lag gauge, and all are 0."""
        text = self.get("/metrics")[2].decode()
        lag = [line for line in text.splitlines() if line.startswith("tracker_loader_lag{")]
        return len(lag) == 7 * 3 and all(line.endswith(" 0.0") for line in lag)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def report(self, *args: str) -> list[dict]:
        done = subprocess.run(
            [sys.executable, "-m", "tracker", "report", "--format", "json", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def traffic(seed: int) -> tuple[list[tuple], dict[str, dict[str, int]]]:
    """Requests (each distinct event once) and the report they must give per campaign."""
    rng = random.Random(seed)
    expected = {c: dict.fromkeys(query.COUNTED, 0) for c in CAMPAIGNS}
    reqs: list[tuple] = []
    for campaign in CAMPAIGNS:

        def add(target: str, headers: dict | None = None, **counts: int) -> None:
            reqs.append(("GET", target, None, headers or BROWSER))
            for name, n in counts.items():
                expected[campaign][name] += n  # noqa: B023 - called in this iteration only

        for i in range(rng.randint(20, 40)):
            ids = f"aid={campaign}-{i}&iid=imp&bid=b&cid={campaign}&li=li-1&crid=cr-1"
            if rng.random() < 0.1:
                add(f"/imp?{ids}", BOT, bot_impressions=1)
            else:
                one_auction(rng, ids, i, add)
    return reqs, expected


def one_auction(rng: random.Random, ids: str, i: int, add) -> None:
    """An impression and what may follow it: click, conversion, video, win and bill, or loss."""
    add(f"/imp?{ids}", impressions=1)
    if rng.random() < 0.3:
        add(f"/click?{ids}&url=https://www.example.com/", clicks=1)
    if rng.random() < 0.2:
        add(f"/conv?{ids}&order=o{i}&value=1.25", conversions=1, conversion_value_micros=1_250_000)
    if rng.random() < 0.3:
        add(f"/vast/start?{ids}", video_starts=1)
        if rng.random() < 0.5:
            add(f"/vast/complete?{ids}", video_completes=1)
    if rng.random() >= 0.5:
        add(f"/loss?{ids}&loss=102", losses=1)
        return
    add(f"/win?{ids}&price=2.5", wins=1)
    micros = rng.randint(1, 9_999)
    if rng.random() < 0.1:
        add(f"/bill?{ids}&price=AUDIT&cur=USD")  # an AUDIT render: not spent
    elif rng.random() < 0.1:
        # The shipped /bill has no bot filter (an exchange's server calls it):
        # a crawler's user agent there is spent, by the banker and the report.
        add(f"/bill?{ids}&price={micros / 1000}&cur=USD", BOT, spend_micros=micros)
    else:
        add(f"/bill?{ids}&price={micros / 1000}&cur=USD", spend_micros=micros)


def test_the_report_equals_the_distinct_events_and_the_banker(
    server_factory, redis, tmp_path, small_disk
):
    (server,) = banker_servers(server_factory, redis, f"rep{time.time_ns()}", count=1)
    loader = Loader(server, small_disk / "reporting").start()
    try:
        reqs, expected = traffic(19)
        half = len(reqs) // 2
        # Every request twice: the exchange retries (same ids, new messages).
        answers = send_all(server.port, reqs[:half] * 2)
        assert {a[0] for a in answers} <= {200, 204, 302}, {a[0] for a in answers}
        time.sleep(0.5)  # the banker has each campaign's USD notices before the EUR one
        odd = ("GET", "/bill?aid=alpha-eur&iid=imp&bid=b&cid=alpha&price=1.0&cur=EUR", None, {})
        # Not spent either way: answered 204 and refused by the ledger (currency learnt from
        # the first notice), or refused at the request, 400, once the currency is
        # configuration (issue 18); the report must leave it out in both cases.
        assert send_all(server.port, [odd])[0][0] in (204, 400)

        # ClickHouse unavailable: the loader's data directory fills up.
        assert wait_until(loader.caught_up, 60), loader.get("/metrics")[2].decode()[-4000:]
        filler = small_disk / "filler"
        fill(filler, 0)
        send_all(server.port, reqs[half:])
        assert wait_until(lambda: loader.get("/readyz")[0] == 503, 30), loader.log.read_text()
        time.sleep(2)
        assert loader.metric("tracker_loader_insert_failures_total") >= 1
        # SIGKILL with a batch read and not written (nothing of it committed), then
        # room again: the restarted loader reads that batch again.
        loader.kill()
        filler.unlink()
        loader.start()
        assert wait_until(lambda: loader.get("/readyz")[0] == 200, 60)

        # The same events again: a spool segment and the log files, with a SIGKILL in between.
        logs = sorted(server.log_dir.glob("events-*.jsonl"))
        events = [Event.from_dict(json.loads(line)) for p in logs for line in p.open()]
        segment_dir = tmp_path / "spool-copy"
        spool = Spool(segment_dir, 1 << 26)
        spool.open()
        for event in events[: len(events) // 2]:
            spool.append(event.to_json())
        spool.close()
        replay(server, sorted(segment_dir.glob("*.seg")))
        loader.kill()
        replay(server, logs)
        loader.start()
        assert wait_until(loader.caught_up, 60), loader.get("/metrics")[2].decode()[-4000:]
        time.sleep(1)

        rows = {r["campaign"]: r for r in loader.report("--by", "campaign")}
        for campaign in CAMPAIGNS:
            got = {name: rows[campaign][name] for name in query.COUNTED}
            assert got == expected[campaign], campaign
        spend = banker_spend(server)
        for campaign in CAMPAIGNS:
            assert rows[campaign]["spend_micros"] == spend[campaign]["spend_micros"]
        assert loader.metric("tracker_loader_dead_letters_total") == 0
    finally:
        loader.stop()


def replay(server, files: list[Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "replay", "--collector", "kafka", *map(str, files)],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def banker_spend(server) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "banker", "spend"],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs for the loader's database: a disk that really fills."""
    yield from tmpfs(tmp_path / "disk", "64m")


def test_bad_messages_go_to_dead_letters_and_block_nothing(server_factory, tmp_path):
    from confluent_kafka import Producer

    server = server_factory()
    server.setup_topics()
    server.start()
    loader = Loader(server, tmp_path / "db").start()
    try:
        topic = server.topic("tracker-impressions")
        producer = Producer({"bootstrap.servers": server.env["TRACKER_KAFKA_BOOTSTRAP"]})
        for value in (b"not json", b'{"id": 1}', b"[]"):
            producer.produce(topic, value, partition=0)
        producer.flush(10)
        assert send_all(server.port, [("GET", "/imp?cid=dl&aid=x&iid=y&bid=z", None, BROWSER)])
        assert wait_until(lambda: loader.metric("tracker_loader_dead_letters_total") == 3, 30)
        assert wait_until(lambda: loader.report("--campaign", "dl") != [], 30)
        assert loader.report("--campaign", "dl")[0]["impressions"] == 1
        assert loader.get("/readyz")[0] == 200
        metrics = loader.get("/metrics")[2].decode()
        assert 'tracker_loader_dead_letters_total{reason="bad_message"} 3.0' in metrics
        assert loader.metric("tracker_loader_rows_written_total") >= 4  # 1 event, 3 dead
        lag = [line for line in metrics.splitlines() if line.startswith("tracker_loader_lag{")]
        assert f'tracker_loader_lag{{partition="0",topic="{topic}"}} 0.0' in lag
        assert len(lag) == 7 * 3, lag  # every partition of the 7 event topics
        assert 0 <= loader.metric("tracker_loader_last_insert_age_seconds") < 5
        status, _, html = loader.get("/report.html?by=campaign")
        assert status == 200 and b"<svg" in html and b"<td>dl</td>" in html
    finally:
        loader.stop()
    # The loader is gone: the report opens the database itself, with the same answer.
    assert loader.report("--campaign", "dl")[0]["impressions"] == 1
    once = subprocess.run(
        [sys.executable, "-m", "tracker", "load", "--once", "--admin-bind", ""],
        env=loader.env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stderr


def history(server) -> int:
    """Produce five earlier days of events straight into the topics; return the impressions.

    Each day's events fall within an hour of that UTC day's noon, and the oldest day is
    five days back, one inside the report's default window (today and the six days
    before it): a run that crosses midnight UTC still finds every one of them.
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": server.env["TRACKER_KAFKA_BOOTSTRAP"]})
    rng, shown = random.Random(6), 0
    noon = time.time() // 86_400 * 86_400 + 43_200
    for day in range(5, 0, -1):
        for n, campaign in enumerate(CAMPAIGNS):
            for _ in range(20 + 12 * ((day + n) % 4) + rng.randint(0, 9)):
                at = noon - day * 86_400 + rng.uniform(-3600, 3600)
                dims = {"campaign_id": campaign, "is_bot": False}
                kinds = [("impression", {"impressions": 1})]
                if rng.random() < 0.25:
                    kinds.append(("click", {"clicks": 1}))
                if rng.random() < 0.5:
                    kinds.append(("billing", {"spend_micros": rng.randint(500, 4000)}))
                for kind, metrics in kinds:
                    event = Event(
                        type=kind, path=kind, dimensions=dims, metrics=metrics, received_at=at
                    )
                    producer.produce(
                        server.topic(
                            f"tracker-{kind}s" if kind != "billing" else "tracker-billing"
                        ),
                        event.to_json(),
                    )
                shown += 1
    producer.flush(30)
    return shown


def test_the_html_report_renders_in_chromium(server_factory, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.integration.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run `bash scripts/browser.sh`")
    server = server_factory()
    server.setup_topics()
    server.start()
    loader = Loader(server, tmp_path / "db").start()
    try:
        reqs, expected = traffic(7)
        send_all(server.port, reqs)
        total = sum(e["impressions"] for e in expected.values()) + history(server)
        assert wait_until(lambda: sum(r["impressions"] for r in loader.report()) == total, 60)
        url = f"http://127.0.0.1:{loader.port}/report.html?by=campaign"
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1700, "height": 760})
            asked = []
            page.on("request", lambda r: asked.append(r.url))
            page.goto(url)
            charts = page.locator("figure svg")
            assert charts.count() == 3
            assert page.locator("figure svg rect").count() >= 3  # the hour with the events
            cells = page.locator("tbody tr td:first-child").all_inner_texts()
            assert cells == list(CAMPAIGNS)
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert asked == [url]  # self-contained: nothing else is fetched
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOTS"):
            (ROOT / "docs" / "reporting-report.png").write_bytes(shot.read_bytes())
    finally:
        loader.stop()
