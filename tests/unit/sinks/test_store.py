"""Error classification and the test seam of the store (no engine needed)."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from touchpoint.errors import PermanentError, RetryableError
from touchpoint.sinks.store import FaultSeam, StoreRejectedError, StoreRetryableError, classify


def test_unreachable_server_is_retryable():
    error = classify(OperationalError("Connection refused"), "insert into db.t")
    assert isinstance(error, StoreRetryableError) and isinstance(error, RetryableError)
    assert "insert into db.t" in str(error)


@pytest.mark.parametrize("code,retryable,row_level", [
    (241, True, False),   # MEMORY_LIMIT_EXCEEDED
    (252, True, False),   # TOO_MANY_PARTS
    (469, False, True),   # VIOLATED_CONSTRAINT: a bad row
    (60, False, False),   # UNKNOWN_TABLE: a broken setup, not a bad row
    (62, False, False),   # SYNTAX_ERROR
])
def test_server_errors_carry_their_code_and_branch(code, retryable, row_level):
    error = classify(DatabaseError(f"Code: {code}. DB::Exception: something. (NAME)"), "insert")
    assert error.code == code
    assert isinstance(error, RetryableError) is retryable
    if not retryable:
        assert isinstance(error, PermanentError) and error.row_level is row_level


def test_client_side_serialization_errors_are_row_rejections():
    error = classify(ValueError("invalid literal for int() with base 16: 'notauuid'"), "insert into db.t")
    assert isinstance(error, StoreRejectedError) and error.row_level and error.code is None


def test_fault_seam_is_inert_without_a_directory():
    seam = FaultSeam(None)
    seam.before_insert("t")
    seam.after_insert("t")
    seam.before_commit()


def test_fault_seam_unavailable_and_response_lost(tmp_path):
    seam = FaultSeam(tmp_path)
    (tmp_path / "insert_unavailable").touch()
    with pytest.raises(StoreRetryableError, match="unavailable"):
        seam.before_insert("t")
    (tmp_path / "insert_unavailable").unlink()
    seam.before_insert("t")
    (tmp_path / "insert_response_lost").write_text("2")
    for _ in range(2):
        with pytest.raises(StoreRetryableError, match="response lost"):
            seam.after_insert("t")
    seam.after_insert("t")  # exhausted
    assert (tmp_path / "insert_response_lost").read_text() == "0"


def test_pause_before_commit_announces_itself_and_ends_on_stop(tmp_path):
    seam = FaultSeam(tmp_path)
    (tmp_path / "pause_before_commit").touch()
    calls = []

    def stop_requested() -> bool:
        calls.append((tmp_path / "paused_before_commit").exists())
        return len(calls) >= 3

    seam.before_commit(stop_requested)
    assert calls == [True, True, True]
    assert not (tmp_path / "paused_before_commit").exists()


@pytest.mark.parametrize("declared,sent", [
    ("LowCardinality(String)", "String"),
    ("Map(LowCardinality(String), String)", "Map(String, String)"),
    ("Array(LowCardinality(String))", "Array(String)"),
    ("LowCardinality(Nullable(String))", "Nullable(String)"),
    ("Nullable(DateTime64(3, 'UTC'))", "Nullable(DateTime64(3, 'UTC'))"),
    ("Int64", "Int64"),
])
def test_low_cardinality_is_left_to_the_engine(declared, sent):
    from touchpoint.sinks.store import _without_low_cardinality

    assert _without_low_cardinality(declared) == sent
