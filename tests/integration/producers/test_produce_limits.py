"""`produce` and the SDK against Kafka's limits: an event over the largest message the topic accepts is an invalid
line (line number, size, limit) and the lines after it are still sent; a record the client refuses fails alone;
`--flush-timeout` is the whole wait and a summary is printed; an unreachable broker is one clear message, with
librdkafka's own lines behind --verbose; a UTF-8 byte-order mark on the first line is accepted.

On the code before these tests: a 1.2 MB event crashed `produce` with a KafkaException MSG_SIZE_TOO_LARGE
traceback and the lines after it were never sent; `--flush-timeout 3` waited 3 s and then 30 s more without a
summary; an unreachable broker printed a librdkafka FAIL line per connection attempt; a BOM failed line 1.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.helpers import TOUCHPOINT, free_port, run_cli
from tests.private_broker import private_broker  # noqa: F401 - fixture
from touchpoint.config import Settings, load_settings
from touchpoint.local_broker import LocalBroker
from touchpoint.errors import ValidationError
from touchpoint.producers import DeliveryError, TouchpointProducer
from touchpoint.producers.producer import KAFKA_LOG
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.json_shape import event_to_json

pytestmark = pytest.mark.integration

MakeEvents = Callable[..., list[dict[str, Any]]]
Consume = Callable[..., list[Any]]


def _ids(records: list[Any], settings: Settings) -> list[str]:
    codec = AvroCodec.from_settings(settings)
    return sorted(codec.decode(r.value())["event_id"] for r in records)


def _oversize(event: dict[str, Any], strings: int, each: int) -> dict[str, Any]:
    """``event`` with ``strings`` context values of ``each`` bytes: every string is valid, the whole is big."""
    return {**event, "context": {f"k{i:02d}": "x" * each for i in range(strings)}}


def _env(settings: Settings) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TOUCHPOINT_TOPIC_PREFIX": settings.topic_prefix}


def _create_topic(settings: Settings, name: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)])[name].result(timeout=30)


def test_cli_refuses_an_event_over_the_message_limit_and_sends_every_other_line(
    pipeline_topics: Settings, make_events: MakeEvents, consume_all: Consume, tmp_path: Path
) -> None:
    settings = pipeline_topics
    good = make_events(5, seed=21)
    # 20 strings of 60,000 bytes: each under max_string_bytes (65,536), together 1.2 MB, over the 1 MB limits.
    big = _oversize(make_events(1, seed=22)[0], 20, 60_000)
    lines = [json.dumps(event_to_json(e)) for e in good[:2]] + [json.dumps(event_to_json(big))]
    lines += [json.dumps(event_to_json(e)) for e in good[2:]]
    path = tmp_path / "touchpoints.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = run_cli("produce", str(path), env=_env(settings))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "KafkaException" not in result.stderr
    refused = [line for line in result.stderr.splitlines() if line.startswith("invalid line ")]
    assert len(refused) == 1, result.stderr
    assert refused[0].startswith("invalid line 3: "), refused
    size = int(refused[0].split("encoded event is ")[1].split(" bytes")[0].replace(",", ""))
    assert size > 1_200_000
    assert "over the 1,000,000 bytes" in refused[0]  # librdkafka's message.max.bytes, below the topic's 1,048,588
    assert "5 sent" in result.stderr and "(5 delivered)" in result.stderr and "1 invalid line(s)" in result.stderr
    assert _ids(consume_all(settings.events_topic, 5), settings) == sorted(e["event_id"] for e in good)


def test_sdk_reads_the_topic_limit_and_refuses_a_bigger_event_before_sending(
    settings: Settings, make_events: MakeEvents, consume_all: Consume
) -> None:
    topic = f"{settings.topic_prefix}.small-messages"
    _create_topic(settings, topic, {"max.message.bytes": "20000"})
    events = make_events(4, seed=23)
    big = _oversize(events[1], 3, 10_000)  # ~30 kB: far under max_string_bytes, over the topic's 20,000 bytes
    with TouchpointProducer(settings, topic=topic) as producer:
        limit = producer.message_limit()
        assert (limit.max_bytes, limit.source) == (20_000, "topic config max.message.bytes")
        futures = [producer.send(events[0])]
        with pytest.raises(ValidationError) as info:
            producer.send(big)
        futures += [producer.send(e) for e in events[2:]]
    assert info.value.field == "event" and "20,000 bytes" in info.value.rule and topic in info.value.rule
    assert [f.result(timeout=30).topic for f in futures] == [topic] * 3
    assert _ids(consume_all(topic, 3), settings) == sorted(e["event_id"] for e in (events[0], *events[2:]))


def test_a_record_the_client_refuses_fails_alone(settings: Settings, make_events: MakeEvents,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the size check is bypassed, librdkafka's synchronous refusal fails that record only."""
    from touchpoint.kafka_admin import create_topics

    create_topics(settings)
    events = make_events(3, seed=24)
    big = _oversize(events[1], 2, 8_000)
    seen: list[object] = []
    producer = TouchpointProducer(settings, config={"message.max.bytes": 10_000})
    monkeypatch.setattr(producer, "_check_size", lambda event, value: None)
    futures = [producer.send(e, on_delivery=lambda err, rep: seen.append(err)) for e in (events[0], big, events[2])]
    producer.close(timeout=30)
    error = futures[1].exception(timeout=0)
    assert isinstance(error, DeliveryError) and error.event_id == big["event_id"]
    assert "MSG_SIZE_TOO_LARGE" in str(error)
    assert [f.result(timeout=0).event_id for f in (futures[0], futures[2])] == [events[0]["event_id"], events[2]["event_id"]]
    assert sum(1 for err in seen if err is not None) == 1 and len(seen) == 3


