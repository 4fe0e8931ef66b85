"""The worker's phase for `touchpoint run`'s status (``touchpoint.stage_status``), sampled once a second.

While the worker has no throughput the status says why: "joining consumer group ..." (no partitions yet, or a
rebalance), "restoring N table records from changelogs" (faust's table recovery: the records between each active
changelog partition's restored offset and its high-water mark), else "running". A daemon thread reads faust's
state without touching the event loop; a value read mid-update is corrected a second later.
"""

from __future__ import annotations

import threading
from typing import Any

from touchpoint.stage_status import report_phase


def worker_phase(app: Any, group: str) -> str:
    """One line for the worker's state (see the module docstring)."""
    if getattr(app, "rebalancing", False):
        return f"joining consumer group {group} (rebalance)"
    recovery = getattr(app.__dict__.get("tables"), "_recovery", None)  # never create faust's services from here
    if recovery is not None and getattr(recovery, "in_recovery", False):
        highwaters = dict(recovery.active_highwaters)
        offsets = dict(recovery.active_offsets)
        # faust's own measure (Recovery.active_remaining): high-water mark minus restored offset, per partition
        remaining = sum(max(0, hw - (offsets.get(tp) or 0)) for tp, hw in highwaters.items() if hw is not None)
        return f"restoring {remaining:,} table records from changelogs"
    consumer = getattr(app, "_consumer", None)
    if consumer is None or not consumer.assignment():
        return f"joining consumer group {group}"
    return "running"


def start_phase_reporter(app: Any, settings: Any, interval: float = 1.0) -> threading.Event:
    """Report the worker's phase every ``interval`` seconds until the returned event is set."""
    stop = threading.Event()
    if getattr(settings, "stage_status_file", None) is None:
        return stop

    def loop() -> None:
        last = ""
        while not stop.wait(interval):
            try:
                phase = worker_phase(app, settings.worker_id)
            except (RuntimeError, AttributeError, KeyError, TypeError):
                continue  # faust changed its state while we read it: sample again next time
            if phase != last:
                report_phase(settings, phase)
                last = phase

    threading.Thread(target=loop, name="worker-phase", daemon=True).start()
    return stop
