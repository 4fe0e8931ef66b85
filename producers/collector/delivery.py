"""The collector's bridge from asyncio to the SDK producer: queue a request's events, await every ack.

Guarantee: ``Acks.wait`` returns only when Kafka acknowledged (acks=all, idempotent producer) every event and
dead letter queued for the request; a delivery failure or the ack timeout raises ``NotAcknowledged`` and the
request is answered 503 ("retry all of it"). Events that did land before such a failure are delivered twice
when the client retries; they keep their ``event_id``, and the pipeline dedups on it.

Everything runs on the event loop's thread: ``TouchpointProducer`` is single-threaded by design, so the loop
itself polls it (every millisecond while anything is in flight) and the delivery callbacks resolve the
requests' futures directly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from touchpoint.config import Settings
from touchpoint.dead_letter import KIND_INVALID, DeadLetter
from touchpoint.errors import BrokerUnavailableError, ConfigError, RetryableError
from touchpoint.metrics import COLLECTOR_PRODUCE_LATENCY, COLLECTOR_READY

from touchpoint.producers.producer import DeliveryError, DeliveryReport, TouchpointProducer, producer_config

STAGE = "collector"


class NotAcknowledged(Exception):
    """Kafka did not acknowledge every event of a request in time; the request must be retried whole."""


class Acks:
    """The outstanding acknowledgements of one request (a ``DeliveryCallback`` for its events and dead letters)."""

    __slots__ = ("pending", "error", "future", "started")

    def __init__(self) -> None:
        self.pending = 0
        self.error: str | None = None
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()

    def __call__(self, error: DeliveryError | None, report: DeliveryReport | None) -> None:
        if error is not None and self.error is None:
            self.error = str(error)
        self._one_done()

    def dead_letter_done(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self.error is None:
            self.error = f"dead letter not delivered: {error.str()}"
        self._one_done()

    def _one_done(self) -> None:
        self.pending -= 1
        if self.pending == 0 and not self.future.done():
            self.future.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until every queued record is acknowledged; ``NotAcknowledged`` on a failure or after ``timeout``."""
        if self.pending:
            try:
                await asyncio.wait_for(asyncio.shield(self.future), timeout)
            except TimeoutError:
                raise NotAcknowledged(f"Kafka did not acknowledge every event within {timeout:g}s") from None
        COLLECTOR_PRODUCE_LATENCY.observe(time.perf_counter() - self.started)
        if self.error is not None:
            raise NotAcknowledged(self.error)


class Delivery:
    """The SDK producer (events) and a plain producer with the same librdkafka settings (dead letters)."""

    def __init__(self, settings: Settings, producer: TouchpointProducer | None = None) -> None:
        self.settings = settings
        # delivery.timeout.ms bounds how long librdkafka keeps retrying: past the request's ack timeout the
        # client has been told 503 anyway, so give up soon after rather than deliver minutes later.
        timeout_ms = int(settings.collector_ack_timeout_seconds * 1000)
        overrides: dict[str, Any] = {"delivery.timeout.ms": timeout_ms, "linger.ms": settings.collector_linger_ms,
                                     "queue.buffering.max.messages": settings.collector_queue_max_events + 1000}
        self.producer = producer or TouchpointProducer(settings, config=overrides, queue_full_timeout=0.05)
        self._dead_letters = Producer(producer_config(settings, **overrides))
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []

    # --- sending -------------------------------------------------------------------------------------
    def has_room(self, events: int) -> bool:
        """Whether ``events`` more fit under ``collector_queue_max_events`` (checked before anything is queued)."""
        return len(self.producer) + events <= self.settings.collector_queue_max_events

    def send(self, event: dict[str, Any], acks: Acks) -> None:
        """Validate, encode and queue one event (``ValidationError`` queues nothing)."""
        acks.pending += 1
        try:
            self.producer.send(event, acks)
        except BaseException:
            acks.pending -= 1
            raise

    def dead_letter(self, raw: bytes, reason: str, index: int, source: str, acks: Acks) -> None:
        """Queue the original bytes of a refused item on the dead-letter topic."""
        letter = DeadLetter(key=None, value=raw, reason=f"{source}: {reason}", kind=KIND_INVALID, stage=STAGE,
                            topic=self.producer.topic, partition=-1, offset=-1, index=index)
        acks.pending += 1
        try:
            headers: list[tuple[str, str | bytes | None]] = list(letter.headers())
            self._dead_letters.produce(self.settings.dead_letter_topic, raw, None, headers=headers,
                                       on_delivery=acks.dead_letter_done)
        except BufferError:
            acks.pending -= 1
            raise RetryableError("the dead-letter queue is full") from None

    # --- background work -----------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll_forever(), name="collector-poll"),
                       asyncio.create_task(self._check_forever(), name="collector-ready")]

    async def _poll_forever(self) -> None:
        producer, dead_letters = self.producer, self._dead_letters
        while True:
            producer.poll(0)
            dead_letters.poll(0)
            busy = len(producer) or len(dead_letters)
            await asyncio.sleep(0.001 if busy else 0.01)

    def check(self, timeout: float = 2.0) -> bool:
        """Whether Kafka answers and both topics exist (blocking: run it off the event loop)."""
        try:
            self.producer.check_topic(timeout)
            topic = self.settings.dead_letter_topic
            found = self._dead_letters.list_topics(topic, timeout=timeout).topics.get(topic)
        except (BrokerUnavailableError, ConfigError, KafkaException):
            return False
        return found is not None and found.error is None

    async def _check_forever(self, every: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.ready = await loop.run_in_executor(None, self.check)
            COLLECTOR_READY.set(1 if self.ready else 0)
            await asyncio.sleep(every)

    async def close(self, timeout: float) -> int:
        """Stop polling and flush both producers; return how many records are still undelivered."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        left = await loop.run_in_executor(None, self.producer.flush, timeout)
        left += await loop.run_in_executor(None, self._dead_letters.flush, timeout)
        return int(left)
