"""A full disk under ClickHouse is waited out (retryable, the sink pauses), not treated as a broken table."""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import DatabaseError

from touchpoint.sinks.store import StoreRetryableError, classify


def test_not_enough_space_is_retryable_and_says_what_to_do():
    error = classify(DatabaseError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. "
                                   "(NOT_ENOUGH_SPACE)"), "insert into db.t (data in /srv/ch)")
    assert isinstance(error, StoreRetryableError) and error.code == 243
    assert "/srv/ch" in str(error) and "no disk space left" in str(error)


def test_no_space_left_on_device_in_any_error_is_retryable():
    error = classify(DatabaseError("Code: 75. DB::Exception: Cannot write to file /x/y.bin: No space left on device"),
                     "insert")
    assert isinstance(error, StoreRetryableError)
