"""Wire details of the read-only ClickHouse HTTP interface: status mapping, form bodies, HTTP compression,
bounded request bodies, watching for a client that went away."""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import io
import logging
import os
import select
import socket
import ssl
import sys
import threading
import time
import zlib
from typing import Any

from touchpoint.sinks.readonly_engine import QueryError

log = logging.getLogger(__name__)

_TOO_LARGE = {229}
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
    if code in _TOO_LARGE:
        return 413
    if code == 381:
        return 411
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


CANNOT_DECOMPRESS = 271
UNKNOWN_COMPRESSION_METHOD = 89
_CHUNK = 64 * 1024


def _decompressor(encoding: str) -> Any:
    """A streaming decompressor whose ``decompress(data, max_length)`` returns at most ``max_length`` bytes."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    if encoding == "zstd":
        return _codec("zstd").ZstdDecompressor()
    if encoding == "lz4":
        return _codec("lz4").LZ4FrameDecompressor()
    raise QueryError(f"Code: 89. DB::Exception: Unknown HTTP Content-Encoding {encoding!r}: use gzip, deflate, zstd or "
                     "lz4. (UNKNOWN_COMPRESSION_METHOD)", UNKNOWN_COMPRESSION_METHOD, "UNKNOWN_COMPRESSION_METHOD")


class BodyReader:
    """Reads a request body (``Content-Length`` or chunked) from ``rfile`` at most ``limit`` bytes at a time after
    ``Content-Encoding`` decoding, never holding more than ``limit + 1`` decoded bytes: a body too large, or a
    small compressed body that inflates too far (a gzip bomb), is stopped there, not read whole.

    ``read()`` returns ``(head, complete)``: the decoded body, or its first ``limit`` bytes and False when it is
    larger. ``discard(seconds)`` throws away what the client still sends, bounded in time, so that the error
    answer reaches a client still writing its body instead of a connection reset.
    """

    def __init__(self, rfile: io.BufferedIOBase, headers: Any, limit: int) -> None:
        self._rfile = rfile
        self.limit = limit
        self.chunked = (headers.get("Transfer-Encoding") or "").lower() == "chunked"
        length = (headers.get("Content-Length") or "0").strip()
        if not self.chunked and not length.isdigit():
            raise QueryError(f"Code: 381. DB::Exception: Invalid Content-Length {length!r}: send the body's length in "
                             "bytes or use chunked transfer encoding. (HTTP_LENGTH_REQUIRED)", 381, "HTTP_LENGTH_REQUIRED")
        self._left = 0 if self.chunked else int(length)
        self._chunk_left = 0
        self._done = not self.chunked and self._left == 0
        encoding = (headers.get("Content-Encoding") or "").lower()
        self.encoding = "" if encoding in ("", "identity") else encoding
        self._decoder = _decompressor(self.encoding) if self.encoding else None

    @property
    def has_body(self) -> bool:
        return not self._done

    def _raw(self, size: int) -> bytes:
        """Up to ``size`` raw (still encoded) body bytes; b"" at the end."""
        if self._done:
            return b""
        if not self.chunked:
            data = bytes(self._rfile.read(min(size, self._left)))
            self._left -= len(data)
            self._done = self._left == 0 or not data
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            try:
                self._chunk_left = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self._chunk_left = 0
            if self._chunk_left == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = bytes(self._rfile.read(min(size, self._chunk_left)))
        self._chunk_left -= len(data)
        if not data:
            self._done = True
        elif self._chunk_left == 0:
            self._rfile.readline(1024)
        return data

    def read(self) -> tuple[bytes, bool]:
        out = bytearray()
        while len(out) <= self.limit:
            raw = self._raw(min(_CHUNK, self.limit + 1 - len(out)) if self._decoder is None else _CHUNK)
            if not raw:
                break
            if self._decoder is None:
                out += raw
                continue
            try:
                out += self._decoder.decompress(raw, self.limit + 1 - len(out))
            except (OSError, ValueError, RuntimeError, EOFError, zlib.error) as exc:
                raise QueryError(f"Code: 271. DB::Exception: Cannot decompress the {self.encoding} request body: "
                                 f"{exc}. (CANNOT_DECOMPRESS)", CANNOT_DECOMPRESS, "CANNOT_DECOMPRESS") from exc
        if len(out) > self.limit:
            return bytes(out[:self.limit]), False
        return bytes(out), True

    def discard(self, seconds: float = 2.0) -> None:
        deadline = time.monotonic() + seconds
        try:
            while not self._done and time.monotonic() < deadline:
                if not self._raw(_CHUNK):
                    break
        except OSError:
            pass


class DisconnectWatch:
    """While a statement runs and its answer is sent, watch the client's socket; when the client closes it,
    call ``on_disconnect`` once (it cancels the statement, so an abandoned query stops using the store's CPU).

    The socket is only peeked (nothing is consumed): a readable socket whose peek returns no bytes is closed.
    A client that sends its next request early (pipelining) is not a disconnect; the watch then stops.
    Over TLS the TCP stream under the encryption is peeked (a TLS socket refuses peeking): a pending TLS record is
    "something sent", so a client that says goodbye with a TLS close alert before closing is not seen leaving
    (its query still ends at its limits); one that just closes is.
    """

    def __init__(self, sock: socket.socket, on_disconnect: Any, interval: float = 0.1) -> None:
        self._sock = sock
        self._on_disconnect = on_disconnect
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="touchpoint-sql-disconnect-watch", daemon=True)

    def _watch(self) -> None:
        try:
            # A second descriptor of the same TCP connection for a TLS socket; closed below, the connection stays.
            sock = socket.socket(fileno=os.dup(self._sock.fileno())) if isinstance(self._sock, ssl.SSLSocket) \
                else self._sock
        except OSError:  # the socket was closed under us: the request is over
            return
        try:
            self._watch_socket(sock)
        finally:
            if sock is not self._sock:
                sock.close()

    def _watch_socket(self, sock: socket.socket) -> None:
        try:
            poller = select.poll()  # not select(): the sink holds many files, and select() stops at fd 1024
            poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
            while not self._stop.is_set():
                readable = poller.poll(self._interval * 1000)
                if not readable or self._stop.is_set():
                    continue
                try:
                    peeked = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    peeked = b""
                if not peeked:
                    log.info("read-only SQL port: client went away, cancelling its query")
                    self._on_disconnect()
                return
        except (OSError, ValueError):  # the socket was closed under us: the request is over
            return
        except Exception:  # noqa: BLE001 - a failed cancel is logged; the query's own limits still apply
            log.exception("read-only SQL port: cancelling an abandoned query failed")

    def __enter__(self) -> "DisconnectWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Not joined (it wakes within ``interval``): a late cancel finds no statement under the token and does
        # nothing, and a late peek at the connection consumes nothing.
        self._stop.set()
