"""The faust App factory: settings → faust configuration, and the steps wired onto one App.

Steps (one module each): ``decode_step`` (events → frames on the identity/journey topics, bad records → dead letters),
``identity_step`` (alias table, routing, merges), ``journey_step`` (journeys, windows, snapshots) and
``web`` (/metrics). See streams/README.md for the topology and its guarantees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import faust

from touchpoint.config import Settings
from touchpoint.kafka_security import aiokafka_security
from touchpoint.privacy import SuppressionList
from touchpoint.schemas.codec import AvroCodec
from touchpoint.streams.dead_letters import RatioGuard
from touchpoint.streams.journey import JourneyConfig
from touchpoint.streams.outbox import Outbox, install

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What the steps of one worker process share (no Kafka objects: those live on the App)."""

    settings: Settings
    codec: AvroCodec
    journey_cfg: JourneyConfig
    guard: RatioGuard
    datadir: Path
    outbox: Outbox  # every record but table changelogs
    changelog: Outbox  # table changelog records (tracks acknowledged offsets)
    before_flush: list[Callable[[], object]] = field(default_factory=list)  # hooks run before every offset commit
    after_flush: list[Callable[[], None]] = field(default_factory=list)  # hooks run once both outboxes are flushed
    table_writers: list[Any] = field(default_factory=list)  # streams.tables.TableWriter of each table
    suppression: SuppressionList | None = None  # erased ids (touchpoint/privacy.py): their events are dropped
    fatal_reason: str | None = None
    request_stop: Callable[[], None] | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        """Stop the worker loudly: log, remember the reason (exit code 1), and ask the worker to stop."""
        if self.fatal_reason is None:
            self.fatal_reason = reason
            log.critical("stopping the worker: %s", reason)
            if self.request_stop is not None:
                self.request_stop()


def worker_datadir(settings: Settings, web_port: int, data_dir: Path | None = None) -> Path:
    """``<data_dir>/worker/<worker_id>-<web port>``: distinct per worker process on one machine."""
    base = (data_dir or settings.data_dir).resolve()
    return base / "worker" / f"{settings.worker_id}-{web_port}"


def _brokers(settings: Settings) -> list[str]:
    return [f"kafka://{hp.strip()}" for hp in settings.bootstrap_servers.split(",") if hp.strip()]


def _credentials(settings: Settings) -> Any:
    """faust's credentials object for ``kafka_security.aiokafka_security`` (the one conversion for aiokafka)."""
    kwargs = aiokafka_security(settings)
    protocol = kwargs["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    return faust.SASLCredentials(
        username=kwargs["sasl_plain_username"],
        password=kwargs["sasl_plain_password"],
        mechanism=kwargs["sasl_mechanism"],
        ssl_context=kwargs.get("ssl_context"),  # present for SASL_SSL: faust then speaks SASL_SSL
    )


def faust_config(settings: Settings, *, web_port: int, datadir: Path) -> dict[str, Any]:
    """The faust settings of the worker, each chosen for a reason given beside it."""
    return {
        "broker": _brokers(settings),
        "broker_credentials": _credentials(settings),
        "store": "rocksdb://",  # rocksdict-backed tables, recovered from their changelog topics
        "datadir": str(datadir),
        # Every topic carries bytes the steps (de)serialize themselves: Avro at the edges, JSON inside.
        "key_serializer": "raw",
        "value_serializer": "raw",
        # Tables and repartition topics must have the partition count of the pipeline topics.
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "topic_disable_leader": True,  # no <id>-__assignor-__leader topic: nothing runs "on leader"
        "table_standby_replicas": 0,  # 2 cores per machine: a standby copy halves throughput; recovery replays
        "consumer_auto_offset_reset": "earliest",  # a new worker group starts at the beginning of the events
        # At-least-once: faust flushes the producer before committing; a small commit interval bounds replays.
        "broker_commit_every": 10_000,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 8192,
        "stream_recovery_delay": 0.0,
        "producer_acks": -1,
        # Throughput: each produce request costs ~0.4 ms of Python in aiokafka; a 5 ms linger gave ~3 records per
        # request under load, 50 ms gives full batches. Snapshots are at most this much later.
        "producer_linger": 0.05,
        "producer_max_batch_size": 256 * 1024,
        "processing_guarantee": "at_least_once",  # exactly_once duplicates after kill/restart (faust #175)
        "web_enabled": True,
        "web_port": web_port,
        # Loopback unless TOUCHPOINT_METRICS_HOST says otherwise (0.0.0.0 in containers, for Prometheus).
        "web_bind": settings.metrics_host,
        "web_host": settings.metrics_host,
        "autodiscover": False,
        "worker_redirect_stdouts": False,
    }


def _persist(ctx: WorkerContext) -> None:
    acked = ctx.changelog.take_acked()
    for writer in ctx.table_writers:
        writer.persist_offsets(acked)


def create_app(settings: Settings, *, web_port: int | None = None, data_dir: Path | None = None) -> tuple[faust.App, WorkerContext]:
    """Build the worker App with every step registered. Nothing connects to Kafka until the App starts."""
    from touchpoint.streams import decode_step, faust_adapter, identity_step, journey_step, web
    from touchpoint.streams.topology import identity_topic, journey_topic

    port = web_port if web_port is not None else settings.worker_web_port
    datadir = worker_datadir(settings, port, data_dir)
    app = faust.App(settings.worker_id, **faust_config(settings, web_port=port, datadir=datadir))
    ctx = WorkerContext(
        settings=settings,
        codec=AvroCodec.from_settings(settings),
        journey_cfg=JourneyConfig.from_settings(settings),
        guard=RatioGuard(settings.dead_letter_max_ratio, settings.dead_letter_min_events),
        datadir=datadir,
        outbox=Outbox(settings, on_failure=lambda reason: ctx.fail(reason)),
        changelog=Outbox(settings, on_failure=lambda reason: ctx.fail(reason), track_offsets=True),
        suppression=SuppressionList(settings),
    )
    from touchpoint.streams import forget

    decode_step.register(app, ctx)
    identities = identity_step.register(app, ctx)
    journeys = journey_step.register(app, ctx)
    forget.register(app, ctx, identities, journeys)
    web.register(app, ctx)
    ctx.after_flush.insert(0, lambda: _persist(ctx))
    install(app, [ctx.outbox, ctx.changelog], ctx.before_flush, ctx.after_flush)
    faust_adapter.seek_uncommitted_to_start_after_rebalance(app.consumer, [identity_topic(settings), journey_topic(settings)])
    return app, ctx
