"""Avro encoding of touchpoints (and journey snapshots, metric windows, identity merges) on the wire.

Two framings, both read regardless of configuration:

- **Single-object encoding** (Avro specification; the default): ``C3 01``, the 8-byte little-endian
  CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary body. The writer
  schema is found by fingerprint among the versions under ``schemas/avro``.
- **Confluent framing** (when ``schema_registry_url`` is set): byte ``00``, the 4-byte big-endian schema id,
  then the body. Schemas are registered lazily under the record-name subject (``io.touchpoint.Touchpoint``) and
  the writer schema is fetched by id when reading.

Either way the body is resolved from the writer schema to the newest local version (schema evolution).

In memory a record is a plain dict shaped like the Avro record: times are int epoch milliseconds, UUIDs are str,
enums are str, a touchpoint's ``payload`` is the plain dict of its payload record (the union branch is chosen
from ``event_type``, never guessed). ``encode`` trusts its input to be valid (run
``validation.validate_event`` first); it raises ``ValidationError`` when fastavro cannot write it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING, Any, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from touchpoint.errors import ConfigError, InvalidEventError, RetryableError, ValidationError
from touchpoint.schemas.compiled import compiled_latest, decode_or_none, encode_or_none
from touchpoint.schemas.registry import (
    SINGLE_OBJECT_MAGIC,
    LocalRegistry,
    SchemaVersion,
    expand,
    get_registry,
    parse,
    parse_version,
    payload_record_name,
    strip_logical_types,
)

if TYPE_CHECKING:
    from touchpoint.config import Settings

CONFLUENT_MAGIC = 0
KIND_UNDECODABLE = "undecodable"
KIND_UNKNOWN_SCHEMA = "unknown_schema"

# Everything fastavro's (Cython) reader raises on bytes that are not what the writer schema says.
_DECODE_ERRORS = (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError, MemoryError,
                  UnicodeDecodeError, AttributeError)
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)

# Confluent clients per URL, shared by every codec in the process: a `mock://` registry then behaves like one
# registry for the producer and the consumer of a test, as a real one would.
_REGISTRY_CLIENTS: dict[str, Any] = {}
_REGISTRY_LOCK = threading.Lock()


def _varint(n: int) -> bytes:
    """Avro zig-zag varint of a (small, non-negative) union index."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@dataclass(frozen=True)
class _Writer:
    """A precompiled encoder for the newest version of one schema."""

    version: SchemaVersion
    header: bytes
    # Touchpoint envelope only: the schema without its trailing `payload` union, and per event_type the union
    # index (already varint-encoded) and the branch record schema. The body of a record is its fields in order,
    # and a union is its index then the branch, so envelope + index + branch is the exact Avro encoding,
    # without fastavro trying every branch against the payload.
    envelope: dict[str, Any] = field(default_factory=dict)
    branches: dict[str, tuple[bytes, dict[str, Any]]] | None = None


def _compile_writer(version: SchemaVersion) -> _Writer:
    fields = version.raw.get("fields", [])
    last = fields[-1] if fields else None
    if (
        last is None
        or last["name"] != "payload"
        or not isinstance(last["type"], list)
        or not any(f["name"] == "event_type" for f in fields)
    ):
        return _Writer(version, version.header)
    expanded = expand(strip_logical_types(version.raw))
    envelope = parse({**expanded, "fields": expanded["fields"][:-1]})
    branches: dict[str, tuple[bytes, dict[str, Any]]] = {}
    event_type = next(f for f in expanded["fields"] if f["name"] == "event_type")
    symbols = event_type["type"]["symbols"]
    for index, branch in enumerate(expanded["fields"][-1]["type"]):
        if not isinstance(branch, dict) or branch.get("type") != "record":
            continue
        short = branch["name"].rsplit(".", 1)[-1]
        for symbol in symbols:
            if payload_record_name(symbol) == short:
                branches[symbol] = (_varint(index), parse(branch))
    return _Writer(version, version.header, envelope, branches)


