"""The local schema registry: every version of every Avro contract under ``schemas/avro/<name>/v<N>.avsc``.

Each version is identified on the wire by the CRC-64-AVRO (Rabin) fingerprint of its Parsing Canonical Form
(Avro specification, "Schema Fingerprints"). The newest version of a schema is the *reader* schema: data written
with any older version is resolved to it (schema evolution, see ``compat.py`` for the rules that make that safe).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema as _fastavro_parse
from fastavro.schema import SchemaParseException, expand_schema, fingerprint, to_parsing_canonical_form

from touchpoint.errors import ConfigError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")

# Logical types whose in-memory form is the plain base value (int millis, str uuid). Reading with these
# annotations stripped makes fastavro hand back the base value instead of datetime/UUID objects.
_PLAIN_LOGICAL_TYPES = frozenset(
    {"uuid", "timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros",
     "date", "time-millis", "time-micros"}
)


def rabin_fingerprint(data: bytes) -> int:
    """CRC-64-AVRO of ``data``, written from the Avro specification (used to cross-check fastavro)."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


_EMPTY = 0xC15D213AA4D7A795


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _fp_table()


def parse(schema: Any) -> dict[str, Any]:
    """fastavro.parse_schema of a record schema (typed)."""
    return cast("dict[str, Any]", _fastavro_parse(schema))


def expand(schema: dict[str, Any]) -> dict[str, Any]:
    """A record schema with every named reference replaced by its definition (self-contained parts)."""
    return cast("dict[str, Any]", expand_schema(schema))


def strip_logical_types(schema: Any) -> Any:
    """A copy of a schema without the logicalType annotations whose in-memory form is the base value."""
    if isinstance(schema, list):
        return [strip_logical_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if not (k == "logicalType" and v in _PLAIN_LOGICAL_TYPES)}
    for key in ("type", "items", "values"):
        if key in out:
            out[key] = strip_logical_types(out[key])
    if "fields" in out:
        out["fields"] = [{**f, "type": strip_logical_types(f["type"])} for f in out["fields"]]
    return out


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one schema, parsed and fingerprinted."""

    name: str                 # directory name: "touchpoint", "journey_snapshot", ...
    version: int
    source: str               # where it was loaded from (for messages)
    raw: dict[str, Any]       # the JSON as written
    canonical: str            # Parsing Canonical Form
    fingerprint: int          # CRC-64-AVRO of `canonical`
    parsed: dict[str, Any] = field(repr=False)  # fastavro-parsed, logical types kept
    plain: dict[str, Any] = field(repr=False)   # fastavro-parsed, plain logical types stripped (read & write)

    @property
    def full_name(self) -> str:
        ns = self.raw.get("namespace")
        return f"{ns}.{self.raw['name']}" if ns and "." not in self.raw["name"] else str(self.raw["name"])

    @property
    def fingerprint_bytes(self) -> bytes:
        """The fingerprint as it appears in single-object encoding: 8 bytes, little-endian."""
        return self.fingerprint.to_bytes(8, "little")

    @property
    def fingerprint_hex(self) -> str:
        return f"0x{self.fingerprint:016x}"

    @property
    def header(self) -> bytes:
        """Single-object encoding header: ``C3 01`` + fingerprint."""
        return SINGLE_OBJECT_MAGIC + self.fingerprint_bytes


def parse_version(name: str, version: int, raw: dict[str, Any], source: str) -> SchemaVersion:
    """Parse one schema document; raises ConfigError naming the file when it is not valid Avro."""
    try:
        parsed = parse(copy.deepcopy(raw))
        plain = parse(strip_logical_types(raw))
        canonical = to_parsing_canonical_form(raw)
    except (SchemaParseException, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: not a valid Avro schema: {exc}") from exc
    # fastavro returns the fingerprint's bytes in wire (little-endian) order as hex; the spec's 64-bit value
    # (what Java's SchemaNormalization.parsingFingerprint64 returns, and what we print) is their LE reading.
    fp = int.from_bytes(bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), "little")
    return SchemaVersion(name, version, source, raw, canonical, fp, parsed, plain)


class LocalRegistry:
    """All schema versions found under one root (``schemas/avro`` by default).

    Indexes: fingerprint → version (writer schemas), name → every version, name → latest (the reader schema).
    """

    def __init__(self, versions: list[SchemaVersion]) -> None:
        self._by_name: dict[str, list[SchemaVersion]] = {}
        for v in sorted(versions, key=lambda v: (v.name, v.version)):
            self._by_name.setdefault(v.name, []).append(v)
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for v in versions:
            other = self._by_fingerprint.get(v.fingerprint_bytes)
            # Two files with the same canonical form would make the wire ambiguous only if they are
            # different schemas; a version identical to its predecessor is harmless but pointless.
            if other is not None and other.name != v.name:
                raise ConfigError(
                    f"{v.source} and {other.source} have the same canonical form ({v.fingerprint_hex}); "
                    "two schema names cannot share one definition"
                )
            self._by_fingerprint.setdefault(v.fingerprint_bytes, v)

    @classmethod
    def load(cls, root: Path | Traversable | None = None) -> "LocalRegistry":
        """Load every ``<name>/v<N>.avsc`` under root (default: the package's own ``avro`` folder)."""
        base: Path | Traversable = root if root is not None else resources.files("touchpoint.schemas") / "avro"
        versions: list[SchemaVersion] = []
        if not base.is_dir():
            raise ConfigError(f"schema folder {base} does not exist")
        for folder in sorted(base.iterdir(), key=lambda p: p.name):
            if not folder.is_dir() or folder.name.startswith((".", "_")):
                continue
            for file in folder.iterdir():
                m = _VERSION_FILE.match(file.name)
                if m is None:
                    continue
                source = f"{folder.name}/{file.name}"
                try:
                    raw = json.loads(file.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{source}: not JSON: {exc}") from exc
                versions.append(parse_version(folder.name, int(m.group(1)), raw, source))
        if not versions:
            raise ConfigError(f"no schemas (<name>/v<N>.avsc) found under {base}")
        return cls(versions)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every version of a schema, oldest first."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"unknown schema {name!r}; known: {', '.join(self.names())}") from None

    def latest(self, name: str) -> SchemaVersion:
        """The newest version: the reader schema every older version resolves to."""
        return self.versions(name)[-1]

    def by_fingerprint(self, fp: bytes | int) -> SchemaVersion | None:
        """The writer schema for a fingerprint (8 little-endian bytes, or the int), or None if unknown."""
        if isinstance(fp, int):
            fp = fp.to_bytes(8, "little")
        return self._by_fingerprint.get(fp)

    def __iter__(self) -> Iterator[SchemaVersion]:
        for name in self.names():
            yield from self._by_name[name]


@lru_cache(maxsize=1)
def get_registry() -> LocalRegistry:
    """The registry of the schemas shipped with the package (loaded once per process)."""
    return LocalRegistry.load()


# --- conventions of the touchpoint envelope --------------------------------------------------------------

def payload_record_name(event_type: str) -> str:
    """``AD_CLICK`` → ``AdClick``: the payload record an event type carries."""
    return "".join(part.capitalize() for part in event_type.split("_"))
