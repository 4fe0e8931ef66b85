"""The local registry: every version loaded, fingerprints per the Avro specification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from touchpoint.errors import ConfigError
from touchpoint.schemas.registry import (
    LocalRegistry,
    get_registry,
    payload_record_name,
    rabin_fingerprint,
)

AVRO_DIR = Path(__file__).resolve().parents[3] / "schemas" / "avro"


def test_rabin_matches_the_specification_test_vectors() -> None:
    # Values from the Avro project's share/test/data/schema-tests.txt (Java parsingFingerprint64).
    assert rabin_fingerprint(b'"null"') == 7195948357588979594
    assert rabin_fingerprint(b'"int"') == 8247732601305521295


def test_every_schema_folder_and_version_is_loaded() -> None:
    reg = get_registry()
    assert reg.names() == ["identity_merge", "journey_snapshot", "metric_window", "touchpoint"]
    on_disk = sorted((p.parent.name, int(p.stem[1:])) for p in AVRO_DIR.glob("*/v*.avsc"))
    assert sorted((v.name, v.version) for v in reg) == on_disk


def test_fingerprint_is_crc64_avro_of_the_canonical_form_and_indexed() -> None:
    reg = get_registry()
    for v in reg:
        assert v.fingerprint == rabin_fingerprint(v.canonical.encode())
        assert v.header == b"\xc3\x01" + v.fingerprint.to_bytes(8, "little")
        assert reg.by_fingerprint(v.fingerprint_bytes) is v
        assert reg.by_fingerprint(v.fingerprint) is v
        # Canonical form strips docs and logical types and uses full names.
        assert '"doc"' not in v.canonical and "logicalType" not in v.canonical
        assert f'"name":"{v.full_name}"' in v.canonical
    assert reg.by_fingerprint(b"\x00" * 8) is None


def test_latest_is_the_highest_version(tmp_path: Path) -> None:
    (tmp_path / "thing").mkdir()
    v1 = {"type": "record", "name": "Thing", "namespace": "t", "fields": [{"name": "a", "type": "int"}]}
    v2 = {**v1, "fields": v1["fields"] + [{"name": "b", "type": "string", "default": ""}]}
    for n, s in ((1, v1), (2, v2), (10, v2 | {"doc": "same wire as v2"})):
        (tmp_path / "thing" / f"v{n}.avsc").write_text(json.dumps(s))
    reg = LocalRegistry.load(tmp_path)
    assert [v.version for v in reg.versions("thing")] == [1, 2, 10]
    assert reg.latest("thing").version == 10
    with pytest.raises(ConfigError, match="unknown schema 'nope'"):
        reg.latest("nope")


def test_invalid_schema_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "v1.avsc").write_text('{"type": "record", "name": "B", "fields": [{"name": "x", "type": "nope"}]}')
    with pytest.raises(ConfigError, match="bad/v1.avsc"):
        LocalRegistry.load(tmp_path)


def test_every_event_type_has_its_payload_record() -> None:
    raw = get_registry().latest("touchpoint").raw
    fields = {f["name"]: f for f in raw["fields"]}
    branches = {b["name"] for b in fields["payload"]["type"]}
    symbols = fields["event_type"]["type"]["symbols"]
    assert len(symbols) == 7
    assert {payload_record_name(s) for s in symbols} == branches
    assert fields["payload"] is raw["fields"][-1]  # the codec's envelope + branch encoding relies on it
