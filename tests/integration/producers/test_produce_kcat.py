"""An independent client reads our bytes: kcat consumes the topic; fastavro and the .avsc files alone decode them.

The decoding path below imports nothing from the project: it parses ``schemas/avro/touchpoint/v*.avsc`` with
fastavro, checks the Avro single-object header (``C3 01`` + CRC-64-AVRO fingerprint, little-endian) against the
fingerprints fastavro computes for those files, and reads the body with ``fastavro.schemaless_reader``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from touchpoint.config import Settings
from touchpoint.producers import TouchpointProducer

pytestmark = pytest.mark.integration

AVSC_DIR = Path(__file__).resolve().parents[3] / "schemas" / "avro" / "touchpoint"


# --- independent of the project from here ... ---------------------------------------------------------------


def schemas_by_fingerprint() -> dict[bytes, Any]:
    found = {}
    for path in sorted(AVSC_DIR.glob("v*.avsc")):
        parsed = fastavro.parse_schema(json.loads(path.read_text()))
        # fastavro's hex text is the fingerprint's bytes in little-endian order, as the header carries them.
        found[bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))] = parsed
    return found


def kcat_records(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """(partition, offset, key, value) of every record, parsed from kcat's length-prefixed, binary-safe output."""
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %K %S:%k%s"],
        capture_output=True, timeout=60, check=True,
    ).stdout
    records, pos = [], 0
    while pos < len(out):
        colon = out.index(b":", pos)
        partition, offset, key_len, value_len = (int(x) for x in out[pos:colon].split())
        pos = colon + 1
        key = None if key_len < 0 else out[pos:pos + key_len]
        pos += max(key_len, 0)
        records.append((partition, offset, key, out[pos:pos + value_len]))
        pos += value_len
    return records


def decode_single_object(value: bytes, schemas: dict[bytes, Any]) -> dict[str, Any]:
    assert value[:2] == b"\xc3\x01", f"not Avro single-object encoding: {value[:4].hex()}"
    schema = schemas[value[2:10]]  # KeyError: the writer's fingerprint is none of the .avsc files
    body = io.BytesIO(value[10:])
    record = fastavro.schemaless_reader(body, schema)
    assert body.tell() == len(value) - 10, "trailing bytes after the Avro body"
    return record  # type: ignore[return-value]


# --- ... to here ------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """fastavro returns logical types as objects; the SDK's in-memory form uses str UUIDs and epoch millis."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_kcat_reads_what_the_sdk_wrote_and_the_avsc_files_alone_decode_it(
    pipeline_topics: Settings, make_events: Callable[..., list[dict[str, Any]]]
) -> None:
    if shutil.which("kcat") is None:
        pytest.fail("kcat is not installed: `apt-get install -y kcat` (deploy/local/bootstrap.sh installs it)")
    settings = pipeline_topics
    events = make_events(350, seed=3)
    with TouchpointProducer(settings) as producer:
        for event in events:
            producer.send(event)

    records = kcat_records(settings.bootstrap_servers, settings.events_topic)
    assert len(records) == len(events)
    schemas = schemas_by_fingerprint()
    sent = {e["event_id"]: e for e in events}
    decoded = {}
    for partition, offset, key, value in records:
        record = _plain(decode_single_object(value, schemas))
        assert record == sent[record["event_id"]], f"record at {partition}@{offset} differs"
        assert key == (record["customer_id"] or record["anonymous_id"]).encode()
        decoded[record["event_id"]] = record
    assert decoded.keys() == sent.keys()