class AvroCodec:
    """Encode and decode records of the local schemas; see the module docstring for the wire format.

    Thread-safe; cheap to share. ``registry_url`` switches *encoding* to Confluent framing; decoding accepts
    both framings either way (Confluent-framed input without a configured registry is ``unknown_schema``).
    """

    def __init__(self, registry_url: str | None = None, *, schemas: LocalRegistry | None = None,
                 registry_config: dict[str, Any] | None = None, compiled: bool = True) -> None:
        self.schemas = schemas if schemas is not None else get_registry()
        self.registry_url = registry_url
        self._registry_config = dict(registry_config or {})
        # Generated writers/readers of the newest versions (compiled.py, ~2-3x faster than fastavro). fastavro
        # stays the reference: it runs for every record they decline and for data of older writer schemas.
        # compiled=False: fastavro only (equivalence tests, benchmarks).
        fast = compiled_latest(self.schemas) if compiled else {}
        self._fast_encoders = {name: c.encode for name, c in fast.items() if c.encode is not None}
        self._fast_decoders = {c.version.fingerprint: c.decode for c in fast.values() if c.decode is not None}
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[bytes, tuple[SchemaVersion, dict[str, Any] | None]] = {}
        self._ids: dict[str, bytes] = {}              # schema name -> Confluent header of its newest version
        self._by_id: dict[int, SchemaVersion] = {}    # Confluent schema id -> writer schema
        self._lock = threading.Lock()
        for name in self.schemas.names():
            latest = self.schemas.latest(name)
            self._writers[name] = _compile_writer(latest)
            for v in self.schemas.versions(name):
                # The newest version reads its own data without resolution: reader None skips fastavro's
                # per-call writer == reader comparison.
                self._readers[v.fingerprint_bytes] = (v, None if v is latest else latest.plain)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "AvroCodec":
        return cls(settings.schema_registry_url)

    # --- encode ---------------------------------------------------------------------------------------

    def encode(self, record: dict[str, Any], schema: str = "touchpoint") -> bytes:
        """The framed Avro bytes of ``record`` written with the newest version of ``schema``."""
        writer = self._writers.get(schema)
        if writer is None:
            self.schemas.versions(schema)  # raises ConfigError naming the known schemas
            raise AssertionError("unreachable")
        header = writer.header if self.registry_url is None else self._confluent_header(schema, writer)
        fast = self._fast_encoders.get(schema)
        if fast is not None:
            data = encode_or_none(fast, record, header)
            if data is not None:
                return data
            # declined: fastavro below writes it or raises the ValidationError
        buf = BytesIO()
        buf.write(header)
        try:
            if writer.branches is not None:
                try:
                    index, branch = writer.branches[record["event_type"]]
                except KeyError:
                    raise ValidationError("event_type", f"unknown event type {record.get('event_type')!r}; "
                                          f"expected one of {', '.join(writer.branches)}") from None
                except TypeError:
                    raise ValidationError("(record)", "must be a dict") from None
                payload = record.get("payload")
                if not isinstance(payload, dict):
                    raise ValidationError("payload", f"must be an object (the {payload_record_name(record['event_type'])} fields)")
                schemaless_writer(buf, writer.envelope, record)
                buf.write(index)
                schemaless_writer(buf, branch, payload)
            else:
                schemaless_writer(buf, writer.version.plain, record)
        except _ENCODE_ERRORS as exc:
            raise self._explain_encode_error(record, schema, exc) from exc
        return buf.getvalue()

    def _explain_encode_error(self, record: Any, schema: str, exc: Exception) -> ValidationError:
        # Slow path only: find the exact field with the structural validator.
        from touchpoint.schemas.validation import validate_record

        try:
            validate_record(record, schema, self.schemas)
        except ValidationError as found:
            return found
        return ValidationError("(record)", f"cannot be written as {schema}: {type(exc).__name__}: {exc}")

    # --- decode ---------------------------------------------------------------------------------------

    def decode(self, data: bytes | None, schema: str = "touchpoint") -> dict[str, Any]:
        """The record in ``data`` (either framing), resolved to the newest version of ``schema``.

        Raises ``InvalidEventError`` with kind ``undecodable`` (not framed, truncated, corrupt) or
        ``unknown_schema`` (writer schema not known, or a different schema than expected).
        """
        if data is None:
            raise InvalidEventError("no value (a null record / tombstone)", kind=KIND_UNDECODABLE)
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise InvalidEventError(f"truncated single-object header ({len(data)} bytes, need 10)",
                                        kind=KIND_UNDECODABLE)
            found = self._readers.get(data[2:10])
            if found is None:
                fp = int.from_bytes(data[2:10], "little")
                raise InvalidEventError(
                    f"unknown writer fingerprint 0x{fp:016x}; is schemas/ up to date? "
                    f"(known {schema} versions: {self._known(schema)})", kind=KIND_UNKNOWN_SCHEMA)
            writer, reader = found
            offset = 10
        elif data[:1] == b"\x00" and len(data) >= 5:
            writer, reader = self._by_confluent_id(int.from_bytes(data[1:5], "big"), schema)
            offset = 5
        else:
            raise InvalidEventError(
                f"not single-object or Confluent framed (first bytes {data[:4].hex(' ') or 'none: empty'})",
                kind=KIND_UNDECODABLE)
        if writer.name != schema:
            raise InvalidEventError(
                f"writer schema is {writer.name} v{writer.version} ({writer.full_name}), not {schema}",
                kind=KIND_UNKNOWN_SCHEMA)
        # Written with the newest version (no resolution): the generated reader, unless it declines the bytes;
        # fastavro below then decodes them or raises the InvalidEventError.
        fast = self._fast_decoders.get(writer.fingerprint) if reader is None else None
        if fast is not None:
            decoded = decode_or_none(fast, data, offset)
            if decoded is not None:
                return decoded
        buf = BytesIO(data)
        buf.seek(offset)
        try:
            record = schemaless_reader(buf, writer.plain, reader)
        except SchemaResolutionError as exc:
            # Only for writer schemas fetched from a registry: local versions are checked by `schemas check`.
            raise InvalidEventError(f"writer schema {writer.source} cannot be resolved to the local "
                                    f"{schema} v{self.schemas.latest(schema).version}: {exc}; is schemas/ up to "
                                    "date?", kind=KIND_UNKNOWN_SCHEMA) from None
        except EOFError:
            raise InvalidEventError(f"truncated Avro body ({len(data)} bytes, {writer.name} v{writer.version})",
                                    kind=KIND_UNDECODABLE) from None
        except _DECODE_ERRORS as exc:
            raise InvalidEventError(f"corrupt Avro body for {writer.name} v{writer.version}: "
                                    f"{type(exc).__name__}: {exc}", kind=KIND_UNDECODABLE) from None
        end = buf.tell()
        if end != len(data):
            raise InvalidEventError(f"{len(data) - end} trailing bytes after the Avro body "
                                    f"({writer.name} v{writer.version})", kind=KIND_UNDECODABLE)
        if end > len(data):  # pragma: no cover - BytesIO never reads past the end
            raise InvalidEventError("truncated Avro body", kind=KIND_UNDECODABLE)
        # The reader schema is a record, so fastavro's value (typed as any Avro datum) is a dict.
        return cast(dict[str, Any], record)

    def _known(self, schema: str) -> str:
        try:
            return ", ".join(f"v{v.version}={v.fingerprint_hex}" for v in self.schemas.versions(schema))
        except Exception:  # noqa: BLE001 - only for the message
            return "none"

    # --- Confluent schema registry ---------------------------------------------------------------------

    def _client(self) -> Any:
        assert self.registry_url is not None
        with _REGISTRY_LOCK:
            client = _REGISTRY_CLIENTS.get(self.registry_url)
            if client is None:
                from confluent_kafka.schema_registry import SchemaRegistryClient

                client = SchemaRegistryClient.new_client({"url": self.registry_url, **self._registry_config})
                _REGISTRY_CLIENTS[self.registry_url] = client
            return client

    def _confluent_header(self, schema: str, writer: _Writer) -> bytes:
        header = self._ids.get(schema)
        if header is not None:
            return header
        with self._lock:
            header = self._ids.get(schema)
            if header is None:
                from confluent_kafka.schema_registry import Schema
                from confluent_kafka.schema_registry.error import SchemaRegistryError

                subject = writer.version.full_name
                try:
                    schema_id = self._client().register_schema(
                        subject, Schema(json.dumps(writer.version.raw), "AVRO"))
                except SchemaRegistryError as exc:
                    if getattr(exc, "http_status_code", 0) and exc.http_status_code < 500:
                        raise ConfigError(f"schema registry {self.registry_url} refused {subject} "
                                          f"v{writer.version.version}: {exc}; is the subject's compatibility "
                                          "mode stricter than BACKWARD, or was another schema registered?") from exc
                    raise RetryableError(f"schema registry {self.registry_url} failed: {exc}") from exc
                except Exception as exc:  # noqa: BLE001 - transport errors of httpx; retry later
                    raise RetryableError(f"schema registry {self.registry_url} is not reachable ({exc}); "
                                         "check TOUCHPOINT_SCHEMA_REGISTRY_URL") from exc
                header = bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big")
                self._ids[schema] = header
                self._by_id[schema_id] = writer.version
        return header

    def _by_confluent_id(self, schema_id: int, schema: str) -> tuple[SchemaVersion, dict[str, Any] | None]:
        writer = self._by_id.get(schema_id)
        if writer is None:
            if self.registry_url is None:
                raise InvalidEventError(
                    f"Confluent-framed record (schema id {schema_id}) but no schema registry is configured; "
                    "set TOUCHPOINT_SCHEMA_REGISTRY_URL", kind=KIND_UNKNOWN_SCHEMA)
            writer = self._fetch(schema_id, schema)
        known = self._readers.get(writer.fingerprint_bytes)
        if known is not None:
            return known
        latest = self.schemas.latest(writer.name)
        return writer, latest.plain

    def _fetch(self, schema_id: int, schema: str) -> SchemaVersion:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self._client().get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise InvalidEventError(f"schema id {schema_id} not found in registry {self.registry_url}",
                                        kind=KIND_UNKNOWN_SCHEMA) from None
            raise RetryableError(f"schema registry {self.registry_url} failed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - transport errors; retry later
            raise RetryableError(f"schema registry {self.registry_url} is not reachable ({exc})") from exc
        try:
            raw = json.loads(registered.schema_str)
            fetched = parse_version(schema, 0, raw, f"registry id {schema_id}")
        except Exception as exc:  # noqa: BLE001 - any unusable schema text
            raise InvalidEventError(f"schema id {schema_id} from the registry is not a usable Avro schema: {exc}",
                                    kind=KIND_UNKNOWN_SCHEMA) from None
        known = self._readers.get(fetched.fingerprint_bytes)
        writer = known[0] if known is not None else fetched
        if known is None:
            # A version we do not have locally (a newer producer?): still resolvable if its names match ours.
            latest = self.schemas.latest(schema)
            if fetched.full_name != latest.full_name:
                raise InvalidEventError(f"schema id {schema_id} is {fetched.full_name}, not {schema}",
                                        kind=KIND_UNKNOWN_SCHEMA)
        with self._lock:
            self._by_id[schema_id] = writer
        return writer
