"""The generated writers and readers (schemas/compiled.py) against fastavro, the reference.

Records are generated from the newest .avsc of every schema: every event type, optional fields set, null or
left out (then the default is written), unicode, long/int extremes, empty and large maps and arrays, every
enum symbol. Encoding must give fastavro's exact bytes, decoding fastavro's exact dict, and anything the
generated code declines (wrong types, corrupt or truncated bytes) must behave exactly as the fastavro-only
codec does.
"""

from __future__ import annotations

import enum
import io
import random
from collections import defaultdict
from typing import Any

import fastavro
import pytest

import touchpoint.schemas.codec as codec_module
from touchpoint.errors import InvalidEventError, ValidationError
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.compiled import _long, compiled_latest
from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.schemas.registry import expand, get_registry, payload_record_name, strip_logical_types

SCHEMAS = ("touchpoint", "journey_snapshot", "metric_window", "identity_merge")
COUNTS = {"touchpoint": 3500, "journey_snapshot": 800, "metric_window": 500, "identity_merge": 500}

_STRINGS = ["", "a", "é", "日本語テキスト", "🙂🙃", "\x00", "x" * 63, "y" * 64, "ü" * 100, "z" * 300,
            "mixed ascii и кириллица 🚀"]
_LONGS = [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2**31 - 1, -(2**31), 2**31, 2**53 + 1,
          2**63 - 1, -(2**63), 1_795_600_800_000]
_INTS = [0, 1, -1, 63, 64, -64, -65, 300, 2**31 - 1, -(2**31)]


class _Gen:
    """Random records of a schema, with the dict fastavro decodes them to (defaults filled in)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.symbols_seen: dict[str, set[str]] = defaultdict(set)

    def string(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice(_STRINGS)
        # random code points outside the surrogate range (fastavro refuses lone surrogates, as we do)
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0xD7FF),
                                       rng.randint(0xE000, 0x10FFFF)])) for _ in range(rng.randint(0, 40)))

    def value(self, schema: Any) -> Any:
        rng = self.rng
        if isinstance(schema, list):
            non_null = [b for b in schema if b != "null"]
            if "null" in schema and rng.random() < 0.4:
                return None
            return self.value(rng.choice(non_null))
        kind = schema if isinstance(schema, str) else schema["type"]
        if isinstance(kind, (dict, list)):
            return self.value(kind)
        if kind == "string":
            return self.string()
        if kind == "long":
            return rng.choice(_LONGS) if rng.random() < 0.5 else rng.randint(-(2**63), 2**63 - 1) >> rng.randint(0, 62)
        if kind == "int":
            return rng.choice(_INTS) if rng.random() < 0.5 else rng.randint(-(2**31), 2**31 - 1) >> rng.randint(0, 30)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "enum":
            symbol = rng.choice(schema["symbols"])
            self.symbols_seen[schema["name"]].add(symbol)
            return symbol
        if kind == "array":
            n = rng.choice([0, 0, 1, 3, 70]) if rng.random() < 0.9 else rng.randint(0, 200)
            return [self.value(schema["items"]) for _ in range(n)]
        if kind == "map":
            n = rng.choice([0, 0, 1, 3, 70])
            return {self.string() + str(i): self.value(schema["values"]) for i in range(n)}
        if kind == "record":
            return self.record(schema)[0]
        raise AssertionError(f"no generator for {kind}")

    def record(self, schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(record to encode, possibly without defaulted keys; the record as decoded)."""
        given: dict[str, Any] = {}
        full: dict[str, Any] = {}
        for f in schema["fields"]:
            ftype = f["type"]
            if isinstance(ftype, list) and all(isinstance(b, dict) for b in ftype):  # the payload union
                name = payload_record_name(full["event_type"])
                branch = next(b for b in ftype if b["name"].rsplit(".", 1)[-1] == name)
                value = self.record(branch)
            else:
                v = self.value(ftype)
                value = (v, v)
            full[f["name"]] = value[1]
            if "default" in f and self.rng.random() < 0.15:
                full[f["name"]] = f["default"]  # left out: fastavro writes the default
                continue
            given[f["name"]] = value[0]
        return given, full


def _plain(name: str) -> dict[str, Any]:
    return expand(strip_logical_types(get_registry().latest(name).raw))


