"""Benchmark of the pure streams state logic (no Kafka): events/s of route → apply → plan → absorb, with the
faust-table serialisation the worker does per event, next to a bare baseline loop over the same events.
Times are CPU time of this process (time.process_time), so other load on the machine distorts them less.

Assumptions: one process, one partition, 5,000 customers (a third start anonymous and log in later), events in
arrival order with small jitter; states kept in dicts like the worker's in-memory cache. Run:

    .venv/bin/python tests/benchmarks/bench_journey_state.py [events]

Also compares the state codec (``state_codec``: MessagePack behind kind, version and CRC-32) with marshal, pickle
and json on a heavy journey state; marshal is the bare baseline of that table.
"""

from __future__ import annotations

import cProfile
import json
import marshal
import pickle
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for the tests' event builders

from tests.unit.streams.journey_factory import (
    DAY, HOUR, MIN, T0, ad_click, checkout, delivery, email, page_view, support, survey,
)  # fmt: skip
from touchpoint.streams import state_codec as sc
from touchpoint.streams import windows as w
from touchpoint.streams.identity import identity_key, route
from touchpoint.streams.journey import JourneyConfig, apply


def make_events(n: int, customers: int = 5000, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    k = 0
    t = T0
    while len(out) < n:
        k += 1
        c = rng.randrange(customers)
        cust, anon = f"cust-{c}", f"anon-{c}"
        t += rng.randrange(0, 40)  # ~50 events per simulated second
        at = t - rng.randrange(0, 5 * MIN)  # out of order by up to 5 minutes
        roll = rng.random()
        ids: dict[str, Any] = {"customer": cust}
        if c % 3 == 0 and roll < 0.3:
            ids = {"anon": anon}
        elif c % 3 == 0 and roll < 0.35:
            ids = {"anon": anon, "customer": cust}
        kind = rng.random()
        if kind < 0.15:
            ev = ad_click(k, at, campaign=f"camp-{c % 20}", **ids)
        elif kind < 0.55:
            ev = page_view(k, at, **ids)
        elif kind < 0.65:
            ev = email(k, at, action=rng.choice(["sent", "opened", "clicked"]), **ids)
        elif kind < 0.78:
            ev = checkout(k, at, status=rng.choice(["started", "completed", "abandoned"]), order=f"o{c}-{k % 4}", **ids)
        elif kind < 0.88:
            ev = delivery(k, at, promised_by=at + rng.choice([-HOUR, HOUR]), shipment=f"s{c}-{k % 3}", **ids)
        elif kind < 0.95:
            ev = survey(k, at, kind="NPS", score=rng.randrange(11), **ids)
        else:
            ev = support(k, at, action=rng.choice(["opened", "resolved"]), ticket=f"t{c}", **ids)
        out.append(ev)
    # 2% duplicates re-delivered later
    for i in rng.sample(range(n), n // 50):
        out.insert(rng.randrange(i, n), out[i])
    return out[:n]


def baseline(events: list[dict[str, Any]]) -> float:
    """Bare loop: key lookup in a dict and one marshal.dumps of a tiny value per event (the table write)."""
    table: dict[str, bytes] = {}
    start = time.process_time()
    for ev in events:
        key = identity_key(ev)
        table[key] = marshal.dumps((ev["event_id"], ev["occurred_at"]))
    return time.process_time() - start


def pipeline(events: list[dict[str, Any]], *, codec: bool, per_cell: bool = False) -> float:
    cfg = JourneyConfig()
    aliases: dict[str, Any] = {}
    journeys: dict[str, Any] = {}
    wins: dict[int, Any] = {}
    table: dict[Any, bytes] = {}
    wm = None
    offset = 0
    now = T0 + DAY
    start = time.process_time()
    for ev in events:
        key = identity_key(ev)
        r = route(aliases.get(key), ev, now)
        if r.changed:
            aliases[key] = r.alias
            if codec:
                table[key] = sc.dumps_alias(r.alias)
        for out in r.outputs:
            offset += 1
            a = apply(journeys.get(out.journey_key), out.event, restitched=out.restitched, cfg=cfg, now_ms=now)
            if a.duplicate or a.state is None:
                continue
            wm = w.advance_watermark(wm, out.event["occurred_at"])
            if a.contributions:
                pl = w.plan(a.contributions, wm, allowed_lateness_ms=HOUR)
                groups: Any = w.by_cell(pl) if per_cell else pl.by_window
                for wkey, cs in groups.items():
                    win = wins[wkey] = w.absorb(wins.get(wkey), cs, offset, window_start=cs[0].window_start)
                    if codec:
                        table[wkey] = sc.dumps_window(win)
            journeys[out.journey_key] = a.state
            if codec:
                table[out.journey_key] = sc.dumps_journey(a.state)
    return time.process_time() - start


def codecs(state: Any) -> None:
    plain = sc.loads_journey(sc.dumps_journey(state))
    data = (plain.owner, plain.is_anonymous, plain.merged_into, plain.seen, plain.pruned_at,
            [(j.version, j.summaries, j.counts, j.stage, j.service, j.orders, j.shipments, j.surveys, j.tickets,
              j.anonymous_ids) for j in plain.journeys])  # fmt: skip
    n = 2000
    rows = []
    for name, dump, load in [
        ("marshal", lambda d: marshal.dumps(d, 4), marshal.loads),
        ("codec", lambda _: sc.dumps_journey(plain), sc.loads_journey),
        ("pickle5", lambda d: pickle.dumps(d, 5), pickle.loads),
        ("json", lambda d: json.dumps(d).encode(), json.loads),
    ]:
        blob = dump(data)
        t0 = time.process_time()
        for _ in range(n):
            dump(data)
        t1 = time.process_time()
        for _ in range(n):
            load(blob)
        t2 = time.process_time()
        rows.append((name, len(blob), (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6))
    base = rows[0]
    print(f"state codec, journey of {sum(len(j.summaries) for j in plain.journeys)} touches, {len(plain.seen)} ids:")
    for name, size, du, lu in rows:
        print(f"  {name:8s} {size:6d} B  dump {du:7.1f} us ({du / base[2]:.1f}x marshal)  load {lu:7.1f} us ({lu / base[3]:.1f}x)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    events = make_events(n)
    b = baseline(events)
    p = pipeline(events, codec=False)
    c = pipeline(events, codec=True)
    cc = pipeline(events, codec=True, per_cell=True)
    print(f"events: {n}")
    print(f"baseline (dict + marshal of a tiny value): {n / b:12,.0f} events/s")
    print(f"route+apply+plan+absorb:                   {n / p:12,.0f} events/s  ({p / n * 1e6:.1f} us/event, {p / b:.1f}x baseline time)")
    print(f"  ... plus table serialisation:            {n / c:12,.0f} events/s  ({c / n * 1e6:.1f} us/event, {c / b:.1f}x baseline time)")
    print(f"  ... same, windows keyed per cell:        {n / cc:12,.0f} events/s  ({cc / n * 1e6:.1f} us/event, {cc / b:.1f}x baseline time)")

    # a heavy customer: 300 events in one journey
    cfg = JourneyConfig()
    state = None
    for i, ev in enumerate(make_events(300, customers=1, seed=3)):
        state = apply(state, dict(ev, customer_id="heavy", anonymous_id=None), cfg=cfg, now_ms=T0 + i).state
    codecs(state)

    prof = cProfile.Profile()
    prof.enable()
    pipeline(events[: n // 4], codec=True)
    prof.disable()
    print("profile (top 12 by own time):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
