"""The collector in the whole pipeline (`touchpoint run --collect`: broker, worker, sink, ClickHouse).

- A real browser (Debian chromium through Playwright) shops on a small site that loads /touchpoint.js: the
  touchpoints arrive in ClickHouse and the anonymous clicks are stitched into the customer's journey.
- A 2xx is durable: the collector is SIGKILLed while clients post; every event a client saw acknowledged is in
  ClickHouse exactly once.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.collector.conftest import keys_toml, start_collector
from tests.integration.e2e.helpers import namespace_env, sql, start, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP_KEY = "tpk_browser_shop_" + "b" * 16
LOAD_KEY = "tpk_load_clients_" + "l" * 16
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Shop:
    """A four-page shop (home, product, login, checkout) that loads the tracker from the collector."""

    def __init__(self, collector_url: str) -> None:
        tracker = (f'<script src="{collector_url}/touchpoint.js" data-write-key="{SHOP_KEY}" data-currency="BRL"'
                   ' data-flush-ms="{flush_ms}"></script>')
        pages = {
            "/": ("Home", "home", ""),
            "/product": ("Garden chair", "product", ""),
            "/login": ("Log in", "login", ""),
            "/checkout": ("Checkout", "checkout", "slow"),  # events wait a minute for company: only unload sends
            "/bye": ("Elsewhere", "other", "bare"),  # no tracker
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                title, page_type, kind = pages.get(self.path.split("?")[0], ("Not found", "other", ""))
                script = "" if kind == "bare" else tracker.replace("{flush_ms}", "60000" if kind == "slow" else "1000")
                body = (f"<!doctype html><html><head><title>{title}</title></head>"
                        f'<body data-page-type="{page_type}"><h1>{title}</h1>{script}</body></html>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("collector-pipeline")
    name = "col" + uuid.uuid4().hex[:8]
    env = namespace_env(kafka_bootstrap, tmp / "data", name)
    keys_file = tmp / "keys.toml"
    keys_file.write_text(keys_toml([(SHOP_KEY, "web-shop", ["PAGE_VIEW", "AD_CLICK", "CHECKOUT"], ["web"]),
                                    (LOAD_KEY, "load-clients", ["PAGE_VIEW"], ["web"])]))
    collector_port = free_port()
    collector_url = f"http://127.0.0.1:{collector_port}"
    shop = Shop(collector_url)
    env.update({"TOUCHPOINT_COLLECTOR_PORT": str(collector_port), "TOUCHPOINT_COLLECTOR_KEYS_FILE": str(keys_file),
                "TOUCHPOINT_COLLECTOR_ALLOWED_ORIGINS": shop.url})
    log = tmp / "run.log"
    run = start(["run", "--collect"], env, log)
    port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]

    def ready() -> bool:
        assert run.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{collector_url}/readyz", timeout=2) as r:
                collector_ready = r.status == 200
            return collector_ready and sql(port, f"SELECT count() AS n FROM {db}.touchpoints") is not None
        except (OSError, urllib.error.URLError):
            return False

    try:
        wait_until(ready, timeout=180, what="`touchpoint run --collect` ready (collector, sink SQL port)", interval=0.5)
        yield {"env": env, "collector": collector_url, "shop": shop, "sql_port": port, "db": db, "tmp": tmp,
               "keys": keys_file}
    finally:
        shop.close()
        assert stop(run, signal.SIGTERM) == 0, log.read_text()[-3000:]
        assert "collector exit 0" in log.read_text(), log.read_text()[-3000:]


def test_a_browser_journey_is_stitched_from_the_first_ad_click(pipeline):
    from playwright.sync_api import sync_playwright

    shop, db, port = pipeline["shop"], pipeline["db"], pipeline["sql_port"]
    customer = f"c-browser-{uuid.uuid4().hex[:8]}"
    expected = [("PAGE_VIEW", "", "home"), ("AD_CLICK", "", ""), ("PAGE_VIEW", "", "product"),
                ("PAGE_VIEW", "", "login"), ("PAGE_VIEW", customer, "checkout"), ("CHECKOUT", customer, "")]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            refused: list[str] = []
            refused_at: list[float] = []

            def flaky_collector(route: Any) -> None:
                # the collector's first two answers are 503: the tracker must keep the events and retry
                if route.request.method == "POST" and len(refused) < 2:
                    refused.append(route.request.post_data or "")
                    refused_at.append(time.monotonic())
                    route.fulfill(status=503, headers={"Retry-After": "1"}, body='{"error": "try later"}')
                else:
                    route.continue_()

            page.route(f"{pipeline['collector']}/v1/batch*", flaky_collector)
            page.goto(f"{shop.url}/")  # organic visit: a page view, no campaign
            # page.evaluate lets Playwright dispatch the route callbacks while we poll
            wait_until(lambda: page.evaluate("1") and len(refused) == 2, timeout=30,
                       what="two refused sends (retried with backoff)")
            page.goto(f"{shop.url}/product?utm_source=google&utm_medium=cpc&utm_campaign=bf-2026"
                      "&utm_content=ad-77&gclid=Cj0KCQ")
            page.goto(f"{shop.url}/login")
            anonymous_id = page.evaluate("touchpoint.anonymousId()")
            page.evaluate(f"touchpoint.identify({json.dumps(customer)})")
            page.goto(f"{shop.url}/checkout")
            wait_until(lambda: page.evaluate("touchpoint.pending()") == 0, timeout=30,
                       what="every earlier event acknowledged (nothing left in flight)")
            page.evaluate("""touchpoint.track("CHECKOUT", {order_id: "o-browser-1", status: "completed",
                             amount_minor: 25990, currency: "BRL", item_count: 2, payment_method: "card"})""")
            # Leave for a page without the tracker: the checkout page sends after a minute only, so the CHECKOUT
            # can only arrive through the unload path (sendBeacon / fetch keepalive).
            page.goto(f"{shop.url}/bye")

            def stored() -> list[dict[str, Any]]:
                page.evaluate("1")  # let Playwright dispatch the route callbacks of the unload requests
                rows = sql(port, f"SELECT event_type, customer_id, page_type, campaign_id, platform, ad_id, source, "
                                 f"context['utm_campaign'] AS utm FROM {db}.touchpoints FINAL "
                                 f"WHERE anonymous_id = '{anonymous_id}' ORDER BY occurred_at, event_type = 'PAGE_VIEW'")
                assert [(r["event_type"], r["customer_id"], r["page_type"]) for r in rows] == expected, rows
                return rows

            rows = wait_until(stored, timeout=90, what="the browser's six touchpoints in ClickHouse", interval=1.0)
        finally:
            browser.close()

    assert refused_at[1] - refused_at[0] >= 1.0, "the retry waited at least the answer's Retry-After (1 s)"
    first_refused = json.loads(refused[0])
    assert [e["event_type"] for e in first_refused] == ["PAGE_VIEW"]
    home_id = first_refused[0]["event_id"]  # made in the browser: the retried copy kept it
    assert sql(port, f"SELECT count() AS n FROM {db}.touchpoints FINAL WHERE event_id = '{home_id}'") == [{"n": 1}]
    click = rows[1]
    assert (click["campaign_id"], click["platform"], click["ad_id"]) == ("bf-2026", "google", "ad-77")
    assert {r["source"] for r in rows} == {"web-shop"}
    assert [r["utm"] for r in rows] == ["", "bf-2026", "bf-2026", "bf-2026", "bf-2026", "bf-2026"]

    def journey() -> dict[str, Any]:
        found = sql(port, f"SELECT first_touch_campaign, converted, event_count, anonymous_ids, revenue_minor, "
                          f"path_event_types FROM {db}.journeys_current WHERE customer_id = '{customer}'")
        assert len(found) == 1 and found[0]["event_count"] == 6, found
        return found[0]

    j = wait_until(journey, timeout=90, what=f"{customer}'s stitched journey", interval=1.0)
    assert j["first_touch_campaign"] == "bf-2026"
    assert j["converted"] in (True, 1) and int(j["revenue_minor"]) == 25990
    assert anonymous_id in j["anonymous_ids"]
    # the ad click and the landing page view share a millisecond: their order within it is not defined
    assert sorted(j["path_event_types"]) == sorted(e[0] for e in expected)


def test_an_acknowledged_event_survives_a_sigkill_of_the_collector(pipeline):
    """Clients post batches (retrying failures with the same event ids) while the collector is killed and restarted."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    env = pipeline["env"]
    collector = start_collector(pipeline["tmp"], env, pipeline["keys"].read_text(), name="durability")
    url = collector.url
    acked: set[str] = set()
    sent: set[str] = set()
    lock = threading.Lock()
    stop_clients = threading.Event()
    errors: list[BaseException] = []

    def client(n: int) -> None:
        local = random.Random(seed + n)
        try:
            while not stop_clients.is_set():
                batch = [{"event_id": str(uuid.UUID(int=local.getrandbits(128), version=4)), "event_type": "PAGE_VIEW",
                          "occurred_at": int(time.time() * 1000), "anonymous_id": f"a-load-{n}-{local.randrange(40)}",
                          "channel": "web", "payload": {"url": f"https://shop.example/{n}", "page_type": "product"}}
                         for _ in range(20)]
                with lock:
                    sent.update(e["event_id"] for e in batch)
                body = json.dumps(batch).encode()
                delay = 0.05
                while True:  # retry the same batch (same event ids) until a 2xx, as the tracker does
                    req = urllib.request.Request(f"{url}/v1/batch", data=body, headers={
                        "Content-Type": "application/json", "X-Touchpoint-Key": LOAD_KEY})
                    try:
                        with urllib.request.urlopen(req, timeout=15) as r:
                            if r.status == 200:
                                with lock:
                                    acked.update(e["event_id"] for e in batch)
                                break
                    except (urllib.error.URLError, OSError):
                        pass
                    time.sleep(delay)  # the client's backoff, not a test synchronisation
                    delay = min(delay * 2, 1.0)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 400 + rng.randrange(200), timeout=60, what="clients acknowledged")
        collector.proc.send_signal(signal.SIGKILL)
        collector.proc.wait(10)
        at_kill = len(acked)
        port = int(url.rsplit(":", 1)[1])
        collector = start_collector(pipeline["tmp"], env, pipeline["keys"].read_text(), name="durability-2", port=port)
        wait_until(lambda: len(acked) >= at_kill + 400, timeout=60, what="clients acknowledged after the restart")
    finally:
        stop_clients.set()
        for t in threads:
            t.join(30)
        collector.proc.send_signal(signal.SIGTERM)
        collector.proc.wait(30)
    assert not errors, errors

    db, sql_port = pipeline["db"], pipeline["sql_port"]

    def counts() -> dict[str, int]:
        rows = sql(sql_port, f"SELECT toString(event_id) AS id, count() AS n FROM {db}.touchpoints FINAL "
                             f"WHERE source = 'load-clients' GROUP BY id")
        found = {r["id"]: int(r["n"]) for r in rows}
        missing = acked - found.keys()
        assert not missing, f"{len(missing)} acknowledged events not (yet) in ClickHouse"
        return found

    found = wait_until(counts, timeout=120, what="every acknowledged event in ClickHouse", interval=1.0)
    assert set(found.values()) == {1}, "an event is in ClickHouse more than once"
    assert found.keys() <= sent, "ClickHouse holds events no client sent"
    print(f"acknowledged {len(acked)}, sent {len(sent)}, stored {len(found)}, at kill {at_kill}")