def test_flush_timeout_is_the_whole_wait_and_a_summary_is_printed(
    private_broker: LocalBroker, make_events: MakeEvents, tmp_path: Path, unique: str
) -> None:
    settings = load_settings(kafka_bootstrap_servers=private_broker.bootstrap, topic_prefix=f"tp{unique}", data_dir=tmp_path)
    _create_topic(settings, settings.events_topic, {})
    lines = "".join(json.dumps(event_to_json(e)) + "\n" for e in make_events(4, seed=25))
    cmd = [str(TOUCHPOINT), "produce", "-", "--flush-timeout", "3", "--verbose"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(_env(settings), TOUCHPOINT_CONFIG=os.devnull, COLUMNS="250")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stderr is not None
    # --verbose prints the topic's limit once the topic was checked: from then on the broker goes away.
    first = proc.stderr.readline().decode()
    assert "largest event" in first, first
    private_broker.stop(timeout=10)
    started = time.monotonic()
    proc.stdin.write(lines.encode())
    proc.stdin.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    elapsed = time.monotonic() - started

    assert code == 1, err
    assert "Traceback" not in err
    assert "4 sent" in err and "(0 delivered)" in err, err
    assert "4 not acknowledged within 3s and given up" in err, err
    assert f"is the broker at {private_broker.bootstrap} reachable?" in err
    assert "Connection refused" in err  # --verbose: the Kafka client's own lines are shown
    # Before: 3 s, then the producer's own 30 s close timeout on top, and no summary. Now the summary comes after
    # about the 3 s asked for (plus reading stdin and process exit), far from 33 s.
    assert elapsed < 15, elapsed


def test_unreachable_broker_is_one_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text("{}\n")
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("produce", str(path), env={"KAFKA_BOOTSTRAP_SERVERS": address})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"KAFKA_BOOTSTRAP_SERVERS={address} is not reachable" in lines[0]


def test_librdkafka_log_goes_to_our_logger(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """What --verbose shows: the client's own lines arrive on the touchpoint.kafka logger, not on stderr."""

    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", data_dir=tmp_path)
    producer = TouchpointProducer(settings)
    with caplog.at_level(logging.DEBUG, logger=KAFKA_LOG.name):
        deadline = time.monotonic() + 30
        while not any(r.name == KAFKA_LOG.name for r in caplog.records) and time.monotonic() < deadline:
            producer.poll(0.2)
    assert any("Connection refused" in r.getMessage() or "connect" in r.getMessage().lower()
               for r in caplog.records if r.name == KAFKA_LOG.name), [r.getMessage() for r in caplog.records]
    producer.close(timeout=1)


def test_byte_order_mark_on_the_first_line_is_accepted(
    pipeline_topics: Settings, make_events: MakeEvents, consume_all: Consume, tmp_path: Path
) -> None:
    settings = pipeline_topics
    events = make_events(3, seed=26)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps(event_to_json(e)) for e in events).encode() + b"\r\n")
    result = run_cli("produce", str(path), env=_env(settings))
    assert result.returncode == 0, result.stderr
    assert "3 sent" in result.stderr and "0 invalid line(s)" in result.stderr
    assert _ids(consume_all(settings.events_topic, 3), settings) == sorted(e["event_id"] for e in events)
