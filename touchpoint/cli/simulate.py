"""`touchpoint simulate`: realistic synthetic customer journeys as JSON Lines or straight into Kafka."""

from __future__ import annotations

import sys
from enum import Enum
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from touchpoint.config import load_settings
from touchpoint.producers.simulator import DEFAULT_START, SimulationConfig, produce, simulate as run_simulation
from touchpoint.producers.simulator import write_jsonl, write_truth

_err = Console(stderr=True)


class Profile(str, Enum):
    journeys = "journeys"
    retention = "retention"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=_err, transient=False, disable=not _err.is_terminal)


def simulate(
    customers: Annotated[int, typer.Option("--customers", "-n", min=0, help="People to simulate (known customers and anonymous visitors).")] = 2_000,
    days: Annotated[float, typer.Option("--days", min=0.001, help="Time span the journeys start in, in days.")] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed (and options) gives byte-identical output.")] = 1,
    start: Annotated[Optional[datetime], typer.Option("--start", help="Start of the span (UTC), e.g. 2026-01-01. Default: 2026-01-01.")] = None,
    rate: Annotated[float, typer.Option("--rate", min=0, help="Events per second when producing; 0 = as fast as possible.")] = 0.0,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write JSON Lines to FILE ('-' = stdout).")] = None,
    produce_: Annotated[bool, typer.Option("--produce", help="Send the events to the events topic through the producer SDK.")] = False,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Write the ground truth (JSON) the pipeline must report.")] = None,
    profile: Annotated[Profile, typer.Option("--profile", help="journeys: one buying journey per person (default); retention: customer lives over months (loyal, lapsing, churning), use with e.g. --days 365.")] = None,  # type: ignore[assignment]
) -> None:
    """Simulate customers through awareness, consideration, purchase, delivery, feedback and service.

    Anonymous visitors log in later (identity stitching); ~1.5 % of events arrive twice (same event_id) and
    ~6 % arrive out of order (up to 10 minutes late). Write JSON Lines with --output (read by
    `touchpoint produce`), or send with --produce; --truth writes what the pipeline should then report.

    Example: touchpoint simulate --customers 2000 --seed 7 --output events.jsonl --truth truth.json
    """
    if output is None and not produce_:
        _err.print("[bold red]usage error:[/bold red] say where the events go: --output FILE|- and/or --produce")
        raise typer.Exit(2)
    begin = (start.replace(tzinfo=timezone.utc) if start and start.tzinfo is None else start) or DEFAULT_START
    config = SimulationConfig(customers=customers, days=days, seed=seed, start=begin,
                              profile=(profile or Profile.journeys).value)
    settings = load_settings() if produce_ else None
    with _progress() as bar:
        task = bar.add_task("simulating people", total=customers)
        sim = run_simulation(config, progress=lambda n: bar.advance(task, n))
        events = sim.arrived
        if output is not None:
            task = bar.add_task(f"writing {output}", total=len(events))
            if output == "-":
                write_jsonl(events, sys.stdout, progress=lambda n: bar.advance(task, n))
                sys.stdout.flush()
            else:
                with open(output, "w", encoding="utf-8") as out:
                    write_jsonl(events, out, progress=lambda n: bar.advance(task, n))
        if produce_:
            assert settings is not None
            task = bar.add_task(f"producing to {settings.events_topic}", total=len(events))
            produce(events, settings, rate=rate or None, progress=lambda n: bar.advance(task, n))
    if truth is not None:
        with truth.open("w", encoding="utf-8") as out:
            write_truth(sim.truth, out)
    t = sim.truth
    _err.print(
        f"[green]simulated[/green] {customers} people: {t['generated']['events_sent']} events sent "
        f"({t['events']} unique, {t['generated']['duplicates_sent']} duplicates, {t['generated']['out_of_order']} out of order), "
        f"{t['orders']} orders, NPS {t['nps']['score']}"
        + (f"; truth in {truth}" if truth else "")
    )
