"""Step helper: divert bad records to the dead-letter topic, and the ratio limit that stops the worker.

Guarantee: at-least-once. A dead letter is produced before the offset of its record is committed (faust flushes
the worker's outbox before every commit, see outbox.py), so a record ends in the dead-letter topic once, or twice when the worker dies
between producing it and the next commit (the replayed record is diverted again, with the same source headers:
readers dedup on ``dlq.source.topic/partition/offset``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from touchpoint.dead_letter import DeadLetter, RatioGuard
from touchpoint.metrics import STREAM_DEAD_LETTERS

log = logging.getLogger(__name__)

STAGE = "worker"
__all__ = ["STAGE", "DeadLetterSender", "RatioGuard"]


class DeadLetterSender:
    """Sends a DeadLetter through the worker's outbox with the shared ``dlq.*`` headers and counts it."""

    def __init__(self, outbox: Any, topic: str, on_send: Callable[[DeadLetter], None] | None = None) -> None:
        self._outbox = outbox
        self._topic = topic
        self._on_send = on_send

    def send(self, letter: DeadLetter, headers: Any = None) -> None:
        """Produce ``letter``: original key/value, the original ``headers`` (list or mapping) then ``dlq.*``."""
        original = list(headers.items()) if hasattr(headers, "items") else list(headers or [])
        self._outbox.send(self._topic, letter.value, letter.key, headers=original + letter.headers())
        STREAM_DEAD_LETTERS.labels(reason=letter.kind).inc()
        log.warning("dead letter from %s[%d]@%d (%s): %s", letter.topic, letter.partition, letter.offset,
                    letter.kind, letter.reason)
        if self._on_send is not None:
            self._on_send(letter)
