"""Fixtures of the integration tests: the session broker and tracker servers.

The processes themselves are in :mod:`tests.integration.live`.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.live import Broker, Server


@pytest.fixture(scope="session")
def broker():
    """A fresh single-node KRaft broker for the whole session."""
    broker = Broker()
    broker.down()
    subprocess.run(["rm", "-rf", broker.env["KAFKA_DATA_DIR"]], check=True)
    broker.up()
    yield broker
    broker.down()


@pytest.fixture
def live_broker(broker):
    """The session broker, restarted after the test if the test stopped it."""
    yield broker
    broker.up()


@pytest.fixture
def server_factory(tmp_path, broker):
    """Make servers that are stopped when the test ends."""
    servers: list[Server] = []

    def make(durable: tuple[str, ...] = (), **env: str) -> Server:
        server = Server(tmp_path / f"s{len(servers)}", broker, durable, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, broker):
    """One server with its topics, shared by a module's tests (a module may define its own)."""
    server = Server(tmp_path_factory.mktemp("server"), broker)
    server.setup_topics()
    server.start()
    yield server
    server.stop()
