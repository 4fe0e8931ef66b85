"""`touchpoint run`: the whole pipeline, supervised, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from touchpoint.config import Settings, load_settings
from touchpoint.cli.pipeline import Status, StatusCollector, log_dir, prepare, stage_specs
from touchpoint.cli.supervise import ChildSpec, RestartPolicy, StopSignal, Supervisor

_err = Console(stderr=True)


def status_table(status: Status, title: str = "touchpoint run") -> Table:
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    for column in ("events in", "processed", "in ClickHouse", "worker lag", "sink lag", "dead letters"):
        table.add_column(column, justify="right")
    f = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
    table.add_row(f(status.events_in), f(status.processed), f(status.in_store), f(status.worker_lag),
                  f(status.sink_lag), f(status.dead_letters))
    if status.note:
        table.caption = f"[dim]{escape(status.note)}[/dim]"
    return table


def supervise_until_stopped(settings: Settings, supervisor: Supervisor, stop: StopSignal, workers: int,
                            console: Console = _err, title: str = "touchpoint run — Ctrl-C to stop") -> None:
    """Watch the children and show the status until a stop signal arrives."""
    collector = StatusCollector(settings, [settings.worker_web_port + i for i in range(workers)])
    # Children are checked often (a restart's backoff may be well under a second); the status is collected less often.
    every = 1.0 if console.is_terminal else 10.0
    try:
        if console.is_terminal:
            with Live(status_table(Status(), title), console=console, refresh_per_second=2) as live:
                last = 0.0
                while not stop.wait(0.2):
                    for note in supervisor.check():
                        console.print(f"[yellow]{escape(note)}[/yellow]", soft_wrap=True)
                    if time.monotonic() - last >= every:
                        live.update(status_table(_with_stages(collector.collect(), supervisor), title))
                        last = time.monotonic()
        else:
            last = 0.0
            while not stop.wait(0.2):
                for note in supervisor.check():
                    console.print(note, soft_wrap=True, markup=False, highlight=False)
                if time.monotonic() - last >= every:
                    status = _with_stages(collector.collect(), supervisor)
                    console.print(status.line() + (f" | {status.note}" if status.note else ""), soft_wrap=True,
                                  markup=False, highlight=False)
                    last = time.monotonic()
    finally:
        collector.close()


def _with_stages(status: Status, supervisor: Supervisor) -> Status:
    """The status plus what the supervisor knows of each stage (restarts, last exit, backoff) in its note."""
    stages = "; ".join(f"{name}: {text}" for name, text in supervisor.stage_notes().items())
    if stages:
        status.note = f"{stages}; {status.note}" if status.note else stages
    return status


def run(
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (they share the partitions through one consumer group).")] = 1,
    sinks: Annotated[int, typer.Option("--sinks", min=1, help="Sink processes (more than 1 needs a ClickHouse server DSN).")] = 1,
    collect: Annotated[bool, typer.Option("--collect", help="Also run the HTTP collector (`touchpoint collect`) on collector_port.")] = False,
) -> None:
    """Run the pipeline until interrupted: broker (if needed), topics, migrations, then worker(s) and sink(s).

    With no configuration everything is local: the Kafka broker is started when none answers and the embedded
    ClickHouse store lives under .touchpoint/. With KAFKA_BOOTSTRAP_SERVERS and CLICKHOUSE_DSN=http(s)://...
    nothing is started but the worker and the sink. Ctrl-C or SIGTERM stops every process cleanly; a restart
    continues from the committed offsets. Logs: .touchpoint/logs/.

    A stage that crashes is restarted with a doubling backoff; the run stops when one stage crashes
    TOUCHPOINT_RUN_CRASH_LIMIT times (5) within TOUCHPOINT_RUN_CRASH_WINDOW_SECONDS (60 s).
    """
    settings = load_settings()
    specs = stage_specs(settings, workers, sinks)
    if collect:
        specs.append(ChildSpec("collector", ("collect",)))
    with StopSignal() as stop:
        prepare(settings, lambda msg: _err.print(f"[dim]{msg}[/dim]"))
        if stop.stopping:
            return
        supervisor = Supervisor(specs, log_dir(settings), RestartPolicy.from_settings(settings))
        supervisor.start()
        _err.print(f"started {', '.join(c.spec.name for c in supervisor.children)}; logs in {log_dir(settings)}")
        if settings.dsn.startswith("chdb://") and settings.sink_sql_port:
            _err.print(f"analysts: read-only SQL on http://127.0.0.1:{settings.sink_sql_port}/ (touchpoint query \"...\")")
        try:
            supervise_until_stopped(settings, supervisor, stop, workers)
        finally:
            _err.print(f"stopping ({stop.received or 'exit'}): waiting for the stages to commit and exit...")
            codes = supervisor.stop()
        _err.print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
