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

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError
from touchpoint.streams import faust_adapter
from touchpoint.streams.app import create_app, worker_datadir
from touchpoint.kafka_admin import create_topics
from touchpoint.streams.agent_guard import disk_nearly_full, failure_reason
from touchpoint.metrics import STREAM_STATE_REBUILT
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


def run_worker(settings: Settings, *, web_port: int | None = None, data_dir: Path | None = None,
               loglevel: str = "info") -> int:
    """Run until stopped; returns the exit code (0 clean stop). Raises TouchpointError when the guard stopped it."""
    import faust

    from touchpoint.stage_status import report_phase
    from touchpoint.streams.phase import start_phase_reporter

    report_phase(settings, "starting: creating topics, preparing local state")
    port = web_port if web_port is not None else settings.worker_web_port
    created = create_topics(settings).created + ensure_topics(settings, internal_topic_specs(settings))
    datadir = worker_datadir(settings, port, data_dir)
    had_state = datadir.exists()
    discarded = prepare_datadir(datadir)
    STREAM_STATE_REBUILT.set(1 if discarded or not had_state else 0)
    app, ctx = create_app(settings, web_port=port, data_dir=data_dir)
    if ctx.suppression is not None:
        ctx.suppression.load()  # erased ids are suppressed before the first event is read (touchpoint/privacy.py)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None  # a terminal spinner only garbles logs
    ctx.request_stop = faust_adapter.request_shutdown  # the same path as a SIGTERM
    if created:
        log.warning("created topics: %s", ", ".join(created))
    if discarded:
        log.warning("previous run of this worker did not stop cleanly: local state in %s discarded, "
                    "tables are rebuilt from their changelogs", datadir)
    phase_stop = start_phase_reporter(app, settings)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:  # pragma: no cover - execute_from_commandline always exits
        code = 0
    phase_stop.set()
    # faust's final commit flushed both outboxes; records sent after it (none expected) still get out here.
    unsent = ctx.outbox.close() + ctx.changelog.close()
    if unsent:
        log.error("%d records could not be delivered at shutdown; they are produced again after a restart", unsent)
        code = code or 1
    if ctx.fatal_reason is not None:
        raise TouchpointError(f"worker stopped: {ctx.fatal_reason}")
    if code != 0 and disk_nearly_full(datadir):
        # faust can also crash on a full disk outside an agent (opening a partition's RocksDB): say so plainly.
        raise TouchpointError(failure_reason(OSError(errno.ENOSPC, "No space left on device"),
                                             f"faust stopped with exit code {code}", datadir))
    if code == 0:
        (datadir / CLEAN_MARKER).write_text("faust stopped cleanly; local tables match their changelogs\n")
    return code
