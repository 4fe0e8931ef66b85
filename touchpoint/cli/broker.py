"""`touchpoint broker start|stop|status`: the local single-node Kafka broker (real Apache Kafka, KRaft, loopback).

When KAFKA_BOOTSTRAP_SERVERS (or the config file) names a cluster, these commands say so and start nothing.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from touchpoint.config import Settings, load_settings
from touchpoint.kafka_admin import unreachable_message
from touchpoint.local_broker import BrokerStatus, local_broker, probe

app = typer.Typer(
    no_args_is_help=True,
    help="The local Kafka broker (Apache Kafka 4.1.1, KRaft, single node on 127.0.0.1). "
    "Data under TOUCHPOINT_DATA_DIR/kafka, port TOUCHPOINT_LOCAL_BROKER_PORT (controller: port+1).",
)
_out = Console()


def _external(settings: Settings) -> bool:
    if settings.uses_local_broker:
        return False
    _out.print(
        f"An external Kafka cluster is configured (KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}); "
        "no local broker is started or stopped. Unset KAFKA_BOOTSTRAP_SERVERS to use the local one."
    )
    return True


def _describe(status: BrokerStatus) -> str:
    return (
        f"Kafka {status.version} running on [bold]{status.bootstrap}[/bold] (pid {status.pid}); "
        f"data {status.data_dir}, log {status.log_path}"
    )


@app.command()
def start(
    timeout: float = typer.Option(120.0, help="Seconds to wait until the broker accepts clients."),
) -> None:
    """Start the local broker (fetching its jars with Maven on first use) and wait until it accepts clients."""
    settings = load_settings()
    if _external(settings):
        return
    broker = local_broker(settings)
    if broker.is_running():
        _out.print("Already running.")
    else:
        _out.print(f"Starting Kafka on {broker.bootstrap} ...")
    status = broker.start(timeout=timeout, output=sys.stderr)
    _out.print(_describe(status))


@app.command()
def stop(
    timeout: float = typer.Option(30.0, help="Seconds to wait for a graceful shutdown before killing the broker."),
) -> None:
    """Stop the local broker gracefully (SIGTERM, then SIGKILL after the timeout)."""
    settings = load_settings()
    if _external(settings):
        return
    broker = local_broker(settings)
    if broker.stop(timeout=timeout):
        _out.print(f"Stopped the local Kafka broker on {broker.bootstrap}.")
    else:
        _out.print(f"The local Kafka broker ({broker.data_dir}) was not running.")


@app.command()
def status() -> None:
    """Report whether the broker runs, its port, pid and version. Exit status 0 when running/reachable, 1 when not."""
    settings = load_settings()
    if _external(settings):
        ok, detail = probe(settings.bootstrap_servers, timeout=5.0, config=settings.kafka_config(log_level=0))
        if ok:
            _out.print(f"{settings.bootstrap_servers} is reachable.")
            return
        _out.print(unreachable_message(settings, detail))
        raise typer.Exit(1)
    current = local_broker(settings).status()
    if current.running:
        _out.print(_describe(current))
        return
    _out.print(f"The local Kafka broker is not running (port {current.port}, data {current.data_dir}). "
               "Start it with `touchpoint broker start`.")
    raise typer.Exit(1)
