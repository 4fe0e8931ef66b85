"""schemas/README.md stays true: its JSON examples are accepted, and it documents every field of every schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastavro.schema import expand_schema

from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.json_shape import event_from_json
from touchpoint.schemas.registry import get_registry
from touchpoint.schemas.validation import validate_event

README = (Path(__file__).resolve().parents[3] / "schemas" / "README.md").read_text(encoding="utf-8")
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", README, re.S)]


def test_one_example_per_event_type() -> None:
    symbols = next(f for f in get_registry().latest("touchpoint").raw["fields"] if f["name"] == "event_type")
    assert sorted(e["event_type"] for e in EXAMPLES) == sorted(symbols["type"]["symbols"])


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["event_type"] for e in EXAMPLES])
def test_examples_are_accepted_and_encodable(example: dict) -> None:  # type: ignore[type-arg]
    event = event_from_json(example)
    validate_event(event)
    codec = AvroCodec()
    assert codec.decode(codec.encode(event)) == event


def _fields(schema: object, out: set[str]) -> set[str]:
    if isinstance(schema, list):
        for s in schema:
            _fields(s, out)
    elif isinstance(schema, dict):
        for f in schema.get("fields", []):
            out.add(f["name"])
            _fields(f["type"], out)
        for key in ("type", "items", "values"):
            if isinstance(schema.get(key), (dict, list)):
                _fields(schema[key], out)
    return out


@pytest.mark.parametrize("name", get_registry().names())
def test_every_field_is_documented_in_its_section(name: str) -> None:
    latest = get_registry().latest(name)
    record = latest.raw["name"]
    section = README.split(f"`{name}`, `{latest.full_name}`")[1].split("\n## ")[0]
    missing = sorted(f for f in _fields(expand_schema(latest.raw), set()) if f"| `{f}` |" not in section)
    assert missing == [], f"{record}: fields without a row in schemas/README.md: {missing}"
