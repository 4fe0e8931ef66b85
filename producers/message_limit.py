"""The largest message a topic accepts, so an oversize event is refused as invalid before it is sent.

Kafka refuses a record batch larger than the topic's ``max.message.bytes`` (``MSG_SIZE_TOO_LARGE``), and
librdkafka refuses, synchronously, a message larger than the client's own ``message.max.bytes``. An event can be
valid field by field (every string under ``max_string_bytes``) and still exceed either, so the producer compares
each encoded event with the smaller of the two. Where the topic's value comes from, in order:

1. the topic config ``max.message.bytes`` (AdminClient ``describe_configs``; it includes broker-level overrides);
2. the broker config ``message.max.bytes`` (when the topic's configs cannot be read, e.g. no DescribeConfigs ACL);
3. Kafka's default, 1,048,588 bytes (when neither answers in time).

The size compared is the encoded value plus the key plus ``RECORD_OVERHEAD``: the batch and record headers Kafka
adds. Compression is ignored on purpose: librdkafka checks the uncompressed size, and an event that fits only
once compressed would fail the day it is batched with incompressible neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from touchpoint.config import Settings

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_000_000
RECORD_OVERHEAD = 128  # record batch header (61) + record header varints, rounded up


@dataclass(frozen=True)
class MessageLimit:
    """Largest encoded event (value + key + overhead) the topic and the client accept, and where that came from."""

    max_bytes: int
    source: str

    def refusal(self, size: int, topic: str) -> str | None:
        """None when a message of ``size`` bytes fits; else the rule it breaks, with size and limit."""
        if size <= self.max_bytes:
            return None
        return (f"the encoded event is {size:,} bytes, over the {self.max_bytes:,} bytes topic {topic} accepts "
                f"({self.source}); make it smaller (fewer or shorter strings in context and payload)")


def client_limit(config: dict[str, Any]) -> int:
    """librdkafka's own ``message.max.bytes`` in the producer's configuration."""
    return int(config.get("message.max.bytes", LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES))


def topic_limit(settings: Settings, topic: str, timeout: float = 5.0) -> tuple[int, str]:
    """(max bytes, where it came from) for ``topic``, falling back as the module docstring lists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    from touchpoint.kafka_admin import admin_client

    admin = admin_client(settings)  # held while its futures run: a collected client never answers
    try:
        found = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=timeout)
        entries = next(iter(found.values())).result(timeout=timeout)
        value = entries.get("max.message.bytes")
        if value is not None and value.value is not None:
            return int(value.value), "topic config max.message.bytes"
    except (KafkaException, ValueError, TimeoutError):
        pass  # no topic, no ACL to read it, or no answer in time: fall back to the broker's setting
    try:
        brokers = admin.list_topics(timeout=timeout).brokers
        broker_id = str(next(iter(brokers)))
        found = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, broker_id)], request_timeout=timeout)
        entries = next(iter(found.values())).result(timeout=timeout)
        value = entries.get("message.max.bytes")
        if value is not None and value.value is not None:
            return int(value.value), "broker config message.max.bytes"
    except (KafkaException, ValueError, TimeoutError, StopIteration):
        pass  # nothing readable: Kafka's default is what an unconfigured cluster enforces
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES, "Kafka's default max.message.bytes; the topic's own value could not be read"


def message_limit(settings: Settings, topic: str, config: dict[str, Any], timeout: float = 5.0) -> MessageLimit:
    """The smaller of the topic's limit and the client's, as a MessageLimit."""
    topic_max, source = topic_limit(settings, topic, timeout)
    client_max = client_limit(config)
    if client_max < topic_max:
        return MessageLimit(client_max, f"the producer's message.max.bytes; the topic allows {topic_max:,} ({source})")
    return MessageLimit(topic_max, source)
