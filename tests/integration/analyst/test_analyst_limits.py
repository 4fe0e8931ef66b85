"""Limits that protect the store from analyst queries: time, result size, memory, concurrency, abandoned
queries, request body and decompressed size. Each refusal keeps ClickHouse's code and HTTP status.

Two ports over one small database: ``limited`` (a 2 s time ceiling, 2 query slots, 5,000 result rows (clickhouse-connect reads ~1,900 settings rows when it connects), 100 MiB
of memory per query) and ``roomy`` (the defaults: 60 s). The figures measured are printed.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.helpers import wait_until
from touchpoint.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEAVY = "SELECT count() FROM numbers(100000000000)"  # ~45 s of the sink's CPU without a limit
MIB = 1 << 20


@dataclass
class Ports:
    limited: Any
    roomy: Any
    owner: Any
    database: str


@pytest.fixture(scope="module")
def ports(chdb_dsn: str) -> Iterator[Ports]:
    from touchpoint.sinks.http_server import serve_readonly

    database = f"limits_{uuid.uuid4().hex[:8]}"
    owner: Any = clickhouse_connect.get_client(dsn=chdb_dsn)
    owner.command(f"CREATE DATABASE {database}")
    limited = serve_readonly(owner, port=0, database=database, settings=load_settings(
        sink_sql_port=0, sink_sql_max_execution_seconds=2, sink_sql_max_concurrent=2, sink_sql_max_result_rows=5000,
        sink_sql_max_memory_bytes=100 * MIB))
    roomy = serve_readonly(owner, port=0, database=database, settings=load_settings(sink_sql_port=0))
    try:
        yield Ports(limited, roomy, owner, database)
    finally:
        limited.close()
        roomy.close()
        owner.command(f"DROP DATABASE IF EXISTS {database}")
        owner.close()


def _get(server: Any, timeout: float = 60, **params: str) -> tuple[int, str, bytes, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", "/?" + urlencode(params))
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.getheader("X-ClickHouse-Exception-Code") or "", body, time.monotonic() - started
    finally:
        conn.close()


def _running(owner: Any, fragment: str) -> int:
    """Statements of the read-only ports running now whose text holds ``fragment``."""
    return int(owner.command(
        "SELECT count() FROM system.processes WHERE position(query, 'touchpoint-query:') > 0 "
        f"AND position(query, '{fragment}') > 0 AND position(query, 'system.processes') = 0"))


def test_a_heavy_query_stops_at_the_time_limit_while_select_1_answers(ports: Ports) -> None:
    result: list[Any] = []
    heavy = threading.Thread(target=lambda: result.append(_get(ports.limited, query=HEAVY)))
    heavy.start()
    wait_until(lambda: _running(ports.owner, "numbers(100000000000)") == 1, timeout=10, what="the heavy query runs")
    latencies = []
    while heavy.is_alive() and len(latencies) < 5:
        status, _, body, elapsed = _get(ports.limited, query="SELECT 1")
        assert (status, body) == (200, b"1\n")
        latencies.append(elapsed)
    heavy.join(timeout=30)
    status, code, body, elapsed = result[0]
    print(f"heavy query stopped after {elapsed:.2f} s (limit 2 s) with {code}; SELECT 1 meanwhile: "
          f"{', '.join(f'{x * 1000:.0f} ms' for x in latencies)}")
    assert (status, code) == (500, "159") and b"TIMEOUT_EXCEEDED" in body, body
    assert 2.0 <= elapsed < 10
    # a port that queued behind the heavy query would answer every one after ~2 s
    assert latencies and sorted(latencies)[len(latencies) // 2] < 1.0


def test_an_analyst_may_lower_the_limits_but_not_raise_them(ports: Ports) -> None:
    status, code, body, elapsed = _get(ports.limited, query=HEAVY, max_execution_time="1")
    assert (status, code) == (500, "159"), body
    assert elapsed < 2.0  # its own 1 s, not the port's 2 s
    for name, value in (("max_execution_time", "5"), ("max_execution_time", "0"), ("max_result_rows", "5001"),
                        ("max_memory_usage", str(200 * MIB)), ("max_result_bytes", "0")):
        status, code, body, _ = _get(ports.limited, query="SELECT 1", **{name: value})
        assert (status, code) == (403, "164"), (name, value, body)
    # result rows: the port's 5,000 and an analyst's lower 10
    assert _get(ports.limited, query="SELECT number FROM numbers(5000)")[0] == 200
    status, code, body, _ = _get(ports.limited, query="SELECT number FROM numbers(5001)")
    assert (status, code) == (500, "396") and b"TOO_MANY_ROWS_OR_BYTES" in body, body
    status, code, _, _ = _get(ports.limited, query="SELECT number FROM numbers(11)", max_result_rows="10")
    assert (status, code) == (500, "396")
    # memory per query: 30 M UInt64 in one array need ~240 MiB, above the port's 100 MiB
    status, code, body, _ = _get(ports.limited, query="SELECT length(groupArray(number)) FROM numbers(30000000)")
    assert (status, code) == (500, "241") and b"MEMORY_LIMIT_EXCEEDED" in body, body


def test_a_full_port_answers_too_many_queries_at_once(ports: Ports) -> None:
    results: list[Any] = []
    heavies = [threading.Thread(target=lambda: results.append(_get(ports.limited, query=HEAVY))) for _ in range(2)]
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=ports.limited.port)  # its set-up queries first
    try:
        for t in heavies:
            t.start()
        wait_until(lambda: _running(ports.owner, "numbers(100000000000)") == 2, timeout=10, what="both slots taken")
        status, code, body, elapsed = _get(ports.limited, query="SELECT 1")
        with pytest.raises(DatabaseError) as err:
            analyst.query("SELECT 1")
        assert err.value.code == 202
        for t in heavies:
            t.join(timeout=30)
        print(f"third query with both slots taken: {code} after {elapsed * 1000:.0f} ms")
        assert (status, code) == (500, "202") and b"TOO_MANY_SIMULTANEOUS_QUERIES" in body, body
        assert elapsed < 1.0
        assert sorted(r[1] for r in results) == ["159", "159"]
        assert analyst.query("SELECT 1").result_rows == [(1,)]  # the slots are free again
    finally:
        analyst.close()


@pytest.mark.parametrize("mode", ["buffered", "streamed"])
def test_an_abandoned_query_stops_using_cpu(ports: Ports, mode: str) -> None:
    params = {"query": f"{HEAVY} AS {mode}"}
    if mode == "buffered":
        params["wait_end_of_query"] = "1"
    sock = socket.create_connection(("127.0.0.1", ports.roomy.port))
    sock.sendall(f"GET /?{urlencode(params)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_until(lambda: _running(ports.owner, f"AS {mode}") == 1, timeout=10, what="the heavy query runs")
    time.sleep(0.3)  # a workload duration (the query busy on the CPU), not synchronisation
    sock.close()
    closed = time.monotonic()
    wait_until(lambda: _running(ports.owner, f"AS {mode}") == 0, timeout=2.0, what="the abandoned query stops")
    stopped = time.monotonic() - closed
    # CPU of this process (which hosts the port and the engine) over the last 0.5 s of the 2 s allowed
    time.sleep(max(0.0, closed + 1.5 - time.monotonic()))  # to the start of the measuring window
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(0.5)  # the window CPU use is measured over
    busy = (time.process_time() - cpu) / (time.monotonic() - wall)
    print(f"{mode}: abandoned query gone {stopped * 1000:.0f} ms after the client left; CPU 1.5-2.0 s after: "
          f"{busy * 100:.0f} % of a core")
    assert busy < 0.25


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class _PeakRss:
    """The highest resident set size of this process (which hosts the port) while the block runs."""

    def __enter__(self) -> "_PeakRss":
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MIB


def _post_stream(server: Any, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, str, bytes]:
    """POST a body from ``chunks`` (never held whole), stop sending when the server has answered and closed,
    then read the answer."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(30)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("X-ClickHouse-Exception-Code") or "", response.read()
    finally:
        sock.close()


