"""End-to-end helpers: the pipeline's commands as real processes, each test in its own namespace and ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import free_port, wait_until
from touchpoint.config import Settings, load_settings

TOUCHPOINT = Path(sys.executable).with_name("touchpoint")
_LEAKY = ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN", "TOUCHPOINT_CONFIG")


def namespace_env(kafka_bootstrap: str, data_dir: Path, name: str) -> dict[str, str]:
    """Everything a pipeline needs to be alone: topics, database, groups, state directory and loopback ports."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOUCHPOINT_CONFIG": os.devnull,
        "TOUCHPOINT_DATA_DIR": str(data_dir),
        "TOUCHPOINT_TOPIC_PREFIX": f"e2e-{name}",
        "TOUCHPOINT_CLICKHOUSE_DATABASE": f"e2e_{name}",
        "TOUCHPOINT_WORKER_ID": f"e2e-{name}-worker",
        "TOUCHPOINT_SINK_GROUP": f"e2e-{name}-sink",
        "TOUCHPOINT_WORKER_WEB_PORT": str(free_port()),
        "TOUCHPOINT_SINK_METRICS_PORT": str(free_port()),
        "TOUCHPOINT_SINK_SQL_PORT": str(free_port()),
        # the tests replay 30 simulated days in seconds (see SimulationConfig.replay_lateness_seconds)
        "TOUCHPOINT_ALLOWED_LATENESS_SECONDS": str(31 * 86_400),
    }


def settings_of(env: dict[str, str]) -> Settings:
    fields = {k.removeprefix("TOUCHPOINT_").lower(): v for k, v in env.items()
              if k.startswith("TOUCHPOINT_") and k != "TOUCHPOINT_CONFIG"}
    return load_settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], **fields)


def full_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_") and k not in _LEAKY}
    return {**base, "COLUMNS": "250", **env}


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`touchpoint ARGS` in the background, output to `log`."""
    out = log.open("ab")
    try:
        return subprocess.Popen([str(TOUCHPOINT), *args], env=full_env(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        out.close()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 90) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"process {proc.args} did not stop within {timeout}s after {signal.Signals(sig).name}")


def sql(port: int, query: str) -> list[dict[str, Any]]:
    """Read-only SQL through the sink's HTTP port."""
    params = urllib.parse.urlencode({"query": query + " FORMAT JSON"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/?{params}", timeout=10) as response:
        return list(json.load(response)["data"])


def progress(port: int, db: str) -> dict[str, int]:
    row = sql(port, f"SELECT (SELECT uniqExact(event_id) FROM {db}.touchpoints) AS raw, "
                    f"(SELECT count() FROM {db}.touchpoints) AS rows, "
                    f"(SELECT sum(touchpoints) FROM {db}.metrics_minute_current) AS windows, "
                    f"(SELECT count() FROM {db}.journeys) AS snapshots, "
                    f"(SELECT uniqExact(anonymous_id) FROM {db}.identity_merges) AS merges")[0]
    return {k: int(v or 0) for k, v in row.items()}


def wait_complete(env: dict[str, str], truth: dict[str, Any], timeout: float = 240,
                  procs: list[subprocess.Popen[bytes]] | None = None, logs: list[Path] | None = None) -> dict[str, int]:
    """Until every simulated event is stored and windowed, every merge recorded, and nothing changed for 3 polls."""
    port, db = int(env["TOUCHPOINT_SINK_SQL_PORT"]), env["TOUCHPOINT_CLICKHOUSE_DATABASE"]
    seen: list[dict[str, int]] = []

    def done() -> dict[str, int] | None:
        for proc, log in zip(procs or [], logs or []):
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[1:]} exited with {proc.returncode}: {log.read_text()[-3000:]}")
        now = progress(port, db)
        seen.append(now)
        complete = (now["raw"] == truth["events"] and now["windows"] == truth["events"]
                    and now["merges"] == truth["identity_merges"])
        if complete and len(seen) >= 3 and seen[-3] == seen[-2] == now:
            return now
        return None

    try:
        return wait_until(done, timeout=timeout, what=f"all {truth['events']} events queryable in {db}", interval=1.0)
    finally:
        if seen:
            print(f"last progress {seen[-1]} vs truth events {truth['events']} merges {truth['identity_merges']}")


def report(env: dict[str, str]) -> dict[str, Any]:
    import clickhouse_connect

    from touchpoint.sinks.report import build_report

    client = clickhouse_connect.get_client(host="127.0.0.1", port=int(env["TOUCHPOINT_SINK_SQL_PORT"]))
    try:
        return build_report(client, env["TOUCHPOINT_CLICKHOUSE_DATABASE"])
    finally:
        client.close()


def comparable(rep: dict[str, Any]) -> dict[str, Any]:
    """A report without what legitimately differs between two runs (its database name and time)."""
    return {k: v for k, v in rep.items() if k not in ("database", "generated_at")}


def produce_in_background(events: list[dict], settings: Settings, rate: float | None) -> threading.Thread:
    from touchpoint.producers.simulator import produce

    errors: list[BaseException] = []

    def send() -> None:
        try:
            produce(events, settings, rate=rate)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test through .errors
            errors.append(exc)

    thread = threading.Thread(target=send, name="e2e-produce", daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread
