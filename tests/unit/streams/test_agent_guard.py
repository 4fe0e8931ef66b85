"""A failing agent stops the worker loudly (instead of a silent stall), and a full disk names the directory."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest

from touchpoint.streams.agent_guard import disk_nearly_full, is_disk_full, stop_worker_on_failure


class Exited(Exception):
    pass


def guard(ctx, what, exits):
    def exit(code):
        exits.append(code)
        raise Exited(code)
    return stop_worker_on_failure(ctx, what, exit=exit)


def test_a_full_disk_ends_the_worker_at_once_naming_its_state_directory(capsys):
    ctx, exits = SimpleNamespace(datadir=Path("/state/w-6066")), []
    rocksdb = Exception("IO error: No space left on device: While appending to file: /state/w-6066/x.log")
    with pytest.raises(Exited):
        with guard(ctx, "the journeys agent", exits):
            raise rocksdb
    assert exits == [1]
    err = capsys.readouterr().err
    assert err.startswith("error: worker stopped: the disk holding the worker's state directory /state/w-6066 is full")
    assert "rebuilt from the changelog topics" in err


def test_any_other_failure_ends_the_worker_too(capsys):
    ctx, exits = SimpleNamespace(datadir=Path("/state")), []
    with pytest.raises(Exited):
        with guard(ctx, "the identity agent", exits):
            raise KeyError("x")
    assert exits == [1]
    assert capsys.readouterr().err == ("error: worker stopped: the identity agent failed: KeyError: 'x'; restart the "
                                       "worker (records after its last commit are re-read)\n")


def test_a_clean_agent_end_stops_nothing():
    ctx, exits = SimpleNamespace(datadir=Path("/state")), []
    with guard(ctx, "agent", exits):
        pass
    assert exits == []


def test_disk_full_recognised_from_errno_and_text(tmp_path):
    assert is_disk_full(OSError(errno.ENOSPC, "full"))
    assert is_disk_full(Exception("No space left on device (os error 28)"))
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
    assert not disk_nearly_full(tmp_path / "not" / "yet", free_bytes=1)  # nearest existing parent is checked
    assert disk_nearly_full(tmp_path, free_bytes=1 << 62)
