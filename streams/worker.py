"""Run one worker process: create topics, prepare the state directory, run the faust App until stopped.

Lifecycle, in order:

1. create the missing pipeline topics (``touchpoint.kafka_admin``, the same as `touchpoint topics create`) and the
   worker's internal topics (partition counts checked: tables depend on them);
2. state directory ``<data_dir>/worker/<worker_id>-<web port>``: if the previous run did not stop cleanly (no
   ``clean-shutdown`` marker), delete it so the tables are rebuilt from their changelogs. After a kill, the local
   RocksDB can hold writes whose changelog records never reached Kafka; replaying the input would then find them
   "already applied" and the changelog (the copy other workers recover from) would miss them for good;
3. run faust until SIGINT/SIGTERM (clean stop: consumer stops, pending window snapshots are sent, the producer is
   flushed, offsets committed) or until the dead-letter ratio guard stops it (exit code 1, reason logged);
4. on a clean stop, write the marker so the next start reuses the local state.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
from pathlib import Path
from typing import Any

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError
from touchpoint.streams.app import create_app, worker_datadir
from touchpoint.kafka_admin import create_topics
from touchpoint.streams.topology import ensure_topics, internal_topic_specs

log = logging.getLogger(__name__)

CLEAN_MARKER = "clean-shutdown"


def prepare_datadir(datadir: Path) -> bool:
    """Make ``datadir`` ready; returns True when local state was discarded after an unclean stop."""
    marker = datadir / CLEAN_MARKER
    discarded = False
    if datadir.exists() and not marker.exists():
        shutil.rmtree(datadir)
        discarded = True
    datadir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    return discarded


def flush_table_writes_before_commit(producer: Any) -> None:
    """Make the flush faust runs before every offset commit wait for every table write queued so far.

    Table writes (``table[k] = v``) queue their changelog records in faust's ProducerBuffer; before committing
    offsets faust calls ``producer.flush()``, whose ``buffer.flush()`` gives up as soon as 0.1 s pass without a
    record leaving the buffer (a busy event loop or a full aiokafka batch is enough). The offsets were then
    committed while the changelog records of the events below them were still in memory: a SIGKILL lost that
    state for good (the events are never read again). The buffer is FIFO and each queued record is a future
    resolved when Kafka acknowledged it, so waiting for the newest one waits for all of them.
    """
    buffer = producer.buffer
    drain_idle = buffer.flush

    async def flush() -> None:
        queued = list(buffer.pending._queue)  # FutureMessage objects, oldest first
        if not queued or buffer.state != "running":
            await drain_idle()  # nothing queued, or stopping: faust's own flush (raises if stuck)
            return
        await asyncio.shield(queued[-1])

    buffer.flush = flush


def run_worker(settings: Settings, *, web_port: int | None = None, data_dir: Path | None = None,
               loglevel: str = "info") -> int:
    """Run until stopped; returns the exit code (0 clean stop). Raises TouchpointError when the guard stopped it."""
    import faust

    port = web_port if web_port is not None else settings.worker_web_port
    created = create_topics(settings).created + ensure_topics(settings, internal_topic_specs(settings))
    datadir = worker_datadir(settings, port, data_dir)
    discarded = prepare_datadir(datadir)
    app, ctx = create_app(settings, web_port=port, data_dir=data_dir)
    flush_table_writes_before_commit(app.producer)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None  # a terminal spinner only garbles logs
    ctx.request_stop = lambda: worker._schedule_shutdown(signal.SIGTERM)  # the same path as a SIGTERM
    if created:
        log.warning("created topics: %s", ", ".join(created))
    if discarded:
        log.warning("previous run of this worker did not stop cleanly: local state in %s discarded, "
                    "tables are rebuilt from their changelogs", datadir)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:  # pragma: no cover - execute_from_commandline always exits
        code = 0
    if ctx.fatal_reason is not None:
        raise TouchpointError(f"worker stopped: {ctx.fatal_reason}")
    if code == 0:
        (datadir / CLEAN_MARKER).write_text("faust stopped cleanly; local tables match their changelogs\n")
    return code
