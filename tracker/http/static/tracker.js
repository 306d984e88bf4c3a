/* tracker.js: the browser tag of the tracker (docs/browser.md). No dependencies.
 * Page views, tracked clicks, conversions, custom events and HTML5 video, sent with
 * sendBeacon (then fetch keepalive, then a pixel GET). Identifiers only with consent. */
(function (win, doc) {
  "use strict";
  var script = doc.currentScript;
  var data = (script && script.dataset) || {};
  var base = (data.base || (script ? new URL(script.src).origin : "")).replace(/\/$/, "");
  var opts = { identify: data.identify || "consent", consentTimeout: +data.consentTimeout || 2000 };
  var VID = "tracker_vid";
  var pageId = uuid();
  var consent = null; // {gdpr, tc, identify} once known
  var queue = [];

  function uuid() {
    if (win.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  function storage(write) {
    try {
      var store = win.localStorage;
      if (write === false) return store.removeItem(VID);
      var id = store.getItem(VID);
      if (!id) store.setItem(VID, (id = uuid()));
      return id;
    } catch (ex) {
      return null; // storage disabled: no visitor id
    }
  }

  function post(path, params) {
    var url = base + path;
    var body = new URLSearchParams(clean(params));
    if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
    if (win.fetch) {
      fetch(url, { method: "POST", body: body, keepalive: true, credentials: "include", mode: "cors" })
        .catch(function () { new Image().src = url + "?" + body; });
      return;
    }
    new Image().src = url + "?" + body;
  }

  // The fields every event carries: the page, this page view's id, the consent
  // signals, and the visitor id only when identifying is allowed.
  function common(params) {
    var state = consent || {};
    params.page = location.href;
    params.pv = pageId;
    params.gdpr = state.gdpr;
    params.gdpr_consent = state.tc;
    if (state.identify) params.vid = storage();
    return clean(params);
  }

  // /conv takes only the consent signals, not the page fields.
  function send(path, params, kind) {
    if (!consent) return queue.push([path, params, kind]);
    if (kind !== "conv") return post(path, common(params));
    params.gdpr = consent.gdpr;
    params.gdpr_consent = consent.tc;
    post(path, params);
  }

  function settle(state) {
    if (consent) return;
    // Global Privacy Control is an opt-out: the tracker stores no identifier then either.
    if (navigator.globalPrivacyControl) state.identify = false;
    consent = state;
    if (!state.identify) storage(false);
    queue.splice(0).forEach(function (args) { send.apply(null, args); });
  }

  function readConsent() {
    // Without a CMP only data-identify="always" allows a visitor id.
    if (typeof win.__tcfapi !== "function") return settle({ identify: opts.identify === "always" });
    setTimeout(function () { settle({ identify: false }); }, opts.consentTimeout);
    win.__tcfapi("addEventListener", 2, function (tc, ok) {
      if (!ok || !tc || (tc.eventStatus !== "tcloaded" && tc.eventStatus !== "useractioncomplete")) return;
      var applies = !!tc.gdprApplies;
      // purposeOneTreatment: Purpose 1 was not disclosed, so it has no consent.
      var granted = !applies || (!tc.purposeOneTreatment &&
        !!(tc.purpose && tc.purpose.consents && tc.purpose.consents[1]));
      settle({ gdpr: applies ? 1 : 0, tc: tc.tcString, identify: opts.identify !== "never" && granted });
    });
  }

  function pageview() {
    send("/t/page", { title: doc.title, ref: doc.referrer });
  }

  function event(name, props) {
    props = props || {};
    send("/t/event", { name: name, cat: props.category, label: props.label, value: props.value });
  }

  function conversion(props) {
    send("/conv", { cid: props.campaign, value: props.value, currency: props.currency,
                    order: props.order, clid: props.clickId, quantity: props.quantity }, "conv");
  }

  function clean(params) {
    Object.keys(params).forEach(function (k) { if (params[k] == null) delete params[k]; });
    return params;
  }

  // Clicks on [data-tracker-click]: a link goes through the tracker's safe redirect
  // (the tag rewrites its href as the click happens), anything else is a plain event.
  function onClick(ev) {
    var el = ev.target.closest && ev.target.closest("[data-tracker-click]");
    if (!el) return;
    var params = { name: el.dataset.trackerClick, cid: el.dataset.trackerCampaign };
    var link = el.closest("a[href]");
    if (link && /^https?:/.test(link.href)) {
      params.url = link.dataset.trackerHref || link.href;
      link.dataset.trackerHref = params.url;
      link.href = base + "/t/go?" + new URLSearchParams(common(params));
      return;
    }
    send("/t/click", params);
  }

  function clock(seconds) {
    var ms = Math.max(0, Math.round(seconds * 1000));
    function pad(n, w) { return String(n).padStart(w, "0"); }
    return pad(Math.floor(ms / 3600000), 2) + ":" + pad(Math.floor(ms / 60000) % 60, 2) + ":" +
      pad(Math.floor(ms / 1000) % 60, 2) + "." + pad(ms % 1000, 3);
  }

  // HTML5 video in the VAST vocabulary. Watch time adds up the media time that
  // advanced while playing, sampled at each timeupdate (about 4 a second), pause
  // and end; a seek moves the position without adding to it, and the bit played
  // since the last sample before a seek is timed by the clock. Quartiles follow
  // the position.
  function video(el, props) {
    props = props || el.dataset || {};
    var view = null, watched = 0, running = false, jumped = false, last = 0, lastAt = 0;
    var muted = el.muted, paused = false;
    function now() { return performance.now() / 1000; }
    function mark() {
      last = el.currentTime;
      lastAt = now();
    }
    // A pause takes effect a little after its event: what played until then is
    // counted when playback resumes, unless a seek came in between.
    function run() {
      if (running || el.paused || el.seeking) return;
      var step = el.currentTime - last;
      if (!jumped && step > 0 && step < 0.5) watched += step;
      running = true;
      jumped = false;
      mark();
    }
    function sample() {
      if (!running || el.seeking) return;
      var step = el.currentTime - last;
      if (step > 0 && step < 2 * Math.max(1, el.playbackRate)) watched += step;
      mark();
    }
    function stop() {
      sample();
      running = false;
    }
    function total() {
      sample();
      return watched;
    }
    function fire(name) {
      send("/t/video/" + name, { media: props.media || props.trackerVideo || el.currentSrc,
        cid: props.campaign || props.trackerCampaign, iid: view.id, ph: clock(el.currentTime),
        dur: isFinite(el.duration) ? clock(el.duration) : null, wt: clock(total()) });
    }
    function quartiles(position) {
      while (view && view.q < 4 && position >= el.duration * (view.q + 1) / 4) {
        fire(["firstQuartile", "midpoint", "thirdQuartile", "complete"][view.q++]);
      }
    }
    function on(name, fn) { el.addEventListener(name, fn); }
    // Sampling starts at play, not playing: buffering advances no media time.
    on("play", run);
    function playing() {
      if (view === null || view.q === 4) {
        view = { id: uuid(), q: 0 };
        fire("start");
        return;
      }
      run();
      if (paused) {
        paused = false;
        fire("resume");
      }
    }
    on("playing", playing);
    on("timeupdate", function () {
      sample();
      if (!el.seeking) quartiles(el.currentTime);
    });
    on("pause", function () {
      stop();
      if (view === null || el.ended) return;
      paused = true;
      fire("pause");
    });
    on("waiting", stop);
    on("seeking", function () {
      if (running) watched += Math.min(now() - lastAt, 0.5) * el.playbackRate;
      running = false;
      jumped = true;
    });
    on("seeked", function () {
      if (view === null) return;
      fire("seek");
      run();
    });
    on("ended", function () {
      stop();
      quartiles(el.duration);
      watched = 0; // a replay is a new view
      jumped = true;
    });
    on("volumechange", function () {
      if (el.muted === muted || view === null) return;
      muted = el.muted;
      fire(muted ? "mute" : "unmute");
    });
    // Attached to a video that is already playing (autoplay): its view starts now.
    if (!el.paused && el.readyState > 2) {
      run();
      playing();
    }
  }

  var api = { pageview: pageview, event: event, conversion: conversion, video: video };
  function command(name) {
    var fn = api[name];
    if (fn) fn.apply(null, [].slice.call(arguments, 1));
  }

  var pending = (win.tracker && win.tracker.q) || [];
  win.tracker = command;
  readConsent();
  doc.addEventListener("click", onClick, true);
  if (data.pageview !== "false") pageview();
  // An async tag may run before the body is parsed: find the videos once it is.
  function videos() {
    doc.querySelectorAll("video[data-tracker-video]").forEach(function (el) { video(el); });
  }
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", videos);
  else videos();
  pending.forEach(function (args) { command.apply(null, args); });
})(window, document);
