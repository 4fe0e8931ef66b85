"""Entry point of the `touchpoint` command: composes the per-area command modules.

Exit codes scripts can trust: 0 ok, 1 failure (the message says what to do), 2 usage or configuration error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from touchpoint.errors import SettingsError, TouchpointError

from touchpoint.cli import customers
from touchpoint.cli import privacy
from touchpoint.cli import broker, collect, demo, produce, query, run, schemas_cmd, simulate, sink, topics, worker, bench
from touchpoint.cli import dead_letters

app = typer.Typer(
    name="touchpoint",
    no_args_is_help=True,
    add_completion=False,
    # A crash's traceback must never print local variables: they hold client configs with passwords.
    pretty_exceptions_show_locals=False,
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
app.add_typer(customers.app, name="customers")
app.add_typer(privacy.app, name="privacy")
app.add_typer(collect.app, name="collect")
# journey analysis (touchpoint/cli/journeys.py)
from touchpoint.cli import journeys  # noqa: E402 - kept apart from the import block above to merge cleanly

app.command("funnel")(journeys.funnel)
app.command("stages")(journeys.stages)
app.command("pain-points")(journeys.pain_points)
app.command("attribution")(journeys.attribution)
app.add_typer(dead_letters.app, name="dead-letters")

_err = Console(stderr=True)


def main() -> None:
    """Run the CLI, turning the pipeline's own errors into a clear message and exit code 1."""
    try:
        # With standalone_mode=False click returns (not raises) the code of `raise typer.Exit(n)`.
        result = app(standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except SettingsError as exc:  # a mistake in the settings is a usage error: exit 2, like a bad option
        _err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except TouchpointError as exc:
        # soft_wrap: one message, one line (a log or a script's grep sees it whole, whatever the width)
        _err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
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
