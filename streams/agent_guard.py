"""Stop the worker loudly when one of its agents fails, instead of running on with a dead agent.

faust logs an exception that escapes an agent and keeps the worker alive, so the partitions of that agent would
silently stop moving (a stall no lag alert can tell from slow traffic). Every agent body runs inside
``stop_worker_on_failure``: the worker stops with exit code 1 and a reason that says what to do. A full disk under
the state directory gets its own message naming the directory. After such a stop the clean-shutdown marker is
absent, so the next start discards the local state and rebuilds it from the changelogs (no half-written RocksDB).
"""

from __future__ import annotations

import asyncio
import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_DISK_FULL = ("No space left on device", "NoSpace", "ENOSPC")


def is_disk_full(exc: BaseException) -> bool:
    """True for an error that says the file system is full (OSError ENOSPC, or RocksDB's IO error text)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return any(marker in str(exc) for marker in _DISK_FULL)


def disk_nearly_full(path: Path, free_bytes: int = 4 << 20) -> bool:
    """True when the file system holding ``path`` (or its nearest existing parent) has less than ``free_bytes``."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free < free_bytes
    return False


def failure_reason(exc: BaseException, what: str, datadir: Any) -> str:
    if is_disk_full(exc):
        return (f"the disk holding the worker's state directory {datadir} is full ({what}: {exc}); free space there "
                "and restart the worker: its state is rebuilt from the changelog topics, nothing is lost")
    return f"{what} failed: {type(exc).__name__}: {exc}; restart the worker (records after its last commit are re-read)"


@contextmanager
def stop_worker_on_failure(ctx: Any, what: str) -> Iterator[None]:
    """Run an agent body; an exception stops the worker through ``ctx.fail`` (and is re-raised for faust's log)."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ctx.fail(failure_reason(exc, what, ctx.datadir))
        raise
