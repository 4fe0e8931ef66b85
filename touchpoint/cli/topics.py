"""Placeholder: `touchpoint topics` commands (being written)."""

import typer

app = typer.Typer(no_args_is_help=True, help="(being written)")
