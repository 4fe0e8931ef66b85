"""The one settings object.

Sources, highest priority first: environment variables (prefix ``TOUCHPOINT_``; ``KAFKA_BOOTSTRAP_SERVERS``
and ``CLICKHOUSE_DSN`` are also read unprefixed), then a TOML config file (``TOUCHPOINT_CONFIG`` or
``./touchpoint.toml``), then the defaults below, which run everything locally with nothing installed.
Nothing else in the code base reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError as PydanticValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from touchpoint.errors import ConfigError

LOCAL_BOOTSTRAP = "127.0.0.1:19092"


def _config_file() -> Path:
    return Path(os.environ.get("TOUCHPOINT_CONFIG", "touchpoint.toml"))


class Settings(BaseSettings):
    """Every knob of the pipeline, with defaults that run locally."""

    model_config = SettingsConfigDict(env_prefix="TOUCHPOINT_", extra="forbid", populate_by_name=True)

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(Path(".touchpoint"), description="Local state: broker data, jars, embedded ClickHouse, worker tables.")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the services bind their HTTP ports to (/metrics, worker web, read-only SQL); 0.0.0.0 in containers.",
    )

    # --- Kafka ---------------------------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TOUCHPOINT_KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
        description="Existing Kafka cluster. Unset: the local single-node broker on 127.0.0.1:19092, started on demand.",
    )
    kafka_security_protocol: str = Field("PLAINTEXT", description="librdkafka security.protocol.")
    kafka_sasl_mechanism: str | None = Field(None, description="librdkafka sasl.mechanism.")
    kafka_sasl_username: str | None = Field(None, description="librdkafka sasl.username.")
    kafka_sasl_password: SecretStr | None = Field(None, description="librdkafka sasl.password (never printed).")
    local_broker_port: int = Field(19092, description="Client port of the local broker (controller uses port+1).")
    schema_registry_url: str | None = Field(
        None, description="Confluent schema registry URL (mock:// for tests). Unset: Avro single-object encoding."
    )

    # --- topics ------------------------------------------------------------------------------
    topic_prefix: str = Field("touchpoint", description="Prefix of every topic the pipeline uses.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the pipeline topics (created by `touchpoint topics create`).")
    topic_replication: int = Field(1, ge=1, description="Replication factor of the pipeline topics.")

    # --- producer ------------------------------------------------------------------------------
    producer_linger_ms: int = Field(20, ge=0, description="librdkafka linger.ms: how long the producer waits to fill a batch.")
    producer_compression: str = Field("lz4", description="none, gzip, snappy, lz4 or zstd.")
    max_string_bytes: int = Field(64 * 1024, ge=1, description="Longest string field an event may carry.")

    # --- worker (streams) -----------------------------------------------------------------------
    worker_id: str = Field("touchpoint-worker", description="Faust app id: workers with the same id share the work (consumer groups <id> and <id>-decode).")
    worker_web_port: int = Field(6066, description="Worker web port; Prometheus scrapes /metrics here.")
    dedup_horizon_days: float = Field(7.0, gt=0, description="How long an event_id is remembered for dedup.")
    journey_inactivity_days: float = Field(30.0, gt=0, description="Inactivity gap after which a new journey opens.")
    journey_path_limit: int = Field(100, ge=1, description="Longest path kept in a journey snapshot (the rest is counted).")
    allowed_lateness_seconds: float = Field(3600.0, ge=0, description="Late events within this still update their window.")
    dead_letter_max_ratio: float = Field(0.5, gt=0, le=1, description="Stop the worker when more than this share of recent events is dead-lettered.")
    dead_letter_min_events: int = Field(1000, ge=1, description="The ratio limit applies only after this many recent events.")

    # --- sink (ClickHouse) ----------------------------------------------------------------------
    clickhouse_dsn: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN", "clickhouse_dsn"),
        description="chdb:///path for the embedded engine, http(s)://user:pass@host:8123 for a server. Unset: chdb under data_dir.",
    )
    clickhouse_database: str = Field("touchpoint", description="Database holding the pipeline's tables.")
    clickhouse_cluster: str | None = Field(
        None,
        description="ClickHouse cluster (remote_servers name) for the DDL: ON CLUSTER, Replicated*MergeTree and Distributed "
        "tables (sinks/cluster_ddl.py). Unset: single-node tables.",
    )
    raw_ttl_days: int = Field(0, ge=0, description="TTL of raw touchpoints in days; 0 keeps them forever.")
    sink_group: str = Field("touchpoint-sink", description="Consumer group of the sink.")
    sink_batch_rows: int = Field(50_000, ge=1, description="The sink inserts a batch when it holds this many rows...")
    sink_batch_seconds: float = Field(1.0, gt=0, description="...or when its oldest row waited this long.")
    sink_metrics_port: int = Field(9464, description="Sink's Prometheus /metrics port.")
    sink_sql_port: int = Field(8124, description="Read-only ClickHouse HTTP interface over the embedded store (0 disables).")
    sink_resume_from_store: bool = Field(
        True,
        description="On partition assignment, skip records whose offset is already stored (the store's highest "
        "kafka_offset per topic partition): makes restarts and group resets exact. Disable only to re-insert on purpose.",
    )
    sink_retry_max_seconds: float = Field(30.0, gt=0, description="Longest backoff between retries of a failed ClickHouse insert.")
    sink_dead_letter_max_ratio: float = Field(
        0.5, gt=0, le=1,
        description="Stop the sink when more than this share of its recent records is dead-lettered (like the worker's limit).",
    )
    sink_dead_letter_min_records: int = Field(1000, ge=1, description="The sink's ratio limit applies only after this many recent records.")
    sink_fault_dir: Path | None = Field(
        None, description="TEST SEAM ONLY: directory of flag files that make the sink fail on purpose (see sinks/store.py)."
    )

    @field_validator("producer_compression")
    @classmethod
    def _compression(cls, value: str) -> str:
        allowed = {"none", "gzip", "snappy", "lz4", "zstd"}
        if value not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    # --- derived ---------------------------------------------------------------------------------
    @property
    def uses_local_broker(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.local_broker_port}"

    @property
    def dsn(self) -> str:
        raw = self.clickhouse_dsn.get_secret_value()
        return raw or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    def topic(self, name: str) -> str:
        """Full name of a pipeline topic: events, dead-letters, journeys, metrics, identity-merges."""
        return f"{self.topic_prefix}.{name}"

    @property
    def events_topic(self) -> str:
        return self.topic("events")

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("dead-letters")

    @property
    def journeys_topic(self) -> str:
        return self.topic("journeys")

    @property
    def metrics_topic(self) -> str:
        return self.topic("metrics")

    @property
    def merges_topic(self) -> str:
        return self.topic("identity-merges")

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        conf.update(overrides)
        return conf

    def clickhouse_kwargs(self) -> dict[str, Any]:
        """Arguments for ``clickhouse_connect.get_client``."""
        return {"dsn": self.dsn}

    def redacted(self) -> dict[str, Any]:
        """Settings as shown to users: secrets and DSN passwords masked."""
        out = self.model_dump()
        out["clickhouse_dsn"] = _redact_dsn(self.dsn)
        if out.get("kafka_sasl_password"):
            out["kafka_sasl_password"] = "***"
        return out


def _redact_dsn(dsn: str) -> str:
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return dsn


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's errors into a ConfigError that names the setting and its variable."""
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(f"{name} (env TOUCHPOINT_{name.upper()}): {err['msg']}")
        raise ConfigError(
            "bad configuration: " + "; ".join(problems) + f". Fix the environment variable or {_config_file()}."
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (tests build their own with load_settings)."""
    return load_settings()
