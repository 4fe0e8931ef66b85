"""Test helpers shared by every area: ``from tests.helpers import wait_until, free_port, run_cli``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail the test at the deadline.

    The failure names ``what`` and the last value the predicate returned (or the exception it last raised), so a
    timeout says what was actually seen instead of only that it took too long. To report more than a falsy value,
    assert inside the predicate: ``assert len(rows) >= 42, f"rows={len(rows)}"``.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - the last exception is what the failure reports
            last = f"raised {type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}", pytrace=False)
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A port P such that P and P+1 were both free (the local broker's client and controller ports)."""
    for _ in range(100):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports found on 127.0.0.1")


TOUCHPOINT = Path(sys.executable).with_name("touchpoint")
# Variables that would point a test's command at another cluster, store or config file.
_LEAKY = ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN", "TOUCHPOINT_CONFIG")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``touchpoint ARGS`` with only the TOUCHPOINT_* / Kafka / ClickHouse variables given in ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k not in _LEAKY}
    full["TOUCHPOINT_CONFIG"] = os.devnull  # no config file
    full["COLUMNS"] = "250"  # rich wraps at the terminal width; keep messages on one line
    full.update(env or {})
    return subprocess.run([str(TOUCHPOINT), *args], env=full, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def shared_dir() -> Path:
    """The project's shared material (``../shared`` beside the checkout; CI has a copy there).

    ``TOUCHPOINT_SHARED_DIR`` overrides it, for checkouts that do not sit beside ``shared/`` (git worktrees).
    A missing directory fails the test with what to do: the data is read from there, never copied in.
    """
    configured = os.environ.get("TOUCHPOINT_SHARED_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [Path(__file__).resolve().parent.parent.parent / "shared", Path("/work/shared")]
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate
    pytest.fail(f"shared material not found (looked in {', '.join(map(str, candidates))}); "
                "set TOUCHPOINT_SHARED_DIR to the directory holding data/olist-sample", pytrace=False)
