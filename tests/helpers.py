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


def _ephemeral_low() -> int:
    """Lowest port of the OS's ephemeral range (outgoing connections take their local ports from it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports are handed out below the ephemeral range: a port the OS picked for ``bind(0)`` lies inside it, so any
# outgoing connection (a Kafka client, a ClickHouse request) could take it before the server that was meant to have it
# binds -- seen in CI as a broker's controller failing with "Address already in use". Below the range only other
# listeners compete; each pytest process starts at its own offset (from its pid) and moves forward, so it never hands
# out the same port twice and concurrent runs rarely meet.
_PORT_FLOOR = 20000
_port_cursor = _PORT_FLOOR + (os.getpid() * 97) % max(1, _ephemeral_low() - _PORT_FLOOR - 2)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _next_free(width: int) -> int:
    """The next port P (from this process's cursor) such that P..P+width-1 are all free on 127.0.0.1 now."""
    global _port_cursor
    low, high = _PORT_FLOOR, _ephemeral_low() - width
    for _ in range(high - low):
        port = _port_cursor
        _port_cursor = port + width if port + width < high else low
        if all(_bindable(port + i) for i in range(width)):
            return port
    raise RuntimeError(f"no {width} consecutive free ports on 127.0.0.1 between {low} and {high + width}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and outside the ephemeral range (see ``_PORT_FLOOR``)."""
    return _next_free(1)


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free (the local broker's client and controller ports)."""
    return _next_free(2)


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
