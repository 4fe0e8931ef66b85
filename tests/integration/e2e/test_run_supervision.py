"""`touchpoint run`'s supervisor restarts like a service manager: doubling backoff, a crash budget counted in a time
window (so a stage killed now and then runs forever), and the reason of each exit in the notes, the status and the
stage's log. Real child processes, really SIGKILLed; the window and intervals are scaled down (defaults: 5 crashes
within 60 s, so a stage killed every 30 s keeps running).

Before: the 4th crash of a child stopped the run for good, however far apart the crashes were.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import wait_until
from touchpoint.cli.supervise import ChildSpec, CrashBudgetExceeded, RestartPolicy, Supervisor, exit_reason

pytestmark = pytest.mark.integration

SLEEPER = (sys.executable, "-c", "import time\nwhile True: time.sleep(1)")
CRASHER = (sys.executable, "-c", "import sys; sys.exit(3)")


def _new_pid(supervisor: Supervisor, old: int | None, timeout: float = 15.0) -> int:
    """Run the supervisor's checks until its child runs as a process other than ``old``; return the new pid."""

    def restarted() -> int | None:
        supervisor.check()
        child = supervisor.children[0]
        return child.proc.pid if child.alive and child.proc is not None and child.proc.pid != old else None

    return wait_until(restarted, timeout=timeout, what="the child restarted", interval=0.05)


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(crash_limit=5, window_seconds=60, backoff_seconds=1, backoff_max_seconds=5)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_exit_reasons() -> None:
    assert (exit_reason(-9), exit_reason(3), exit_reason(-15)) == ("killed by SIGKILL", "exit code 3", "killed by SIGTERM")


def test_stage_killed_six_times_at_intervals_longer_than_the_window_keeps_running(tmp_path: Path) -> None:
    # Scaled: 6 kills 3 s apart, crash window 2 s, limit 5 (like 6 kills 30 s apart under the 60 s default).
    policy = RestartPolicy(crash_limit=5, window_seconds=2.0, backoff_seconds=0.1, backoff_max_seconds=1.0)
    supervisor = Supervisor([ChildSpec("stage", (), argv=SLEEPER)], tmp_path / "logs", policy)
    supervisor.start()
    try:
        pid = _new_pid(supervisor, None)
        for kill in range(1, 7):
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            pid = _new_pid(supervisor, pid)
            assert supervisor.children[0].restarts == kill
            assert len(supervisor.children[0].crashes) == 1  # the earlier crashes are outside the window
            # wait until 3 s after the kill, still supervising (a check may restart nothing here)
            while time.monotonic() - killed_at < 3.0:
                assert supervisor.check() == []
                time.sleep(0.05)
        assert supervisor.children[0].alive
        assert supervisor.stage_notes() == {"stage": "restarted 6x, last exit: killed by SIGKILL"}
    finally:
        supervisor.stop(timeout=5)
    stage_log = (tmp_path / "logs" / "stage.log").read_text()
    assert stage_log.count("exited: killed by SIGKILL (1 crash(es) in the last 2s)") == 6


def test_five_crashes_within_the_window_stop_with_the_reason(tmp_path: Path) -> None:
    policy = RestartPolicy(crash_limit=5, window_seconds=60.0, backoff_seconds=0.05, backoff_max_seconds=0.4)
    supervisor = Supervisor([ChildSpec("sink-0", (), argv=CRASHER), ChildSpec("worker-0", (), argv=SLEEPER)],
                            tmp_path / "logs", policy)
    supervisor.start()
    notes: list[str] = []
    try:
        with pytest.raises(CrashBudgetExceeded) as info:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                notes += supervisor.check()
                time.sleep(0.02)
        worker_alive = supervisor.children[1].alive
    finally:
        supervisor.stop(timeout=5)
    message = str(info.value)
    assert "sink-0 crashed 5 times within 60s (limit 5" in message and "last exit: exit code 3" in message
    assert "TOUCHPOINT_RUN_CRASH_LIMIT" in message and str(tmp_path / "logs" / "sink-0.log") in message
    # the four crashes before it were restarted, after a doubling backoff, each with its reason
    exits = [n for n in notes if n.startswith("sink-0 exited")]
    assert [n.split("restarting in ")[1].split("s ")[0] for n in exits] == ["0.05", "0.1", "0.2", "0.4"]
    assert all("(exit code 3)" in n for n in exits)
    assert worker_alive  # the healthy stage ran until the run stopped
