"""`touchpoint demo`: the whole pipeline on simulated customers, checked against the simulator's truth.

Each demo run gets its own namespace (topics `touchpoint-demo-<run>.*`, database `demo_<run>`, its own consumer
groups), so runs never mix and the report covers exactly the simulated traffic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from touchpoint.config import Settings, load_settings
from touchpoint.errors import TouchpointError
from touchpoint.cli.demo_check import Check, compare, wait_queryable
from touchpoint.cli.pipeline import StoreReader, log_dir, prepare, stage_specs
from touchpoint.cli.run import supervise_until_stopped
from touchpoint.cli.supervise import RestartPolicy, StopSignal, Supervisor

_out = Console()
_err = Console(stderr=True)


def namespace(run_id: str, replay_lateness_seconds: int | None = None) -> dict[str, str]:
    """Settings (as environment) that keep one demo run apart from everything else.

    The demo replays weeks of simulated history in seconds with the default allowed lateness: what is older than
    that reaches its own window as a correction row. ``replay_lateness_seconds`` (benchmarks only) raises the
    lateness so that history is absorbed into windows instead."""
    extra = {"TOUCHPOINT_ALLOWED_LATENESS_SECONDS": str(replay_lateness_seconds)} if replay_lateness_seconds else {}
    return {**extra,
        "TOUCHPOINT_TOPIC_PREFIX": f"touchpoint-demo-{run_id}",
        "TOUCHPOINT_CLICKHOUSE_DATABASE": f"demo_{run_id}",
        "TOUCHPOINT_WORKER_ID": f"touchpoint-demo-{run_id}",
        "TOUCHPOINT_SINK_GROUP": f"touchpoint-demo-{run_id}-sink",
    }


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_err)


def print_checks(checks: list[Check]) -> None:
    table = Table(title="report vs simulator truth", title_justify="left")
    for column in ("figure", "from", "truth", "pipeline", ""):
        table.add_column(column, justify="right" if column in ("truth", "pipeline") else "left")
    for c in checks:
        actual = f"{c.actual:.2f}" if isinstance(c.actual, float) else str(c.actual)
        table.add_row(escape(c.name), c.source, str(c.expected), escape(actual),
                      "[green]match[/green]" if c.ok else "[bold red]DIFFERS[/bold red]")
    _out.print(table)


def print_next_steps(settings: Settings, keep_running: bool) -> None:
    db = settings.clickhouse_database
    lines = [
        "[bold]Query the store next[/bold]",
        f"  touchpoint query \"SELECT day, conversion_pct, on_time_pct, nps, csat_pct FROM {db}.kpi_day ORDER BY day\"",
        f"  touchpoint query \"SELECT path, journeys, conversion_pct FROM {db}.journey_paths ORDER BY journeys DESC LIMIT 10\"",
        f"  TOUCHPOINT_CLICKHOUSE_DATABASE={db} touchpoint report",
    ]
    if keep_running and settings.dsn.startswith("chdb://"):
        lines += [
            f"  while it runs, any ClickHouse client works on http://127.0.0.1:{settings.sink_sql_port}/ (read-only):",
            f"  curl 'http://127.0.0.1:{settings.sink_sql_port}/' --data-binary 'SELECT nps, on_time_pct FROM {db}.kpi_day FORMAT PrettyCompact'",
        ]
    else:
        lines.append("  (`touchpoint run` serves the same store read-only over HTTP for curl, clickhouse-connect or Grafana)")
    _out.print("\n".join(lines))


def demo(
    customers: Annotated[int, typer.Option("--customers", "-n", min=1, help="People to simulate.")] = 2_000,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed (same seed, same traffic).")] = 1,
    timeout: Annotated[float, typer.Option("--timeout", min=10, help="Seconds to wait for everything to be queryable.")] = 300.0,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave worker and sink running after the report (Ctrl-C stops).")] = False,
    truth_file: Annotated[Optional[Path], typer.Option("--truth", help="Also write the simulator's truth (JSON) here.")] = None,
    report_file: Annotated[Optional[Path], typer.Option("--report-json", help="Also write the report (JSON) here.")] = None,
) -> None:
    """Run the whole pipeline on a few thousand simulated customers and check the report against the truth.

    Starts what is needed (local Kafka broker, topics, embedded ClickHouse), simulates customers, sends their
    touchpoints through worker and sink, waits until all of it is queryable, prints the report and says which
    figures match the simulator's ground truth. Exit status 1 when any figure differs.
    """
    from touchpoint.producers.simulator import SimulationConfig, produce, simulate

    bad: list[Check] = []
    config = SimulationConfig(customers=customers, seed=seed)
    run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    ns = namespace(run_id)  # default allowed lateness: late history reaches its windows as corrections
    settings = load_settings(**{k.removeprefix("TOUCHPOINT_").lower(): v for k, v in ns.items()})
    specs = stage_specs(settings, 1, 1, env=ns)
    started = time.monotonic()
    with StopSignal() as stop:
        prepare(settings, lambda msg: _err.print(f"[dim]{msg}[/dim]"), env=ns)
        supervisor = Supervisor(specs, log_dir(settings), RestartPolicy.from_settings(settings))
        supervisor.start()
        _err.print(f"[dim]started worker and sink (logs in {log_dir(settings)}); demo run {run_id}[/dim]")
        try:
            with _progress() as bar:
                task = bar.add_task("simulating customers", total=customers)
                sim = simulate(config, progress=lambda n: bar.advance(task, n))
                task = bar.add_task(f"producing to {settings.events_topic}", total=len(sim.arrived))
                produce(sim.arrived, settings, progress=lambda n: bar.advance(task, n))
                reader = StoreReader(settings)
                task = bar.add_task("waiting until queryable", total=sim.truth["events"])
                wait_queryable(reader, settings, sim.truth, timeout, stop, supervisor,
                               progress=lambda done: bar.update(task, completed=done))
            if stop.stopping:
                raise TouchpointError(f"interrupted ({stop.received})")
            report = build_report(reader, settings)
            if truth_file is not None:
                truth_file.write_text(json.dumps(sim.truth, indent=2, sort_keys=True) + "\n")
            if report_file is not None:
                report_file.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
            print_report(report)
            checks = compare(report, sim.truth)
            print_checks(checks)
            bad = [c for c in checks if not c.ok]
            elapsed = time.monotonic() - started
            if bad:
                _out.print(f"[bold red]{len(bad)} of {len(checks)} figures differ from the simulator's truth[/bold red] ({elapsed:.0f}s)")
            else:
                _out.print(f"[bold green]all {len(checks)} figures match the simulator's truth[/bold green] "
                           f"({sim.truth['events']:,} events from {customers:,} customers, {elapsed:.0f}s)")
            print_next_steps(settings, keep_running)
            if keep_running:
                supervise_until_stopped(settings, supervisor, stop, 1, title="touchpoint demo — Ctrl-C to stop")
        finally:
            _err.print("[dim]stopping worker and sink...[/dim]")
            supervisor.stop()
    if bad:
        raise typer.Exit(1)


def build_report(reader: StoreReader, settings: Settings) -> dict[str, Any]:
    from touchpoint.sinks.customers import customer_params
    from touchpoint.sinks.report import build_report as sink_report

    return sink_report(reader.client(), settings.clickhouse_database, customer_params=customer_params(settings))


def print_report(report: dict[str, Any]) -> None:
    from touchpoint.cli.query import render_report  # the same rendering as `touchpoint report`

    render_report(report, _out)
