"""Schema evolution guard: backward compatibility and the published-versions lock.

Backward compatibility (what ``touchpoint schemas check`` enforces): the newest version of every schema must be
able to read data written with every older version, by the Avro specification's schema-resolution rules:

- records match by (unqualified) name or a reader alias; a reader field missing from the writer needs a default;
  writer fields the reader dropped are skipped; reader field aliases match renamed writer fields;
- primitives match when equal or promoted: int → long, float, double; long → float, double; float → double;
  string ↔ bytes;
- enums match by name; every writer symbol must be a reader symbol unless the reader enum has a default;
- fixed: same name and size; arrays and maps: their items / values must resolve;
- a writer union: every branch must resolve; a reader union: the writer's type must resolve to one branch;
- a changed ``logicalType`` on the same bytes (millis → micros) reads fine but means something else: reported too.

The lock (``published.lock`` next to the schema folders) records the canonical-form fingerprint of every
published version. A published version must never change on the wire (doc edits are fine: they do not change
the canonical form); ``touchpoint schemas publish`` records new versions once the check passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from touchpoint.errors import ConfigError
from touchpoint.schemas.registry import LocalRegistry, SchemaVersion, payload_record_name

LOCK_FILE = "published.lock"
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(frozen=True)
class Incompatibility:
    """Data written with ``writer_version`` cannot be read (correctly) with ``reader_version``."""

    schema: str
    reader_version: int
    writer_version: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.schema} v{self.reader_version} cannot read v{self.writer_version} at {self.path}: {self.message}"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Resolver:
    """Walks a (reader, writer) pair of parsed schemas and collects every resolution failure with its path."""

    def __init__(self, reader: dict[str, Any], writer: dict[str, Any]) -> None:
        self.rnames: dict[str, Any] = reader.get("__named_schemas", {})
        self.wnames: dict[str, Any] = writer.get("__named_schemas", {})
        self.problems: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()

    def _deref(self, schema: Any, names: dict[str, Any]) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return names.get(schema, schema)
        return schema

    @staticmethod
    def kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        kind = schema["type"]
        return kind if isinstance(kind, str) else _Resolver.kind(kind)

    @staticmethod
    def describe(schema: Any) -> str:
        if isinstance(schema, dict) and "name" in schema:
            return f"{schema['type']} {_short(schema['name'])}"
        if isinstance(schema, list):
            return "union [" + ", ".join(_Resolver.describe(s) for s in schema) + "]"
        return _Resolver.kind(schema)

    @staticmethod
    def names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
        wname = _short(writer["name"])
        return wname == _short(reader["name"]) or wname in {_short(a) for a in reader.get("aliases", [])}

    def matches(self, reader: Any, writer: Any) -> bool:
        """Shallow match (used to pick a reader union branch), as in the specification."""
        reader = self._deref(reader, self.rnames)
        writer = self._deref(writer, self.wnames)
        rk, wk = self.kind(reader), self.kind(writer)
        if rk == "union" or wk == "union":
            return False
        if rk in ("record", "error", "enum", "fixed"):
            return wk == rk and self.names_match(reader, writer)
        if rk in ("array", "map"):
            return rk == wk
        return rk == wk or rk in PROMOTIONS.get(wk, ())

    def _branch_path(self, path: str, branch: Any) -> str:
        """``payload<Checkout>``: which union branch a path goes through (named branches only)."""
        branch = self._deref(branch, self.wnames)
        if isinstance(branch, dict) and "name" in branch:
            return f"{path}<{_short(branch['name'])}>"
        return path

    def resolve(self, reader: Any, writer: Any, path: str) -> None:
        reader = self._deref(reader, self.rnames)
        writer = self._deref(writer, self.wnames)
        rk, wk = self.kind(reader), self.kind(writer)
        if wk == "union":
            for branch in writer:
                if rk == "union":
                    target = next((r for r in reader if self.matches(r, branch)), None)
                    if target is None:
                        self.problems.append((path, f"writer union branch {self.describe(branch)} has no matching "
                                                    f"branch in the reader's {self.describe(reader)}"))
                    else:
                        self.resolve(target, branch, self._branch_path(path, branch))
                elif not self.matches(reader, branch):
                    self.problems.append((path, f"writer union branch {self.describe(branch)} cannot be read as "
                                                f"{self.describe(reader)} (was an optional field made required?)"))
                else:
                    self.resolve(reader, branch, self._branch_path(path, branch))
            return
        if rk == "union":
            target = next((r for r in reader if self.matches(r, writer)), None)
            if target is None:
                self.problems.append((path, f"writer type {self.describe(writer)} matches no branch of the "
                                            f"reader's {self.describe(reader)}"))
            else:
                self.resolve(target, writer, self._branch_path(path, writer))
            return
        if not self.matches(reader, writer):
            if rk == wk and rk in ("record", "error", "enum", "fixed"):
                self.problems.append((path, f"{rk} name changed from {_short(writer['name'])} to "
                                            f"{_short(reader['name'])} (add the old name to the reader's aliases)"))
            else:
                self.problems.append((path, f"type changed from {self.describe(writer)} to {self.describe(reader)}"
                                            " (not a promotion Avro can resolve)"))
            return
        rlog = reader.get("logicalType") if isinstance(reader, dict) else None
        wlog = writer.get("logicalType") if isinstance(writer, dict) else None
        if rlog != wlog and rk == wk:
            self.problems.append((path, f"logicalType changed from {wlog or 'none'} to {rlog or 'none'}: "
                                        "the bytes still read, but their meaning changes"))
        if rk in ("record", "error"):
            self._record(reader, writer, path)
        elif rk == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                self.problems.append((path, f"enum {_short(reader['name'])} lost symbol(s) {', '.join(missing)} "
                                            "that older data may hold, and has no default"))
        elif rk == "fixed":
            if reader["size"] != writer["size"]:
                self.problems.append((path, f"fixed size changed from {writer['size']} to {reader['size']}"))
        elif rk == "array":
            self.resolve(reader["items"], writer["items"], f"{path}[]")
        elif rk == "map":
            self.resolve(reader["values"], writer["values"], f"{path}{{}}")

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        key = (reader["name"], writer["name"])
        if key in self._seen:  # recursive types: each pair once
            return
        self._seen.add(key)
        wfields = {f["name"]: f for f in writer["fields"]}
        for f in reader["fields"]:
            where = f"{path}.{f['name']}" if path else f["name"]
            wf = wfields.get(f["name"])
            if wf is None:
                wf = next((wfields[a] for a in f.get("aliases", []) if a in wfields), None)
            if wf is None:
                if "default" not in f:
                    self.problems.append((where, "field added without a default: data written with the older "
                                                 "version has no value for it"))
                continue
            self.resolve(f["type"], wf["type"], where)


def incompatibilities(reader: SchemaVersion, writer: SchemaVersion) -> list[Incompatibility]:
    """Every reason data written with ``writer`` cannot be read with ``reader``."""
    resolver = _Resolver(reader.parsed, writer.parsed)
    resolver.resolve(reader.parsed, writer.parsed, "")
    return [Incompatibility(reader.name, reader.version, writer.version, path or "(root)", msg)
            for path, msg in resolver.problems]


def check_backward(registry: LocalRegistry) -> list[Incompatibility]:
    """For every schema, the newest version against every older one; plus version numbering."""
    problems: list[Incompatibility] = []
    for name in registry.names():
        versions = registry.versions(name)
        numbers = [v.version for v in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(Incompatibility(name, numbers[-1], 0, "(files)",
                                            f"versions must be v1..vN without gaps, found {numbers}"))
        latest = versions[-1]
        for older in versions[:-1]:
            problems.extend(incompatibilities(latest, older))
        problems.extend(_envelope_conventions(latest))
    return problems


def _envelope_conventions(version: SchemaVersion) -> list[Incompatibility]:
    """The touchpoint envelope's own rules, which the codec and validation rely on: ``payload`` is the last
    field, and every ``event_type`` symbol has its payload record (``AD_CLICK`` → ``AdClick``)."""
    fields = version.raw.get("fields", [])
    names = [f["name"] for f in fields]
    if "event_type" not in names or "payload" not in names:
        return []
    out: list[Incompatibility] = []
    if names[-1] != "payload":
        out.append(Incompatibility(version.name, version.version, 0, "payload", "must stay the last field"))
    event_type = fields[names.index("event_type")]["type"]
    payload = fields[names.index("payload")]["type"]
    symbols = event_type.get("symbols", []) if isinstance(event_type, dict) else []
    branches = {_short(b["name"]) for b in payload if isinstance(b, dict) and "name" in b} \
        if isinstance(payload, list) else set()
    for symbol in symbols:
        if payload_record_name(symbol) not in branches:
            out.append(Incompatibility(version.name, version.version, 0, "event_type",
                                       f"symbol {symbol} has no payload record {payload_record_name(symbol)}"))
    return out


def compatible_pair(reader_raw: dict[str, Any], writer_raw: dict[str, Any]) -> list[str]:
    """Messages for a pair of raw schema documents (handy in tests and for ad-hoc checks)."""
    from touchpoint.schemas.registry import parse_version

    r = parse_version("reader", 2, reader_raw, "reader")
    w = parse_version("writer", 1, writer_raw, "writer")
    return [f"{i.path}: {i.message}" for i in incompatibilities(r, w)]


# --- the published-versions lock -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LockProblem:
    schema: str
    version: int
    message: str

    def __str__(self) -> str:
        return f"{self.schema} v{self.version}: {self.message}"


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE


def read_lock(path: Path) -> dict[tuple[str, int], int]:
    """``{(name, version): fingerprint}`` from a lock file (missing file: nothing published yet)."""
    if not path.exists():
        return {}
    entries: dict[tuple[str, int], int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            name, version, fp = parts
            entries[(name, int(version.lstrip("v")))] = int(fp, 16)
        except ValueError:
            raise ConfigError(f"{path}:{n}: expected '<schema> v<N> 0x<fingerprint>', got {line!r}") from None
    return entries


def check_lock(registry: LocalRegistry, lock: dict[tuple[str, int], int]) -> tuple[list[LockProblem], list[SchemaVersion]]:
    """(problems, unpublished versions): a published version edited on the wire or deleted is a problem."""
    problems: list[LockProblem] = []
    present = {(v.name, v.version): v for v in registry}
    for (name, version), fp in sorted(lock.items()):
        v = present.get((name, version))
        if v is None:
            problems.append(LockProblem(name, version, "published version was deleted; published versions must be "
                                                       "kept (data written with it may still be in Kafka)"))
        elif v.fingerprint != fp:
            problems.append(LockProblem(name, version, f"published version was changed on the wire (fingerprint "
                                                       f"0x{fp:016x} → {v.fingerprint_hex}); revert it and add "
                                                       f"v{registry.latest(name).version + 1} instead"))
    unpublished = [v for key, v in sorted(present.items()) if key not in lock]
    return problems, unpublished


def write_lock(registry: LocalRegistry, path: Path) -> list[SchemaVersion]:
    """Record every version in the lock; returns the newly recorded ones. Refuses if a published one changed."""
    lock = read_lock(path)
    problems, unpublished = check_lock(registry, lock)
    if problems:
        raise ConfigError("cannot publish: " + "; ".join(map(str, problems)))
    lines = ["# Published schema versions: <schema> v<N> <CRC-64-AVRO fingerprint of the Parsing Canonical Form>.",
             "# Written by `touchpoint schemas publish`; `touchpoint schemas check` fails if one of these changes."]
    lines += [f"{v.name} v{v.version} {v.fingerprint_hex}" for v in registry]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return unpublished
