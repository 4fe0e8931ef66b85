"""Loop: the body of tests/integration/analyst/test_analyst_http.py::test_clickhouse_connect_writes_are_refused,
run N times (default 500) against one read-only port, with a fresh random row UUID each time.

Assumptions: run outside CI, alone (`python tests/benchmarks/loop_write_refusal.py [N] [--seed S]`); uses a
temporary chdb path. The UUIDs come from a seeded generator (the seed is printed, and a failure can be replayed
with --seed). Each iteration: clickhouse-connect's insert of one row (statement at the start of an lz4 body, the
row's random bytes after it) and three write commands; every one must get code 164. Prints the number of runs,
the failures (with the first failing request's code and text) and the time taken. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from decimal import Decimal

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError

from touchpoint.config import load_settings
from touchpoint.sinks.http_server import serve_readonly

DDL = """CREATE TABLE loop.typed (
    id UInt64, name LowCardinality(String), at DateTime64(3, 'UTC'), attrs Map(LowCardinality(String), String),
    tags Array(String), score Nullable(Int16), amount Decimal(18, 2), uid UUID
) ENGINE = MergeTree ORDER BY id"""
COLUMNS = ["id", "name", "at", "attrs", "tags", "score", "amount", "uid"]
COMMANDS = ("DROP TABLE typed", "CREATE TABLE x (a Int8) ENGINE = Memory", "OPTIMIZE TABLE typed FINAL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, nargs="?", default=500)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"seed {seed} (replay: python tests/benchmarks/loop_write_refusal.py {args.runs} --seed {seed})")

    path = tempfile.mkdtemp(prefix="loop-write-refusal-")
    owner = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    owner.command("CREATE DATABASE loop")
    owner.command(DDL)
    server = serve_readonly(owner, port=0, database="loop", settings=load_settings(sink_sql_port=0))
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
    failures: list[str] = []
    semicolons = 0
    start = time.perf_counter()
    try:
        for run in range(args.runs):
            uid = uuid.UUID(int=rng.getrandbits(128))
            semicolons += b";" in uid.bytes
            row = [50, "x", dt.datetime(2026, 1, 1), {}, [], None, Decimal("1"), uid]
            attempts = [("insert", lambda: analyst.insert("typed", [row], column_names=COLUMNS))]
            attempts += [(sql, lambda sql=sql: analyst.command(sql)) for sql in COMMANDS]
            for what, attempt in attempts:
                try:
                    attempt()
                    failures.append(f"run {run} ({uid}): {what} was accepted")
                except DatabaseError as exc:
                    if exc.code != 164:
                        failures.append(f"run {run} ({uid}): {what} got {exc.code}: {str(exc)[:300]}")
        rows = owner.command("SELECT count() FROM loop.typed")
    finally:
        analyst.close()
        server.close()
    elapsed = time.perf_counter() - start
    print(f"runs {args.runs}, requests {args.runs * (1 + len(COMMANDS))}, rows whose UUID held a ';' byte "
          f"{semicolons}, failures {len(failures)}, rows in the table {rows}, {elapsed:.1f} s")
    for line in failures[:5]:
        print("FAIL", line)
    return 1 if failures or rows != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
