"""`touchpoint sink`: run the ClickHouse sink; `touchpoint sink migrate`: apply the DDL only."""

from __future__ import annotations

import logging
from typing import Optional

import typer
from rich.console import Console

from touchpoint.config import get_settings

app = typer.Typer(
    invoke_without_command=True,
    help="Store the pipeline's topics in ClickHouse (no subcommand: run the sink until SIGINT/SIGTERM).",
)
_out = Console()


@app.callback()
def sink(
    ctx: typer.Context,
    idle_exit: Optional[float] = typer.Option(
        None, "--idle-exit", help="Exit after being idle (nothing to consume, nothing pending) this many seconds."
    ),
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning or error."),
) -> None:
    """Run the sink: migrate, then consume events, journeys, metrics and identity merges into ClickHouse."""
    if ctx.invoked_subcommand is not None:
        return
    from touchpoint.sinks.service import run_sink

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats = run_sink(get_settings(), idle_exit=idle_exit)
    _out.print(f"sink stopped: {stats.total_rows()} rows inserted, {stats.dead_letters} dead letters")


@app.command()
def migrate(
    cluster: Optional[str] = typer.Option(
        None, "--cluster", help="Render for this ClickHouse cluster: ON CLUSTER, Replicated*MergeTree, Distributed "
        "tables (default: TOUCHPOINT_CLICKHOUSE_CLUSTER; unset: single node)."),
    print_only: bool = typer.Option(False, "--print", help="Print the DDL script instead of applying it."),
) -> None:
    """Apply pending migrations (idempotent: re-running is a no-op)."""
    from touchpoint.sinks.migrations import cluster_script, load_migrations, migrate as apply, render
    from touchpoint.sinks.store import Store

    settings = get_settings()
    cluster = cluster or settings.clickhouse_cluster
    if print_only:
        if cluster:
            script = cluster_script(settings.clickhouse_database, cluster, settings.raw_ttl_days)
        else:
            script = [(m, [render(s, settings.clickhouse_database, settings.raw_ttl_days) for s in m.statements()])
                      for m in load_migrations()]
        for migration, statements in script:
            print(f"-- {migration.path.name}")
            for statement in statements:
                print(statement.rstrip() + ";\n")
        return
    store = Store.connect(settings)
    try:
        applied = apply(store, settings, cluster=cluster)
    finally:
        store.close()
    if applied:
        _out.print(f"applied {len(applied)} migration(s) to {settings.clickhouse_database}: {', '.join(applied)}")
    else:
        _out.print(f"{settings.clickhouse_database} is up to date")
