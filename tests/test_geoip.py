"""The geoip preprocessor: country and region from the client address, before anonymisation."""

from __future__ import annotations

import logging
import os

import falcon.testing
import pytest

from tests.apps import build_app, fixture_config
from tests.geodb import write_db
from tests.metrics import counted
from tracker.config import ConfigError, load_file
from tracker.event import Event
from tracker.plugins import Health
from tracker.preprocessors.geo import GeoIp, GeoIpOptions


def geoip(database, **options) -> GeoIp:
    g = GeoIp("geo", GeoIpOptions().load({"database": str(database), **options}))
    g.open()
    return g


def located(g: GeoIp, ip: str | None) -> dict:
    return g.process(Event(type="impression", path="imp", context={"ip": ip})).dimensions


def failures(kind: str) -> float:
    return counted("tracker_enrichment_failures_total", preprocessor="geo", kind=kind)


@pytest.fixture
def db(tmp_path):
    return write_db(tmp_path / "country.mmdb")


def test_country_from_the_address(db):
    g = geoip(db)
    assert located(g, "198.51.100.7") == {"country": "DE"}
    assert located(g, "2001:db8::1") == {"country": "JP"}
    # An IPv4 client of a dual-stack socket.
    assert located(g, "::ffff:203.0.113.9") == {"country": "FR"}
    g.close(1)


def test_region_only_when_asked(db):
    g = geoip(db, region=True)
    assert located(g, "192.0.2.1") == {"country": "US", "region": "US-CA"}
    assert located(g, "203.0.113.9") == {"country": "FR"}
    g.close(1)


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("10.1.2.3", "not_found"),
        ("127.0.0.1", "not_found"),
        ("fe80::1", "not_found"),
        ("8.8.8.8", "not_found"),
        ("not-an-address", "invalid_ip"),
        ("1.2.3.4.5", "invalid_ip"),
        ("999.1.1.1", "invalid_ip"),
    ],
)
def test_bad_and_private_addresses_are_counted(db, ip, kind):
    g = geoip(db)
    before = failures(kind)
    assert located(g, ip) == {}
    assert failures(kind) == before + 1
    g.close(1)


def test_no_address_no_lookup(db):
    assert located(geoip(db), None) == {}


def test_missing_database_logs_once_and_counts_each_event(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        g = geoip(tmp_path / "absent.mmdb")
    assert [r.getMessage() for r in caplog.records] == [
        f"geo: no GeoIP database at {tmp_path / 'absent.mmdb'}; events get no country"
    ]
    before = failures("no_database")
    assert located(g, "198.51.100.7") == {}
    assert failures("no_database") == before + 1
    assert g.health() == Health(True, "no database")
    g.close(1)


def test_corrupt_database_at_start(tmp_path, caplog):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"this is not a MaxMind database" * 100)
    before = failures("database_error")
    with caplog.at_level(logging.ERROR):
        g = geoip(bad)
    assert failures("database_error") == before + 1
    assert "cannot read GeoIP database" in caplog.text
    assert located(g, "198.51.100.7") == {}
    g.close(1)


def test_replaced_database_is_reloaded_and_a_bad_one_ignored(tmp_path):
    path = write_db(tmp_path / "geo.mmdb")
    g = geoip(path)
    assert located(g, "198.51.100.7") == {"country": "DE"}
    write_db(path, {"198.51.100.0/24": ("NL", None)})
    assert g._load() is True  # what the timer thread runs
    assert located(g, "198.51.100.7") == {"country": "NL"}
    # A corrupt replacement is counted and the loaded database stays.
    before = failures("database_error")
    tmp = tmp_path / "next"
    tmp.write_bytes(b"\x00" * 4096)
    os.replace(tmp, path)
    assert g._load() is False
    assert failures("database_error") == before + 1
    assert located(g, "198.51.100.7") == {"country": "NL"}
    # A database appearing where there was none is picked up.
    assert g._load() is False
    write_db(path, {"198.51.100.0/24": ("BE", None)})
    assert g._load() is True
    assert located(g, "198.51.100.7") == {"country": "BE"}
    g.close(1)


def test_reload_thread_picks_up_a_replaced_file(tmp_path):
    path = write_db(tmp_path / "geo.mmdb")
    g = geoip(path, reload_interval=1)
    write_db(path, {"198.51.100.0/24": ("IT", None)})
    for _ in range(50):
        if located(g, "198.51.100.7") == {"country": "IT"}:
            break
        g._stop.wait(0.1)
    assert located(g, "198.51.100.7") == {"country": "IT"}
    g.close(1)
    assert not g._timer.is_alive()


def test_database_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("TRACKER_GEOIP_DB", str(db))
    g = GeoIp("geo", GeoIpOptions().load({}))
    g.open()
    assert located(g, "198.51.100.7") == {"country": "DE"}
    g.close(1)


def test_geoip_after_anonymisation_is_refused():
    with pytest.raises(ConfigError) as raised:
        fixture_config("geoip_after_anonymise")
    assert raised.value.errors == [
        "paths.imp.preprocessors.1: a geoip preprocessor must come before ip_anonymise: "
        "it needs the full address"
    ]


def test_shipped_config_locates_before_anonymising(db):
    config = load_file("config/tracker.yaml", {"TRACKER_GEOIP_DB": str(db)})
    tracker, memory = build_app(config)
    client = falcon.testing.TestClient(tracker.wsgi)
    ok = client.simulate_get("/imp", query_string="cid=c1", remote_addr="198.51.100.77")
    assert ok.status_code == 200
    (sent,) = memory["kafka"].events
    assert sent.dimensions["country"] == "DE"
    assert "region" not in sent.dimensions
    # The full address is never stored: only its /24 leaves the tracker.
    assert sent.context["ip"] == "198.51.100.0"
    assert b"198.51.100.77" not in sent.to_json()
    tracker.close(1)


def test_shipped_config_without_a_database_still_tracks():
    config = load_file("config/tracker.yaml", {})
    tracker, memory = build_app(config)
    client = falcon.testing.TestClient(tracker.wsgi)
    assert client.simulate_get("/imp", query_string="cid=c1").status_code == 200
    assert "country" not in memory["kafka"].events[0].dimensions
    assert client.simulate_get("/readyz").status_code == 200
    tracker.close(1)
