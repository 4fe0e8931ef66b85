"""`touchpoint topics create|list`: the pipeline's topics (see touchpoint.topics.TOPICS)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.config import load_settings
from touchpoint.kafka_admin import TOPICS, create_topics, describe_topics, topic_config_values
from touchpoint.local_broker import ensure_broker

app = typer.Typer(
    no_args_is_help=True,
    help="The pipeline's Kafka topics: " + ", ".join(s.name for s in TOPICS)
    + " (under TOUCHPOINT_TOPIC_PREFIX; partitions TOUCHPOINT_TOPIC_PARTITIONS).",
)
_out = Console()


@app.command()
def create(
    timeout: float = typer.Option(30.0, help="Seconds to wait for the broker and for the topics."),
) -> None:
    """Create the pipeline's topics with their partitions and configs; existing topics are left alone (idempotent).

    Without KAFKA_BOOTSTRAP_SERVERS, the local broker is started first if it is not running.
    Exit status 1 when an existing topic has a different partition count than configured.
    """
    settings = load_settings()
    ensure_broker(settings, timeout=max(timeout, 120.0))
    report = create_topics(settings, timeout=timeout)
    table = Table("topic", "status", "partitions", "configs", title=f"topics on {settings.bootstrap_servers}")
    for state in report.topics:
        parts = str(state.partitions)
        if state.mismatched:
            parts = f"[red]{state.partitions} (configured {state.expected_partitions})[/red]"
        configs = ", ".join(f"{k}={v}" for k, v in state.spec.configs.items())
        table.add_row(state.name, state.status, parts, configs)
    _out.print(table)
    _out.print(f"created {len(report.created)}, already existed {len(report.existing)}")
    if report.mismatched:
        names = ", ".join(t.name for t in report.mismatched)
        _out.print(
            f"[red]partition counts differ from TOUCHPOINT_TOPIC_PARTITIONS={settings.topic_partitions}: {names}.[/red] "
            "They were not changed (growing partitions moves keys and breaks per-customer order); recreate them or "
            "set TOUCHPOINT_TOPIC_PARTITIONS to match."
        )
        raise typer.Exit(1)


@app.command("list")
def list_(
    all_topics: bool = typer.Option(False, "--all", help="List every topic on the cluster, not only the pipeline's."),
    timeout: float = typer.Option(10.0, help="Seconds to wait for the broker."),
) -> None:
    """Show the pipeline's topics as they are on the cluster: partitions, replication, cleanup policy, retention."""
    settings = load_settings()
    found = describe_topics(settings, timeout)
    pipeline = {settings.topic(spec.name): spec for spec in TOPICS}
    names = sorted(n for n in found if all_topics and not n.startswith("__")) if all_topics else list(pipeline)
    present = [n for n in names if n in found]
    configs = topic_config_values(settings, present, timeout=timeout)
    table = Table(title=f"topics on {settings.bootstrap_servers}")
    table.add_column("topic", no_wrap=True)
    for column in ("partitions", "replication", "cleanup.policy", "retention"):
        table.add_column(column)
    for name in names:
        if name not in found:
            table.add_row(name, "[red]missing[/red]", "", "", "")
            continue
        parts, replication = found[name]
        conf = configs.get(name, {})
        table.add_row(name, str(parts), str(replication), conf.get("cleanup.policy", ""),
                      _retention(conf.get("retention.ms", "")))
    _out.print(table)
    missing = [n for n in pipeline if n not in found]
    if missing and not all_topics:
        _out.print(f"{len(missing)} pipeline topic(s) missing: create them with `touchpoint topics create`.")


def _retention(ms: str) -> str:
    if ms == "-1":
        return "forever"
    if ms.isdigit() and int(ms) % 86_400_000 == 0:
        return f"{int(ms) // 86_400_000} days"
    return f"{ms} ms" if ms else ""
