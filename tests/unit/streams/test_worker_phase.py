"""The worker's phase for `touchpoint run`'s status, from faust's state (fakes of the few attributes it reads)."""

from __future__ import annotations

from types import SimpleNamespace

from touchpoint.streams.phase import worker_phase


class _App(SimpleNamespace):
    pass


def _app(*, rebalancing: bool = False, recovery: object = None, assigned: bool = True) -> _App:
    app = _App(rebalancing=rebalancing)
    app.__dict__["tables"] = SimpleNamespace(_recovery=recovery)
    app._consumer = SimpleNamespace(assignment=lambda: {"tp"} if assigned else set())
    return app


def test_restoring_counts_the_records_between_restored_offset_and_high_water() -> None:
    recovery = SimpleNamespace(in_recovery=True, active_highwaters={"a": 20_000, "b": 500},
                               active_offsets={"a": 79, "b": 500})
    assert worker_phase(_app(recovery=recovery), "g") == "restoring 19,921 table records from changelogs"


def test_joining_and_running() -> None:
    assert worker_phase(_app(rebalancing=True), "grp") == "joining consumer group grp (rebalance)"
    assert worker_phase(_app(assigned=False), "grp") == "joining consumer group grp"
    done = SimpleNamespace(in_recovery=False, active_highwaters={}, active_offsets={})
    assert worker_phase(_app(recovery=done), "grp") == "running"
