"""Micro-benchmark: touchpoint codec (+ validation) vs bare fastavro on the same records, in one process.

Assumptions: run from the repo with the project venv (`.venv/bin/python tests/benchmarks/bench_codec.py [N]`);
single thread; records are the seven example touchpoints repeated. The baseline is what anyone would write with
fastavro alone: `schemaless_writer`/`schemaless_reader` with the parsed v1 schema and no framing (fastavro then
picks the payload union branch by trying each one). Prints events/s and our/bare ratios.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any, Callable

import fastavro

from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.examples import EVENT_TYPES, example_event
from touchpoint.schemas.registry import get_registry
from touchpoint.schemas.validation import validate_event


def _rate(n: int, fn: Callable[[], Any]) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main(n: int = 70_000) -> None:
    events = [example_event(EVENT_TYPES[i % len(EVENT_TYPES)], i=i) for i in range(n)]
    codec = AvroCodec()
    parsed = get_registry().latest("touchpoint").parsed
    encoded = [codec.encode(e) for e in events]
    bodies = [b[10:] for b in encoded]

    def ours_encode() -> None:
        enc = codec.encode
        for e in events:
            enc(e)

    def bare_encode() -> None:
        w = fastavro.schemaless_writer
        for e in events:
            buf = io.BytesIO()
            w(buf, parsed, e)
            buf.getvalue()

    def ours_decode() -> None:
        dec = codec.decode
        for b in encoded:
            dec(b)

    def bare_decode() -> None:
        r = fastavro.schemaless_reader
        for b in bodies:
            r(io.BytesIO(b), parsed)

    def ours_validate() -> None:
        for e in events:
            validate_event(e)

    rows = [
        ("encode", _rate(n, ours_encode), _rate(n, bare_encode)),
        ("decode", _rate(n, ours_decode), _rate(n, bare_decode)),
    ]
    print(f"{n} touchpoints, all 7 event types, {sum(map(len, encoded)) / n:.0f} bytes/event on average")
    print(f"{'op':<8}{'ours ev/s':>14}{'bare fastavro ev/s':>22}{'ratio':>8}")
    for op, ours, bare in rows:
        print(f"{op:<8}{ours:>14,.0f}{bare:>22,.0f}{ours / bare:>8.2f}")
    v = _rate(n, ours_validate)
    print(f"validate_event alone: {v:,.0f} ev/s; validate+encode: {1 / (1 / v + 1 / rows[0][1]):,.0f} ev/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 70_000)
