"""Kafka security settings -> client configuration, and a fast check that names the setting to fix.

Every Kafka client of the project gets its security from here, so a setting means the same to all of them:

- :func:`librdkafka_security` -> confluent-kafka (producer SDK, ``touchpoint produce``, the worker's events consumer
  and outboxes, the sink, admin, status, benchmarks), merged in by :meth:`Settings.kafka_config`;
- :func:`aiokafka_security` -> aiokafka keyword arguments (faust's consumer, producer and admin in the worker;
  ``streams/app.py`` wraps them into faust credentials).

:func:`check_access` connects once with librdkafka and turns the typical refusals into a ``ConfigError`` within a
few seconds instead of a client that retries forever: a refused SASL login names the username/password settings,
an untrusted broker certificate names the CA setting, a listener that drops the first request (TLS expected,
plaintext sent) names the security protocol. Secrets never appear in these messages.
"""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchpoint.errors import BrokerUnavailableError, ConfigError

if TYPE_CHECKING:
    from touchpoint.config import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

ENV_PROTOCOL = "TOUCHPOINT_KAFKA_SECURITY_PROTOCOL"
ENV_MECHANISM = "TOUCHPOINT_KAFKA_SASL_MECHANISM"
ENV_USER = "TOUCHPOINT_KAFKA_SASL_USERNAME"
ENV_PASSWORD = "TOUCHPOINT_KAFKA_SASL_PASSWORD"
ENV_CA = "TOUCHPOINT_KAFKA_SSL_CA_LOCATION"
ENV_CERT = "TOUCHPOINT_KAFKA_SSL_CERTIFICATE_LOCATION"
ENV_KEY = "TOUCHPOINT_KAFKA_SSL_KEY_LOCATION"
ENV_ENDPOINT = "TOUCHPOINT_KAFKA_SSL_ENDPOINT_IDENTIFICATION"


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _file(path: Path | None, env: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"{env}={path} is not a readable file; point it at the PEM file or unset it")
    return str(path)


