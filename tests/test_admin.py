"""Admin routes answer on the admin port alone (tracker.http.admin), driven in-process."""

from __future__ import annotations

import falcon.testing
import pytest

from tests import ROOT
from tests.apps import build_app
from tracker.config import load_file
from tracker.http.admin import bind_port


def client_for(admin_port: int | None) -> falcon.testing.TestClient:
    tracker, _ = build_app(load_file(ROOT / "config" / "tracker.yaml", {}), admin_port)
    return falcon.testing.TestClient(tracker.wsgi)


def get(client: falcon.testing.TestClient, path: str, port: int) -> falcon.testing.Result:
    return client.simulate_get(path, extras={"SERVER_PORT": str(port)})


def test_metrics_only_on_the_admin_port():
    client = client_for(9090)
    assert get(client, "/metrics", 9090).status_code == 200
    public = get(client, "/metrics", 8080)
    assert public.status_code == 404
    # The same answer as an unknown path: the public port does not tell that /metrics exists.
    assert public.json == get(client, "/nowhere", 8080).json
    assert public.json == {
        "title": "Not Found",
        "description": "No tracking path or endpoint at this URL.",
        "reason": "unknown_path",
    }


def test_health_answers_on_both_ports():
    client = client_for(9090)
    for port in (8080, 9090):
        assert get(client, "/healthz", port).status_code == 200
        assert get(client, "/readyz", port).status_code == 200


def test_admin_listener_off_serves_metrics_nowhere():
    client = client_for(0)
    assert get(client, "/metrics", 8080).status_code == 404
    assert get(client, "/metrics", 0).status_code == 404


@pytest.mark.parametrize(
    ("bind", "port"), [("127.0.0.1:9090", 9090), ("0.0.0.0:19", 19), ("[::1]:9091", 9091), ("", 0)]
)
def test_bind_port(bind, port):
    assert bind_port(bind) == port


@pytest.mark.parametrize("bind", ["unix:/run/admin.sock", "9090", "localhost:", ":9090"])
def test_bind_port_refuses_what_has_no_port(bind):
    with pytest.raises(ValueError, match="TRACKER_ADMIN_BIND must be host:port"):
        bind_port(bind)
