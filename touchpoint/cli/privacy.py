"""`touchpoint privacy erase`: a customer's or visitor's right to erasure (see touchpoint/privacy.py for how)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from touchpoint.config import load_settings
from touchpoint.errors import StoreUnavailableError, TouchpointError

app = typer.Typer(no_args_is_help=True, help="Personal data: erase a customer or an anonymous visitor.")
_err = Console(stderr=True, highlight=False)


@app.command()
def erase(
    customer: Annotated[list[str], typer.Option("--customer", help="Customer id to erase (repeatable).")] = [],  # noqa: B006
    anonymous: Annotated[list[str], typer.Option("--anonymous", help="Anonymous id to erase (repeatable).")] = [],  # noqa: B006
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for the sink's audit record (0: return once requested).")] = 60.0,
) -> None:
    """Erase people: their raw touchpoints, journeys and identity merges leave ClickHouse, the worker forgets them,
    and their later touchpoints are dropped (counted). A customer's stitched anonymous ids go with it.

    Safe while the pipeline runs, and to repeat (a second run removes nothing more). Metric windows keep their
    counts (they hold no ids). Rows disappear from queries at once; their bytes leave the disk when ClickHouse next
    merges the parts. The audit record (table privacy_erasures) holds who, when and counts, never the data.
    With pseudonymisation on, give the raw ids: they are hashed with the same key first.
    """
    if not customer and not anonymous:
        _err.print("[bold red]usage error:[/bold red] say who: --customer ID and/or --anonymous ID")
        raise typer.Exit(2)
    from touchpoint.cli.pipeline import StoreReader
    from touchpoint.kafka_admin import wait_for_broker
    from touchpoint.local_broker import ensure_broker
    from touchpoint.privacy import ensure_topic, new_request, publish
    from touchpoint.producers.pseudonymise import Pseudonymiser

    settings = load_settings()
    pseudonymiser = Pseudonymiser.from_settings(settings)
    fields = pseudonymiser.fields if pseudonymiser is not None else ()
    ids = [pseudonymiser.pseudonym(c) if pseudonymiser and "customer_id" in fields else c for c in customer]
    ids += [pseudonymiser.pseudonym(a) if pseudonymiser and "anonymous_id" in fields else a for a in anonymous]
    ensure_broker(settings)
    wait_for_broker(settings)
    ensure_topic(settings)
    request = new_request(ids)
    publish(settings, request)
    _err.print(f"erasure {request.request_id} requested for {len(request.ids)} id(s) by {request.requested_by}")
    if not wait:
        return
    reader = StoreReader(settings)
    sql = ("SELECT count() AS passes, sum(touchpoints_removed) AS touchpoints, sum(journeys_removed) AS journeys, "
           f"sum(merges_removed) AS merges FROM {settings.clickhouse_database}.privacy_erasures "
           f"WHERE request_id = '{request.request_id}'")
    deadline = time.monotonic() + wait
    last_error = ""
    while time.monotonic() < deadline:
        try:
            row = reader.rows(sql)[0]
            if int(row["passes"]):
                _err.print(f"erased: {int(row['touchpoints']):,} touchpoint rows, {int(row['journeys']):,} journey rows, "
                           f"{int(row['merges']):,} identity merges (audit: {settings.clickhouse_database}."
                           "privacy_erasures)")
                return
        except (StoreUnavailableError, TouchpointError, OSError, KeyError, IndexError) as exc:
            last_error = str(exc)
        time.sleep(0.5)
    _err.print(f"[yellow]requested, but no sink recorded it within {wait:g}s{f' ({last_error})' if last_error else ''}; "
               "a sink applies it when it (re)starts: the request is kept on the erasure topic[/yellow]")
