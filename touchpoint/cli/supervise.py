"""Process supervision for `touchpoint run` / `demo`: the stages as child processes, stopped cleanly.

Each stage runs as the same command production uses (`touchpoint worker`, `touchpoint sink`), in its own
session (so a terminal's Ctrl-C reaches only the supervisor, which then stops the children in order), with
its output in a log file under ``<data_dir>/logs``. Stopping sends SIGTERM, waits, and only then SIGKILLs:
the worker and sink commit offsets only after their work is durable, so a stop loses nothing and a restart
continues from the committed offsets. A child that dies on its own is restarted with backoff, a few times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from touchpoint.errors import TouchpointError

# `python -c` instead of the console script: works in any venv without relying on PATH.
_ENTRY = "import sys; sys.argv[0] = 'touchpoint'; from touchpoint.cli.main import main; main()"


def touchpoint_command(*args: str) -> list[str]:
    """argv that runs `touchpoint <args>` with this interpreter."""
    return [sys.executable, "-c", _ENTRY, *args]


@dataclass
class ChildSpec:
    """One supervised process: a name for logs and status, the `touchpoint` arguments, extra environment."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_start: float = 0.0
    log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts, watches and stops the pipeline's processes. Use as a context manager: leaving stops everything."""

    def __init__(self, specs: list[ChildSpec], log_dir: Path, max_restarts: int = 3) -> None:
        self.children = [Child(spec, log_dir / f"{spec.name}.log") for spec in specs]
        self.log_dir = log_dir
        self.max_restarts = max_restarts

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        if child.log is None:
            child.log = child.log_path.open("ab")
        child.log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting touchpoint {' '.join(child.spec.args)}\n".encode())
        child.log.flush()
        env = {**os.environ, **child.spec.env, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(
            touchpoint_command(*child.spec.args), env=env, stdout=child.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        child.last_start = time.monotonic()

    def check(self) -> list[str]:
        """Restart children that died (with backoff); return what happened. Raises when one keeps dying."""
        notes = []
        for child in self.children:
            if child.proc is None or child.alive:
                continue
            code = child.proc.returncode
            if child.restarts >= self.max_restarts:
                raise TouchpointError(
                    f"{child.spec.name} exited with code {code} {child.restarts + 1} times; "
                    f"see its log: {child.log_path}"
                )
            if time.monotonic() - child.last_start < 2.0 * (child.restarts + 1):
                continue  # backoff: wait a little before the next attempt
            child.restarts += 1
            notes.append(f"{child.spec.name} exited with code {code}; restarting ({child.restarts}/{self.max_restarts})")
            self._spawn(child)
        return notes

    def stop(self, timeout: float = 60.0) -> dict[str, int | None]:
        """SIGTERM every child, wait up to `timeout` seconds for all of them, then SIGKILL what is left."""
        for child in self.children:
            if child.alive:
                assert child.proc is not None
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(10)
            codes[child.spec.name] = child.proc.returncode
            if child.log is not None:
                child.log.close()
                child.log = None
        return codes

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StopSignal:
    """Turns SIGINT and SIGTERM into a flag the main loop polls (and restores the old handlers on exit)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: str | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self.event.set()

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]

    @property
    def stopping(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)
