"""The wire format: single-object and Confluent framing, schema evolution, undecodable input."""

from __future__ import annotations

import io
import json
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest

from touchpoint.errors import InvalidEventError, ValidationError
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import (
    EVENT_TYPES,
    example_event,
    example_identity_merge,
    example_journey_snapshot,
    example_metric_window,
)
from touchpoint.schemas.registry import LocalRegistry, get_registry

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_single_object_round_trip_of_every_event_type(codec: AvroCodec, event_type: str) -> None:
    event = example_event(event_type, i=7)
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == get_registry().latest("touchpoint").fingerprint_bytes
    decoded = codec.decode(data)
    assert decoded == event
    # In-memory form: int millis, str uuid, str enums, plain dict payload.
    assert type(decoded["occurred_at"]) is int and type(decoded["event_id"]) is str
    assert type(decoded["event_type"]) is str and type(decoded["payload"]) is dict


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_confluent_round_trip_through_a_mock_registry(event_type: str) -> None:
    url = f"mock://{uuid.uuid4().hex}"
    producer, consumer = AvroCodec(url), AvroCodec(url)
    event = example_event(event_type, i=3)
    data = producer.encode(event)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") >= 1
    assert consumer.decode(data) == event  # the consumer fetches the writer schema by id
    assert producer.decode(data) == event


def test_decoding_accepts_both_framings_regardless_of_config() -> None:
    url = f"mock://{uuid.uuid4().hex}"
    confluent, plain = AvroCodec(url), AvroCodec()
    event = example_event("CHECKOUT")
    assert confluent.decode(plain.encode(event)) == event
    # Confluent bytes without a configured registry: the schema id cannot be resolved.
    with pytest.raises(InvalidEventError) as err:
        plain.decode(confluent.encode(event))
    assert err.value.kind == "unknown_schema" and "no schema registry is configured" in err.value.reason


def test_unknown_confluent_schema_id() -> None:
    codec = AvroCodec(f"mock://{uuid.uuid4().hex}")
    with pytest.raises(InvalidEventError) as err:
        codec.decode(b"\x00\x00\x00\x30\x39" + b"\x02")
    assert err.value.kind == "unknown_schema" and "schema id 12345 not found" in err.value.reason


def test_the_registry_schema_is_registered_once_under_the_record_name() -> None:
    url = f"mock://{uuid.uuid4().hex}"
    codec = AvroCodec(url)
    first = codec.encode(example_event("AD_CLICK"))
    second = AvroCodec(url).encode(example_event("PAGE_VIEW"))
    assert first[:5] == second[:5]
    client = codec._client()
    assert "io.touchpoint.Touchpoint" in client.get_subjects()


@pytest.mark.parametrize("framing", ["single-object", "confluent"])
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_plain_fastavro_reads_our_bytes_with_the_avsc_alone(codec: AvroCodec, event_type: str, framing: str) -> None:
    event = example_event(event_type)
    if framing == "confluent":
        body = AvroCodec(f"mock://{uuid.uuid4().hex}").encode(event)[5:]
    else:
        body = codec.encode(event)[10:]
    schema = fastavro.parse_schema(json.loads((ROOT / "schemas/avro/touchpoint/v1.avsc").read_text()))
    record = fastavro.schemaless_reader(io.BytesIO(body), schema)
    # fastavro applies the logical types: compare through them.
    assert record["event_id"] == uuid.UUID(event["event_id"])
    assert record["occurred_at"] == datetime.fromtimestamp(event["occurred_at"] / 1000, timezone.utc)
    assert record["payload"].keys() == event["payload"].keys()
    assert {k: v for k, v in record.items() if k not in ("event_id", "occurred_at", "payload")} == {
        k: v for k, v in event.items() if k not in ("event_id", "occurred_at", "payload")}


@pytest.mark.parametrize(("name", "make"), [("journey_snapshot", example_journey_snapshot),
                                             ("metric_window", example_metric_window),
                                             ("identity_merge", example_identity_merge)])
def test_other_schemas_round_trip(codec: AvroCodec, name: str, make) -> None:  # type: ignore[no-untyped-def]
    record = make()
    data = codec.encode(record, name)
    assert data[2:10] == get_registry().latest(name).fingerprint_bytes
    assert codec.decode(data, name) == record
    with pytest.raises(InvalidEventError) as err:
        codec.decode(data)  # a journey snapshot is not a touchpoint
    assert err.value.kind == "unknown_schema" and "not touchpoint" in err.value.reason


