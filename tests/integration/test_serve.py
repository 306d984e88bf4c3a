"""``tracker serve`` refuses a bad config before binding its port."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests import ROOT
from tests.integration.live import free_port

pytestmark = pytest.mark.integration


def test_bad_config_exits_non_zero_before_binding(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "collectors: {mem: {type: memory}}\n"
        "paths:\n"
        "  hit: {route: /hit, event_type: hit, collectors: [mem, kafka], colour: red}\n"
    )
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "serve"],
        env={"TRACKER_CONFIG": str(config), "TRACKER_BIND": f"127.0.0.1:{port}", "PATH": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"{config}: invalid config\n"
        "  paths.hit.colour: Unknown field. (found: 'red')\n"
        "  paths.hit.collectors.1: no collector named 'kafka'\n"
    )
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_gunicorn_itself_refuses_a_bad_config(tmp_path):
    """Started without the CLI (as a container might), the master still stops before binding."""
    config = tmp_path / "bad.yaml"
    config.write_text("collectors: {}\npaths: {hit: {route: nope}}\n")
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"],
        env={"TRACKER_CONFIG": str(config), "TRACKER_BIND": f"127.0.0.1:{port}", "PATH": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "paths.hit.route: Must start with /. (found: 'nope')" in result.stderr
    assert "Listening at" not in result.stderr


def test_check_config_command():
    ok = subprocess.run(
        [sys.executable, "-m", "tracker", "check-config", "config/tracker.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0
    assert ok.stdout == "config/tracker.yaml: OK (13 paths, 5 collectors, 5 preprocessors)\n"
