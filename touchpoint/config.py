"""The one settings object.

Sources, highest priority first: environment variables (prefix ``TOUCHPOINT_``; ``KAFKA_BOOTSTRAP_SERVERS``
and ``CLICKHOUSE_DSN`` are also read unprefixed), then files named by ``<VARIABLE>_FILE`` for secret settings (as
container secrets are mounted: ``TOUCHPOINT_KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka``), then a TOML config file
(``TOUCHPOINT_CONFIG`` or ``./touchpoint.toml``), then the defaults below, which run everything locally with nothing
installed. Secret settings are ``SecretStr``: their values never show in a repr, ``redacted()`` or an error.
Nothing else in the code base (but ``touchpoint.config_sources``, which names where a bad value came from) reads
``os.environ`` for configuration.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError as PydanticValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from touchpoint.config_sources import check_variable_pairs, config_file, describe
from touchpoint.errors import SettingsError

LOCAL_BOOTSTRAP = "127.0.0.1:19092"


def _config_file() -> Path:
    return config_file()


def _is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)


def secret_file_variables(name: str, field: FieldInfo) -> list[str]:
    """The ``*_FILE`` variables a secret setting may be read from: ``TOUCHPOINT_<NAME>_FILE`` and, for settings with
    an unprefixed variable (``CLICKHOUSE_DSN``), that one with ``_FILE``."""
    names = [f"TOUCHPOINT_{name.upper()}_FILE"]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names += [f"{choice}_FILE" for choice in alias.choices
                  if isinstance(choice, str) and choice.isupper() and f"{choice}_FILE" not in names]
    return names


class SecretFilesSource(PydanticBaseSettingsSource):
    """Secret settings from the files that ``<VARIABLE>_FILE`` variables name (trailing newline removed).

    A variable set directly wins over its ``_FILE`` form. An unreadable file is a ConfigError naming the variable
    (never the file's content)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False  # unused: __call__ reads every secret field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not _is_secret(field):
                continue
            for variable in secret_file_variables(name, field):
                path = os.environ.get(variable)
                if not path:
                    continue
                try:
                    values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as exc:
                    raise SettingsError(f"{variable}={path} cannot be read ({exc.strerror or exc}); point it at the "
                                      "file holding the secret, or unset it") from None
                break
        return values


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
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (librdkafka security.protocol); every Kafka client of the pipeline uses it.")
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512", description="SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(None, description="SASL username (with SASL_PLAINTEXT / SASL_SSL).")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never printed; or TOUCHPOINT_KAFKA_SASL_PASSWORD_FILE).")
    kafka_ssl_ca_location: Path | None = Field(None, description="CA certificate(s), PEM, that signed the brokers' certificates (SSL / SASL_SSL). Unset: the system trust store.")
    kafka_ssl_certificate_location: Path | None = Field(None, description="Client certificate, PEM, for brokers that require TLS client authentication (mTLS).")
    kafka_ssl_key_location: Path | None = Field(None, description="Private key, PEM, of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of an encrypted client key (never printed; or TOUCHPOINT_KAFKA_SSL_KEY_PASSWORD_FILE).")
    kafka_ssl_endpoint_identification: bool = Field(True, description="Check that the broker's certificate names the host connected to; disable only for certificates without the broker's name.")
    local_broker_port: int = Field(19092, description="Client port of the local broker (controller uses port+1).")
    schema_registry_url: str | None = Field(
        None, description="Confluent schema registry URL (mock:// for tests). Unset: Avro single-object encoding."
    )

    # --- topics ------------------------------------------------------------------------------
    topic_prefix: str = Field("touchpoint", description="Prefix of every topic the pipeline uses.")
    topic_partitions: int = Field(
        4, ge=1, le=10_000,
        description="Partitions of the pipeline topics (created by `touchpoint topics create`); at most 10,000, "
        "as every partition costs the broker files and memory.",
    )
    topic_replication: int = Field(1, ge=1, description="Replication factor of the pipeline topics.")

    # --- producer ------------------------------------------------------------------------------
    producer_linger_ms: int = Field(20, ge=0, description="librdkafka linger.ms: how long the producer waits to fill a batch.")
    producer_compression: str = Field("lz4", description="none, gzip, snappy, lz4 or zstd.")
    max_string_bytes: int = Field(64 * 1024, ge=1, description="Longest string field an event may carry.")
    pseudonymise_fields: str = Field("", description="Comma-separated event fields the producer replaces with HMAC-SHA256 before encoding (customer_id, anonymous_id, session_id, source, context.<key>, payload.<field>). Empty: none.")
    pseudonymise_key: SecretStr | None = Field(None, description="Secret key of the pseudonyms (16+ bytes; never printed; or TOUCHPOINT_PSEUDONYMISE_KEY_FILE).")

    # --- worker (streams) -----------------------------------------------------------------------
    worker_id: str = Field("touchpoint-worker", description="Faust app id: workers with the same id share the work (consumer groups <id> and <id>-decode).")
    worker_web_port: int = Field(6066, description="Worker web port; Prometheus scrapes /metrics here.")
    dedup_horizon_days: float = Field(7.0, gt=0, description="How long an event_id is remembered for dedup.")
    journey_inactivity_days: float = Field(30.0, gt=0, description="Inactivity gap after which a new journey opens.")
    journey_path_limit: int = Field(100, ge=1, description="Longest path kept in a journey snapshot (the rest is counted).")
    allowed_lateness_seconds: float = Field(3600.0, ge=0, description="Late events within this still update their window.")
    max_clock_skew_seconds: float = Field(300.0, ge=0, description="How far ahead of the clock an event may move a partition's watermark (events up to a day ahead are valid).")
    dead_letter_max_ratio: float = Field(0.5, gt=0, le=1, description="Stop the worker when more than this share of recent events is dead-lettered.")
    dead_letter_min_events: int = Field(1000, ge=1, description="The ratio limit applies only after this many recent events.")

    # --- sink (ClickHouse) ----------------------------------------------------------------------
    clickhouse_dsn: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN", "clickhouse_dsn"),
        description="chdb:///path for the embedded engine, http(s)://user:pass@host:8123 for a server (never printed; or CLICKHOUSE_DSN_FILE). Unset: chdb under data_dir.",
    )
    clickhouse_ca_file: Path | None = Field(None, description="https server: CA certificate (PEM) that signed the server's certificate. Unset: the system trust store.")
    clickhouse_client_cert: Path | None = Field(None, description="https server: client certificate (PEM) for servers that require one.")
    clickhouse_client_key: Path | None = Field(None, description="https server: private key (PEM) of the client certificate, if not inside it.")
    clickhouse_verify: bool = Field(True, description="https server: verify the server's certificate (disable only on a test bench).")
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
    sink_sql_host: str = Field("127.0.0.1", description="Address of the read-only SQL port; anything but loopback needs TOUCHPOINT_SINK_SQL_USERS.")
    sink_sql_users: SecretStr | None = Field(None, description="Users of the read-only SQL port: name:sha256:<hex>[:db,...] or name:pbkdf2:<iter>:<salt>:<hex>[:db,...], ';'-separated (sinks/port_auth.py). Unset: no login, loopback only.")
    # Optional HTTPS of the read-only SQL port (sinks/port_tls.py): set both or neither.
    sink_sql_tls_cert: Path | None = Field(None, description="HTTPS only on the read-only SQL port: its certificate (PEM, chain after it); needs sink_sql_tls_key. Both unset: plain HTTP.")
    sink_sql_tls_key: Path | None = Field(None, description="Private key (PEM) of sink_sql_tls_cert.")
    sink_sql_tls_key_password: SecretStr | None = Field(None, description="Password of an encrypted sink_sql_tls_key (never printed; or TOUCHPOINT_SINK_SQL_TLS_KEY_PASSWORD_FILE).")
    # Limits of every analyst query (read-only SQL port and `touchpoint query`): an analyst may lower them
    # per query or session, never raise them.
    sink_sql_max_execution_seconds: float = Field(60.0, gt=0, description="Longest an analyst query may run before ClickHouse stops it (max_execution_time, code 159).")
    sink_sql_max_result_rows: int = Field(10_000_000, ge=1, description="Most rows an analyst query may return (max_result_rows, code 396).")
    sink_sql_max_result_bytes: int = Field(1 << 30, ge=1, description="Most bytes an analyst query may return, uncompressed (max_result_bytes, code 396).")
    sink_sql_max_memory_bytes: int = Field(1 << 30, ge=1, description="Most memory one analyst query may use (max_memory_usage, code 241).")
    sink_sql_max_concurrent: int = Field(4, ge=1, description="Analyst queries running at once; one more is answered at once with code 202 (TOO_MANY_SIMULTANEOUS_QUERIES).")
    sink_sql_max_query_bytes: int = Field(1 << 20, ge=1024, description="Largest statement / request body, also after decompression (code 229, QUERY_IS_TOO_LARGE, HTTP 413).")
    sink_resume_from_store: bool = Field(
        True,
        description="On partition assignment, skip records whose offset is already stored (the store's highest "
        "kafka_offset per topic partition): makes restarts and group resets exact. Disable only to re-insert on purpose.",
    )
    sink_retry_max_seconds: float = Field(30.0, gt=0, description="Longest backoff between retries of a failed ClickHouse insert.")
    sink_session_timeout_seconds: float = Field(
        45.0, ge=6, le=1800,
        description="Consumer-group session timeout of the sink: how long the group waits for a silent sink before "
        "giving its partitions to another (during a broker outage, also how long one commit attempt waits).",
    )
    sink_dead_letter_max_ratio: float = Field(
        0.5, gt=0, le=1,
        description="Stop the sink when more than this share of its recent records is dead-lettered (like the worker's limit).",
    )
    sink_dead_letter_min_records: int = Field(1000, ge=1, description="The sink's ratio limit applies only after this many recent records.")
    sink_fault_dir: Path | None = Field(
        None, description="TEST SEAM ONLY: directory of flag files that make the sink fail on purpose (see sinks/store.py)."
    )

    # --- customers: churn, lifecycle, at risk (analyst queries; see sinks/customers.py) ----------------
    churn_inactivity_days: float = Field(
        90.0, gt=0, description="A customer churns after this many days without qualifying activity (churn rate, lifecycle, at risk)."
    )
    churn_activity: Literal["any", "purchase"] = Field(
        "any", description="What keeps a customer active: any customer-initiated touchpoint (any) or completed purchases only (purchase)."
    )
    at_risk_quiet_share: float = Field(
        0.5, gt=0, le=1, description="At risk: last experience bad and quiet for at least this share of churn_inactivity_days."
    )
    # --- collector (HTTP) --------------------------------------------------------------------------
    collector_port: int = Field(8090, description="Port of `touchpoint collect` (POST /v1/batch, /touchpoint.js, /metrics, /openapi.json).")
    collector_keys_file: Path | None = Field(
        None,
        description="TOML file of write keys ([[key]] source, sha256, event_types, channels, revoked); re-read when it "
        "changes, so keys rotate without a restart. Unset: every request gets 401.",
    )
    collector_allowed_origins: str = Field(
        "", description="Comma-separated browser origins allowed to post (CORS), e.g. https://shop.example; empty: none."
    )
    collector_max_event_bytes: int = Field(32 * 1024, ge=1, description="Largest event (bytes of its JSON) a request may carry; more: 413.")
    collector_max_request_bytes: int = Field(500 * 1024, ge=1, description="Largest request body (after gzip is undone); more: 413.")
    collector_max_events: int = Field(2500, ge=1, description="Most events one request may carry; more: 413.")
    collector_read_timeout_seconds: float = Field(10.0, gt=0, description="A client must send its whole body within this (else 408); also the idle keep-alive and unfinished-headers limit.")
    collector_ack_timeout_seconds: float = Field(10.0, gt=0, description="Longest wait for Kafka to acknowledge a request's events; then 503.")
    collector_queue_max_events: int = Field(100_000, ge=1, description="Events queued for Kafka beyond which requests get 503 (back-pressure).")
    collector_linger_ms: int = Field(
        5, ge=0, description="linger.ms of the collector's producer: a request waits for its acknowledgement, so batch briefly."
    )
    collector_retry_after_seconds: int = Field(5, ge=1, description="Retry-After of a 503 answer.")
    collector_shutdown_seconds: float = Field(15.0, gt=0, description="On SIGTERM, how long in-flight requests get to finish before the producer is flushed.")
    # --- journey analysis (funnels, stages, pain points, attribution; sinks/README.md) ------------------
    funnel_window_days: float = Field(14.0, gt=0, description="Default conversion window of `touchpoint funnel`: every step within this many days of step 1.")
    attribution_touches: str = Field(
        "AD_CLICK;EMAIL_ENGAGEMENT:action=clicked",
        description="Marketing touches that attribution credits: funnel step specs separated by ';' (event type, optional field filters).",
    )
    attribution_lookback_days: float = Field(30.0, gt=0, description="Touches count for a conversion when they happened at most this many days before it.")
    attribution_half_life_days: float = Field(7.0, gt=0, description="Half-life of the time-decay attribution model: a touch this much older gets half the weight.")
    pain_point_lookback_days: float = Field(30.0, gt=0, description="Pain points: what happened this many days before a survey answer counts as preceding it.")
    # --- touchpoint run (supervision of the stages) ------------------------------------------------
    run_crash_limit: int = Field(
        5, ge=1, description="`touchpoint run` stops when one stage crashes this many times within run_crash_window_seconds."
    )
    run_crash_window_seconds: float = Field(
        60.0, gt=0, description="Window of the crash budget: crashes longer ago are forgotten (a stage killed every 30 s runs on)."
    )
    run_restart_backoff_seconds: float = Field(
        1.0, ge=0, description="Wait before restarting a crashed stage; doubles with each further crash inside the window."
    )
    run_restart_backoff_max_seconds: float = Field(30.0, ge=0, description="Longest wait before restarting a crashed stage.")
    stage_status_file: Path | None = Field(
        None, description="Set by `touchpoint run` for each stage: where the stage writes what it is doing now "
        "(joining group, restoring tables, paused on ClickHouse) for the status line. Unset: not written.",
    )

    @field_validator("producer_compression")
    @classmethod
    def _compression(cls, value: str) -> str:
        allowed = {"none", "gzip", "snappy", "lz4", "zstd"}
        if value not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism")
    @classmethod
    def _kafka_security(cls, value: str, info: Any) -> str:
        from touchpoint.kafka_security import MECHANISMS, PROTOCOLS

        allowed = PROTOCOLS if info.field_name == "kafka_security_protocol" else MECHANISMS
        if value.upper() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value.upper()
    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn_scheme(cls, value: SecretStr) -> SecretStr:
        # Checked here, not per command: every command (query, report, sink, run) refuses the same mistake.
        raw = value.get_secret_value()
        if raw and not raw.startswith(("chdb://", "http://", "https://")):
            raise ValueError(
                "is not a ClickHouse address: use chdb:///absolute/path for the embedded engine or "
                "http(s)://user:password@host:8123 for a server (or leave it unset for the embedded store under data_dir)"
            )
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
        return (init_settings, env_settings, SecretFilesSource(settings_cls),
                TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

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
        """librdkafka settings shared by every confluent-kafka client (security: ``kafka_security.librdkafka_security``)."""
        from touchpoint.kafka_security import librdkafka_security

        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, **librdkafka_security(self)}
        conf.update(overrides)
        return conf

    def clickhouse_kwargs(self) -> dict[str, Any]:
        """Arguments for ``clickhouse_connect.get_client`` (``clickhouse_options``: DSN and TLS options)."""
        from touchpoint.clickhouse_options import clickhouse_options

        return clickhouse_options(self)

    def redacted(self) -> dict[str, Any]:
        """Settings as shown to users: secrets and DSN passwords masked."""
        out = self.model_dump()
        out["clickhouse_dsn"] = _redact_dsn(self.dsn)
        for name, field in type(self).model_fields.items():
            if _is_secret(field) and name != "clickhouse_dsn" and out.get(name):
                out[name] = "***"
        return out


def _redact_dsn(dsn: str) -> str:
    """The DSN without its password: in the user part and in a ``password=`` query parameter."""
    import re

    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        dsn = f"{scheme}://{user}:***@{host}"
    return re.sub(r"([?&](?:password|access_token)=)[^&#]*", r"\1***", dsn)


def load_settings(**overrides: Any) -> Settings:
    """Build settings; every mistake is a one-line SettingsError (a ConfigError) naming the setting, its source
    (variable, or file and line) and what to do. An explicit TOUCHPOINT_CONFIG must be a TOML file; both variables of a pair
    (KAFKA_BOOTSTRAP_SERVERS / TOUCHPOINT_KAFKA_BOOTSTRAP_SERVERS, CLICKHOUSE_DSN / TOUCHPOINT_CLICKHOUSE_DSN) may be
    set only to the same value."""
    check_variable_pairs()
    config = _config_file()
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        raise SettingsError(describe(exc.errors(), config, _redact_dsn)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (tests build their own with load_settings)."""
    return load_settings()
