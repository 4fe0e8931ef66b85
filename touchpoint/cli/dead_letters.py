"""`touchpoint dead-letters list|show|replay`: inspect the dead-letter topic and replay fixed records.

The work is done by ``touchpoint.producers.dead_letters``; these commands parse options and print.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="Records the pipeline could not use (dead-letter topic): counts, a page of records, and replay after a fix.",
)
_out = Console()

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

_SINCE = typer.Option(None, "--since", help="Only dead letters written at or after this time: 30m, 2h, 7d ago, or "
                      "an ISO time (2026-12-01T08:00:00Z).")
_UNTIL = typer.Option(None, "--until", help="Only dead letters written before this time (same forms as --since).")
_STAGE = typer.Option(None, "--stage", help="Only this stage (worker, sink); repeatable.")
_KIND = typer.Option(None, "--kind", help="Only this reason kind (undecodable, unknown_schema, invalid, "
                     "rejected_by_store); repeatable.")
_TYPE = typer.Option(None, "--event-type", help="Only this event type (decoded from the record); repeatable.")
_REPLAYED = typer.Option(False, "--include-replayed", help="Also records already replayed (left out by default).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table (for scripts).")


def parse_time(text: str | None, option: str, now: float | None = None) -> int | None:
    """``30m`` / ``2h`` / ``7d`` (ago) or an ISO 8601 time, as epoch milliseconds; BadParameter otherwise."""
    if text is None:
        return None
    relative = _RELATIVE.match(text.strip())
    if relative:
        ago = float(relative.group(1)) * _UNIT_S[relative.group(2)]
        return int(((time.time() if now is None else now) - ago) * 1000)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration ago (30m, 2h, 7d) nor an ISO time "
                                 "(2026-12-01T08:00:00Z)", param_hint=option) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def _selection(since: str | None, until: str | None, stage: list[str] | None, kind: list[str] | None,
               event_type: list[str] | None, include_replayed: bool) -> Any:
    from touchpoint.producers.dead_letters import Selection

    return Selection(since_ms=parse_time(since, "--since"), until_ms=parse_time(until, "--until"),
                     stages=tuple(stage or ()), kinds=tuple(kind or ()), event_types=tuple(event_type or ()),
                     include_replayed=include_replayed)


def _scan(selection: Any) -> tuple[Any, Any]:
    from touchpoint.local_broker import ensure_broker
    from touchpoint.producers.dead_letters import scan

    settings = get_settings()
    ensure_broker(settings)
    return settings, scan(settings, selection)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@app.command("list")
def list_(since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL, stage: Optional[list[str]] = _STAGE,
          kind: Optional[list[str]] = _KIND, event_type: Optional[list[str]] = _TYPE,
          include_replayed: bool = _REPLAYED, as_json: bool = _JSON) -> None:
    """Counts of dead letters by stage, reason kind and event type (one per source record)."""
    from touchpoint.producers.dead_letters import summarise

    settings, result = _scan(_selection(since, until, stage, kind, event_type, include_replayed))
    counts = summarise(result.letters)
    rows: list[dict[str, Any]] = [{"stage": s, "kind": k, "event_type": t, "count": n}
                                  for (s, k, t), n in sorted(counts.items())]
    if as_json:
        print(json.dumps({"topic": settings.dead_letter_topic, "total": len(result.letters), "groups": rows,
                          "replayed_left_out": 0 if include_replayed else len(result.replayed)}))
        return
    table = Table("stage", "reason kind", "event type", "count",
                  title=f"dead letters on {settings.dead_letter_topic}: {len(result.letters)}")
    for row in rows:
        table.add_row(str(row["stage"]), str(row["kind"]), str(row["event_type"]), str(row["count"]))
    _out.print(table)
    if result.replayed and not include_replayed:
        _out.print(f"{len(result.replayed)} replayed record(s) left out (--include-replayed shows them)")


def _original(letter: Any, width: int) -> str:
    if letter.decoded is not None:
        text = json.dumps(letter.decoded, default=str, separators=(",", ":"))
    else:
        raw = letter.value or b""
        text = f"({letter.decode_error}) {raw[:width].hex(' ') if not raw.isascii() else raw[:width].decode()}"
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def show(since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL, stage: Optional[list[str]] = _STAGE,
         kind: Optional[list[str]] = _KIND, event_type: Optional[list[str]] = _TYPE,
         include_replayed: bool = _REPLAYED, limit: int = typer.Option(20, "--limit", min=1, help="Records per page."),
         page: int = typer.Option(1, "--page", min=1, help="Page number, oldest first."),
         width: int = typer.Option(200, "--width", min=20, help="Longest original record printed (characters)."),
         as_json: bool = _JSON) -> None:
    """A page of dead letters: reason, stage, source topic/partition/offset and the original record decoded."""
    settings, result = _scan(_selection(since, until, stage, kind, event_type, include_replayed))
    chosen = result.letters[(page - 1) * limit: page * limit]
    if as_json:
        print(json.dumps({"total": len(result.letters), "page": page, "records": [{
            "at": _iso(x.at_ms), "stage": x.stage, "kind": x.kind, "reason": x.reason, "event_type": x.event_type,
            "source": {"topic": x.source_topic, "partition": x.source_partition, "offset": x.source_offset,
                       "index": x.index},
            "dead_letter": {"partition": x.dlq_partition, "offset": x.dlq_offset},
            "key": (x.key or b"").decode("utf-8", "replace"), "original": x.decoded,
            "original_error": x.decode_error, "original_bytes": len(x.value or b""),
        } for x in chosen]}, default=str))
        return
    pages = max(1, -(-len(result.letters) // limit))
    _out.print(f"dead letters on {settings.dead_letter_topic}: {len(result.letters)}, page {page} of {pages}")
    for x in chosen:
        index = "" if x.index is None else f" item {x.index}"
        _out.print(f"[bold]{_iso(x.at_ms)}[/bold] {x.stage}/{x.kind} from {x.source_topic}[{x.source_partition}]"
                   f"@{x.source_offset}{index} (dead letter {x.dlq_partition}@{x.dlq_offset}) key="
                   f"{(x.key or b'').decode('utf-8', 'replace')!r}", highlight=False, markup=True)
        _out.print(f"  reason: {x.reason}", highlight=False, markup=False)
        _out.print(f"  original: {_original(x, width)}", highlight=False, markup=False)


@app.command("replay")
def replay_(since: Optional[str] = _SINCE, until: Optional[str] = _UNTIL, stage: Optional[list[str]] = _STAGE,
            kind: Optional[list[str]] = _KIND, event_type: Optional[list[str]] = _TYPE,
            include_replayed: bool = _REPLAYED,
            dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be replayed."),
            as_json: bool = _JSON) -> None:
    """Re-validate the selected dead letters with the current settings and re-produce those that pass to the events
    topic, unchanged (same event_id: downstream dedup makes a replay idempotent). What still fails stays."""
    from touchpoint.producers.dead_letters import replay

    settings, result = _scan(_selection(since, until, stage, kind, event_type, include_replayed))
    outcomes = replay(settings, result.letters, dry_run=dry_run)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    if as_json:
        print(json.dumps({"dry_run": dry_run, "selected": len(result.letters), "outcomes": counts, "records": [
            {"identity": o.letter.identity, "outcome": o.outcome, "detail": o.detail} for o in outcomes]}))
        return
    table = Table("outcome", "records", title=f"replay of {len(result.letters)} dead letter(s)"
                  + (" (dry run: nothing produced)" if dry_run else f" to {settings.events_topic}"))
    for outcome, n in sorted(counts.items()):
        table.add_row(outcome, str(n))
    _out.print(table)
    for o in outcomes:
        if o.outcome not in ("replayed", "would_replay"):
            _out.print(f"  {o.letter.identity}: {o.outcome}: {o.detail}", highlight=False, markup=False)
