"""Bad input, through the CLI and the SDK: each bad record gets a clear error and is not produced; all others are."""

from __future__ import annotations

import os
import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TOUCHPOINT, run_cli
from touchpoint.config import Settings
from touchpoint.errors import ValidationError
from touchpoint.producers import TouchpointProducer
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.json_shape import event_to_json

pytestmark = pytest.mark.integration

MakeEvents = Callable[..., list[dict[str, Any]]]
Consume = Callable[..., list[Any]]


def _first(events: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for e in events if e["event_type"] == event_type))


def bad_events(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str, str]]:
    """(what, in-memory event, field named, words in the reason) for each kind of contract violation."""
    missing = _first(events, "PAGE_VIEW")
    del missing["source"]
    wrong_type = _first(events, "CHECKOUT")
    wrong_type["payload"]["item_count"] = "two"
    unknown = _first(events, "PAGE_VIEW")
    unknown["event_type"] = "TELEPATHY"
    score = _first(events, "SURVEY_RESPONSE")
    score["payload"].update(survey_kind="NPS", scale_min=0, scale_max=10, score=11)
    negative = _first(events, "CHECKOUT")
    negative["payload"]["amount_minor"] = -500
    huge = _first(events, "SURVEY_RESPONSE")
    huge["payload"]["comment"] = "x" * 1_000_000
    return [
        ("missing required field", missing, "source", "missing"),
        ("wrong type", wrong_type, "payload.item_count", "int"),
        ("unknown event type", unknown, "event_type", "TELEPATHY"),
        ("score outside scale", score, "payload.score", "outside"),
        ("negative amount", negative, "payload.amount_minor", ">= 0"),
        ("1 MB string", huge, "payload.comment", "bytes"),
    ]


def _ids(records: list[Any], settings: Settings) -> list[str]:
    codec = AvroCodec.from_settings(settings)
    return sorted(codec.decode(r.value())["event_id"] for r in records)


def test_cli_reports_each_bad_line_and_sends_every_good_one(
    pipeline_topics: Settings, make_events: MakeEvents, consume_all: Consume, tmp_path: Path
) -> None:
    settings = pipeline_topics
    good = make_events(40, seed=5)
    lines: list[bytes] = []
    expected_errors: dict[int, list[str]] = {}
    bad = bad_events(make_events(14, seed=6))
    extra: list[tuple[str, bytes, list[str]]] = [
        ("not UTF-8", json.dumps(event_to_json(good[0])).encode().replace(b'"source": "', b'"source": "\xff\xfe', 1),
         ["not UTF-8"]),
        ("not JSON", b'{"event_type": "CHECKOUT", "payload": {', ["not JSON"]),
    ]
    for i, event in enumerate(good[1:], start=1):
        lines.append(json.dumps(event_to_json(event)).encode())
        if i <= len(bad):
            _, broken, field, words = bad[i - 1]
            lines.append(json.dumps(event_to_json(broken)).encode())
            expected_errors[len(lines)] = [field, words]
        elif i - len(bad) <= len(extra):
            _, raw, reasons = extra[i - len(bad) - 1]
            lines.append(raw)
            expected_errors[len(lines)] = reasons
    lines.append(b"")  # a trailing blank line is not an error
    path = tmp_path / "touchpoints.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = run_cli("produce", str(path), env={
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TOUCHPOINT_TOPIC_PREFIX": settings.topic_prefix,
    })

    assert result.returncode == 1, result.stderr
    reported = [line for line in result.stderr.splitlines() if line.startswith("invalid line ")]
    assert len(reported) == len(expected_errors), result.stderr
    for number, needles in expected_errors.items():
        line = next((r for r in reported if r.startswith(f"invalid line {number}: ")), None)
        assert line is not None, f"line {number} not reported:\n{result.stderr}"
        assert all(n in line for n in needles), line
        assert len(line) < 1000, "the 1 MB value must not be echoed"
    assert f"{len(good) - 1} sent" in result.stderr
    assert f"{len(expected_errors)} invalid line(s)" in result.stderr

    records = consume_all(settings.events_topic, len(good) - 1)
    assert _ids(records, settings) == sorted(e["event_id"] for e in good[1:])


def test_cli_reads_standard_input_and_exits_0_when_all_lines_are_good(
    pipeline_topics: Settings, make_events: MakeEvents, consume_all: Consume
) -> None:
    settings = pipeline_topics
    events = make_events(30, seed=8)
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TOUCHPOINT_TOPIC_PREFIX": settings.topic_prefix,
           "TOUCHPOINT_CONFIG": os.devnull, "PATH": "/usr/bin:/bin", "COLUMNS": "250"}
    result = subprocess.run([str(TOUCHPOINT), "produce", "-"], input="\n".join(json.dumps(event_to_json(e)) for e in events),
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "30 sent" in result.stderr and "0 invalid" in result.stderr
    assert _ids(consume_all(settings.events_topic, 30), settings) == sorted(e["event_id"] for e in events)


def test_cli_refuses_a_missing_topic_with_what_to_do(pipeline_topics: Settings, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text("{}\n")
    result = run_cli("produce", str(path), "--topic", f"{pipeline_topics.topic_prefix}.nope",
                     env={"KAFKA_BOOTSTRAP_SERVERS": pipeline_topics.bootstrap_servers})
    assert result.returncode == 1
    assert "touchpoint topics create" in result.stderr


def test_sdk_raises_naming_the_field_and_sends_every_good_event(
    pipeline_topics: Settings, make_events: MakeEvents, consume_all: Consume
) -> None:
    settings = pipeline_topics
    good = make_events(20, seed=9)
    bad = bad_events(make_events(14, seed=10))
    with TouchpointProducer(settings) as producer:
        for i, event in enumerate(good):
            producer.send(event)
            if i < len(bad):
                what, broken, field, words = bad[i]
                with pytest.raises(ValidationError) as caught:
                    producer.send(broken)
                assert caught.value.field == field, what
                assert words in str(caught.value), what
                assert len(str(caught.value)) < 1000, what
    assert _ids(consume_all(settings.events_topic, len(good)), settings) == sorted(e["event_id"] for e in good)
