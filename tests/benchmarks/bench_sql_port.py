"""Benchmark: analyst queries through the read-only SQL port vs. the same clickhouse-connect client on chdb directly.

Assumptions: run alone on this machine (`python tests/benchmarks/bench_sql_port.py`); uses a temporary chdb path.
Prints per workload: our figure (clickhouse-connect HTTP client -> read-only port -> fresh chdb handle), the bare
baseline (clickhouse-connect's chdb client in-process, no HTTP) in the same run, and the ratio; then the same
small queries while another thread inserts (the sink's situation).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import clickhouse_connect

from touchpoint.config import load_settings
from touchpoint.sinks.http_server import serve_readonly


def timed(fn: Callable[[], Any], seconds: float = 3.0) -> tuple[float, int]:
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n, n


def main() -> None:
    path = tempfile.mkdtemp(prefix="bench-sql-port-")
    direct = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    direct.command("CREATE DATABASE bench")
    direct.command("CREATE TABLE bench.t (id UInt64, kind LowCardinality(String), at DateTime64(3, 'UTC'), v Float64) "
                   "ENGINE = MergeTree ORDER BY id")
    direct.command("INSERT INTO bench.t SELECT number, ['a','b','c','d'][number % 4 + 1], "
                   "toDateTime64('2026-01-01', 3, 'UTC') + number, number / 7 FROM numbers(1000000)")
    server = serve_readonly(direct, port=0, database="bench", settings=load_settings(sink_sql_port=0))
    http = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
    workloads = {
        "small aggregate (SELECT kind, count(), avg(v) GROUP BY kind)": "SELECT kind, count(), avg(v) FROM bench.t GROUP BY kind",
        "point query (WHERE id = 123456)": "SELECT * FROM bench.t WHERE id = 123456",
        "100k rows fetched (4 columns, Native)": "SELECT * FROM bench.t WHERE id < 100000",
    }
    print(f"{'workload':62} {'port ms':>9} {'direct ms':>10} {'ratio':>7}")
    for name, sql in workloads.items():
        ours, _ = timed(lambda: http.query(sql).result_rows)
        base, _ = timed(lambda: direct.query(sql).result_rows)
        print(f"{name:62} {ours * 1000:9.2f} {base * 1000:10.2f} {base / ours:7.2f}")

    stop = threading.Event()
    inserted = [0]

    def writer() -> None:
        writer_client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        i = 0
        while not stop.is_set():
            writer_client.insert("bench.t", [[2_000_000 + i * 1000 + j for j in range(1000)], ["w"] * 1000,
                                             [0] * 1000, [0.0] * 1000], column_names=["id", "kind", "at", "v"],
                                 column_oriented=True)
            inserted[0] += 1000
            i += 1

    sql = "SELECT kind, count() FROM bench.t GROUP BY kind"
    alone, _ = timed(lambda: http.query(sql).result_rows)
    thread = threading.Thread(target=writer)
    thread.start()
    start = time.perf_counter()
    busy, _ = timed(lambda: http.query(sql).result_rows)
    stop.set()
    thread.join()
    rate = inserted[0] / (time.perf_counter() - start)
    print(f"{'small aggregate while another thread inserts':62} {busy * 1000:9.2f} {alone * 1000:10.2f} {alone / busy:7.2f}"
          f"   (alone = port without inserts; writer kept {rate:,.0f} rows/s)")
    http.close()
    server.close()
    direct.close()


if __name__ == "__main__":
    main()
