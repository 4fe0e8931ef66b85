"""`touchpoint collect` against the real broker: what lands on Kafka, and the documented answer to bad input.

Expected values are typed into the tests (event ids made here, the limits set in the fixture, the key's source).
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import time
import uuid

import pytest

from tests.helpers import wait_until
from tests.integration.collector.conftest import (
    APP_KEY, DEFAULT_KEYS, SHOP_KEY, CollectorProcess, keys_toml, page_view, read_topic, request, start_collector,
    stop_collector,
)
from touchpoint.dead_letter import parse_headers
from touchpoint.schemas.codec import AvroCodec

pytestmark = pytest.mark.integration

CODEC = AvroCodec()


def events_by_id(collector: CollectorProcess) -> dict[str, dict]:
    topic = f"{collector.env['TOUCHPOINT_TOPIC_PREFIX']}.events"
    decoded = [CODEC.decode(m.value()) for m in read_topic(collector.env["KAFKA_BOOTSTRAP_SERVERS"], topic)]
    return {e["event_id"]: e for e in decoded}


def dead_letters(collector: CollectorProcess) -> list[tuple[bytes, dict[str, str]]]:
    topic = f"{collector.env['TOUCHPOINT_TOPIC_PREFIX']}.dead-letters"
    return [(m.value(), parse_headers(m.headers())) for m in read_topic(collector.env["KAFKA_BOOTSTRAP_SERVERS"], topic)]


def test_a_batch_is_acknowledged_with_source_from_the_key(collector):
    anon = f"a-{uuid.uuid4()}"
    batch = [page_view(anon, i, source="someone-else") for i in range(3)]
    answer = collector.post(batch)
    assert (answer.status, answer.body) == (200, {"accepted": 3, "rejected": []})
    # 2xx means acknowledged: the events are on the topic now, without waiting
    stored = events_by_id(collector)
    assert [stored[e["event_id"]]["source"] for e in batch] == ["web-shop"] * 3
    assert [stored[e["event_id"]]["payload"]["url"] for e in batch] == [f"https://shop.example/p/{i}" for i in range(3)]


def test_the_three_key_forms_gzip_and_json_lines(collector):
    anon = f"a-{uuid.uuid4()}"
    basic = base64.b64encode(f"{SHOP_KEY}:".encode()).decode()
    one, two, three = page_view(anon, 1), page_view(anon, 2), page_view(anon, 3)
    assert collector.post(one, key=None, headers={"Authorization": f"Basic {basic}"}).status == 200
    assert collector.post(two, key=None, query=f"?writeKey={SHOP_KEY}", content_type="text/plain").status == 200
    lines = gzip.compress(b"\n".join(json.dumps(e).encode() for e in [three]) + b"\n")
    answer = collector.post(lines, content_type="application/x-ndjson", headers={"Content-Encoding": "gzip"})
    assert (answer.status, answer.body["accepted"]) == (200, 1)
    stored = events_by_id(collector)
    assert {one["event_id"], two["event_id"], three["event_id"]} <= stored.keys()


def test_an_invalid_event_among_valid_ones_is_listed_and_dead_lettered_with_its_bytes(collector):
    anon = f"a-{uuid.uuid4()}"
    good = [page_view(anon, 1), page_view(anon, 2)]
    bad_money = ('{"event_type": "CHECKOUT", "occurred_at": 1795600800000, "anonymous_id": "%s", "channel": "web", '
                 '"payload": {"order_id": "o-1", "status": "completed", "amount_minor": 12.5, "currency": "EUR", '
                 '"item_count": 1}}' % anon)
    body = "[" + json.dumps(good[0]) + ",\n  " + bad_money + ", " + json.dumps(good[1]) + "]"
    answer = collector.post(body)
    assert answer.status == 207
    assert answer.body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in answer.body["rejected"]] == [(1, "payload.amount_minor")]
    assert "minor units" in answer.body["rejected"][0]["rule"]
    assert {e["event_id"] for e in good} <= events_by_id(collector).keys()
    letters = [(v, h) for v, h in dead_letters(collector) if v == bad_money.encode()]
    assert len(letters) == 1, "the refused item's original bytes are on the dead-letter topic"
    headers = letters[0][1]
    assert headers["dlq.stage"] == "collector" and headers["dlq.kind"] == "invalid"
    assert headers["dlq.source.index"] == "1" and "payload.amount_minor" in headers["dlq.reason"]


def test_a_type_or_channel_the_key_does_not_allow_is_refused(collector):
    anon = f"a-{uuid.uuid4()}"
    survey = {"event_type": "SURVEY_RESPONSE", "occurred_at": "2026-11-25T10:00:00Z", "anonymous_id": anon,
              "channel": "web", "payload": {"survey_kind": "NPS", "score": 9, "scale_min": 0, "scale_max": 10}}
    answer = collector.post([survey])
    assert answer.status == 400
    assert answer.body["accepted"] == 0
    assert [(r["index"], r["field"]) for r in answer.body["rejected"]] == [(0, "event_type")]
    assert "not allowed for this write key" in answer.body["rejected"][0]["rule"]
    answer = collector.post([page_view(anon)], key=APP_KEY)  # the app key may send web? no: channels = [app]
    assert answer.status == 400 and answer.body["rejected"][0]["field"] == "channel"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'[{"event_type": "PAGE_VIEW",', "application/json", 400, "malformed JSON"),
        (b"", "application/json", 400, "no event"),
        (b"event_type=PAGE_VIEW", "application/x-www-form-urlencoded", 415, "not accepted"),
        (b"<event/>", "application/xml", 415, "not accepted"),
    ],
    ids=["malformed-json", "empty", "form", "xml"],
)
def test_bodies_that_cannot_be_used_are_refused_whole(collector, body, content_type, status, says):
    answer = collector.post(body, content_type=content_type)
    assert answer.status == status and says in answer.body["error"]


def test_a_broken_gzip_body_is_400_and_the_service_goes_on(collector):
    answer = collector.post(b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    assert answer.status == 400 and "could not be read" in answer.body["error"]
    truncated = gzip.compress(json.dumps([page_view("a-gz")]).encode())[:-12]
    answer = collector.post(truncated, headers={"Content-Encoding": "gzip"})
    assert answer.status == 400, answer.body
    assert collector.post([page_view("a-gz")]).status == 200


def test_limits_are_413_naming_the_limit_and_nothing_is_produced(collector):
    anon = f"a-{uuid.uuid4()}"
    fat = page_view(anon, payload={"url": "https://shop.example/" + "x" * 5000, "page_type": "home"})
    small = page_view(anon, 1)
    answer = collector.post([small, fat])
    assert (answer.status, answer.body["limit"], answer.body["max"]) == (413, "max_event_bytes", 4096)
    many = [page_view(anon, i) for i in range(51)]
    answer = collector.post(many)
    assert (answer.status, answer.body["limit"], answer.body["max"]) == (413, "max_events", 50)
    huge = [page_view(anon, i, context={"pad": "y" * 3000}) for i in range(30)]  # ~95 KB > 64 KB
    answer = collector.post(huge)
    assert (answer.status, answer.body["limit"], answer.body["max"]) == (413, "max_request_bytes", 65536)
    bomb = gzip.compress(b"[" + b" " * 200_000 + b"]")  # 200 KB once inflated, tiny on the wire
    answer = collector.post(bomb, headers={"Content-Encoding": "gzip"})
    assert (answer.status, answer.body["limit"]) == (413, "max_request_bytes")
    stored = events_by_id(collector)
    assert small["event_id"] not in stored and not {e["event_id"] for e in many} & stored.keys()


def test_missing_wrong_and_revoked_keys_get_401_without_detail(collector):
    body = [page_view("a-x")]
    for key in (None, "tpk_wrong", ""):
        answer = collector.post(body, key=key)
        assert (answer.status, answer.body) == (401, {"error": "unauthorized"}), key
    basic_wrong = base64.b64encode(b"tpk_wrong:").decode()
    answer = collector.post(body, key=None, headers={"Authorization": f"Basic {basic_wrong}"})
    assert (answer.status, answer.body) == (401, {"error": "unauthorized"})


def test_keys_rotate_without_a_restart(collector):
    new_key = "tpk_rotated_" + uuid.uuid4().hex
    try:
        collector.keys_file.write_text(keys_toml([(new_key, "web-shop", ["PAGE_VIEW"], ["web"]), DEFAULT_KEYS[1]]))
        wait_until(lambda: collector.post([page_view("a-r")], key=new_key).status == 200, timeout=10,
                   what="the new key accepted")
        assert collector.post([page_view("a-r")], key=SHOP_KEY).status == 401, "the old key is revoked"
    finally:
        collector.keys_file.write_text(keys_toml(DEFAULT_KEYS))
        wait_until(lambda: collector.post([page_view("a-r")]).status == 200, timeout=10, what="the shop key back")


def test_origins_outside_the_allow_list_are_refused(collector):
    anon = f"a-{uuid.uuid4()}"
    evil = page_view(anon, 1)
    answer = collector.post([evil], headers={"Origin": "https://evil.example"}, content_type="text/plain")
    assert (answer.status, answer.body) == (403, {"error": "origin not allowed"})
    assert "Access-Control-Allow-Origin" not in answer.headers
    ok = page_view(anon, 2)
    answer = collector.post([ok], headers={"Origin": "https://shop.example"}, content_type="text/plain")
    assert answer.status == 200 and answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    pre = request(f"{collector.url}/v1/batch", None, {"Origin": "https://shop.example",
                  "Access-Control-Request-Method": "POST"}, method="OPTIONS")
    assert pre.status == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    pre = request(f"{collector.url}/v1/batch", None, {"Origin": "https://evil.example"}, method="OPTIONS")
    assert pre.status == 403
    stored = events_by_id(collector)
    assert ok["event_id"] in stored and evil["event_id"] not in stored


def test_a_slow_client_is_cut_off_and_others_are_served(collector):
    host, port = collector.url.removeprefix("http://").split(":")
    slow = []
    try:
        for _ in range(20):  # twenty slowloris connections, each promising a body it never finishes
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nX-Touchpoint-Key: {SHOP_KEY}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[".encode())
            slow.append(s)
        started = time.monotonic()
        assert collector.post([page_view("a-fast")]).status == 200, "a normal client is served meanwhile"
        answers = []
        for s in slow:
            answers.append(s.recv(4096).split(b"\r\n", 1)[0])
        assert answers == [b"HTTP/1.1 408 Request Timeout"] * 20
        assert time.monotonic() - started < 5, "the read timeout (1 s) bounds them"
    finally:
        for s in slow:
            s.close()


def test_headers_that_never_complete_are_cut_off(collector):
    host, port = collector.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = b"not closed"
        s.settimeout(0.2)
        while time.monotonic() - started < 8:
            try:
                closed = s.recv(4096)
                break
            except TimeoutError:
                s.sendall(b"X")  # trickle one header byte at a time
    assert closed == b"", "the server closed the connection"
    assert time.monotonic() - started < 5, "within the read timeout (1 s), give or take aiohttp's timer resolution"
    assert collector.get("/healthz").status == 200


def metric(collector: CollectorProcess, name: str, labels: dict[str, str]) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(collector.get("/metrics").body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_by_status_and_events_by_type_and_reason(collector):
    accepted = ("touchpoint_collector_events_accepted_total", {"event_type": "PAGE_VIEW"})
    refused = ("touchpoint_collector_events_rejected_total", {"event_type": "SURVEY_RESPONSE", "reason": "type_not_allowed"})
    ok207 = ("touchpoint_collector_requests_total", {"path": "/v1/batch", "status": "207"})
    before = [metric(collector, *m) for m in (accepted, refused, ok207)]
    survey = {"event_type": "SURVEY_RESPONSE", "occurred_at": "2026-11-25T10:00:00Z", "anonymous_id": "a-m",
              "channel": "web", "payload": {"survey_kind": "NPS", "score": 9, "scale_min": 0, "scale_max": 10}}
    answer = collector.post([page_view("a-m", 1), survey, page_view("a-m", 2)])
    assert answer.status == 207
    after = [metric(collector, *m) for m in (accepted, refused, ok207)]
    assert [b - a for a, b in zip(before, after)] == [2, 1, 1]


def test_health_readiness_metrics_docs_and_tracker(collector):
    assert collector.get("/healthz").status == 200 and collector.get("/readyz").body == {"ready": True}
    assert collector.post([page_view("a-h")]).status == 200  # this test's own traffic: it may run alone
    metrics = collector.get("/metrics").body.decode()
    assert 'touchpoint_collector_requests_total{path="/v1/batch",status="200"}' in metrics
    assert 'touchpoint_collector_events_accepted_total{event_type="PAGE_VIEW"}' in metrics
    assert "touchpoint_collector_produce_latency_seconds_bucket" in metrics
    doc = collector.get("/openapi.json").body
    assert doc["openapi"].startswith("3.") and "/v1/batch" in doc["paths"]
    js = collector.get("/touchpoint.js")
    assert js.status == 200 and b"sendBeacon" in js.body and js.headers["Content-Type"].startswith("application/javascript")


def test_kafka_unreachable_is_503_with_retry_after(collector_env, tmp_path):
    from tests.helpers import free_port

    env = {**collector_env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}  # nothing listens there
    down = start_collector(tmp_path, env, keys_toml(DEFAULT_KEYS), name="no-kafka")
    try:
        assert down.get("/readyz").status == 503
        answer = down.post([page_view("a-down")])
        assert answer.status == 503 and answer.headers["Retry-After"] == "5"
        assert "retry the whole request" in answer.body["error"]
    finally:
        assert stop_collector(down) == 0, down.log.read_text()[-2000:]