def _fastavro_body(name: str, record: dict[str, Any]) -> bytes:
    """fastavro's own bytes; the payload branch is named with fastavro's tuple notation (never guessed)."""
    version = get_registry().latest(name)
    if name == "touchpoint":
        branch = f"io.touchpoint.{payload_record_name(record['event_type'])}"
        record = {**record, "payload": (branch, record["payload"])}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, version.plain, record)
    return buf.getvalue()


def _fastavro_read(name: str, body: bytes) -> dict[str, Any]:
    buf = io.BytesIO(body)
    record = fastavro.schemaless_reader(buf, get_registry().latest(name).plain, None)
    assert buf.tell() == len(body)
    return record  # type: ignore[return-value]


def _records(name: str, seed: int) -> tuple[_Gen, list[tuple[dict[str, Any], dict[str, Any]]]]:
    gen = _Gen(seed)
    schema = _plain(name)
    return gen, [gen.record(schema) for _ in range(COUNTS[name])]


@pytest.fixture(scope="module")
def fast() -> AvroCodec:
    return AvroCodec()


@pytest.fixture(scope="module")
def reference() -> AvroCodec:
    return AvroCodec(compiled=False)


@pytest.mark.parametrize("name", SCHEMAS)
def test_encode_is_byte_identical_and_decode_identical_to_fastavro(name: str, fast: AvroCodec,
                                                                   reference: AvroCodec) -> None:
    gen, records = _records(name, seed=hash(name) % 1000)
    compiled = compiled_latest(get_registry())[name]
    assert compiled.encode is not None and compiled.decode is not None  # nothing here falls back by design
    header = compiled.version.header
    for given, full in records:
        body = _fastavro_body(name, given)
        # The generated writer itself (not a fallback) writes fastavro's bytes.
        assert compiled.encode(given, header) == header + body, given
        data = fast.encode(given, name)
        assert data == header + body == reference.encode(given, name)
        decoded, end = compiled.decode(data, 10)
        assert end == len(data)
        assert decoded == _fastavro_read(name, body) == full
        assert fast.decode(data, name) == full
    # Every enum symbol of the schema was written and read at least once.
    for enum_schema in _enums(_plain(name)):
        assert gen.symbols_seen[enum_schema["name"]] == set(enum_schema["symbols"]), enum_schema["name"]
    if name == "touchpoint":
        assert {g["event_type"] for g, _ in records} == set(EVENT_TYPES)


