"""The browser tag as the tracker serves it, CORS on its paths, and the events it posts.

The tag's behaviour in a real browser is tested in tests/integration/test_browser.py;
here the HTTP side, in-process, against the shipped config.
"""

from __future__ import annotations

import gzip

import falcon.testing
import pytest
import yaml

from tests import ROOT
from tests.apps import build_app
from tests.metrics import counted
from tracker.config import ConfigError, load_data
from tracker.http.tag import SOURCE, Tag

SITE = "https://www.example.com"
#: The tag must stay small: "a few KB minified and gzipped" (docs/browser.md states it).
MAX_GZIPPED_BYTES = 3072


def shipped(**browser) -> dict:
    data = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())
    for key, value in browser.items():
        data["browser"][key].update(value)
    return data


@pytest.fixture
def app():
    tracker, memory = build_app(load_data(shipped(), {}))
    yield falcon.testing.TestClient(tracker.wsgi), memory["kafka"]
    tracker.close(1.0)


def rejected(path: str, reason: str) -> float:
    return counted("tracker_rejected_total", path=path, reason=reason)


def test_tag_is_minified_small_and_valid_utf8():
    tag = Tag.load()
    source = SOURCE.read_bytes()
    assert len(tag.text) < len(source) * 0.8
    assert len(tag.gzipped) <= MAX_GZIPPED_BYTES, f"{len(tag.gzipped)} bytes gzipped"
    assert gzip.decompress(tag.gzipped) == tag.text
    assert b"sendBeacon" in tag.text and b"__tcfapi" in tag.text


