"""`touchpoint worker`: run one stream worker (journeys, identity stitching, metric windows)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from touchpoint.config import get_settings


def worker(
    web_port: Optional[int] = typer.Option(
        None, "--web-port", help="Web port serving /metrics on 127.0.0.1 (default: TOUCHPOINT_WORKER_WEB_PORT)."
    ),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="State directory root; tables go to <dir>/worker/<id>-<port> (default: TOUCHPOINT_DATA_DIR)."
    ),
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning or error."),
) -> None:
    """Run a stream worker until SIGINT/SIGTERM. Start several (distinct --web-port) to split the partitions."""
    from touchpoint.streams.worker import run_worker

    code = run_worker(get_settings(), web_port=web_port, data_dir=data_dir, loglevel=loglevel)
    raise typer.Exit(code)
