"""The local single-node Kafka broker, as a Python API over ``deploy/local/kafka.sh``.

The broker is real Apache Kafka (KRaft, loopback only): its jars come from Maven on first use and are cached;
its data lives under a data dir (``settings.data_dir / "kafka"`` for the CLI, a tmp dir in tests). When
``KAFKA_BOOTSTRAP_SERVERS`` names a cluster, nothing here starts anything: :func:`ensure_broker` returns that
cluster's address.

Typical use::

    bootstrap = ensure_broker(settings)          # starts the local broker only if it is needed

    broker = LocalBroker(tmp_dir, port=free_port) # tests: a private broker on any free ports
    broker.start()
    ...
    broker.stop()
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from touchpoint.config import Settings
from touchpoint.errors import BrokerUnavailableError, ConfigError

KAFKA_VERSION = "4.1.1"
_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "local" / "kafka.sh"


def kafka_script() -> Path:
    """``deploy/local/kafka.sh`` of the repository checkout this package is installed (editable) from."""
    if not _SCRIPT.is_file():
        raise ConfigError(
            f"the local Kafka scripts are not at {_SCRIPT.parent} (this touchpoint is not installed from a repository "
            "checkout); set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster instead"
        )
    return _SCRIPT


@dataclass(frozen=True)
class BrokerStatus:
    """What ``touchpoint broker status`` reports about the local broker."""

    running: bool
    port: int
    pid: int | None
    version: str
    data_dir: Path
    log_path: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalBroker:
    """One local Kafka broker on ``127.0.0.1:port`` (controller on ``controller_port``, default port+1).

    ``start`` returns once a Kafka AdminClient can list topics; ``stop`` shuts down gracefully (SIGTERM, controlled
    shutdown) and kills after a deadline. The process is detached: it outlives the Python process that started it
    until ``stop`` is called (``touchpoint broker stop``).
    """

    def __init__(self, data_dir: Path | str, port: int, controller_port: int | None = None,
                 secure_port: int | None = None) -> None:
        """``secure_port``: also listen there with SASL_SSL (SCRAM-SHA-512), reading the broker's key, certificate,
        SCRAM users and optional client CA from :attr:`secure_dir` (see deploy/local/kafka.sh); for tests of Kafka
        security. Users are created when the storage is first formatted: write them before the first ``start``."""
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.secure_port = secure_port

    @property
    def secure_dir(self) -> Path:
        """Where the secured listener's material goes: broker.pem, scram-users, optional client-ca.pem."""
        return self.data_dir / "secure"

    @property
    def secure_bootstrap(self) -> str:
        if self.secure_port is None:
            raise ConfigError("this LocalBroker has no secured listener (pass secure_port)")
        return f"127.0.0.1:{self.secure_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def _run(self, *args: str, output: IO[str] | None = None, check: bool = True) -> tuple[int, str, str]:
        """Run kafka.sh; return (exit status, stdout, stderr). Its progress lines (stderr) are also copied to
        ``output`` as they come (the first fetch takes a while)."""
        proc = subprocess.Popen(
            ["bash", str(kafka_script()), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        err_lines = []
        for line in proc.stderr:  # kafka.sh writes little to stdout, so reading stderr first cannot block on it
            err_lines.append(line)
            if output is not None and not line.startswith("kafka.sh: "):  # errors go into the exception instead
                output.write(line)
                output.flush()
        out = proc.stdout.read()
        code = proc.wait()
        err = "".join(err_lines)
        if check and code != 0:
            detail = err.strip() or f"exit status {code}"
            raise BrokerUnavailableError(f"local Kafka broker: kafka.sh {args[0]} failed: {detail}")
        return code, out, err

    def fetch(self, output: IO[str] | None = None) -> None:
        """Download the broker's jars into the cache if they are not there yet."""
        self._run("fetch", output=output)

    def status(self) -> BrokerStatus:
        code, out, _ = self._run("status", str(self.data_dir), check=False)
        fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
        running = code == 0 and out.startswith("running")
        return BrokerStatus(
            running=running,
            port=int(fields.get("port", self.port)),
            pid=int(fields["pid"]) if running and "pid" in fields else None,
            version=fields.get("version", KAFKA_VERSION),
            data_dir=self.data_dir,
            log_path=self.log_path,
        )

    def is_running(self) -> bool:
        """True while the broker process of this data dir is alive (it may not accept clients yet)."""
        return self.status().running

    def start(self, timeout: float = 120.0, output: IO[str] | None = None) -> BrokerStatus:
        """Fetch jars (first use), format storage (once), start the broker and wait until it serves clients.

        Idempotent: an already running broker on this data dir is waited for and reported. Raises
        BrokerUnavailableError naming the server log when the broker dies or does not answer by the deadline.
        """
        if not self.is_running():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            secure = [str(self.secure_port)] if self.secure_port is not None else []
            self._run("start", str(self.data_dir), str(self.port), str(self.controller_port), *secure, output=output)
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerUnavailableError(
                    f"the local Kafka broker on {self.bootstrap} exited during start-up; see {self.log_path} "
                    f"and {self.data_dir / 'logs' / 'kafka.out'}"
                )
            ok, last_error = probe(self.bootstrap, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if ok:
                return self.status()
            time.sleep(0.3)
        raise BrokerUnavailableError(
            f"the local Kafka broker on {self.bootstrap} did not accept clients within {timeout:.0f}s "
            f"(last error: {last_error}); see {self.log_path}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker: SIGTERM (controlled shutdown), wait ``timeout`` seconds, then SIGKILL.

        Returns True if a running broker was stopped, False if none was running.
        """
        was_running = self.is_running()
        self._run("stop", str(self.data_dir), str(max(1, int(timeout))))
        return was_running


def probe(bootstrap: str, timeout: float = 5.0, config: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Whether a Kafka cluster at ``bootstrap`` answers a metadata request within ``timeout``; and the error if not."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap}
    if config:
        conf.update(config)
    conf["bootstrap.servers"] = bootstrap
    # librdkafka logs every refused connection to stderr; these are expected while we poll.
    conf.setdefault("log_level", 0)
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host in ("127.0.0.1", "localhost") and port.isdigit():
        # Cheap check first: nothing listening at all is the common case before start-up.
        try:
            with socket.create_connection((host, int(port)), timeout=min(timeout, 1.0)):
                pass
        except OSError as exc:
            return False, f"{bootstrap}: {exc.strerror or exc}"
    try:
        AdminClient(conf).list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        return False, err.str() if isinstance(err, KafkaError) else str(exc)
    return True, ""


def local_broker(settings: Settings) -> LocalBroker:
    """The local broker the CLI manages: data under ``settings.data_dir / "kafka"``, port ``local_broker_port``."""
    return LocalBroker(settings.data_dir / "kafka", settings.local_broker_port)


def ensure_broker(settings: Settings, timeout: float = 120.0, output: IO[str] | None = sys.stderr) -> str:
    """The bootstrap servers to use, starting the local broker when none is configured and none is reachable.

    With ``KAFKA_BOOTSTRAP_SERVERS`` set, nothing is started (and reachability is the caller's concern:
    :func:`touchpoint.kafka_admin.wait_for_broker`).
    """
    if not settings.uses_local_broker:
        return settings.bootstrap_servers
    ok, _ = probe(settings.bootstrap_servers, timeout=3.0)
    if ok:
        return settings.bootstrap_servers
    local_broker(settings).start(timeout=timeout, output=output)
    return settings.bootstrap_servers


@contextmanager
def broker_for(settings: Settings, timeout: float = 120.0, output: IO[str] | None = sys.stderr) -> Iterator[str]:
    """Like :func:`ensure_broker`, and stop the local broker on exit if (and only if) this call started it.

    For commands such as ``touchpoint run`` and ``touchpoint demo`` that should leave the machine as they found it.
    """
    broker = local_broker(settings)
    started = settings.uses_local_broker and not probe(settings.bootstrap_servers, timeout=3.0)[0]
    bootstrap = ensure_broker(settings, timeout=timeout, output=output)
    try:
        yield bootstrap
    finally:
        if started:
            broker.stop()
