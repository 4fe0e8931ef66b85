"""Evolution guard: Avro resolution rules, the fixtures, the published-versions lock and the CLI."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers import run_cli
from touchpoint.cli.schemas_cmd import app
from touchpoint.errors import ConfigError
from touchpoint.schemas.compat import check_backward, check_lock, compatible_pair, read_lock, write_lock
from touchpoint.schemas.registry import LocalRegistry, get_registry

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"
runner = CliRunner()


def _rec(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields)}


# --- resolution rules, one by one -----------------------------------------------------------------------

@pytest.mark.parametrize(("writer", "reader"), [
    ("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
    ("float", "double"), ("string", "bytes"), ("bytes", "string"), ("string", ["null", "string"]),
    (["null", "int"], ["null", "long"]),
])
def test_promotions_are_compatible(writer: Any, reader: Any) -> None:
    assert compatible_pair(_rec({"name": "x", "type": reader}), _rec({"name": "x", "type": writer})) == []


@pytest.mark.parametrize(("writer", "reader", "message"), [
    ("long", "int", "type changed from long to int"),
    ("double", "float", "type changed from double to float"),
    ("int", "string", "type changed from int to string"),
    (["null", "string"], "string", "writer union branch null cannot be read as string"),
    (["null", "string", "int"], ["null", "string"], "writer union branch int has no matching branch"),
    ({"type": "long", "logicalType": "timestamp-millis"}, {"type": "long", "logicalType": "timestamp-micros"},
     "logicalType changed from timestamp-millis to timestamp-micros"),
])
def test_incompatible_type_changes(writer: Any, reader: Any, message: str) -> None:
    problems = compatible_pair(_rec({"name": "x", "type": reader}), _rec({"name": "x", "type": writer}))
    assert len(problems) == 1 and problems[0].startswith("x: ") and message in problems[0], problems


def test_new_field_needs_a_default_and_removed_fields_are_fine() -> None:
    writer = _rec({"name": "a", "type": "int"}, {"name": "gone", "type": "string"})
    ok = _rec({"name": "a", "type": "int"}, {"name": "b", "type": ["null", "string"], "default": None})
    bad = _rec({"name": "a", "type": "int"}, {"name": "b", "type": "string"})
    assert compatible_pair(ok, writer) == []
    assert compatible_pair(bad, writer) == ["b: field added without a default: data written with the older "
                                            "version has no value for it"]


def test_enum_symbols_and_enum_default() -> None:
    def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
        return _rec({"name": "e", "type": {"type": "enum", "name": "E", "symbols": list(symbols), **extra}})
    assert compatible_pair(enum("a", "b", "c"), enum("a", "b")) == []
    assert compatible_pair(enum("a", "other", default="other"), enum("a", "b")) == []
    assert compatible_pair(enum("a"), enum("a", "b")) == [
        "e: enum E lost symbol(s) b that older data may hold, and has no default"]


def test_names_and_aliases() -> None:
    writer = _rec({"name": "amount", "type": "long"}, name="Old")
    renamed = _rec({"name": "amount", "type": "long"}, name="New")
    assert compatible_pair(renamed, writer) == ["(root): record name changed from Old to New (add the old name to the "
                                                "reader's aliases)"]
    assert compatible_pair({**renamed, "aliases": ["Old"]}, writer) == []
    field_renamed = _rec({"name": "total", "type": "long", "aliases": ["amount"]}, name="Old")
    assert compatible_pair(field_renamed, writer) == []


def test_nested_arrays_maps_and_records_report_the_path() -> None:
    def nested(inner_type: str, *extra: dict[str, Any]) -> dict[str, Any]:
        step = {"type": "record", "name": "Step", "fields": [{"name": "n", "type": inner_type}, *extra]}
        return _rec({"name": "path", "type": {"type": "array", "items": step}},
                    {"name": "counts", "type": {"type": "map", "values": inner_type}})
    assert compatible_pair(nested("long"), nested("int")) == []
    assert compatible_pair(nested("string"), nested("int")) == [
        "path[].n: type changed from int to string (not a promotion Avro can resolve)",
        "counts{}: type changed from int to string (not a promotion Avro can resolve)"]
    assert compatible_pair(nested("int", {"name": "z", "type": "int"}), nested("int")) == [
        "path[].z: field added without a default: data written with the older version has no value for it"]


# --- the fixtures: a realistic v2 of the touchpoint schema ---------------------------------------------

def test_fixture_v1_is_the_real_v1() -> None:
    real = get_registry().versions("touchpoint")[0]
    for case in ("compatible", "incompatible"):
        assert LocalRegistry.load(FIXTURES / case).versions("touchpoint")[0].fingerprint == real.fingerprint


def test_compatible_v2_is_accepted() -> None:
    assert check_backward(LocalRegistry.load(FIXTURES / "compatible")) == []


def test_incompatible_v2_is_rejected_with_each_violation() -> None:
    problems = check_backward(LocalRegistry.load(FIXTURES / "incompatible"))
    assert sorted((p.schema, p.reader_version, p.writer_version, p.path) for p in problems) == [
        ("touchpoint", 2, 1, "payload<Checkout>.status"),
        ("touchpoint", 2, 1, "payload<Checkout>.tax_minor"),
        ("touchpoint", 2, 1, "payload<SurveyResponse>.score"),
    ]


def test_the_shipped_schemas_pass() -> None:
    assert check_backward(get_registry()) == []
    problems, _ = check_lock(get_registry(), read_lock(ROOT / "schemas" / "avro" / "published.lock"))
    assert problems == []


def test_version_gaps_are_reported(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "compatible", tmp_path / "s")
    (tmp_path / "s" / "touchpoint" / "v2.avsc").rename(tmp_path / "s" / "touchpoint" / "v3.avsc")
    problems = check_backward(LocalRegistry.load(tmp_path / "s"))
    assert [p.message for p in problems] == ["versions must be v1..vN without gaps, found [1, 3]"]


# --- the lock -------------------------------------------------------------------------------------------

@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A copy of the compatible fixture with v1 published."""
    root = tmp_path / "schemas"
    shutil.copytree(FIXTURES / "compatible", root)
    (root / "touchpoint" / "v2.avsc").rename(tmp_path / "v2.avsc")
    assert [v.version for v in write_lock(LocalRegistry.load(root), root / "published.lock")] == [1]
    (tmp_path / "v2.avsc").rename(root / "touchpoint" / "v2.avsc")
    return root


