"""wait_until: returns the predicate's value, and on timeout reports what it last saw."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import free_port_pair, wait_until


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", timeout=5, what="three polls", interval=0.01) == "done"


def test_timeout_reports_what_and_last_value() -> None:
    rows: list[int] = []
    with pytest.raises(pytest.fail.Exception, match=r"waiting for the answer; last seen: \[\]"):
        wait_until(lambda: rows, timeout=0.2, what="the answer")


def test_a_failing_assert_in_the_predicate_is_what_gets_reported() -> None:
    def enough_rows() -> bool:
        count = 41
        assert count >= 42, f"rows={count}"
        return True

    with pytest.raises(pytest.fail.Exception, match="raised AssertionError: rows=41"):
        wait_until(enough_rows, timeout=0.2, what="42 rows")


def test_timeout_reports_last_exception() -> None:
    def boom() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(pytest.fail.Exception, match="raised ConnectionError: refused"):
        wait_until(boom, timeout=0.2, what="a connection")


def test_free_port_pair_gives_two_bindable_ports() -> None:
    import socket

    port = free_port_pair()
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", port))
        b.bind(("127.0.0.1", port + 1))


def test_free_ports_lie_below_the_ephemeral_range_and_are_not_handed_out_twice() -> None:
    from pathlib import Path

    from tests.helpers import free_port

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(20)] + [free_port_pair() for _ in range(5)]
    assert all(1024 < p < low - 1 for p in ports), ports
    assert len(set(ports)) == len(ports)
