"""The report's data-quality section: dead letters by reason and late touchpoints.

- **dead letters** live on the dead-letter topic only (the store never holds them: their bytes are, by definition,
  not rows), so this section reads that topic from the beginning with an unsubscribed consumer (no group, no
  commit) and counts the records by their ``dlq.stage`` and ``dlq.kind`` headers, keeping one example reason per
  group. ``total`` is the topic's record count from its offsets (exact even past ``max_read``); ``read`` says how
  many were classified. When Kafka does not answer, ``error`` says so and the rest of the report is unaffected.
- **late touchpoints**: the sum of the worker's ``late_events`` metric component (events that arrived after their
  window's watermark), the same number ``totals_from_metrics.late_events`` carries.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from touchpoint.config import Settings
from touchpoint.dead_letter import HEADER_KIND, HEADER_REASON, HEADER_STAGE, parse_headers

_MAX_READ = 200_000
_EXAMPLE_CHARS = 160


def dead_letter_summary(settings: Settings, timeout: float = 5.0, max_read: int = _MAX_READ) -> dict[str, Any]:
    """``{"topic", "total", "read", "by_reason": [{"stage", "kind", "count", "example"}], "error"}``."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from touchpoint.local_broker import probe

    topic = settings.dead_letter_topic
    out: dict[str, Any] = {"topic": topic, "total": None, "read": 0, "by_reason": [], "error": None}
    ok, detail = probe(settings.bootstrap_servers, timeout=timeout, config=settings.kafka_config())
    if not ok:
        out["error"] = f"Kafka at {settings.bootstrap_servers} did not answer ({detail})"
        return out
    consumer = Consumer(settings.kafka_config(**{"group.id": "touchpoint-report", "enable.auto.commit": False,
                                                 "log_level": 0}))
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            out["total"] = 0
            return out
        ends: dict[int, tuple[int, int]] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = (low, high)
        out["total"] = sum(high - low for low, high in ends.values())
        groups: Counter[tuple[str, str]] = Counter()
        examples: dict[tuple[str, str], str] = {}
        if ends:
            consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
            pending = {p for p in ends}
            idle = 0
            while pending and out["read"] < max_read and idle < 3:
                batch = consumer.consume(num_messages=5000, timeout=timeout / 3)
                idle = 0 if batch else idle + 1
                for message in batch:
                    if message.error() is not None:
                        continue
                    headers = parse_headers(message.headers())  # type: ignore[arg-type]  # a list for consumed records
                    key = (headers.get(HEADER_STAGE, "?"), headers.get(HEADER_KIND, "?"))
                    groups[key] += 1
                    examples.setdefault(key, headers.get(HEADER_REASON, "")[:_EXAMPLE_CHARS])
                    out["read"] += 1
                    partition, offset = message.partition(), message.offset()
                    if partition is not None and offset is not None and offset + 1 >= ends[partition][1]:
                        pending.discard(partition)
        out["by_reason"] = [{"stage": stage, "kind": kind, "count": count, "example": examples[(stage, kind)]}
                            for (stage, kind), count in groups.most_common()]
    except KafkaException as exc:
        out["error"] = f"reading {topic} failed: {exc}"
    finally:
        consumer.close()
    return out


def quality_section(report: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The keys this section adds to the report: ``dead_letters`` (see ``dead_letter_summary``) and
    ``late_touchpoints`` (int, or None when there are no metric windows)."""
    late = (report.get("totals_from_metrics") or {}).get("late_events")
    return {"dead_letters": dead_letter_summary(settings), "late_touchpoints": late}


def render_quality(report: dict[str, Any], console: Console) -> None:
    """The section in the terminal report."""
    dead = report["dead_letters"]
    late = report["late_touchpoints"]
    late_text = "—" if late is None else f"{late:,}"
    console.print(f"[bold]late touchpoints[/bold] (arrived after their window closed): {late_text}")
    if dead["error"]:
        console.print(f"[bold]dead letters[/bold]: not available — {dead['error']}")
        return
    title = f"dead letters on {dead['topic']}: {dead['total']:,}"
    if dead["read"] < (dead["total"] or 0):
        title += f" (first {dead['read']:,} classified)"
    table = Table("stage", "reason", "records", "example", title=title, title_justify="left")
    for row in dead["by_reason"]:
        table.add_row(row["stage"], row["kind"], f"{row['count']:,}", row["example"])
    console.print(table)


def quality_html(report: dict[str, Any]) -> str:
    """The section in the HTML report ('' when the report has no such section)."""
    if "dead_letters" not in report:
        return ""
    e = html.escape
    dead, late = report["dead_letters"], report["late_touchpoints"]
    late_text = "—" if late is None else f"{late:,}"
    if dead["error"]:
        body = f"<p>Dead letters: not available — {e(dead['error'])}</p>"
    else:
        rows = "".join(f'<tr><td>{e(r["stage"])}</td><td>{e(r["kind"])}</td><td class="n">{r["count"]:,}</td>'
                       f'<td>{e(r["example"])}</td></tr>' for r in dead["by_reason"])
        body = (f"<p>Dead letters on <b>{e(dead['topic'])}</b>: <b>{dead['total']:,}</b></p><table><thead><tr>"
                f'<th>stage</th><th>reason</th><th class="n">records</th><th>example</th></tr></thead>'
                f"<tbody>{rows}</tbody></table>")
    return (f'<h2 id="data-quality">Data quality</h2><p>Late touchpoints (arrived after their window closed): '
            f"<b>{late_text}</b></p>{body}")