def _enums(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [e for b in schema for e in _enums(b)]
    if not isinstance(schema, dict):
        return []
    if schema.get("type") == "enum":
        return [schema]
    found = []
    for key in ("type", "items", "values"):
        if key in schema:
            found += _enums(schema[key])
    for f in schema.get("fields", []):
        found += _enums(f["type"])
    return found


def test_the_codec_really_uses_the_generated_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """With fastavro unavailable to the codec, newest-version records still encode and decode."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("fastavro path taken")

    codec = AvroCodec()
    monkeypatch.setattr(codec_module, "schemaless_writer", broken)
    monkeypatch.setattr(codec_module, "schemaless_reader", broken)
    for event_type in EVENT_TYPES:
        event = example_event(event_type, i=11)
        assert codec.decode(codec.encode(event)) == event
        assert codec.decode(memoryview(codec.encode(event))) == event


class _Kind(enum.IntEnum):
    THREE = 3


class _Sym(str, enum.Enum):
    WEB = "web"


# Values the generated writer must not write differently from fastavro: it declines them (fastavro writes or
# refuses them) or writes exactly fastavro's bytes.
_ODD_VALUES = [None, True, False, 1.0, 1.5, "5", b"bytes", 2**63, -(2**63) - 1, 2**31, _Kind.THREE, _Sym.WEB,
               "\ud800", {}, {"a": "b"}, {"a": 1}, [], ["x"], ("string", "x"), "web", "NPS", 0, -5]


def _outcome(codec: AvroCodec, record: Any, name: str = "touchpoint") -> Any:
    try:
        return codec.encode(record, name)
    except ValidationError as exc:
        return ("ValidationError", exc.field, exc.rule)
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("name", SCHEMAS)
def test_odd_values_are_written_or_refused_exactly_as_by_fastavro(name: str, fast: AvroCodec,
                                                                  reference: AvroCodec) -> None:
    rng = random.Random(5)
    compiled = compiled_latest(get_registry())[name]
    header = compiled.version.header
    _, records = _records(name, seed=7)
    for given, _ in records[:1500]:
        # one field (of the record, or of a nested record, map or array) replaced by an odd value
        target: Any = given
        while True:
            key = rng.choice(list(target) if isinstance(target, dict) else range(len(target)))
            inner = target[key]
            if isinstance(inner, (dict, list)) and inner and rng.random() < 0.5:
                target = inner
                continue
            target[key] = rng.choice(_ODD_VALUES)
            break
        assert _outcome(fast, given, name) == _outcome(reference, given, name), given
        try:
            mine = compiled.encode(given, header)
        except Exception:  # noqa: BLE001 - declined: the codec used fastavro (checked above)
            continue
        assert mine == header + _fastavro_body(name, given), given


def test_non_dict_records_and_payloads_are_refused_as_before(fast: AvroCodec, reference: AvroCodec) -> None:
    for odd in (None, [], "x", 5, {"event_type": "CHECKOUT"}):
        assert _outcome(fast, odd) == _outcome(reference, odd)
        event = {**example_event("CHECKOUT"), "payload": odd}
        assert _outcome(fast, event) == _outcome(reference, event)
    assert _outcome(fast, {**example_event("CHECKOUT"), "event_type": "REFUND"}) == _outcome(
        reference, {**example_event("CHECKOUT"), "event_type": "REFUND"})


def _decoded(codec: AvroCodec, data: bytes, name: str = "touchpoint") -> Any:
    try:
        return codec.decode(data, name)
    except InvalidEventError as exc:
        return ("InvalidEventError", exc.kind, exc.reason)


@pytest.mark.parametrize("name", SCHEMAS)
def test_truncated_corrupt_and_garbage_bytes_behave_as_before(name: str, fast: AvroCodec,
                                                              reference: AvroCodec) -> None:
    rng = random.Random(17)
    _, records = _records(name, seed=99)
    header = get_registry().latest(name).header
    for given, _ in records[:300]:
        good = reference.encode(given, name)
        cases = [good[:n] for n in rng.sample(range(len(good)), min(12, len(good)))]
        for _ in range(8):
            corrupt = bytearray(good)
            for _ in range(rng.randint(1, 3)):
                corrupt[rng.randrange(10, len(corrupt))] = rng.randrange(256)
            cases.append(bytes(corrupt))
        cases += [good + b"\x00", header + rng.randbytes(rng.randint(0, 60)),
                  good[:10] + b"\xff" * 11 + good[10:]]  # an over-long varint
        for data in cases:
            assert _decoded(fast, data, name) == _decoded(reference, data, name), data


def test_non_canonical_encodings_that_fastavro_reads_are_still_read(fast: AvroCodec, reference: AvroCodec) -> None:
    """Bytes another writer may produce (a blocked map, a padded varint): declined by us, read by fastavro."""
    event = example_event("PAGE_VIEW")
    data = reference.encode(event)
    entries = b"".join(_str(k) + _str(v) for k, v in event["context"].items())
    plain_map = _varint(len(event["context"])) + entries + b"\x00"
    assert data.count(plain_map) == 1
    # the map as one block with its byte size (negative count), as Java writers may write it
    blocked = data.replace(plain_map, _varint(-len(event["context"])) + _varint(len(entries)) + entries + b"\x00")
    # customer_id's union index 1 padded to two bytes
    at = 10 + len(_str(event["event_id"])) + 1 + len(_varint(event["occurred_at"]))
    assert data[at:at + 1] == b"\x02"
    padded = data[:at] + b"\x82\x00" + data[at + 1:]
    for variant in (blocked, padded):
        assert _decoded(fast, variant) == _decoded(reference, variant) == event
    # and a negative string length (event_id's 36 as -36) is refused as before
    negative = data[:10] + _varint(-36) + data[11:]
    assert _decoded(fast, negative) == _decoded(reference, negative)
    assert _decoded(fast, negative)[0] == "InvalidEventError"


_varint = _long  # the Avro zig-zag varint, to craft the bytes below


def _str(s: str) -> bytes:
    b = s.encode()
    return _varint(len(b)) + b
