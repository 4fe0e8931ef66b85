"""Who holds the embedded ClickHouse store: the engine belongs to one process at a time.

chdb (like clickhouse-server) takes an exclusive ``flock`` on ``<path>/status`` and writes its PID there. Probing
that lock (and releasing it at once) tells for certain whether another process holds the store, and the PID and
its command line say which one, so `touchpoint run` can say "stop process N (touchpoint run ...)" instead of a
generic "Cannot lock file" with advice about the DSN.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoreHolder:
    """The process holding an embedded store: its PID (None if unreadable) and command line."""

    pid: int | None
    command: str

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        return f"process {self.pid}" + (f" ({self.command})" if self.command else "")


def store_holder(path: Path) -> StoreHolder | None:
    """The process holding the embedded store at ``path``, or None when it is free (or does not exist yet)."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None  # no status file: nobody runs the engine there
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _holder(status)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder(status: Path) -> StoreHolder:
    pid = None
    try:
        for line in status.read_text().splitlines():
            if line.startswith("PID:"):
                pid = int(line.split(":", 1)[1].strip())
    except (OSError, ValueError):
        return StoreHolder(None, "")
    return StoreHolder(pid, _command(pid) if pid is not None else "")


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [a.decode(errors="replace") for a in argv if a]
    # Our own stages run as `python -c "<entry>" worker|sink|run ...`: show them as `touchpoint ...`.
    if len(words) >= 3 and words[1] == "-c" and "touchpoint.cli.main" in words[2]:
        words = ["touchpoint", *words[3:]]
    elif words and words[0].endswith("/touchpoint"):
        words[0] = "touchpoint"
    return " ".join(words)[:120]
