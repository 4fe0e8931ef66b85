"""What a stage is doing right now, in one line, for `touchpoint run`'s status while it has no throughput.

Under `touchpoint run` every stage gets its own file (``settings.stage_status_file``, set by the supervisor) and
overwrites it whenever its phase changes: "joining consumer group touchpoint-sink", "restoring 20,421 table
records from changelogs", "paused: insert into touchpoints failed ...; retry 3". The supervisor reads it for the
status line. Outside `touchpoint run` the setting is unset and ``report_phase`` does nothing. Writes are atomic
(temporary file + rename), so a reader never sees half a line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def report_phase(settings: Any, phase: str) -> None:
    """Record ``phase`` for the supervisor; a no-op when no status file is configured. Never raises."""
    path: Path | None = getattr(settings, "stage_status_file", None)
    if path is None:
        return
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(phase[:300], encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # the status is a courtesy: a full disk must not stop the stage


def read_phase(path: Path) -> str:
    """The last phase a stage reported ('' when none)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
