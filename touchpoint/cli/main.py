"""Entry point of the `touchpoint` command: composes the per-area command modules.

Exit codes scripts can trust: 0 ok, 1 failure (the message says what to do), 2 usage error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from touchpoint.errors import TouchpointError

from touchpoint.cli import broker, demo, produce, query, run, schemas_cmd, simulate, sink, topics, worker, bench
from touchpoint.cli import dead_letters

app = typer.Typer(
    name="touchpoint",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help=(
        "Customer touchpoints as typed Avro events on Kafka, stitched into journeys and experience metrics, "
        "analysed in ClickHouse.\n\n"
        "Start here: [bold]touchpoint demo[/bold] runs the whole pipeline on the embedded default and prints a report."
    ),
)

app.add_typer(broker.app, name="broker")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas_cmd.app, name="schemas")
app.command("produce")(produce.produce)
app.command("simulate")(simulate.simulate)
app.command("worker")(worker.worker)
app.add_typer(sink.app, name="sink")
app.command("query")(query.query)
app.command("report")(query.report)
app.command("run")(run.run)
app.command("demo")(demo.demo)
app.command("bench")(bench.bench)
app.add_typer(dead_letters.app, name="dead-letters")

_err = Console(stderr=True)


def main() -> None:
    """Run the CLI, turning the pipeline's own errors into a clear message and exit code 1."""
    try:
        # With standalone_mode=False click returns (not raises) the code of `raise typer.Exit(n)`.
        result = app(standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except TouchpointError as exc:
        _err.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(1)
    except typer.Abort:
        _err.print("aborted")
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        if code is None:
            code = getattr(exc, "code", 0)
        sys.exit(code or 0)
    except Exception as exc:  # click usage errors
        import click

        # typer >= 0.25 vendors click (typer._click): its usage errors are not click.ClickException.
        if isinstance(exc, click.ClickException) or (hasattr(exc, "show") and hasattr(exc, "exit_code")):
            exc.show()
            sys.exit(exc.exit_code)
        raise