def test_a_100_mib_body_and_a_gzip_bomb_are_refused_with_bounded_memory(ports: Ports) -> None:
    block = b"SELECT 1 -- " + b"x" * (MIB - 12)
    with _PeakRss() as plain:
        status, code, body = _post_stream(ports.roomy, {"Content-Length": str(100 * MIB)}, iter([block] * 100))
    assert (status, code) == (413, "229") and b"QUERY_IS_TOO_LARGE" in body, body

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * MIB
    bomb = b"".join(packer.compress(zeros) for _ in range(300)) + packer.flush()  # 300 MiB of zeros
    with _PeakRss() as inflated:
        status_b, code_b, body_b = _post_stream(ports.roomy, {"Content-Length": str(len(bomb)),
                                                              "Content-Encoding": "gzip"}, iter([bomb]))
    print(f"100 MiB body: refused with {code}, sink memory +{plain.growth_mib:.1f} MiB; gzip bomb "
          f"({len(bomb) / 1024:.0f} KiB -> 300 MiB): refused with {code_b}, sink memory +{inflated.growth_mib:.1f} MiB")
    assert (status_b, code_b) == (413, "229"), body_b
    assert plain.growth_mib < 50 and inflated.growth_mib < 50
    assert _get(ports.roomy, query="SELECT 1")[:3] == (200, "", b"1\n")


def test_chunked_oversized_and_malformed_bodies_get_clickhouse_codes(ports: Ports) -> None:
    block = b"SELECT 1 -- " + b"x" * (MIB - 12)
    chunks = (b"%x\r\n%s\r\n" % (len(block), block) for _ in range(5))
    status, code, body = _post_stream(ports.roomy, {"Transfer-Encoding": "chunked"}, chunks)
    assert (status, code) == (413, "229"), body
    for length in ("-1", "ten"):
        status, code, body = _post_stream(ports.roomy, {"Content-Length": length}, iter([b"SELECT 1"]))
        assert (status, code) == (411, "381"), (length, body)
    status, code, body = _post_stream(ports.roomy, {"Content-Length": "8", "Content-Encoding": "brotli-x"},
                                      iter([b"SELECT 1"]))
    assert (status, code) == (500, "89"), body
    status, code, body = _post_stream(ports.roomy, {"Content-Length": "8", "Content-Encoding": "gzip"},
                                      iter([b"SELECT 1"]))
    assert (status, code) == (500, "271"), body
    assert _get(ports.roomy, query="SELECT 1")[:3] == (200, "", b"1\n")
