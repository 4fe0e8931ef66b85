"""Dead-letter records read back for `touchpoint dead-letters`: headers parsed, originals decoded, time options."""

from __future__ import annotations

import pytest
import typer

from touchpoint.cli.dead_letters import parse_time
from touchpoint.config import load_settings
from touchpoint.dead_letter import DeadLetter
from touchpoint.producers.dead_letters import (NOT_REPLAYABLE, STILL_FAILING, WOULD_REPLAY, check_replayable,
                                               parse_record, summarise)
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import example_event

from tests.helpers import run_cli

SETTINGS = load_settings(kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="p", max_string_bytes=64)
CODEC = AvroCodec()


def letter(value: bytes, kind: str, topic: str = "p.events", stage: str = "worker", index: int | None = None):
    headers = [("origin", b"x")] + DeadLetter(b"k", value, "why", kind, stage, topic, 3, 41, index).headers()
    return parse_record(SETTINGS, CODEC, 0, 7, 1_000, b"k", value, headers)


def test_headers_become_fields_and_the_original_is_decoded():
    event = example_event("CHECKOUT")
    got = letter(CODEC.encode(event), "invalid")
    assert (got.stage, got.kind, got.reason, got.source_topic, got.source_partition, got.source_offset) == (
        "worker", "invalid", "why", "p.events", 3, 41)
    assert got.original_headers == (("origin", b"x"),)
    assert got.decoded == event and got.event_type == "CHECKOUT" and got.identity == "worker|p.events|3|41|"
    garbage = letter(b"\x01\x02", "undecodable")
    assert garbage.decoded is None and "framed" in garbage.decode_error and garbage.event_type == "-"
    item = letter(b'D{"event_type": "AD_CLICK"}', "invalid", topic="w-journey-repartition", index=2)
    assert item.event_type == "AD_CLICK" and item.identity.endswith("|2")


def test_a_record_without_dlq_headers_reads_as_unknown_instead_of_failing():
    got = parse_record(SETTINGS, CODEC, 1, 2, 5_000, None, b"x", None)
    assert (got.stage, got.kind, got.source_offset, got.at_ms) == ("?", "?", -1, 5_000)


def test_summary_counts_by_stage_kind_and_event_type():
    view = CODEC.encode(example_event("PAGE_VIEW"))
    counts = summarise([letter(view, "invalid"), letter(view, "invalid"), letter(b"zz", "undecodable"),
                        letter(b"zz", "undecodable", stage="sink", topic="p.journeys")])
    assert counts == {("worker", "invalid", "PAGE_VIEW"): 2, ("worker", "undecodable", "-"): 1,
                      ("sink", "undecodable", "-"): 1}


def test_replay_check_uses_the_current_limit_and_refuses_derived_records():
    long_title = example_event("PAGE_VIEW")
    long_title["payload"]["title"] = "t" * 100
    record = letter(CODEC.encode(long_title), "invalid")
    assert check_replayable(SETTINGS, CODEC, record)[0] == STILL_FAILING
    raised = SETTINGS.model_copy(update={"max_string_bytes": 4096})
    assert check_replayable(raised, CODEC, record) == (WOULD_REPLAY, "")
    assert check_replayable(raised, CODEC, letter(b"zz", "undecodable"))[0] == STILL_FAILING
    assert check_replayable(raised, CODEC, letter(b"zz", "rejected_by_store", "p.journeys", "sink"))[0] == NOT_REPLAYABLE


def test_time_options():
    assert parse_time("2h", "--since", now=10_000.0) == (10_000 - 7200) * 1000
    assert parse_time("30m", "--since", now=10_000.0) == (10_000 - 1800) * 1000
    assert parse_time("2026-12-01T08:00:00Z", "--since") == 1_796_112_000_000
    assert parse_time("2026-12-01T08:00:00", "--since") == 1_796_112_000_000  # no zone: UTC
    with pytest.raises(typer.BadParameter, match="duration ago"):
        parse_time("yesterday", "--since")


def test_a_bad_time_is_a_usage_error_without_traceback():
    done = run_cli("dead-letters", "list", "--since", "yesterday")
    assert done.returncode == 2, done.stderr
    assert "--since" in done.stderr and "Traceback" not in done.stderr
