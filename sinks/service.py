"""The sink process: migrate, serve /metrics and read-only SQL, run the loop, stop cleanly on SIGINT/SIGTERM.

Steps of ``run_sink``, in order:
1. connect to ClickHouse (``settings.dsn``) and apply pending migrations (a failed one stops here);
2. serve Prometheus ``/metrics`` on ``settings.sink_metrics_port`` (0: off);
3. when the store is embedded and ``settings.sink_sql_port`` is not 0, serve read-only SQL over the ClickHouse
   HTTP interface (``touchpoint.sinks.http_server``, its own thread) (the embedded engine belongs to this process, so analysts query through it);
4. run the loop until SIGINT/SIGTERM: then flush, commit, close.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from touchpoint import metrics

from touchpoint.sinks.loop import SinkLoop, SinkStats
from touchpoint.sinks.migrations import migrate
from touchpoint.sinks.store import Store

log = logging.getLogger(__name__)


def start_sql_server(settings: Any, store: Store) -> Any:
    """Start the read-only ClickHouse HTTP interface over the embedded store (it runs its own thread);
    returns the server (``close()`` stops it) or None when not applicable."""
    if not store.embedded or not settings.sink_sql_port:
        return None
    from touchpoint.sinks.http_server import serve_readonly

    return serve_readonly(store, host=settings.sink_sql_host, port=settings.sink_sql_port, settings=settings)


def run_sink(settings: Any, *, idle_exit: float | None = None) -> SinkStats:
    from touchpoint.kafka_security import check_access

    check_access(settings)  # wrong credentials or CA: a clear error now, not a consumer retrying forever
    store = Store.connect(settings)
    try:
        applied = migrate(store, settings)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        if settings.sink_metrics_port:
            metrics.serve(settings.sink_metrics_port, addr=settings.metrics_host)
        sql_server = start_sql_server(settings, store)
        loop = SinkLoop(settings, store)

        def _stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: flushing, committing and closing", signum)
            loop.stop()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _stop)
            signal.signal(signal.SIGTERM, _stop)
        try:
            return loop.run(idle_exit=idle_exit)
        finally:
            if sql_server is not None:
                sql_server.close()
    finally:
        store.close()
