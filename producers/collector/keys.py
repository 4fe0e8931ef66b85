"""Write keys: which source a request speaks for, and which event types and channels it may send.

Keys live in a TOML file named by the ``collector_keys_file`` setting, stored as SHA-256 digests (a write key is
a random token, so a plain digest is enough: nobody can turn a leaked file back into a key)::

    [[key]]
    source = "web-shop"                     # becomes the event's `source` (the body's value is ignored)
    sha256 = "9f86d081884c7d65..."          # `touchpoint collect keygen --source web-shop` prints a key and this line
    event_types = ["PAGE_VIEW", "AD_CLICK", "CHECKOUT"]
    channels = ["web"]
    revoked = false                         # or delete the entry

The file is re-read when its content changes (checked at most once a second), so a key is
added, rotated or revoked without a restart. A file that no longer parses keeps the previous keys in force
and says why in the log: a typo must not lock every client out.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from touchpoint.errors import ConfigError
from touchpoint.producers.builders import Channel, EventType

log = logging.getLogger(__name__)

_EVENT_TYPES = frozenset(t.value for t in EventType)
_CHANNELS = frozenset(c.value for c in Channel)


@dataclass(frozen=True, slots=True)
class WriteKey:
    """What one key may do."""

    source: str
    event_types: frozenset[str]
    channels: frozenset[str]


def digest(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random write key (32 bytes of entropy, URL-safe)."""
    return "tpk_" + secrets.token_urlsafe(32)


def key_entry(key: str, source: str, event_types: list[str], channels: list[str]) -> str:
    """The TOML entry for ``key`` (what `touchpoint collect keygen` prints)."""
    quote = lambda values: "[" + ", ".join(f'"{v}"' for v in values) + "]"  # noqa: E731
    return (f'[[key]]\nsource = "{source}"\nsha256 = "{digest(key)}"\n'
            f"event_types = {quote(event_types)}\nchannels = {quote(channels)}\n")


def parse_keys(text: str, where: str) -> dict[str, WriteKey]:
    """digest -> WriteKey for a keys file's text; raises ``ConfigError`` naming the entry and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML ({exc}); fix it (the previous keys stay in force)") from exc
    out: dict[str, WriteKey] = {}
    for i, entry in enumerate(data.get("key", [])):
        at = f"{where} key entry #{i + 1}"  # no brackets: rich would read "[[key]]" as markup
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a table")
        unknown = set(entry) - {"source", "sha256", "event_types", "channels", "revoked"}
        if unknown:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        source, sha = entry.get("source"), entry.get("sha256")
        if not isinstance(source, str) or not source:
            raise ConfigError(f"{at}: `source` (the name events are produced under) is required")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ConfigError(f"{at}: `sha256` must be 64 lower-case hex digits (`touchpoint collect keygen` prints it)")
        types = _subset(entry.get("event_types", sorted(_EVENT_TYPES)), _EVENT_TYPES, f"{at} event_types")
        channels = _subset(entry.get("channels", sorted(_CHANNELS)), _CHANNELS, f"{at} channels")
        if entry.get("revoked", False) is True:
            continue
        out[sha] = WriteKey(source, types, channels)
    return out


def _subset(values: Any, allowed: frozenset[str], what: str) -> frozenset[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{what}: must be a list of strings")
    wrong = sorted(set(values) - allowed)
    if wrong:
        raise ConfigError(f"{what}: {', '.join(wrong)} unknown; expected some of {', '.join(sorted(allowed))}")
    return frozenset(values)


class KeyStore:
    """The keys in force, re-read from ``path`` when the file changes (at most one ``stat`` per ``check_every``)."""

    def __init__(self, path: Path | None, check_every: float = 1.0) -> None:
        self.path = path
        self.check_every = check_every
        self._keys: dict[str, WriteKey] = {}
        self._raw: bytes | None = None
        self._next_check = 0.0
        if path is not None:
            if not path.exists():
                raise ConfigError(f"collector_keys_file {path} does not exist; create it (see `touchpoint collect keygen`)")
            self._reload(strict=True)

    def lookup(self, key: str | None) -> WriteKey | None:
        """The key's permissions, or None for a missing, unknown or revoked key."""
        if not key:
            return None
        now = time.monotonic()
        if self.path is not None and now >= self._next_check:
            self._next_check = now + self.check_every
            self._reload(strict=False)
        return self._keys.get(digest(key))

    def _reload(self, strict: bool) -> None:
        # The content, not the mtime, decides: two writes within one clock tick share an mtime, and the file is
        # a few hundred bytes, so reading it once a second costs nothing.
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            if strict:
                raise ConfigError(f"collector_keys_file {self.path} cannot be read ({exc})") from exc
            log.error("keys file %s cannot be read (%s); the previous keys stay in force", self.path, exc)
            return
        if raw == self._raw:
            return
        try:
            keys = parse_keys(raw.decode("utf-8"), str(self.path))
        except (ConfigError, UnicodeDecodeError) as exc:
            if strict:
                raise ConfigError(str(exc)) from exc
            log.error("%s", exc)
            return
        self._keys, self._raw = keys, raw
        log.info("write keys loaded from %s: %d in force", self.path, len(keys))
