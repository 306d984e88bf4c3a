"""Shared fixtures for the unit tests: configs and an app with in-memory collectors."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from collectors.memory import MemoryCollector
from tracker.app import Tracker
from tracker.config import Config, load_file
from tracker.pipeline import Pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "config"
ROOT = Path(__file__).parent.parent


def fixture_config(name: str, environ: dict[str, str] | None = None) -> Config:
    """Load ``tests/fixtures/config/<name>.yaml``."""
    return load_file(FIXTURES / f"{name}.yaml", environ or {})


def build_app(config: Config) -> tuple[Tracker, dict[str, MemoryCollector]]:
    """Build the app with every configured collector replaced by a memory collector."""
    memory = {name: MemoryCollector(name, {"healthy": True}) for name in config.collectors}
    preprocessors = {name: p.create() for name, p in config.preprocessors.items()}
    filters = {name: p.filter for name, p in config.collectors.items()}
    tracker = Tracker(config, Pipeline(memory, preprocessors, filters))
    tracker.open()
    return tracker, memory


@pytest.fixture
def default_app():
    """The shipped config/tracker.yaml, served in-process with memory collectors."""
    config = load_file(ROOT / "config" / "tracker.yaml", {})
    tracker, memory = build_app(config)
    yield falcon.testing.TestClient(tracker.wsgi), memory
    tracker.close(1.0)


@pytest.fixture
def source_app():
    """The every_source.yaml fixture, served in-process with memory collectors."""
    tracker, memory = build_app(fixture_config("every_source"))
    yield falcon.testing.TestClient(tracker.wsgi), memory
    tracker.close(1.0)
