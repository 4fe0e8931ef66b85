"""Fixtures every test area shares (names are a contract: other areas rely on them).

- ``kafka_bootstrap`` (session): KAFKA_BOOTSTRAP_SERVERS if set, else a private local Kafka broker on free ports.
- ``chdb_dsn`` (session): the one embedded ClickHouse path of this pytest process (chdb allows one per process).
- ``unique`` (function): short unique string for topic prefixes, consumer groups and databases.
- ``settings`` (function): Settings isolated per test (own topic prefix, database, data dir).
- ``pipeline_topics`` (function): ``settings`` with the pipeline's topics created.
- ``prometheus`` (function): factory starting the real Prometheus server scraping given targets.
Helpers: ``tests.helpers.wait_until``, ``free_port``, ``run_cli`` (the installed command as a subprocess).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, free_port_pair, wait_until
from touchpoint.config import Settings, load_settings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for the whole session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from touchpoint.local_broker import LocalBroker

    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port_pair())
    try:
        broker.start(timeout=180)
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def unique() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str, tmp_path: Path, chdb_dsn: str) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"tp{unique}",
        data_dir=tmp_path,
        clickhouse_database=f"tp_{unique}",
        clickhouse_dsn=chdb_dsn,
    )


@pytest.fixture
def pipeline_topics(settings: Settings) -> Settings:
    from touchpoint.kafka_admin import create_topics

    create_topics(settings)
    return settings


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: ``url = prometheus(["127.0.0.1:9464"], scrape_interval="1s")`` starts Prometheus scraping those targets.

    Real Debian ``prometheus`` binary on a free loopback port with tmp storage; stopped at the end of the test.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        reason = ("PROMETHEUS NOT INSTALLED: this test needs the `prometheus` binary; "
                  "run deploy/local/bootstrap.sh (apt-get install prometheus)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str], scrape_interval: str = "1s", job: str = "touchpoint") -> str:
        n = len(procs)
        storage = tmp_path / f"prometheus-{n}"
        storage.mkdir()
        config = storage / "prometheus.yml"
        quoted = ", ".join(f"'{t}'" for t in targets)
        config.write_text(
            f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
            f"scrape_configs:\n  - job_name: '{job}'\n    static_configs:\n      - targets: [{quoted}]\n"
        )
        port = free_port()
        log = open(storage / "prometheus.log", "wb")
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={storage / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            import urllib.request

            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}; log: {(storage / 'prometheus.log').read_text()[-2000:]}")
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                return resp.status == 200

        wait_until(ready, timeout=60, what=f"prometheus ready at {url}")
        return url

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test (``-m "not integration"`` runs the fast layer)."""
    for item in items:
        if f"{os.sep}tests{os.sep}integration{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.integration)
