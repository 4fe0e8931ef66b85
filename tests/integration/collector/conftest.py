"""Fixtures of the collector tests: `touchpoint collect` as a real process on the shared broker, with its own
topics, keys file and port; and a reader of a topic's records."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from tests.helpers import free_port, wait_until
from tests.integration.e2e.helpers import full_env

SHOP_KEY = "tpk_shop_" + "s" * 20
APP_KEY = "tpk_app_" + "a" * 20


def keys_toml(entries: list[tuple[str, str, list[str], list[str]]]) -> str:
    """A keys file for (key, source, event_types, channels) entries, as an operator writes it."""
    out = []
    for key, source, types, channels in entries:
        out.append(f'[[key]]\nsource = "{source}"\nsha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
                   f"event_types = {json.dumps(types)}\nchannels = {json.dumps(channels)}\n")
    return "\n".join(out)


DEFAULT_KEYS = [
    (SHOP_KEY, "web-shop", ["PAGE_VIEW", "AD_CLICK", "CHECKOUT"], ["web"]),
    (APP_KEY, "mobile-app", ["PAGE_VIEW", "CHECKOUT", "SURVEY_RESPONSE"], ["app"]),
]


def page_view(anonymous_id: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": "PAGE_VIEW", "occurred_at": "2026-11-25T10:00:00Z",
            "anonymous_id": anonymous_id, "channel": "web",
            "payload": {"url": f"https://shop.example/p/{n}", "page_type": "product"}, **extra}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CollectorProcess:
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path
    keys_file: Path

    def post(self, body: bytes | str | Any, *, key: str | None = SHOP_KEY, content_type: str = "application/json",
             headers: dict[str, str] | None = None, query: str = "") -> Answer:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if key is not None:
            hdrs["X-Touchpoint-Key"] = key
        return request(f"{self.url}/v1/batch{query}", data, hdrs)

    def get(self, path: str) -> Answer:
        return request(f"{self.url}{path}", None, {})


def request(url: str, data: bytes | None, headers: dict[str, str], method: str | None = None) -> Answer:
    req = urllib.request.Request(url, data=data, headers=headers, method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw, status, hdrs = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw, status, hdrs = err.read(), err.code, dict(err.headers)
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw
    return Answer(status, body, hdrs)


def start_collector(tmp: Path, base_env: dict[str, str], keys: str, name: str = "collector",
                    port: int | None = None) -> CollectorProcess:
    from tests.integration.e2e.helpers import TOUCHPOINT

    keys_file = tmp / f"{name}-keys.toml"
    keys_file.write_text(keys)
    port = port or free_port()
    env = {**base_env, "TOUCHPOINT_COLLECTOR_PORT": str(port), "TOUCHPOINT_COLLECTOR_KEYS_FILE": str(keys_file)}
    log = tmp / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([str(TOUCHPOINT), "collect"], env=full_env(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    collector = CollectorProcess(f"http://127.0.0.1:{port}", env, proc, log, keys_file)

    def up() -> bool:
        assert proc.poll() is None, f"collector exited {proc.returncode}: {log.read_text()[-2000:]}"
        try:
            return collector.get("/healthz").status == 200
        except OSError:
            return False

    wait_until(up, timeout=30, what="the collector answering /healthz")
    return collector


def stop_collector(collector: CollectorProcess) -> int:
    import signal

    if collector.proc.poll() is None:
        collector.proc.send_signal(signal.SIGTERM)
    return collector.proc.wait(30)


def read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list[Message]:
    """Every record of ``topic`` up to its current end offsets."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        ends, tps = {}, []
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                tps.append(TopicPartition(topic, p, low))
        out: list[Message] = []
        if not tps:
            return out
        c.assign(tps)
        pos = {tp.partition: tp.offset for tp in tps}
        deadline = time.monotonic() + timeout
        while any(pos[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within {timeout}s"
            for m in c.consume(1000, timeout=0.5):
                if m.error() or m.offset() >= ends[m.partition()]:
                    continue
                pos[m.partition()] = m.offset() + 1
                out.append(m)
        return out
    finally:
        c.close()


@pytest.fixture(scope="module")
def collector_env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A namespace (topic prefix, data dir) with the pipeline's topics created."""
    from touchpoint.config import load_settings
    from touchpoint.kafka_admin import create_topics

    tag = uuid.uuid4().hex[:8]
    data = tmp_path_factory.mktemp("collector")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOUCHPOINT_CONFIG": os.devnull,
           "TOUCHPOINT_DATA_DIR": str(data), "TOUCHPOINT_TOPIC_PREFIX": f"col{tag}"}
    create_topics(load_settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"col{tag}", data_dir=data))
    return env


@pytest.fixture(scope="module")
def collector(collector_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """One collector for a module, with small limits so the tests can break them cheaply."""
    env = {**collector_env, "TOUCHPOINT_COLLECTOR_MAX_EVENTS": "50", "TOUCHPOINT_COLLECTOR_MAX_EVENT_BYTES": "4096",
           "TOUCHPOINT_COLLECTOR_MAX_REQUEST_BYTES": "65536", "TOUCHPOINT_COLLECTOR_READ_TIMEOUT_SECONDS": "1",
           "TOUCHPOINT_COLLECTOR_ALLOWED_ORIGINS": "https://shop.example"}
    c = start_collector(tmp_path_factory.mktemp("collector-run"), env, keys_toml(DEFAULT_KEYS))
    wait_until(lambda: c.get("/readyz").status == 200, timeout=30, what="the collector ready (Kafka answers)")
    try:
        yield c
    finally:
        code = stop_collector(c)
        assert code == 0, c.log.read_text()[-3000:]