def test_old_version_data_resolves_to_the_new_reader_schema(codec: AvroCodec) -> None:
    """v1 bytes (the current schemas) read by a codec whose newest touchpoint is the compatible v2 fixture."""
    v2 = AvroCodec(schemas=LocalRegistry.load(FIXTURES / "compatible"))
    old = example_event("CHECKOUT")
    decoded = v2.decode(codec.encode(old))
    assert decoded["consent"] is None                       # new envelope field: its default
    assert decoded["payload"]["discount_minor"] == 0        # new payload field: its default
    assert decoded["payload"]["item_count"] == 2            # int promoted to long
    assert {k: v for k, v in decoded.items() if k not in ("consent", "payload")} == {
        k: v for k, v in old.items() if k != "payload"}
    # New data with a new enum symbol round-trips on v2, and an old reader does not know that writer.
    new = {**decoded, "payload": {**decoded["payload"], "status": "refunded"}}
    assert v2.decode(v2.encode(new)) == new
    with pytest.raises(InvalidEventError) as err:
        codec.decode(v2.encode(new))
    assert err.value.kind == "unknown_schema" and "is schemas/ up to date?" in err.value.reason


def test_a_newer_writer_schema_from_the_registry_is_resolved_or_refused() -> None:
    """A producer already on v2 (the compatible fixture), a consumer still on v1, one registry."""
    url = f"mock://{uuid.uuid4().hex}"
    new_producer = AvroCodec(url, schemas=LocalRegistry.load(FIXTURES / "compatible"))
    old_consumer = AvroCodec(url)
    page_view = new_producer.decode(AvroCodec().encode(example_event("PAGE_VIEW")))
    assert page_view["consent"] is None
    # v2 only added fields here: v1 reads it and drops them.
    assert old_consumer.decode(new_producer.encode(page_view)) == example_event("PAGE_VIEW")
    # Checkout.item_count became long in v2: a v1 reader cannot narrow it back to int.
    checkout = new_producer.decode(AvroCodec().encode(example_event("CHECKOUT")))
    with pytest.raises(InvalidEventError) as err:
        old_consumer.decode(new_producer.encode(checkout))
    assert err.value.kind == "unknown_schema"
    assert "cannot be resolved to the local touchpoint v1" in err.value.reason and "long is not int" in err.value.reason


def _kind(codec: AvroCodec, data: bytes | None) -> tuple[str, str]:
    with pytest.raises(InvalidEventError) as err:
        codec.decode(data)
    return err.value.kind, err.value.reason


def test_undecodable_inputs_say_why(codec: AvroCodec) -> None:
    good = codec.encode(example_event("SURVEY_RESPONSE"))
    assert _kind(codec, b"") == ("undecodable", "not single-object or Confluent framed (first bytes none: empty)")
    assert _kind(codec, None) == ("undecodable", "no value (a null record / tombstone)")  # type: ignore[arg-type]
    assert _kind(codec, b'{"event_type": 1}')[1].startswith("not single-object or Confluent framed (first bytes 7b 22")
    assert _kind(codec, good[:6]) == ("undecodable", "truncated single-object header (6 bytes, need 10)")
    kind, reason = _kind(codec, b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + good[10:])
    assert kind == "unknown_schema"
    assert reason.startswith("unknown writer fingerprint 0xefcdab8967452301; is schemas/ up to date?")
    kind, reason = _kind(codec, good + b"\x00")
    assert (kind, reason) == ("undecodable", "1 trailing bytes after the Avro body (touchpoint v1)")


def test_every_truncation_is_undecodable(codec: AvroCodec) -> None:
    good = codec.encode(example_event("DELIVERY_NOTICE"))
    for n in range(10, len(good)):
        kind, reason = _kind(codec, good[:n])
        assert kind == "undecodable", (n, reason)
        assert "truncated" in reason or "corrupt" in reason, (n, reason)


def test_random_bytes_never_decode_silently_or_crash(codec: AvroCodec) -> None:
    rng = random.Random(42)
    header = get_registry().latest("touchpoint").header
    for i in range(3000):
        body = rng.randbytes(rng.randint(0, 80))
        data = header + body if i % 2 else body
        with pytest.raises(InvalidEventError) as err:
            codec.decode(data)
        assert err.value.kind in ("undecodable", "unknown_schema")


def test_encode_errors_name_the_field(codec: AvroCodec) -> None:
    event = example_event("CHECKOUT")
    event["payload"]["amount_minor"] = "12.99"
    with pytest.raises(ValidationError) as err:
        codec.encode(event)
    assert err.value.field == "payload.amount_minor"
    with pytest.raises(ValidationError) as err:
        codec.encode({**example_event("CHECKOUT"), "event_type": "REFUND"})
    assert err.value.field == "event_type"
