"""Every way a ClickHouse client sends a write gets the READONLY refusal (164), whatever bytes its data holds.

Regression of the CI flake where ``clickhouse-connect``'s insert got 62 (multi-statement) instead of 164 about
one run in twelve. The failing request, logged from a failing run::

    POST /?session_id=c146bf12-...&query_id=b780c245-...
    Transfer-Encoding: chunked, Content-Encoding: lz4, Content-Type: application/octet-stream
    body (lz4 frame of): INSERT INTO `typed` (`id`, ..., `uid`) FORMAT Native\\n<Native block>

The statement travels at the start of the (compressed) body, not in the URL, and the random UUID of the row
held a ``;`` byte (``...h;\\xbd...``) outside any quote, which the old hand-written tokenizer read as a second
statement. The statement is now read by the engine's parser, which ends it at ``FORMAT Native``: the data that
follows is never parsed, so no data byte can change the answer.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import http.client
import uuid
import zlib
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.integration.analyst.test_analyst_http import COLUMNS, _state, _typed_table

pytestmark = pytest.mark.integration

STATEMENT = (b"INSERT INTO `typed` (`id`, `name`, `at`, `attrs`, `tags`, `score`, `amount`, `uid`) FORMAT Native\n")
# The Native block of the failing run (one row; the UUID's bytes hold ';' and the DateTime64 type a quote pair).
FAILING_BLOCK = (
    b"\x08\x01\x02id\x06UInt642\x00\x00\x00\x00\x00\x00\x00\x04name\x16LowCardinality(String)\x01\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01x\x01\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x02at\x14DateTime64(3, 'UTC')\x00\xa8\xdav\x9b\x01\x00\x00\x05attrs#Map(LowCardinality"
    b"(String), String)\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04tags\rArray(String)"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x05score\x0fNullable(Int16)\x01\x00\x00\x06amount\x0eDecimal(18, 2)d\x00"
    b"\x00\x00\x00\x00\x00\x00\x03uid\x04UUID\xa5@h;\xbd\xd2\xa6+\xbf\xbf@\x85\x8d\x08>\x85"
)
# Data bytes that a tokenizer would read as SQL: a statement separator, an unbalanced quote, a comment opener,
# a heredoc opener, a backslash.
SHAPES = ["statement_in_body", "statement_in_url", "url_and_body_start"]
ENCODINGS = ["identity", "gzip", "deflate", "lz4"]
HOSTILE_DATA = [FAILING_BLOCK, b"(5, 'five');", b"\x05\x00;\x27\x22\x60/*", b"1\tx;\n", b"$a$;DROP TABLE typed;$a$", b"\\';--"]


def _post(server: Any, path: str, body: bytes, headers: dict[str, str], chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            conn.request("POST", path, body=iter([body[:7], body[7:]]), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _encode(data: bytes, encoding: str) -> bytes:
    if encoding == "lz4":
        return bytes(lz4.frame.compress(data))
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    return data


def _assert_refused(status: int, headers: dict[str, str], body: bytes, what: object) -> None:
    assert (status, headers.get("x-clickhouse-exception-code")) == (403, "164"), (what, status, body)
    assert b"readonly" in body.lower(), (what, body)


def test_the_logged_failing_request_is_refused_as_a_write(store: Any, sql_server: Any) -> None:
    """The exact request of the failing CI run (session, chunked, lz4 body starting with the statement)."""
    _typed_table(store)
    before = _state(store)
    path = "/?" + urlencode({"session_id": "c146bf12-9543-4648-84aa-bcae0865f3e9",
                             "query_id": "b780c245-fe94-4c3e-bf04-5a0528188a0f"})
    status, headers, body = _post(sql_server, path, _encode(STATEMENT + FAILING_BLOCK, "lz4"),
                                  {"Content-Type": "application/octet-stream", "Content-Encoding": "lz4"}, chunked=True)
    _assert_refused(status, headers, body, "logged request")
    assert _state(store) == before


def test_every_write_shape_is_refused_whatever_its_data(store: Any, sql_server: Any) -> None:
    """Statement in the body, in the URL, or split between them; identity/gzip/deflate/lz4; sized or chunked."""
    _typed_table(store)
    before = _state(store)
    for shape, encoding, data in itertools.product(SHAPES, ENCODINGS, HOSTILE_DATA):
        headers = {"Content-Type": "application/octet-stream"}
        if encoding != "identity":
            headers["Content-Encoding"] = encoding
        if shape == "statement_in_body":
            path, payload = "/?" + urlencode({"session_id": f"write-shape-{encoding}"}), STATEMENT + data
        elif shape == "statement_in_url":
            path, payload = "/?" + urlencode({"query": STATEMENT.decode().strip()}), data
        else:  # ClickHouse joins the URL query, a newline and the body: here the URL holds the statement's start
            path, payload = "/?" + urlencode({"query": "INSERT INTO typed"}), b"(id, name) FORMAT Values\n" + data
        for chunked in (False, True):
            status, got, body = _post(sql_server, path, _encode(payload, encoding), headers, chunked=chunked)
            _assert_refused(status, got, body, (shape, encoding, chunked, data))
    assert _state(store) == before


def test_a_multipart_write_is_refused(store: Any, sql_server: Any) -> None:
    _typed_table(store)
    before = _state(store)
    boundary = "tpboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n"
            "INSERT INTO typed (id, name) VALUES (7, 'x');\r\n"
            f"--{boundary}--\r\n").encode()
    status, headers, body = _post(sql_server, "/", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    _assert_refused(status, headers, body, "multipart")
    assert _state(store) == before


def test_clickhouse_connect_insert_of_rows_holding_statement_bytes_is_refused(store: Any, sql_server: Any) -> None:
    """clickhouse-connect's own insert (statement at the start of an lz4 body, session on), with rows whose
    bytes hold ``;`` and quotes in every column that carries raw bytes: 164 every time."""
    _typed_table(store)
    before = _state(store)
    rows = [
        [50, "x", dt.datetime(2026, 1, 1), {}, [], None, Decimal("1"), uuid.UUID("a5406838-bdd2-a62b-bfbf-40858d083e85")],
        [59, "';--", dt.datetime(2026, 1, 1), {"k;": "'"}, [";", "$a$"], 59, Decimal("0.59"), uuid.UUID(bytes=b";'\"`" * 4)],
    ]
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=sql_server.port)
    try:
        for compression in ("lz4", "gzip", None):
            analyst.write_compression = compression
            with pytest.raises(DatabaseError) as err:
                analyst.insert("typed", rows, column_names=COLUMNS)
            assert err.value.code == 164, (compression, str(err.value))
    finally:
        analyst.close()
    assert _state(store) == before
