"""One error tree for the whole pipeline.

Callers branch on *retryable* vs *permanent*; every message says what is wrong and what to do next.
"""

from __future__ import annotations


class TouchpointError(Exception):
    """Base of every error the pipeline raises on purpose."""


class RetryableError(TouchpointError):
    """A transient condition (broker or ClickHouse unreachable, timeout): retrying later may succeed."""


class PermanentError(TouchpointError):
    """Retrying the same input will fail the same way."""


class ConfigError(PermanentError):
    """A setting is missing or has a bad value; the message names the setting and how to fix it."""


class SettingsError(ConfigError):
    """The settings themselves (variables, config file) are wrong: a usage error, so the CLI exits 2."""


class ValidationError(PermanentError):
    """An event breaks its contract. Carries the offending field (dotted path) and the rule it breaks."""

    def __init__(self, field: str, rule: str, value: object = None) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"{field}: {rule}")


class InvalidEventError(PermanentError):
    """A record read from Kafka could not be used; carries where it came from and why (for the dead-letter topic)."""

    def __init__(self, reason: str, *, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None, kind: str = "invalid") -> None:
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.kind = kind
        where = f" at {topic}[{partition}]@{offset}" if topic is not None else ""
        super().__init__(f"{kind}{where}: {reason}")


class BrokerUnavailableError(RetryableError):
    """Kafka is not reachable."""


class StoreUnavailableError(RetryableError):
    """ClickHouse is not reachable or refused a request for a transient reason."""
