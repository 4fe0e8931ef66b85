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

SLEEPER = (sys.executable, "-c", "import time\nwhile True: time.sleep(1)")  # a healthy stage
CRASHER = (sys.executable, "-c", "import sys; print('starting'); print('error: ClickHouse refused the insert'); sys.exit(3)")


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(crash_limit=5, window_seconds=60, backoff_seconds=1, backoff_max_seconds=5)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_exit_reasons() -> None:
    assert (exit_reason(-9), exit_reason(3), exit_reason(-15)) == ("killed by SIGKILL", "exit code 3", "killed by SIGTERM")


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
    assert "sink-0 crashed 5 times within 60s (limit 5" in message
    assert "last exit: exit code 3: error: ClickHouse refused the insert" in message  # the reason, in its words
    assert "TOUCHPOINT_RUN_CRASH_LIMIT" in message and str(tmp_path / "logs" / "sink-0.log") in message
    # the four crashes before it were restarted, after a doubling backoff, each with its reason
    exits = [n for n in notes if n.startswith("sink-0 exited")]
    assert [n.split("restarting in ")[1].split("s ")[0] for n in exits] == ["0.05", "0.1", "0.2", "0.4"]
    assert all("(exit code 3: error: ClickHouse refused the insert)" in n for n in exits)
    assert worker_alive  # the healthy stage ran until the run stopped


def _children(pid: int) -> dict[int, str]:
    """{pid: command line} of the direct children of ``pid``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    return out


def _sink_pid(run_pid: int) -> int | None:
    return next((p for p, cmd in _children(run_pid).items() if cmd.rstrip().endswith(" sink")), None)


def test_touchpoint_run_keeps_a_stage_killed_six_times_at_spaced_intervals(kafka_bootstrap: str, tmp_path: Path,
                                                                           unique: str) -> None:
    from tests.integration.e2e.helpers import namespace_env, settings_of, sql, start, stop
    from touchpoint.producers import PageView, TouchpointProducer, touchpoint

    env = namespace_env(kafka_bootstrap, tmp_path / "data", unique)
    env.update({"TOUCHPOINT_RUN_CRASH_WINDOW_SECONDS": "2", "TOUCHPOINT_RUN_CRASH_LIMIT": "5",
                "TOUCHPOINT_RUN_RESTART_BACKOFF_SECONDS": "0.2",
                # a SIGKILLed consumer stays in its group until its session times out; the restarted sink waits
                # for that before it gets partitions (its status says "joining consumer group"): 6 s, not 45
                "TOUCHPOINT_SINK_SESSION_TIMEOUT_SECONDS": "6"})
    log = tmp_path / "run.log"
    run = start(["run"], env, log)
    try:
        pid = wait_until(lambda: _sink_pid(run.pid) if run.poll() is None else -1, timeout=120, what="the sink stage")
        assert pid != -1, log.read_text()[-3000:]
        status = tmp_path / "data" / "logs" / "sink-0.status"
        # the first sink holds its partitions before it is killed, so its ghost lingers in the group
        wait_until(lambda: status.exists() and status.read_text() == "running", timeout=120, what="the sink running")
        for kill in range(6):
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            pid = wait_until(lambda: (_sink_pid(run.pid) or pid) != pid and _sink_pid(run.pid), timeout=30,
                             what=f"the sink restarted after kill {kill + 1}")
            if kill == 0:  # the killed member lingers in the group until its session ends: the status says so
                wait_until(lambda: status.exists() and status.read_text().startswith("joining consumer group"),
                           timeout=30, what="the restarted sink's phase", interval=0.05)
            while time.monotonic() - killed_at < 3.0:  # the next kill 3 s after this one, still supervising
                assert run.poll() is None, log.read_text()[-3000:]
                time.sleep(0.1)
        assert run.poll() is None, log.read_text()[-3000:]
        # the restarted sink still stores what arrives
        settings = settings_of(env)
        with TouchpointProducer(settings) as producer:
            for i in range(20):
                producer.send(touchpoint(PageView(f"https://shop.example/p/{i}", "product"), source="test",
                                         customer_id=f"c-{i}"))
        port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
        wait_until(lambda: sql(port, f"SELECT count() AS n FROM {db}.touchpoints")[0]["n"] == 20, timeout=120,
                   what="20 events stored by the restarted sink")
        assert wait_until(lambda: "last exit: killed by SIGKILL" in log.read_text(), timeout=30,
                          what="the status line naming the last exit")
    finally:
        code = stop(run)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert output.count("sink-0 exited (killed by SIGKILL); restarting in 0.2s (1 of 5 crashes allowed within 2s)") == 6
    sink_log = (tmp_path / "data" / "logs" / "sink-0.log").read_text()
    assert sink_log.count("exited: killed by SIGKILL") == 6


def test_touchpoint_run_stops_with_the_reason_when_a_stage_keeps_crashing(kafka_bootstrap: str, tmp_path: Path,
                                                                          unique: str) -> None:
    """The sink cannot bind its metrics port (another process holds it): it crashes at every start, 5 times within
    the (default, 60 s) window, and `touchpoint run` stops, saying which stage, how often, and why."""
    import socket

    from tests.integration.e2e.helpers import namespace_env, start

    env = namespace_env(kafka_bootstrap, tmp_path / "data", unique)
    env["TOUCHPOINT_RUN_RESTART_BACKOFF_SECONDS"] = "0.1"
    log = tmp_path / "run.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["TOUCHPOINT_SINK_METRICS_PORT"])))
        taken.listen()
        run = start(["run"], env, log)
        try:
            code = run.wait(180)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)
    output = log.read_text()
    assert code == 1, output[-3000:]
    assert "Traceback" not in output.split("error:")[-1]
    reason = next(line for line in output.splitlines() if line.startswith("error: "))
    assert "sink-0 crashed 5 times within 60s (limit 5" in reason, reason
    assert "Address already in use" in reason, reason
    assert str(tmp_path / "data" / "logs" / "sink-0.log") in reason
    assert output.count("sink-0 exited (exit code 1") == 4  # restarted 4 times, each exit with its reason
