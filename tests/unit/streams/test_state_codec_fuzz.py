"""state_codec on hostile bytes: random, truncated and bit-flipped values each raise StateCodecError (the error the
journey and identity steps divert the event on), never another exception, a hang or a silently changed state; and
random plain values round-trip exactly (tuple stays tuple, bool stays bool).

Seeded; a failure names the seed and the case so it can be replayed.
"""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any, Callable

import pytest

from tests.unit.streams.test_state_codec import filled
from touchpoint.streams import state_codec as sc

SEED = 20261205
CASES = 10_000
LOADERS: dict[bytes, Callable[[bytes], Any]] = {b"J": sc.loads_journey, b"A": sc.loads_alias, b"W": sc.loads_window}


def valid_values() -> list[bytes]:
    p = filled()
    values = [sc.dumps_journey(s) for s in p.journeys.values()]
    values += [sc.dumps_alias(a) for a in p.aliases.values()]
    values += [sc.dumps_window(w) for w in p.windows.values()]
    assert {v[:1] for v in values} == set(LOADERS)
    return values


def hostile(rng: random.Random, valid: list[bytes]) -> tuple[str, bytes]:
    """One hostile input and how it was made."""
    base = rng.choice(valid)
    roll = rng.random()
    if roll < 0.25:
        return "random", rng.randbytes(rng.randrange(0, 300))
    if roll < 0.4:
        return "random body", base[:2] + rng.randbytes(rng.randrange(0, 300))
    if roll < 0.65:
        return "truncated", base[: rng.randrange(0, len(base))]
    flipped = bytearray(base)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
    if bytes(flipped) == base:  # two flips of the same bit cancel out
        flipped[-1] ^= 1
    return "bit-flipped", bytes(flipped)


def test_hostile_bytes_raise_state_codec_error_and_nothing_else() -> None:
    rng = random.Random(SEED)
    valid = valid_values()
    for case in range(CASES):
        how, raw = hostile(rng, valid)
        loads = LOADERS.get(raw[:1], sc.loads_journey)
        try:
            loads(raw)
        except sc.StateCodecError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test: report any other exception type
            pytest.fail(f"seed {SEED} case {case} ({how}, {raw[:40].hex()}...): {type(exc).__name__}: {exc}")
        pytest.fail(f"seed {SEED} case {case} ({how}, {raw[:40].hex()}...): decoded instead of refused")


def with_checksum(tag: bytes, body: bytes) -> bytes:
    """A value whose checksum is right for a hostile body: what the MessagePack reader itself must survive."""
    head = tag + bytes((sc._VERSION,))
    return head + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))) + body


def test_hostile_bodies_behind_a_correct_checksum_raise_only_state_codec_error() -> None:
    rng = random.Random(SEED + 1)
    valid = valid_values()
    decoded = 0
    for case in range(CASES):
        base = rng.choice(valid)
        body = bytearray(base[6:])
        roll = rng.random()
        if roll < 0.3:
            body = bytearray(rng.randbytes(rng.randrange(0, 300)))
        elif roll < 0.6:
            del body[rng.randrange(len(body)):]
        else:
            for _ in range(rng.randint(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        raw = with_checksum(base[:1], bytes(body))
        try:
            LOADERS[raw[:1]](raw)
            decoded += 1  # a well-formed body of the right shape: undetectable without the checksum, and allowed
        except sc.StateCodecError:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of the test: report any other exception type
            pytest.fail(f"seed {SEED + 1} case {case} ({bytes(body)[:40].hex()}...): {type(exc).__name__}: {exc}")
    assert decoded < CASES // 2, f"seed {SEED + 1}: {decoded} of {CASES} hostile bodies decoded"


def test_deep_nesting_and_huge_length_claims_are_refused_quickly() -> None:
    deep = with_checksum(b"W", b"\x91" * 100_000 + b"\xc0")  # 100,000 nested one-item arrays
    claims = with_checksum(b"W", b"\xdd\xff\xff\xff\xff")  # an array claiming 4 billion items, with none
    for raw in (deep, claims):
        with pytest.raises(sc.StateCodecError, match="corrupt"):
            sc.loads_window(raw)


def random_plain(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "big", "float", "bool", "none", "bytes"] + (["list", "tuple", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x10FFFF)])) for _ in range(rng.randrange(6)))
    if kind == "int":
        return rng.randrange(-(2**31), 2**31)
    if kind == "big":
        return rng.randrange(-(2**63), 2**64)
    if kind == "float":
        return rng.uniform(-1e12, 1e12)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "bytes":
        return rng.randbytes(rng.randrange(5))
    items = [random_plain(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    return {(rng.randrange(100), str(i)) if rng.random() < 0.3 else f"k{i}": v for i, v in enumerate(items)}


def same(a: Any, b: Any) -> bool:
    """Equal and of exactly the same types all the way down (1 == True and (1,) != [1] would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(k, j) and same(a[k], b[j]) for k, j in zip(a, b))
    return bool(a == b)


def test_random_plain_values_round_trip_exactly() -> None:
    rng = random.Random(SEED + 2)
    for case in range(2000):
        value = [random_plain(rng) for _ in range(3)]
        back = sc._load(b"W", sc._dump(b"W", value))
        assert same(back, value), f"seed {SEED + 2} case {case}: {value!r} came back as {back!r}"
