"""Shared fixtures for the unit tests: configs and an app with in-memory collectors."""

from __future__ import annotations

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app, fixture_config
from tracker.config import DeliveryConfig, load_file
from tracker.config.schemas import DeliverySchema


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


@pytest.fixture
def delivery():
    """Build a DeliveryConfig from a config block, with the schema's defaults."""

    def make(**block) -> DeliveryConfig:
        return DeliveryConfig(**DeliverySchema().load(block))

    return make


@pytest.fixture(scope="session")
def redis_node():
    """A real redis-server on TEST_REDIS_PORT for the whole session (scripts/redis/redis.sh)."""
    from tests.redisproc import RedisNode

    node = RedisNode()
    node.fresh()
    yield node
    node.down()


@pytest.fixture
def live_redis(redis_node):
    """The session Redis, started again after the test if the test stopped it."""
    yield redis_node
    redis_node.up()


@pytest.fixture(scope="session")
def helm():
    """helm from $HELM or scripts/helm.sh; the tests skip, saying why, if it cannot be had."""
    from tests.chart import HelmMissing, find_helm

    try:
        return find_helm()
    except HelmMissing as ex:
        pytest.skip(f"helm cannot be installed here (scripts/helm.sh: {ex})")
