"""Wire details of the read-only ClickHouse HTTP interface: status mapping, form bodies, HTTP compression."""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import sys
import zlib
from typing import Any

from touchpoint.sinks.readonly_engine import QueryError

_BAD_REQUEST = {27, 36, 38, 41, 53, 62, 69, 70, 72, 167, 168, 386, 403, 457}
_NOT_FOUND = {46, 47, 50, 60, 63, 73, 81, 115, 145, 511, 1002}


def http_status(code: int) -> int:
    """ClickHouse's mapping of an exception code to an HTTP status, plus 403 for refused writes."""
    if code in (164, 497, 516):  # 516: AUTHENTICATION_FAILED, as ClickHouse answers it
        return 403
    if code in _BAD_REQUEST:
        return 400
    if code in _NOT_FOUND:
        return 404
    if code == 48:
        return 501
    return 500


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True) or b""
            fields[name] = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
    return fields


def codec_available(name: str) -> bool:
    try:
        _codec(name)
        return True
    except ImportError:
        return False


def _codec(name: str) -> Any:
    if name == "lz4":
        import lz4.frame

        return lz4.frame
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd  # shipped with clickhouse-connect
    return zstd


def encode_body(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(data, 3)
    return bytes(_codec(encoding).compress(data))


def decode_body(data: bytes, encoding: str) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            return zlib.decompress(data)
        if encoding in ("lz4", "zstd"):
            return bytes(_codec(encoding).decompress(data))
    except (OSError, ValueError, RuntimeError, ImportError, zlib.error) as exc:
        raise QueryError(f"Code: 432. DB::Exception: cannot decompress the {encoding} request body: {exc}. "
                         "(UNKNOWN_CODEC)", 432, "UNKNOWN_CODEC") from exc
    raise QueryError(f"Code: 432. DB::Exception: unknown Content-Encoding {encoding!r}. (UNKNOWN_CODEC)", 432,
                     "UNKNOWN_CODEC")
