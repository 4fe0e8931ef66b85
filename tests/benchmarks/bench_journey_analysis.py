"""Benchmark: journey analysis on 1,000,000 touchpoints from 100,000 customers on the embedded engine.

Assumptions: run alone on this machine (`.venv/bin/python tests/benchmarks/bench_journey_analysis.py [customers]`);
uses a temporary chdb path. Synthetic rows are inserted straight into the pipeline's tables (created by the sink's
migrations) with INSERT ... SELECT through clickhouse-connect: per customer 10 touchpoints (ad click, page views, a
clicked e-mail, checkout started / completed or abandoned, delivery on time or late, an NPS answer, a support ticket
opened and resolved), 20 % of them starting anonymous and stitched at the third touch (identity_merges), and one
current journey snapshot each. Prints the best of 3 runs of: the 5-step funnel, stage drop-off, the pain-point table
and each attribution model, next to a bare baseline in the same process (a full scan of the raw table, and a scan of
the identity-resolved view every analysis starts from) and the ratio. Aim: each under 1 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any


from touchpoint.config import load_settings
from touchpoint.sinks import attribution, funnels, pain_points, stages
from touchpoint.sinks.migrations import migrate
from touchpoint.sinks.store import Store

DB = "bench"
PER_CUSTOMER = 10


def best_of(fn: Callable[[], Any], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load(client: Any, customers: int) -> None:
    n = customers * PER_CUSTOMER
    # row number -> customer c = number % customers, step i = intDiv(number, customers) (0..9)
    client.command(f"""
        INSERT INTO {DB}.touchpoints (event_id, event_type, occurred_at, customer_id, anonymous_id, channel, source,
            session_id, context, campaign_id, platform, cost_minor, currency, email_action, message_id, order_id,
            checkout_status, amount_minor, shipment_id, delivery_status, promised_by, survey_kind, score, scale_min,
            scale_max, ticket_id, support_action, kafka_topic, kafka_partition, kafka_offset)
        SELECT generateUUIDv4(number) AS event_id,
               ['AD_CLICK','PAGE_VIEW','PAGE_VIEW','EMAIL_ENGAGEMENT','CHECKOUT','CHECKOUT','DELIVERY_NOTICE',
                'SURVEY_RESPONSE','SUPPORT_INTERACTION','SUPPORT_INTERACTION'][i + 1] AS event_type,
               toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(c * 20 + i * 3600 * (1 + h % 30)) AS occurred_at,
               if(anon AND i < 3, '', concat('c-', toString(c))) AS customer_id,
               if(anon AND i <= 2, concat('a-', toString(c)), '') AS anonymous_id,
               ['social','web','app','email','web','web','carrier','email','chat','chat'][i + 1] AS channel,
               'bench' AS source, '' AS session_id, map('utm_medium', ['cpc','email','none'][h % 3 + 1]) AS context,
               if(i IN (0, 3), concat('camp-', toString(h % 20)), '') AS campaign_id,
               if(i = 0, ['google','meta','tiktok'][h % 3 + 1], '') AS platform,
               if(i = 0, toInt64(20 + h % 200), 0) AS cost_minor,
               if(i IN (0, 4, 5), 'EUR', '') AS currency,
               if(i = 3, 'clicked', '') AS email_action, if(i = 3, concat('m-', toString(c)), '') AS message_id,
               if(i IN (4, 5, 6), concat('o-', toString(c)), '') AS order_id,
               multiIf(i = 4, 'started', i = 5, if(h % 10 < 7, 'completed', 'abandoned'), '') AS checkout_status,
               if(i IN (4, 5), toInt64(1000 + h % 9000), 0) AS amount_minor,
               if(i = 6, concat('s-', toString(c)), '') AS shipment_id,
               if(i = 6, if(h % 10 < 8, 'delivered', 'failed_attempt'), '') AS delivery_status,
               if(i = 6, occurred_at + toIntervalHour(if(h % 7 < 5, 12, -12)), NULL) AS promised_by,
               if(i = 7, 'NPS', '') AS survey_kind, if(i = 7, toInt16(h % 11), NULL) AS score,
               if(i = 7, toInt16(0), NULL) AS scale_min, if(i = 7, toInt16(10), NULL) AS scale_max,
               if(i >= 8, concat('t-', toString(c)), '') AS ticket_id,
               multiIf(i = 8, 'opened', i = 9, 'resolved', '') AS support_action,
               'bench' AS kafka_topic, 0 AS kafka_partition, toInt64(number) AS kafka_offset
        FROM (SELECT number, number % {customers} AS c, intDiv(number, {customers}) AS i,
                     cityHash64(number % {customers}) AS h, h % 5 = 0 AS anon
              FROM numbers({n}))""")
    client.command(f"""
        INSERT INTO {DB}.identity_merges
        SELECT concat('a-', toString(number)), concat('c-', toString(number)),
               toDateTime64('2026-01-02 00:00:00', 3, 'UTC'), toString(generateUUIDv4(number)),
               toDateTime64('2026-01-02 00:00:00', 3, 'UTC'), 3, 'bench', 0, number
        FROM numbers({customers}) WHERE cityHash64(number) % 5 = 0""")
    client.command(f"""
        INSERT INTO {DB}.journeys (journey_id, customer_id, is_anonymous, merged_into, version, updated_at,
            first_touch_at, last_touch_at, path_event_types, path_channels, path_occurred_at, event_count, stage,
            service_contacted, kafka_topic, kafka_partition, kafka_offset)
        SELECT concat('c-', toString(number), ':1'), concat('c-', toString(number)), false, '', 1, t0, t0,
               t0 + toIntervalHour(depth), arraySlice(types, 1, depth), arraySlice(chans, 1, depth),
               arrayMap(k -> t0 + toIntervalHour(k), range(depth)), depth,
               ['awareness','consideration','consideration','consideration','purchase','purchase','fulfilment',
                'feedback','feedback','feedback'][depth], depth >= 9, 'bench', 0, number
        FROM (SELECT number, toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(number * 20) AS t0,
                     1 + cityHash64(number) % 10 AS depth,
                     ['AD_CLICK','PAGE_VIEW','PAGE_VIEW','EMAIL_ENGAGEMENT','CHECKOUT','CHECKOUT','DELIVERY_NOTICE',
                      'SURVEY_RESPONSE','SUPPORT_INTERACTION','SUPPORT_INTERACTION'] AS types,
                     ['social','web','app','email','web','web','carrier','email','chat','chat'] AS chans
              FROM numbers({customers}))""")


def main() -> None:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    path = tempfile.mkdtemp(prefix="bench-journeys-")
    settings = load_settings(clickhouse_dsn=f"chdb://{path}", clickhouse_database=DB)
    store = Store.connect(settings)
    migrate(store, settings)
    client = store.client
    start = time.perf_counter()
    load(client, customers)
    rows = client.query(f"SELECT count() FROM {DB}.touchpoints").result_rows[0][0]
    print(f"loaded {rows:,} touchpoints of {customers:,} customers in {time.perf_counter() - start:.1f} s")

    steps = funnels.parse_steps(["AD_CLICK", "PAGE_VIEW", "CHECKOUT:status=started", "CHECKOUT:status=completed",
                                 "DELIVERY_NOTICE:status=delivered"])
    touches = attribution.parse_touches("AD_CLICK;EMAIL_ENGAGEMENT:action=clicked")
    baseline = best_of(lambda: client.query(f"SELECT count(), sum(cityHash64(identity_key)) FROM {DB}.touchpoints").result_rows)
    resolved = best_of(lambda: client.query(
        f"SELECT count(), uniqExact(resolved_id) FROM {DB}.touchpoints_resolved").result_rows)
    work: dict[str, Callable[[], Any]] = {
        "funnel, 5 steps, sequential, 14 d": lambda: funnels.run_funnel(client, DB, steps, 14),
        "funnel, 5 steps, strict, 14 d": lambda: funnels.run_funnel(client, DB, steps, 14, "strict"),
        "stage drop-off": lambda: stages.run_stages(client, DB),
        "pain-point table": lambda: pain_points.run_pain_points(client, DB),
        **{f"attribution {m} by campaign": (lambda m=m: attribution.run_attribution(client, DB, touches=touches, models=[m]))
           for m in attribution.MODELS},
    }
    print(f"{'workload':44} {'ours s':>8} {'baseline s':>11} {'ratio':>7}")
    print(f"{'baseline: full scan of touchpoints':44} {baseline:8.3f} {baseline:11.3f} {1:7.2f}")
    print(f"{'scan of touchpoints_resolved (FINAL+merges)':44} {resolved:8.3f} {baseline:11.3f} {resolved / baseline:7.1f}")
    for name, fn in work.items():
        ours = best_of(fn)
        print(f"{name:44} {ours:8.3f} {baseline:11.3f} {ours / baseline:7.1f}{'' if ours < 1 else '   (over the 1 s aim)'}")


if __name__ == "__main__":
    main()
