"""The browser tag in headless Chromium, against real gunicorn and a real Kafka broker.

A page on another origin loads ``/tracker.js`` from the tracker with the one-line
snippet, plays a WebM made by ffmpeg at test time (pausing, resuming, seeking
ahead, muting), clicks a tracked button and a tracked link, and the events are
read back from Kafka. The page's CMP is a ``__tcfapi`` stub answering with a
real TCF v2 string: once granting Purpose 1, once refusing it (that run also
takes away ``sendBeacon``, so the tag's ``fetch`` fallback carries the events).

Chromium is Debian's (``scripts/browser.sh``), driven by Playwright with
``executable_path``; Playwright's own browser download is never used.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.live import consume
from tests.tcf import tc_string

pytestmark = [pytest.mark.integration, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

WEB = Path(__file__).with_name("web")
CHROMIUM = "/usr/bin/chromium"
# As root in a closed network: no sandbox, no background connections to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
VIDEO_SECONDS = 4
SLOW_SCRIPT_SECONDS = 0.5
#: How far the tag's watch time may be from what Chromium says it played.
WATCH_TOLERANCE_MS = 200
WEB_EVENTS = {"web_page", "web_click", "web_link", "web_event", "conversion"}
VIDEO_EVENTS = {"start", "pause", "resume", "seek", "mute"} | {
    "firstQuartile",
    "midpoint",
    "thirdQuartile",
    "complete",
}

# Plays 0 -> 0.8 s, pauses, resumes to 1.4 s, seeks ahead to 2.6 s, mutes, plays to
# the end; returns the seconds Chromium itself says were played (video.played).
SCENARIO = """async () => {
  const v = document.getElementById("ad");
  const until = (test) => new Promise((done) => {
    const check = () => (test() ? done() : setTimeout(check, 10));
    check();
  });
  await until(() => v.readyState >= 4 && typeof window.tracker === "function");
  await v.play();
  await until(() => v.currentTime >= 0.8);
  v.pause();
  await new Promise((done) => setTimeout(done, 300));
  await v.play();
  await until(() => v.currentTime >= 1.4);
  v.currentTime = 2.6;
  await until(() => !v.seeking);
  v.muted = true;
  await until(() => v.ended);
  let played = 0;
  for (let i = 0; i < v.played.length; i++) played += v.played.end(i) - v.played.start(i);
  return played;
}"""

TCF_STUB = """window.__tcfapi = (command, version, callback) => {
  if (command !== "addEventListener") return;
  setTimeout(() => callback({gdprApplies: true, tcString: %s, eventStatus: "tcloaded",
                              purpose: {consents: {1: %s}}}, true), 200);
};"""


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (Chromium needs them to seek in a video),
    and ``/slow.js``, an empty script that takes half a second."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        if self.path == "/slow.js":
            time.sleep(SLOW_SCRIPT_SECONDS)
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return io.BytesIO(b"")
        header = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not header.startswith("bytes=") or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, _, last = header[len("bytes=") :].partition("-")
        start = int(first) if first else size - int(last)
        end = min(int(last), size - 1) if first and last else size - 1
        data = path.read_bytes()[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Serve the test page, the landing page and a fresh WebM on a free port."""
    if shutil.which("ffmpeg") is None or not Path(CHROMIUM).exists():
        pytest.fail("chromium and ffmpeg are missing: run `bash scripts/browser.sh`")
    root = tmp_path_factory.mktemp("site")
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(VIDEO_SECONDS),
         "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "200k", "-c:a", "libopus",
         str(root / "video.webm")],
        check=True,
    )  # fmt: skip
    shutil.copy(WEB / "landing.html", root)
    handler = functools.partial(SiteHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def tracker_for(server_factory, origin: str):
    """A tracker whose CORS list and link allow-list admit the test site."""
    server = server_factory()
    data = yaml.safe_load(server.config.read_text())
    data["browser"]["cors"]["allowed_origins"] = [origin]
    data["paths"]["web_link"]["response"]["redirect"]["allowed_hosts"] = ["127.0.0.1"]
    server.config.write_text(yaml.safe_dump(data, sort_keys=False))
    server.setup_topics()
    return server.start()


def visit(
    chromium, site, server, tc: str, granted: bool, beacon: bool = True
) -> tuple[float, dict]:
    """Run the scenario once in a fresh context; return seconds played and the page's state.

    Without ``beacon``, the page has no ``navigator.sendBeacon``, so the tag falls
    back on ``fetch`` with ``keepalive`` (a CORS request with credentials).
    """
    root, origin = site
    page_html = (WEB / "page.html").read_text().replace("{{TRACKER}}", server_url(server))
    (root / "page.html").write_text(page_html)
    context = chromium.new_context()
    try:
        page = context.new_page()
        sent: set[str] = set()  # how events reached the tracker: "ping" is a beacon

        def seen(request) -> None:
            if request.url.startswith(server_url(server)) and request.resource_type not in (
                "script",
                "document",
            ):
                sent.add(request.resource_type)

        page.on("request", seen)
        page.add_init_script(TCF_STUB % (json.dumps(tc), "true" if granted else "false"))
        if not beacon:
            page.add_init_script("Navigator.prototype.sendBeacon = undefined;")
        page.goto(f"{origin}/page.html")
        played = page.evaluate(SCENARIO)
        page.click("#button")
        page.evaluate("tracker('event', 'newsletter', {category: 'forms', value: 2.5})")
        page.evaluate("tracker('conversion', {campaign: 'summer', value: 19.99, order: 'o-1'})")
        page.click("#link")
        page.wait_for_url(f"{origin}/landing.html")
        state = {
            "vid": page.evaluate("localStorage.getItem('tracker_vid')"),
            "cookies": context.cookies(),
            "sent_as": sent,
        }
    finally:
        context.close()
    return played, state


def server_url(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def read_events(server, expected: int) -> list[dict]:
    topics = [
        server.topic(t)
        for t in ("tracker-events", "tracker-clicks", "tracker-video", "tracker-conversions")
    ]
    return [event for _, _, event in consume(topics, expected, timeout=30, settle=2)]


def by_type(events: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for event in events:
        key = event["dimensions"].get("vast_event") or event["path"]
        found.setdefault(key, []).append(event)
    return found


def check_common(events: list[dict], played: float) -> dict[str, list[dict]]:
    found = by_type(events)
    assert set(found) == VIDEO_EVENTS | WEB_EVENTS
    assert all(len(found[name]) == 1 for name in found), {k: len(v) for k, v in found.items()}
    page = found["web_page"][0]
    assert page["type"] == "page_view" and page["metrics"] == {"page_views": 1}
    assert page["dimensions"]["page_url"].endswith("/page.html")
    assert found["web_click"][0]["dimensions"]["element"] == "signup-button"
    link = found["web_link"][0]
    assert link["type"] == "click" and link["dimensions"]["element"] == "landing-link"
    assert link["dimensions"]["landing_url"].endswith("/landing.html")
    assert found["web_event"][0]["metrics"] == {"custom_events": 1, "value_micros": 2_500_000}
    assert found["conversion"][0]["metrics"]["value_micros"] == 19_990_000
    views = {found[name][0]["dimensions"]["impression_id"] for name in VIDEO_EVENTS}
    assert len(views) == 1, "every video event belongs to one view"
    complete = found["complete"][0]["metrics"]
    assert complete["completes"] == 1 and complete["duration_ms"] == pytest.approx(4000, abs=50)
    # Seeking from 1.4 s to 2.6 s skipped 1.2 s: watch time is what was played.
    assert abs(complete["watch_ms"] - played * 1000) <= WATCH_TOLERANCE_MS, (complete, played)
    assert complete["watch_ms"] < complete["duration_ms"] - 800
    watch = [found[name][0]["metrics"]["watch_ms"] for name in
             ("start", "firstQuartile", "midpoint", "thirdQuartile", "complete")]  # fmt: skip
    assert watch == sorted(watch), "watch time only grows through a view"
    return found


def test_consent_granted(chromium, site, server_factory):
    server = tracker_for(server_factory, site[1])
    tc = tc_string((1, 7, 8))
    played, state = visit(chromium, site, server, tc, granted=True)
    events = read_events(server, len(VIDEO_EVENTS) + 5)
    found = check_common(events, played)
    assert state["sent_as"] == {"ping"}
    visitor = state["vid"]
    assert visitor, "the tag stored a visitor id"
    for name, items in found.items():
        dims = items[0]["dimensions"]
        assert dims["gdpr"] == 1 and dims["gdpr_consent"] == tc, name
        if name != "conversion":
            assert dims["visitor_id"] == visitor, name


# JSON is not CORS-safelisted: the browser sends a preflight first, then the POST
# with the cookie; the page can read the answer only if the tracker allowed it.
FETCH = """async (url) => {
  try {
    const resp = await fetch(url, {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "no spaces"})});
    return [resp.status, (await resp.json()).reason];
  } catch (ex) {
    return ["blocked", ex.name];
  }
}"""


def test_cors_in_the_browser(chromium, site, server_factory):
    server = tracker_for(server_factory, site[1])
    target = f"{server_url(server)}/t/event"
    page = chromium.new_page()
    try:
        page.goto(f"{site[1]}/landing.html")
        assert page.evaluate(FETCH, target) == [400, "invalid_fields"]
        # localhost is another origin than 127.0.0.1, and not on the list.
        page.goto(site[1].replace("127.0.0.1", "localhost") + "/landing.html")
        assert page.evaluate(FETCH, target) == ["blocked", "TypeError"]
    finally:
        page.close()
    assert server.metric("tracker_rejected_total", path="web_event", reason="invalid_fields") == 1
    assert (
        server.metric("tracker_rejected_total", path="web_event", reason="origin_not_allowed") == 1
    )


def test_consent_refused(chromium, site, server_factory):
    server = tracker_for(server_factory, site[1])
    tc = tc_string((7, 8))
    played, state = visit(chromium, site, server, tc, granted=False, beacon=False)
    events = read_events(server, len(VIDEO_EVENTS) + 5)
    found = check_common(events, played)
    assert state["sent_as"] == {"fetch"}
    assert state["vid"] is None, "nothing stored in the browser"
    assert not [c for c in state["cookies"] if c["name"] == "tuid"]
    for name, items in found.items():
        dims = items[0]["dimensions"]
        assert dims["gdpr"] == 1 and dims["gdpr_consent"] == tc, name
        assert "visitor_id" not in dims and "user_id" not in dims, (name, dims)