def validate(settings: Settings) -> None:
    """Raise ConfigError when the security settings cannot work together (before any connection is tried)."""
    if uses_sasl(settings) and not (settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise ConfigError(
            f"{ENV_PROTOCOL}={settings.kafka_security_protocol} needs {ENV_USER} and {ENV_PASSWORD} "
            f"(or {ENV_PASSWORD}_FILE)"
        )
    if (settings.kafka_ssl_certificate_location is None) != (settings.kafka_ssl_key_location is None):
        raise ConfigError(f"a TLS client certificate needs both {ENV_CERT} and {ENV_KEY}")
    if not uses_tls(settings) and (settings.kafka_ssl_ca_location or settings.kafka_ssl_certificate_location):
        raise ConfigError(
            f"{ENV_CA}/{ENV_CERT} are set but {ENV_PROTOCOL}={settings.kafka_security_protocol} does not use TLS; "
            "set it to SSL or SASL_SSL"
        )
    _file(settings.kafka_ssl_ca_location, ENV_CA)
    _file(settings.kafka_ssl_certificate_location, ENV_CERT)
    _file(settings.kafka_ssl_key_location, ENV_KEY)


def librdkafka_security(settings: Settings) -> dict[str, Any]:
    """The librdkafka (confluent-kafka) properties for the configured security; nothing for PLAINTEXT."""
    validate(settings)
    conf: dict[str, Any] = {"security.protocol": settings.kafka_security_protocol}
    if uses_sasl(settings):
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username
        assert settings.kafka_sasl_password is not None  # validate() checked
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if uses_tls(settings):
        if settings.kafka_ssl_ca_location is not None:
            conf["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
        if settings.kafka_ssl_certificate_location is not None:
            conf["ssl.certificate.location"] = str(settings.kafka_ssl_certificate_location)
            conf["ssl.key.location"] = str(settings.kafka_ssl_key_location)
        if settings.kafka_ssl_key_password is not None:
            conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
        conf["ssl.endpoint.identification.algorithm"] = "https" if settings.kafka_ssl_endpoint_identification else "none"
    return conf


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The Python TLS context matching :func:`librdkafka_security` (same CA, client certificate, host check)."""
    validate(settings)
    cafile = str(settings.kafka_ssl_ca_location) if settings.kafka_ssl_ca_location else None
    context = ssl.create_default_context(cafile=cafile)
    if settings.kafka_ssl_certificate_location is not None:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        context.load_cert_chain(str(settings.kafka_ssl_certificate_location), str(settings.kafka_ssl_key_location),
                                password=password)
    if not settings.kafka_ssl_endpoint_identification:
        context.check_hostname = False
    return context


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security (``security_protocol``, ``sasl_*``, ``ssl_context``)."""
    validate(settings)
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None
        kwargs.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=settings.kafka_sasl_username,
                      sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    if uses_tls(settings):
        kwargs["ssl_context"] = ssl_context(settings)
    return kwargs


# --- refusals -> messages -------------------------------------------------------------------------------------------

def security_problem(settings: Settings, text: str) -> str | None:
    """The user-facing message for a librdkafka error or log line that means "the security settings are wrong"
    (None for anything else, e.g. a broker that is simply down)."""
    where = f"Kafka at {settings.bootstrap_servers}"
    protocol = settings.kafka_security_protocol
    if "SASL authentication error" in text or "Authentication failed" in text:
        return (f"{where} refused the SASL login of user {settings.kafka_sasl_username!r} "
                f"({settings.kafka_sasl_mechanism}): check {ENV_USER} and {ENV_PASSWORD} (or {ENV_PASSWORD}_FILE), "
                f"and {ENV_MECHANISM}")
    if "Unsupported SASL mechanism" in text or "mechanism handshake failed" in text.lower():
        return f"{where} does not accept SASL mechanism {settings.kafka_sasl_mechanism}: set {ENV_MECHANISM}"
    if "certificate verify failed" in text:
        detail = "hostname mismatch" if "hostname" in text.lower() else "unknown certificate authority"
        return (f"{where} presented a TLS certificate this client does not trust ({detail}): set {ENV_CA} to the "
                f"CA certificate (PEM) that signed the brokers' certificates"
                + (f", or check {ENV_ENDPOINT}" if detail == "hostname mismatch" else ""))
    if any(alert in text for alert in ("alert bad certificate", "alert certificate required", "alert unknown ca")):
        return (f"{where} refused this client's TLS certificate (the listener requires one its CA signed): set "
                f"{ENV_CERT} and {ENV_KEY} to a client certificate and key the brokers trust")
    if "connecting to a PLAINTEXT broker listener" in text or "wrong version number" in text:
        return (f"{where} is not a TLS listener but {ENV_PROTOCOL}={protocol}: set {ENV_PROTOCOL} to what that "
                "listener speaks (PLAINTEXT or SASL_PLAINTEXT)")
    if ("APIVERSION_QUERY" in text or "connecting to a SSL listener" in text) and "Disconnected" in text:
        return (f"{where} closed the connection at the first request: the listener expects another security "
                f"protocol than {ENV_PROTOCOL}={protocol} (SSL or SASL_SSL when it speaks TLS)")
    for prop, env in (("ssl.ca.location", ENV_CA), ("ssl.certificate.location", ENV_CERT), ("ssl.key.location", ENV_KEY)):
        if f"{prop} failed" in text:
            return f"{env} cannot be used ({text.split(f'{prop} failed: ', 1)[-1]}); point it at a PEM file"
    if "SSL handshake failed" in text:
        return f"{where}: TLS failed ({text}); check {ENV_CA}, {ENV_CERT} and {ENV_KEY}"
    return None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def check_access(settings: Settings, timeout: float = 30.0) -> None:
    """Return once the cluster answers a metadata request with the configured security.

    Raises ConfigError (naming the setting to fix) as soon as a refusal shows the security settings are wrong, and
    BrokerUnavailableError when nothing answers within ``timeout``.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    from touchpoint.kafka_admin import unreachable_message

    collected = _Collect()
    logger = logging.getLogger("touchpoint.kafka_security.librdkafka")
    logger.propagate = False  # librdkafka's own lines stay out of the user's log; they only feed the diagnosis
    logger.setLevel(logging.DEBUG)
    logger.addHandler(collected)
    errors: list[str] = []
    conf = settings.kafka_config(logger=logger, error_cb=lambda err: errors.append(err.str()))
    try:
        client = AdminClient(conf)
    except KafkaException as exc:  # a property librdkafka cannot use (a CA file that is not PEM...)
        logger.removeHandler(collected)
        err = exc.args[0] if exc.args else None
        text = err.str() if isinstance(err, KafkaError) else str(exc)
        raise ConfigError(security_problem(settings, text) or f"Kafka client settings refused: {text}") from None
    deadline = time.monotonic() + timeout
    detail = "no answer"
    try:
        while True:
            try:
                client.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
                return
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                detail = err.str() if isinstance(err, KafkaError) else str(exc)
            client.poll(0.1)  # serves error_cb and the log lines
            for text in [*errors, *collected.lines]:
                problem = security_problem(settings, text)
                if problem is not None:
                    raise ConfigError(problem)
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(unreachable_message(settings, f"{detail}; waited {timeout:g}s"))
    finally:
        logger.removeHandler(collected)
