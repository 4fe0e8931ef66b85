"""`touchpoint collect`: the HTTP collector and browser tracker; `touchpoint collect keygen`: a new write key."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from touchpoint.config import load_settings

app = typer.Typer(no_args_is_help=False, help="Touchpoints over HTTP: POST /v1/batch, the tracker at /touchpoint.js.")
_err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def collect(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default: the metrics_host setting).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: the collector_port setting).")] = None,
) -> None:
    """Run the collector until SIGINT/SIGTERM (in-flight requests are answered and the producer flushed first).

    Write keys come from the TOML file named by TOUCHPOINT_COLLECTOR_KEYS_FILE (re-read when it changes);
    browsers need their origin in TOUCHPOINT_COLLECTOR_ALLOWED_ORIGINS. The API is described at /openapi.json.
    """
    if ctx.invoked_subcommand is not None:
        return
    from touchpoint.producers.collector import serve

    settings = load_settings()
    if settings.collector_keys_file is None:
        _err.print("[yellow]no write keys: set TOUCHPOINT_COLLECTOR_KEYS_FILE (see `touchpoint collect keygen`); "
                   "every POST gets 401 until then[/yellow]")
    serve(settings, host, port, print_line=lambda line: _err.print(line))


@app.command("keygen")
def keygen(
    source: Annotated[str, typer.Option("--source", help="Name the key's events are produced under (their `source`).")],
    event_types: Annotated[str, typer.Option("--event-types", help="Comma-separated event types the key may send.")] =
        "PAGE_VIEW,AD_CLICK,CHECKOUT",
    channels: Annotated[str, typer.Option("--channels", help="Comma-separated channels the key may send.")] = "web",
) -> None:
    """Print a new write key (stderr: give it to the client) and its TOML entry (stdout: append it to the keys file)."""
    from touchpoint.errors import ConfigError
    from touchpoint.producers.collector.keys import key_entry, new_key, parse_keys

    key = new_key()
    entry = key_entry(key, source, [t.strip() for t in event_types.split(",") if t.strip()],
                      [c.strip() for c in channels.split(",") if c.strip()])
    try:
        parse_keys(entry, "the new entry")
    except ConfigError as exc:
        _err.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(2) from None
    # The key on stderr, the entry on stdout: `keygen ... >> keys.toml` stores the digest and never the key.
    _err.print(f"write key (give it to the client; it is not stored anywhere): {key}", soft_wrap=True)
    print(entry, end="")