def test_editing_a_published_version_fails_the_lock(published: Path) -> None:
    v1 = published / "touchpoint" / "v1.avsc"
    raw = json.loads(v1.read_text())
    doc_only = copy.deepcopy(raw)
    doc_only["doc"] = "a better description"
    v1.write_text(json.dumps(doc_only))
    problems, unpublished = check_lock(LocalRegistry.load(published), read_lock(published / "published.lock"))
    assert problems == [] and [(v.name, v.version) for v in unpublished] == [("touchpoint", 2)]
    raw["fields"][6]["type"] = ["null", "string"]  # source made optional in place
    v1.write_text(json.dumps(raw))
    problems, _ = check_lock(LocalRegistry.load(published), read_lock(published / "published.lock"))
    assert len(problems) == 1 and "touchpoint v1: published version was changed on the wire" in str(problems[0])
    with pytest.raises(ConfigError, match="cannot publish"):
        write_lock(LocalRegistry.load(published), published / "published.lock")


def test_deleting_a_published_version_fails_the_lock(published: Path) -> None:
    (published / "touchpoint" / "v1.avsc").unlink()
    problems, _ = check_lock(LocalRegistry.load(published), read_lock(published / "published.lock"))
    assert [str(p) for p in problems] == [
        "touchpoint v1: published version was deleted; published versions must be kept (data written with it "
        "may still be in Kafka)"]


# --- the CLI ---------------------------------------------------------------------------------------------

def test_cli_check_accepts_compatible_and_publish_records_it(published: Path) -> None:
    result = runner.invoke(app, ["check", "--dir", str(published)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "not yet published: touchpoint v2" in result.output and "schemas check passed" in result.output
    result = runner.invoke(app, ["publish", "--dir", str(published)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert set(read_lock(published / "published.lock")) == {("touchpoint", 1), ("touchpoint", 2)}
    result = runner.invoke(app, ["list", "--dir", str(published)], env={"COLUMNS": "200"})
    v2 = LocalRegistry.load(published).latest("touchpoint")
    assert result.exit_code == 0 and v2.fingerprint_hex in result.output


def test_cli_check_rejects_incompatible(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--dir", str(FIXTURES / "incompatible"),
                                 "--lock", str(tmp_path / "none.lock")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    for path in ("payload<Checkout>.status", "payload<Checkout>.tax_minor", "payload<SurveyResponse>.score"):
        assert path in result.output
    assert "schemas check failed: 3 incompatible change(s)" in result.output


def test_cli_check_rejects_an_edited_published_version(published: Path) -> None:
    v1 = published / "touchpoint" / "v1.avsc"
    v1.write_text(v1.read_text().replace('"cost_minor"', '"cost_cents"'))
    result = runner.invoke(app, ["check", "--dir", str(published)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "touchpoint v1: published version was changed on the wire" in result.output


def test_installed_command_exit_codes() -> None:
    assert run_cli("schemas", "check").returncode == 0
    bad = run_cli("schemas", "check", "--dir", str(FIXTURES / "incompatible"))
    assert bad.returncode == 1 and "payload<Checkout>.tax_minor" in bad.stdout


def test_event_type_without_payload_record_is_reported(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "compatible", tmp_path / "s")
    v2 = tmp_path / "s" / "touchpoint" / "v2.avsc"
    raw = json.loads(v2.read_text())
    raw["fields"][1]["type"]["symbols"].append("APP_INSTALL")
    v2.write_text(json.dumps(raw))
    problems = check_backward(LocalRegistry.load(tmp_path / "s"))
    assert [(p.path, p.message) for p in problems] == [
        ("event_type", "symbol APP_INSTALL has no payload record AppInstall")]
