/* touchpoint.js: the browser tracker served by `touchpoint collect` at /touchpoint.js.
 *
 *   <script src="https://collect.example/touchpoint.js" data-write-key="tpk_..." data-currency="EUR"></script>
 *   touchpoint.identify("c-42");   // at login: later events carry both ids, which joins the anonymous touches to c-42
 *   touchpoint.track("CHECKOUT", {order_id: "o-1", status: "completed", amount_minor: 12990,
 *                                 currency: "EUR", item_count: 2});
 *
 * What it does: keeps an anonymous id (localStorage, mirrored in a first-party cookie), records a PAGE_VIEW per
 * page (touchpoint.page() for single-page apps) and an AD_CLICK when the URL carries UTM or click-id parameters
 * (their utm_* values ride along in every event's context for the session), and sends events in small batches.
 * Delivery is at-least-once: events wait in localStorage until the collector answered for them; 5xx, 408 and
 * network errors are retried with exponential backoff; on page hide the queue goes out with fetch(keepalive)
 * or sendBeacon and stays queued until a later page sees it acknowledged. Every event carries an event_id made
 * here, so a retried copy is dropped downstream.
 */
(function (window, document) {
  "use strict";
  if (window.touchpoint && window.touchpoint.__loaded) return;

  var ANON = "tp_anon", CUSTOMER = "tp_customer", QUEUE = "tp_queue", SESSION = "tp_session", UTM = "tp_utm";
  var CAMPAIGN_PARAMS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];
  var CLICK_IDS = {gclid: "google", fbclid: "meta", msclkid: "microsoft", ttclid: "tiktok", li_fat_id: "linkedin"};
  var MAX_BATCH = 50, MAX_BACKOFF_MS = 60000, MAX_QUEUE = 1000;

  var script = document.currentScript;
  var config = {
    writeKey: script && script.getAttribute("data-write-key") || "",
    endpoint: script ? new URL("/v1/batch", script.src).href : "/v1/batch",
    currency: script && script.getAttribute("data-currency") || "EUR",
    channel: script && script.getAttribute("data-channel") || "web",
    autoPage: !(script && script.getAttribute("data-auto-page") === "false"),
    flushMs: Number(script && script.getAttribute("data-flush-ms")) || 1000  // how long an event may wait for company
  };
  var backoff = 0, timer = null, sending = false, inflight = {};

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function load(store, name) { try { return store.getItem(name); } catch (e) { return null; } }
  function save(store, name, value) { try { store.setItem(name, value); } catch (e) { /* private mode: memory only */ } }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function anonymousId() {
    var id = load(localStorage, ANON) || cookie(ANON);
    if (!id) id = uuid();
    save(localStorage, ANON, id);
    document.cookie = ANON + "=" + encodeURIComponent(id) + "; path=/; max-age=31536000; SameSite=Lax";
    return id;
  }
  function sessionId() {
    var id = load(sessionStorage, SESSION);
    if (!id) { id = uuid(); save(sessionStorage, SESSION, id); }
    return id;
  }
  function campaignContext() {
    var stored = load(sessionStorage, UTM);
    return stored ? JSON.parse(stored) : {};
  }

  function queue() { var q = load(localStorage, QUEUE); return q ? JSON.parse(q) : []; }
  function setQueue(q) { save(localStorage, QUEUE, JSON.stringify(q.slice(-MAX_QUEUE))); }

  function enqueue(type, payload, options) {
    var customer = load(localStorage, CUSTOMER);
    var event = {
      event_id: uuid(),
      event_type: type,
      occurred_at: Date.now(),
      anonymous_id: anonymousId(),
      customer_id: customer || null,
      channel: (options && options.channel) || config.channel,
      session_id: sessionId(),
      context: Object.assign({page_url: location.href}, campaignContext(), options && options.context || {}),
      payload: payload
    };
    var q = queue();
    q.push(event);
    setQueue(q);
    schedule(q.length >= MAX_BATCH ? 0 : config.flushMs);
    return event.event_id;
  }

  function schedule(ms) {
    if (timer !== null) { if (ms > 0) return; clearTimeout(timer); }
    timer = setTimeout(function () { timer = null; flush(); }, ms);
  }

  function url() { return config.endpoint + "?writeKey=" + encodeURIComponent(config.writeKey); }

  function acknowledge(ids) {
    setQueue(queue().filter(function (e) { return !ids[e.event_id]; }));
  }

  /* Send the oldest batch; the collector's answer decides: 2xx or a permanent refusal (400, 401, 403, 413, 415:
     retrying cannot help, and refused events are dead-lettered server-side) -> drop; else retry with backoff. */
  function flush() {
    if (sending) return Promise.resolve();
    var batch = queue().filter(function (e) { return !inflight[e.event_id]; }).slice(0, MAX_BATCH);
    if (!batch.length) return Promise.resolve();
    sending = true;
    var ids = {};
    batch.forEach(function (e) { ids[e.event_id] = true; });
    return fetch(url(), {method: "POST", body: JSON.stringify(batch), keepalive: true, credentials: "omit",
                         mode: "cors", headers: {"Content-Type": "text/plain"}})
      .then(function (response) {
        var retry = response.status >= 500 || response.status === 408 || response.status === 429;
        if (retry) {
          var failure = new Error("collector answered " + response.status);
          failure.retryAfter = Number(response.headers.get("Retry-After")) || 0;
          throw failure;
        }
        acknowledge(ids);
        backoff = 0;
        sending = false;
        if (queue().length) schedule(0);
      })
      .catch(function (failure) {
        sending = false;
        backoff = Math.min(backoff ? backoff * 2 : 1000, MAX_BACKOFF_MS);
        backoff = Math.max(backoff, Math.min((failure && failure.retryAfter || 0) * 1000, MAX_BACKOFF_MS));
        if (timer !== null) clearTimeout(timer);
        timer = setTimeout(function () { timer = null; flush(); }, backoff * (1 + Math.random() / 2));
      });
  }

  /* Page hide: hand everything still queued to the browser, which sends it after the page is gone. The events
     stay queued: a later page resends any whose acknowledgement was never seen (deduplicated by event_id). */
  function flushOnHide() {
    var q = queue().filter(function (e) { return !inflight[e.event_id]; });
    for (var i = 0; i < q.length; i += MAX_BATCH) {
      var body = JSON.stringify(q.slice(i, i + MAX_BATCH));
      var queued = false;
      if (navigator.sendBeacon) queued = navigator.sendBeacon(url(), new Blob([body], {type: "text/plain"}));
      if (!queued) {
        try { fetch(url(), {method: "POST", body: body, keepalive: true, credentials: "omit", mode: "cors",
                            headers: {"Content-Type": "text/plain"}}); } catch (e) { /* nothing more to try */ }
      }
      q.slice(i, i + MAX_BATCH).forEach(function (e) { inflight[e.event_id] = true; });
    }
  }

  function page(options) {
    options = options || {};
    return enqueue("PAGE_VIEW", {
      url: location.href,
      page_type: options.pageType || document.body && document.body.getAttribute("data-page-type") || "page",
      title: document.title || null,
      referrer: document.referrer || null,
      product_id: options.productId || document.body && document.body.getAttribute("data-product-id") || null
    }, options);
  }

  /* UTM or click-id parameters on the landing URL: an AD_CLICK, and the campaign in every event's context. */
  function adClickFromUrl() {
    var params = new URLSearchParams(location.search), utm = {}, clickId = null, platform = null;
    CAMPAIGN_PARAMS.forEach(function (p) { if (params.get(p)) utm[p] = params.get(p); });
    Object.keys(CLICK_IDS).forEach(function (p) {
      if (!clickId && params.get(p)) { clickId = params.get(p); platform = CLICK_IDS[p]; }
    });
    if (!utm.utm_campaign && !clickId) return null;
    if (clickId) utm.click_id = clickId;
    save(sessionStorage, UTM, JSON.stringify(utm));
    return enqueue("AD_CLICK", {
      campaign_id: utm.utm_campaign || "(not set)",
      ad_id: utm.utm_content || clickId || "(not set)",
      platform: utm.utm_source || platform || "(not set)",
      cost_minor: 0,  // the browser does not know what a click cost; ad-platform imports carry the cost
      currency: config.currency,
      placement: utm.utm_medium || null
    });
  }

  var api = {
    __loaded: true,
    config: config,
    init: function (options) { Object.assign(config, options || {}); return api; },
    page: page,
    track: function (type, payload, options) { return enqueue(type, payload, options); },
    identify: function (customerId) {
      save(localStorage, CUSTOMER, String(customerId));
      return flush();
    },
    reset: function () {
      try { localStorage.removeItem(CUSTOMER); localStorage.removeItem(ANON); } catch (e) { /* ignore */ }
      document.cookie = ANON + "=; path=/; max-age=0";
    },
    flush: flush,
    anonymousId: anonymousId,
    pending: function () { return queue().length; }
  };
  window.touchpoint = api;

  /* Back on the page (tab shown again, or restored from the back/forward cache): what was handed to the browser
     on hide is unconfirmed, so it is sent again by the normal path (a copy that did land is dropped by event_id). */
  function resume() { inflight = {}; if (queue().length) schedule(0); }
  window.addEventListener("pagehide", flushOnHide);
  window.addEventListener("pageshow", function (e) { if (e.persisted) resume(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flushOnHide(); else resume();
  });
  if (config.autoPage) {
    adClickFromUrl();
    page();
  }
  if (queue().length) schedule(0);
})(window, document);
