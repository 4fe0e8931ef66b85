"""A failing agent stops the worker loudly (instead of a silent stall), and a full disk names the directory."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest

from touchpoint.streams.agent_guard import disk_nearly_full, is_disk_full, stop_worker_on_failure


class Ctx(SimpleNamespace):
    def fail(self, reason: str) -> None:
        self.reasons.append(reason)


def test_a_full_disk_stops_the_worker_naming_its_state_directory():
    ctx = Ctx(datadir=Path("/state/w-6066"), reasons=[])
    rocksdb = Exception("IO error: No space left on device: While appending to file: /state/w-6066/x.log")
    with pytest.raises(Exception, match="No space left"):
        with stop_worker_on_failure(ctx, "the journeys agent"):
            raise rocksdb
    assert len(ctx.reasons) == 1
    assert ctx.reasons[0].startswith("the disk holding the worker's state directory /state/w-6066 is full")
    assert "rebuilt from the changelog topics" in ctx.reasons[0]


def test_any_other_failure_stops_the_worker_too():
    ctx = Ctx(datadir=Path("/state"), reasons=[])
    with pytest.raises(KeyError):
        with stop_worker_on_failure(ctx, "the identity agent"):
            raise KeyError("x")
    assert ctx.reasons == ["the identity agent failed: KeyError: 'x'; restart the worker (records after its last "
                           "commit are re-read)"]


def test_a_clean_agent_end_stops_nothing():
    ctx = Ctx(datadir=Path("/state"), reasons=[])
    with stop_worker_on_failure(ctx, "agent"):
        pass
    assert ctx.reasons == []


def test_disk_full_recognised_from_errno_and_text(tmp_path):
    assert is_disk_full(OSError(errno.ENOSPC, "full"))
    assert is_disk_full(Exception("No space left on device (os error 28)"))
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
    assert not disk_nearly_full(tmp_path / "not" / "yet", free_bytes=1)  # nearest existing parent is checked
    assert disk_nearly_full(tmp_path, free_bytes=1 << 62)
