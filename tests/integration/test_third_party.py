"""A third-party collector plugin, installed as a distribution, against the real ``tracker`` CLI.

The plugins are real distributions on the child process's path (a package and
its ``.dist-info`` with ``entry_points.txt``), found through entry points as a
``pip install`` would make them found. ``tracker`` runs as a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT
from tracker.event import Event
from tracker.spool import Spool, read_records

pytestmark = [pytest.mark.integration]

#: A plugin that fails on every event and counts nothing: its endpoint is a
#: port nobody listens on, and it swallows the error. It returns no delivery
#: result, as any plugin written before ``redeliver`` existed.
SILENT = """
import socket

from tracker.plugins import Collector


class SilentCollector(Collector):
    def collect(self, event):
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=0.2).close()
        except OSError:
            pass
"""

#: A plugin written to the contract before 0.2: flush(), healthy() and status().
OLD = """
from tracker.plugins import Collector


class OldCollector(Collector):
    def collect(self, event):
        pass

    def flush(self, timeout):
        return 0

    def healthy(self):
        return True
"""


def install(site: Path, name: str, source: str, entry: str) -> None:
    """Put distribution ``name`` on ``site``: its module and its entry point."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tracker.collectors]\n{entry} = {module}:{entry}\n")


def tracker(site: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env={**os.environ, "PYTHONPATH": path},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def site(tmp_path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "silent-sink", SILENT.replace("SilentCollector", "silent"), "silent")
    install(site, "old-sink", OLD.replace("OldCollector", "old"), "old")
    return site


def config(tmp_path: Path, collector: str) -> Path:
    path = tmp_path / f"{collector}.yaml"
    path.write_text(
        f"collectors:\n  out: {{type: {collector}}}\n"
        "paths:\n  hit: {route: /hit, event_type: hit, collectors: [out]}\n"
    )
    return path


def test_a_failing_plugin_that_counts_nothing_keeps_its_segment(site, tmp_path):
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.open()
    events = [Event(type="hit", path="hit", dimensions={"n": i}) for i in range(3)]
    for event in events:
        spool.append(event.to_json())
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    done = tracker(site, "replay", "--config", str(config(tmp_path, "silent")), str(segment))
    # Before: no failure and no spool write counted, so the segment was deleted
    # and the three events, which reached nothing, were gone.
    assert done.returncode == 1, done.stderr
    assert done.stdout == "out: 3 events sent\n"
    assert done.stderr.splitlines()[-2:] == [
        "out: says nothing of what it delivered; its segments are kept",
        f"segments kept for another replay: 1 ({segment})",
    ]
    assert segment.exists()
    with segment.open("rb") as fh:
        assert [json.loads(p)["id"] for p in read_records(fh)] == [e.id for e in events]


def test_a_plugin_written_to_the_old_contract_fails_at_start_saying_what_to_change(site, tmp_path):
    done = tracker(site, "serve", "--config", str(config(tmp_path, "old")), "--bind", "127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.splitlines()[1:] == [
        "  collectors.out.type: plugin 'old' (old_sink:old from distribution 'old-sink') "
        "defines flush(), which tracker 0.2 no longer calls: the core no longer calls "
        "flush(timeout): deliver what is buffered in close(timeout) (see CHANGELOG.md)"
    ]