def test_tag_served_with_long_cache_and_etag(app):
    client, _ = app
    resp = client.simulate_get("/tracker.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/javascript; charset=utf-8"
    assert resp.headers["cache-control"] == "public, max-age=86400"
    assert resp.headers["vary"] == "Accept-Encoding"
    assert resp.content == Tag.load().text
    etag = resp.headers["etag"]
    again = client.simulate_get("/tracker.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    weak = client.simulate_get("/tracker.js", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = client.simulate_get("/tracker.js", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200


def test_tag_gzipped_when_accepted(app):
    client, _ = app
    resp = client.simulate_get("/tracker.js", headers={"Accept-Encoding": "br, gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(resp.content) == Tag.load().text
    assert resp.headers["etag"] != client.simulate_get("/tracker.js").headers["etag"]
    refused = client.simulate_get("/tracker.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_hashed_name_is_immutable(app):
    client, _ = app
    tag = Tag.load()
    resp = client.simulate_get(f"/tracker.{tag.digest}.js")
    assert resp.status_code == 200 and resp.content == tag.text
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.simulate_head(f"/tracker.{tag.digest}.js").status_code == 200
    assert client.simulate_get("/tracker.0000000000000000.js").status_code == 404


def test_tag_route_configurable_or_off():
    tracker, _ = build_app(load_data(shipped(tag={"route": "/t/tag.js"}), {}))
    client = falcon.testing.TestClient(tracker.wsgi)
    assert client.simulate_get("/t/tag.js").status_code == 200
    assert client.simulate_get("/tracker.js").status_code == 404
    tracker, _ = build_app(load_data(shipped(tag={"route": None}), {}))
    assert falcon.testing.TestClient(tracker.wsgi).simulate_get("/tracker.js").status_code == 404


def test_preflight_from_listed_origin(app):
    client, _ = app
    resp = client.simulate_options(
        "/t/video/start",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
    )
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == SITE
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert resp.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert resp.headers["access-control-allow-headers"] == "Content-Type"
    assert resp.headers["access-control-max-age"] == "600"
    assert resp.headers["vary"] == "Origin"


def test_preflight_refused_for_unlisted_origin_and_method(app):
    client, _ = app
    before = rejected("web_page", "origin_not_allowed")
    resp = client.simulate_options(
        "/t/page",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert resp.status_code == 403
    assert resp.json["reason"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in resp.headers
    assert rejected("web_page", "origin_not_allowed") == before + 1
    resp = client.simulate_options(
        "/t/page", headers={"Origin": SITE, "Access-Control-Request-Method": "DELETE"}
    )
    assert resp.status_code == 403 and resp.json["reason"] == "method_not_allowed"


def test_cors_headers_only_for_listed_origins_on_listed_paths(app):
    client, events = app
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = client.simulate_post("/t/page", body="page=https%3A%2F%2Fwww.example.com%2F",
                                headers={**form, "Origin": SITE})  # fmt: skip
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == SITE
    assert resp.headers["access-control-allow-credentials"] == "true"
    other = client.simulate_post("/t/page", body="", headers={**form, "Origin": "https://x.test"})
    assert other.status_code == 204 and "access-control-allow-origin" not in other.headers
    assert other.headers["vary"] == "Origin"
    pixel = client.simulate_get("/imp", params={"cid": "c"}, headers={"Origin": SITE})
    assert "access-control-allow-origin" not in pixel.headers
    assert [e.type for e in events.events] == ["page_view", "page_view", "impression"]


def test_wildcard_only_without_credentials():
    with pytest.raises(ConfigError) as info:
        load_data(shipped(cors={"allowed_origins": ["*"]}), {})
    assert info.value.errors == [
        "browser.cors.allowed_origins: A wildcard origin cannot be used with credentials: "
        "list the origins. (found: ['*'])"
    ]
    data = shipped(cors={"allowed_origins": ["*"], "credentials": False})
    tracker, _ = build_app(load_data(data, {}))
    resp = falcon.testing.TestClient(tracker.wsgi).simulate_post(
        "/t/page", body="", headers={"Origin": "https://any.test"}
    )
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in resp.headers


def test_browser_block_errors_are_reported_with_their_path():
    data = shipped(cors={"paths": ["web_page", "nope"], "allowed_origins": ["example.com"]})
    data["browser"]["tag"]["colour"] = "red"
    with pytest.raises(ConfigError) as info:
        load_data(data, {})
    assert sorted(info.value.errors) == [
        "browser.cors.allowed_origins.0: Must be scheme://host[:port]. (found: 'example.com')",
        "browser.cors.paths.1: No such path. (found: 'nope')",
        "browser.tag.colour: Unknown field. (found: 'red')",
    ]


def test_tag_route_must_be_free():
    data = shipped(tag={"route": "/imp.js"})
    data["paths"]["impression"]["route"] = "/imp.js"
    with pytest.raises(ConfigError) as info:
        load_data(data, {})
    assert info.value.errors == [
        "browser.tag.route: Already the route of path impression. (found: '/imp.js')"
    ]


def test_video_event_takes_the_watch_time_the_tag_measured(app):
    client, events = app
    body = (
        "media=intro&iid=6f1d3c2e-8a4b-4c7d-9e0f-1a2b3c4d5e6f&ph=00:00:04.008"
        "&dur=00:00:04.008&wt=00:00:02.811&gdpr=1&gdpr_consent=CQ"
    )
    form = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
    assert client.simulate_post("/t/video/complete", body=body, headers=form).status_code == 204
    assert client.simulate_get("/t/video/seek", query_string=body).status_code == 204
    complete, seek = events.events
    assert complete.type == "video" and complete.dimensions["vast_event"] == "complete"
    assert complete.metrics == {
        "duration_ms": 4008,
        "playhead_ms": 4008,
        "watch_ms": 2811,
        "vast_events": 1,
        "completes": 1,
    }
    assert seek.metrics["seeks"] == 1
    assert client.simulate_get("/t/video/skip", query_string=body).status_code == 400


def test_identifiers_must_look_like_the_tags(app):
    client, events = app
    resp = client.simulate_get("/t/event", params={"name": "signup", "vid": "x@example.com"})
    assert resp.status_code == 400
    assert resp.json["errors"] == {"visitor_id": ["Does not match ^[0-9a-f-]{36}$."]}
    assert events.events == []
