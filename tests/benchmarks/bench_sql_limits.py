"""Benchmark: what the read-only port's limits cost and protect, with a bare baseline in the same run.

Assumptions: run alone on this machine (`python tests/benchmarks/bench_sql_limits.py`); uses a temporary chdb
path; the port runs in this process (as in the sink), so this process's CPU and memory are the sink's.
Prints:
- SELECT 1 latency through the port, idle (baseline) and while a heavy query runs (ours), and the ratio;
- how long after its limit a heavy query stops (time ceiling 2 s here);
- how long after its client leaves an abandoned heavy query stops, and the CPU used in the next second;
- the sink's peak memory growth for a 100 MiB body and a 300 MiB gzip bomb, against the growth for the same
  number of bytes sent as small valid queries (baseline), and the ratio.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import tempfile
import threading
import time
import zlib
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect

from touchpoint.config import load_settings
from touchpoint.sinks.http_server import serve_readonly

HEAVY = "SELECT count() FROM numbers(100000000000)"
MIB = 1 << 20


def get(port: int, **params: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", "/?" + urlencode(params))
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-ClickHouse-Exception-Code") or "", time.perf_counter() - started
    finally:
        conn.close()


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_growth(action: Any) -> float:
    base = peak = rss()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    action()
    stop.set()
    thread.join()
    return (max(peak, rss()) - base) / MIB


def post_stream(port: int, headers: dict[str, str], chunks: Any) -> int:
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(("POST / HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                      + "\r\n").encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response.status
    finally:
        sock.close()


def running(owner: Any) -> int:
    return int(owner.command("SELECT count() FROM system.processes WHERE position(query, 'touchpoint-query:') > 0 "
                             "AND position(query, 'numbers(100000000000)') > 0 "
                             "AND position(query, 'system.processes') = 0"))  # not this query itself


def main() -> None:
    path = tempfile.mkdtemp(prefix="bench-sql-limits-")
    owner = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    owner.command("CREATE DATABASE bench")
    limited = serve_readonly(owner, port=0, database="bench",
                             settings=load_settings(sink_sql_port=0, sink_sql_max_execution_seconds=2))
    roomy = serve_readonly(owner, port=0, database="bench", settings=load_settings(sink_sql_port=0))

    idle = [get(limited.port, query="SELECT 1")[2] for _ in range(50)]
    result: list[Any] = []
    heavy = threading.Thread(target=lambda: result.append(get(limited.port, query=HEAVY)))
    heavy.start()
    while running(owner) == 0:
        time.sleep(0.01)
    loaded = []
    while heavy.is_alive():
        loaded.append(get(limited.port, query="SELECT 1")[2])
    heavy.join()
    base, ours = statistics.median(idle), statistics.median(loaded)
    print(f"SELECT 1 median: idle {base * 1000:.1f} ms, during a heavy query {ours * 1000:.1f} ms "
          f"(max {max(loaded) * 1000:.0f} ms, {len(loaded)} queries), ratio {ours / base:.1f}")
    status, code, elapsed = result[0]
    print(f"heavy query with a 2 s ceiling: stopped after {elapsed:.2f} s with {code} (HTTP {status})")

    for mode, extra in (("buffered", {"wait_end_of_query": "1"}), ("streamed", {})):
        sock = socket.create_connection(("127.0.0.1", roomy.port))
        sock.sendall(f"GET /?{urlencode({'query': HEAVY, **extra})} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while running(owner) == 0:
            time.sleep(0.01)
        time.sleep(0.5)
        sock.close()
        closed = time.perf_counter()
        while running(owner):
            time.sleep(0.01)
        gone = time.perf_counter() - closed
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(1.0)
        print(f"abandoned {mode} query: gone {gone * 1000:.0f} ms after its client left; CPU in the next second "
              f"{(time.process_time() - cpu) / (time.perf_counter() - wall) * 100:.0f} % of a core")

    small = b"SELECT 1"
    baseline = peak_growth(lambda: [post_stream(roomy.port, {"Content-Length": str(len(small))}, [small])
                                    for _ in range(200)])
    block = b"SELECT 1 -- " + b"x" * (MIB - 12)
    plain = peak_growth(lambda: post_stream(roomy.port, {"Content-Length": str(100 * MIB)}, iter([block] * 100)))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(packer.compress(b"\0" * MIB) for _ in range(300)) + packer.flush()
    inflated = peak_growth(lambda: post_stream(roomy.port, {"Content-Length": str(len(bomb)), "Content-Encoding": "gzip"},
                                               [bomb]))
    print(f"sink peak memory growth: 200 small queries {baseline:.1f} MiB (baseline); 100 MiB body {plain:.1f} MiB; "
          f"gzip bomb {len(bomb) // 1024} KiB -> 300 MiB {inflated:.1f} MiB; ratios {plain / max(baseline, 0.1):.1f}, "
          f"{inflated / max(baseline, 0.1):.1f}")
    limited.close()
    roomy.close()
    owner.close()


if __name__ == "__main__":
    main()
