"""In-process apps for unit tests: the shipped config or a fixture, with memory collectors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import falcon.testing

from collectors.memory import MemoryCollector, MemoryConfig
from loadtest.scenarios import Request
from tracker.config import Config, load_file
from tracker.http.app import Tracker
from tracker.intake.pipeline import Pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def fixture_config(name: str, environ: dict[str, str] | None = None) -> Config:
    """Load ``tests/fixtures/config/<name>.yaml``."""
    return load_file(FIXTURES / f"{name}.yaml", environ or {})


def build_app(
    config: Config, admin_port: int | None = None
) -> tuple[Tracker, dict[str, MemoryCollector]]:
    """Build the app with every configured collector replaced by a memory collector."""
    memory = {name: MemoryCollector(name, MemoryConfig(healthy=True)) for name in config.collectors}
    preprocessors = {name: p.create() for name, p in config.preprocessors.items()}
    filters = {name: p.filter for name, p in config.collectors.items()}
    tracker = Tracker(config, Pipeline(memory, preprocessors, filters), admin_port)
    tracker.open()
    return tracker, memory


def simulate(client: falcon.testing.TestClient, request: Request) -> falcon.testing.Result:
    """Send one of the benchmark's requests (``loadtest.scenarios.Request``) in-process."""
    url = urlsplit(request.target)
    return client.simulate_request(
        request.method,
        url.path,
        query_string=url.query,
        headers=dict(request.headers),
        body=request.body or None,
    )
