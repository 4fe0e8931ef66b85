"""The worker's web page: ``/metrics`` serves the shared Prometheus registry on the faust web port (bound to settings.metrics_host)."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from touchpoint.metrics import REGISTRY
from touchpoint.streams.app import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])
