"""Stop the worker at once when one of its agents fails, instead of running on with a dead agent.

faust logs an exception that escapes an agent and keeps the worker alive, so the partitions of that agent would
silently stop moving (a stall no lag alert can tell from slow traffic). Every agent body runs inside
``stop_worker_on_failure``: the worker logs why and what to do, and exits with code 1 *at once*, as after a kill.
Not a graceful stop: faust would commit the offset of the record that failed half-way through (its effects partly
written), and the rest of its frame would be lost (seen in the disk-full chaos run: 4 events missing from the
windows). Exiting at once leaves the last commit, made under the worker's commit protocol, as the restart point;
the missing clean-shutdown marker makes the next start discard the local state and rebuild it from the changelogs.
A full disk under the state directory gets its own message naming the directory.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

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
def stop_worker_on_failure(ctx: Any, what: str, exit: Callable[[int], Any] = os._exit) -> Iterator[None]:
    """Run an agent body; an exception logs the reason and ends the process with code 1 without a commit."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = failure_reason(exc, what, ctx.datadir)
        log.critical("stopping the worker at once (no commit after this failure): %s", reason, exc_info=exc)
        sys.stderr.write(f"error: worker stopped: {reason}\n")
        sys.stderr.flush()
        for handler in logging.getLogger().handlers:
            handler.flush()
        exit(1)
        raise
