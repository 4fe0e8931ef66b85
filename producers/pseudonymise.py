"""Pseudonymisation at the source: configured identifier and context fields replaced by a keyed hash before encoding.

``HMAC-SHA256(key, value)`` as 64 lower-case hex digits. The key (``TOUCHPOINT_PSEUDONYMISE_KEY``, or its ``_FILE``
form) is a secret: without it nobody can recompute a hash from a guessed e-mail address or phone number, which a plain
hash would allow. The same value always gives the same hash, so everything downstream that only compares ids works on
the hashed ones: the event key and partition, identity stitching (anonymous id -> customer id), journeys, dedup.

Guarantee: with a field configured, its raw value never leaves the producer (not in the record, not in the Kafka
key); a missing or null field stays missing or null. Changing the key changes every hash: stitching across a key
change is lost, so rotate it only with a fresh pipeline.

Fields (``TOUCHPOINT_PSEUDONYMISE_FIELDS``, comma separated): ``customer_id``, ``anonymous_id``, ``session_id``,
``source``, ``context.<key>`` (a context entry, e.g. ``context.email``) and ``payload.<field>`` (a string field of the
payload, e.g. ``payload.comment``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from touchpoint.errors import ConfigError

TOP_LEVEL = ("customer_id", "anonymous_id", "session_id", "source")
NESTED = ("context", "payload")
MIN_KEY_BYTES = 16


def keyed_hash(key: bytes, value: str) -> str:
    """The pseudonym of ``value``: HMAC-SHA256 under ``key``, hex."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_fields(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Field paths from ``"customer_id, context.email"`` (or a list); ConfigError naming an unsupported one."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    fields = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    for field in fields:
        head, _, tail = field.partition(".")
        if not ((field in TOP_LEVEL) or (head in NESTED and tail and "." not in tail)):
            raise ConfigError(
                f"TOUCHPOINT_PSEUDONYMISE_FIELDS: {field!r} cannot be pseudonymised; use {', '.join(TOP_LEVEL)}, "
                "context.<key> or payload.<field>"
            )
    return fields


class Pseudonymiser:
    """Replaces the configured fields of an event (in-memory form) with their keyed hash; see the module docstring."""

    def __init__(self, key: bytes, fields: Sequence[str]) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"TOUCHPOINT_PSEUDONYMISE_KEY must be at least {MIN_KEY_BYTES} bytes of secret (a random "
                              "string of 32+ characters); a short key lets anyone recompute the pseudonyms")
        self._key = key
        self.fields = parse_fields(fields)
        self._top = [f for f in self.fields if "." not in f]
        self._nested: dict[str, list[str]] = {}
        for field in self.fields:
            head, _, tail = field.partition(".")
            if tail:
                self._nested.setdefault(head, []).append(tail)

    @classmethod
    def from_settings(cls, settings: Any, fields: str | Sequence[str] | None = None) -> Pseudonymiser | None:
        """The settings' pseudonymiser (``fields`` overrides ``pseudonymise_fields``); None when no field is configured."""
        chosen = parse_fields(settings.pseudonymise_fields if fields is None else fields)
        if not chosen:
            return None
        if settings.pseudonymise_key is None:
            raise ConfigError("pseudonymising " + ", ".join(chosen) + " needs a secret key: set "
                              "TOUCHPOINT_PSEUDONYMISE_KEY (or TOUCHPOINT_PSEUDONYMISE_KEY_FILE)")
        return cls(settings.pseudonymise_key.get_secret_value().encode("utf-8"), chosen)

    def pseudonym(self, value: str) -> str:
        return keyed_hash(self._key, value)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``event`` with the configured fields hashed (the caller's dict is left as it was)."""
        out = dict(event)
        key = self._key
        for field in self._top:
            value = out.get(field)
            if isinstance(value, str) and value:
                out[field] = keyed_hash(key, value)
        for head, names in self._nested.items():
            inner = out.get(head)
            if not isinstance(inner, dict):
                continue
            inner = dict(inner)
            for name in names:
                value = inner.get(name)
                if isinstance(value, str) and value:
                    inner[name] = keyed_hash(key, value)
            out[head] = inner
        return out
