"""Process supervision for `touchpoint run` / `demo`: the stages as child processes, stopped cleanly.

Each stage runs as the same command production uses (`touchpoint worker`, `touchpoint sink`), in its own
session (so a terminal's Ctrl-C reaches only the supervisor, which then stops the children in order), with
its output in a log file under ``<data_dir>/logs``. Stopping sends SIGTERM, waits, and only then SIGKILLs:
the worker and sink commit offsets only after their work is durable, so a stop loses nothing and a restart
continues from the committed offsets.

A child that dies on its own is restarted like a service manager does (``RestartPolicy``): after a backoff that
starts at ``run_restart_backoff_seconds`` and doubles with each crash still inside the crash window (capped at
``run_restart_backoff_max_seconds``). The crash budget is counted in that window: ``run_crash_limit`` crashes of
one stage within ``run_crash_window_seconds`` (defaults: 5 within 60 s) stop the run with the reason
(``CrashBudgetExceeded``); crashes older than the window are forgotten, so a stage killed every 30 s runs forever.
Each exit's reason (exit code, or the signal that killed it) goes to the run's output, the stage's log, and the
status (``Supervisor.stage_notes``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

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
    argv: tuple[str, ...] | None = None  # a command to run instead of `touchpoint <args>` (tests)

    def command(self) -> list[str]:
        return list(self.argv) if self.argv is not None else touchpoint_command(*self.args)


class CrashBudgetExceeded(TouchpointError):
    """One stage crashed ``crash_limit`` times within the crash window: restarting it again would not help."""


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed stage is restarted, and when the run gives up (see the module docstring)."""

    crash_limit: int = 5
    window_seconds: float = 60.0
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> RestartPolicy:
        return cls(settings.run_crash_limit, settings.run_crash_window_seconds, settings.run_restart_backoff_seconds,
                   settings.run_restart_backoff_max_seconds)

    def backoff(self, recent_crashes: int) -> float:
        """Wait before the next start, given the crashes inside the window (this one included)."""
        return float(min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, recent_crashes - 1)))


def exit_reason(code: int | None) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (Popen reports a signal as a negative code)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_start: float = 0.0
    log: IO[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)  # monotonic times of the crashes inside the window
    last_exit: str | None = None
    restart_at: float | None = None  # set while the child waits out its backoff
    log_offset: int = 0  # where this incarnation's output starts in the log file

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# Our CLI's "error: ..." line, a logged ERROR/CRITICAL record, or the last line of a traceback ("OSError: ...").
_ERROR_LINE = re.compile(r"^(error: |\S+ \S+ (ERROR|CRITICAL) |[A-Za-z_.]*(Error|Exception): )")


def _last_error(log_path: Path, offset: int, limit: int = 200) -> str:
    """The last error line this incarnation of a stage wrote to its log ('' if none): why it exited, in its words."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(offset, log.seek(0, os.SEEK_END) - 64 * 1024))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    found = next((line.strip() for line in reversed(lines) if _ERROR_LINE.search(line.strip())), "")
    return found[:limit]


class Supervisor:
    """Starts, watches and stops the pipeline's processes. Use as a context manager: leaving stops everything."""

    def __init__(self, specs: list[ChildSpec], log_dir: Path, policy: RestartPolicy | None = None) -> None:
        self.children = [Child(spec, log_dir / f"{spec.name}.log") for spec in specs]
        self.log_dir = log_dir
        self.policy = policy or RestartPolicy()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)

    def status_path(self, child: Child) -> Path:
        return self.log_dir / f"{child.spec.name}.status"

    def _spawn(self, child: Child) -> None:
        self.status_path(child).unlink(missing_ok=True)  # a phase of the previous incarnation is stale
        if child.log is None:
            child.log = child.log_path.open("ab")
        child.log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting touchpoint {' '.join(child.spec.args)}\n".encode())
        child.log.flush()
        child.log_offset = child.log.tell()
        # COLUMNS: rich would wrap a stage's error at 80 columns in its log; one line is what the supervisor quotes.
        env = {**os.environ, **child.spec.env, "PYTHONUNBUFFERED": "1", "COLUMNS": "400",
               "TOUCHPOINT_STAGE_STATUS_FILE": str(self.status_path(child))}
        child.proc = subprocess.Popen(
            child.spec.command(), env=env, stdout=child.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        child.last_start = time.monotonic()

    def check(self) -> list[str]:
        """Notice children that died, restart them after their backoff; return what happened (one note per event).

        Raises ``CrashBudgetExceeded`` when a child crashed ``crash_limit`` times within the crash window.
        """
        notes = []
        policy = self.policy
        for child in self.children:
            if child.proc is None or child.alive:
                continue
            now = time.monotonic()
            name = child.spec.name
            if child.restart_at is None:  # a new exit
                child.last_exit = exit_reason(child.proc.returncode)
                said = _last_error(child.log_path, child.log_offset) if (child.proc.returncode or 0) > 0 else ""
                if said:
                    child.last_exit += f": {said}"
                child.crashes.append(now)
                while child.crashes and now - child.crashes[0] > policy.window_seconds:
                    child.crashes.popleft()
                recent = len(child.crashes)
                self._log_line(child, f"exited: {child.last_exit} ({recent} crash(es) in the last {policy.window_seconds:g}s)")
                if recent >= policy.crash_limit:
                    message = (
                        f"{name} crashed {recent} times within {policy.window_seconds:g}s (limit {policy.crash_limit}: "
                        f"TOUCHPOINT_RUN_CRASH_LIMIT / TOUCHPOINT_RUN_CRASH_WINDOW_SECONDS), last exit: {child.last_exit}; "
                        f"stopping the pipeline. See the stage's log: {child.log_path}"
                    )
                    raise CrashBudgetExceeded(message)
                delay = policy.backoff(recent)
                child.restart_at = now + delay
                note = (f"{name} exited ({child.last_exit}); restarting in {delay:g}s "
                        f"({recent} of {policy.crash_limit} crashes allowed within {policy.window_seconds:g}s)")
                notes.append(note)  # the caller prints it (the stage's log has the line above)
            elif now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                self._spawn(child)
                notes.append(f"{name} restarted (restart {child.restarts}; last exit: {child.last_exit})")
        return notes

    def stage_notes(self) -> dict[str, str]:
        """What each stage is doing when it is not simply running, for the status: the phase it reported
        (``touchpoint.stage_status``: joining group, restoring tables, paused), a backoff, restarts and the last
        exit's reason."""
        from touchpoint.stage_status import read_phase

        out = {}
        now = time.monotonic()
        for child in self.children:
            parts = []
            if child.restart_at is not None:
                parts.append(f"restarting in {max(0.0, child.restart_at - now):.0f}s after {child.last_exit}")
            elif child.alive:
                phase = read_phase(self.status_path(child))
                if phase and phase != "running":
                    parts.append(phase)
            if child.restarts and child.restart_at is None:
                parts.append(f"restarted {child.restarts}x, last exit: {child.last_exit}")
            if parts:
                out[child.spec.name] = ", ".join(parts)
        return out

    def _log_line(self, child: Child, text: str) -> None:
        if child.log is not None:
            child.log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n".encode())
            child.log.flush()

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
