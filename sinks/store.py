"""The sink's one ClickHouse client (clickhouse-connect), with errors classified and a test seam.

``settings.dsn`` chooses the backend: ``chdb:///path`` runs the real ClickHouse engine in-process (one data path
per process), ``http(s)://user:pass@host:8123`` talks to a server. The same DDL and queries run on both.

Every failure leaves this module as a ``StoreRetryableError`` (try again later: network, timeouts, overload) or a
``StoreRejectedError`` (the same request will fail again: bad SQL, a row the table refuses), each carrying the
server's error code when there is one.

Test seam (``settings.sink_fault_dir``, unset in production): the store checks for flag files there *before* an
insert runs and *after* it ran, so tests can make an engine that cannot be stopped look unavailable:

- ``insert_unavailable``: while the file exists, every insert fails with a retryable error before it runs.
- ``insert_response_lost``: holds a number N; the next N inserts run, then fail with a retryable error as if
  the response was lost (the retry must be deduplicated by its token).
- ``pause_before_commit``: see ``FaultSeam.before_commit`` (used by the sink loop).
- ``crash_before_insert``: the next insert raises an unexpected error (a crash with a traceback).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from touchpoint.errors import PermanentError, StoreUnavailableError

log = logging.getLogger(__name__)

# ClickHouse error codes worth retrying: the same request can succeed once the condition passes.
RETRYABLE_CODES = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY (replica / disk switched to read-only)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    236,  # ABORTED
    319,  # UNKNOWN_STATUS_OF_INSERT
    394,  # QUERY_WAS_CANCELLED
    425,  # SYSTEM_ERROR
    999,  # KEEPER_EXCEPTION
    1000, # POCO_EXCEPTION
})
_CODE_RE = re.compile(r"Code: (\d+)")
NOT_ENOUGH_SPACE = 243  # the disk is full: retryable (the sink waits for space), not a bad request


class StoreRetryableError(StoreUnavailableError):
    """ClickHouse is unreachable or refused for a transient reason; retry with backoff."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


# Codes meaning "this data does not fit the table" (dead-letter the rows), as opposed to "the table or the
# request is wrong" (stop the sink: dead-lettering everything would only hide the problem).
ROW_REJECTION_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    376,  # CANNOT_PARSE_UUID
    469,  # VIOLATED_CONSTRAINT
})


class StoreRejectedError(PermanentError):
    """ClickHouse (or the client, serializing a row) refuses the request; retrying the same input fails again."""

    def __init__(self, message: str, code: int | None = None, *, row_level: bool = False) -> None:
        self.code = code
        self.row_level = row_level
        super().__init__(message)


def classify(exc: BaseException, what: str) -> StoreRetryableError | StoreRejectedError:
    """Map a clickhouse-connect / chdb / client-side exception onto the error tree."""
    from clickhouse_connect.driver import exceptions as cc

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        found = _CODE_RE.search(str(exc))
        code = int(found.group(1)) if found else None
    message = f"{what}: {text}"
    if code == NOT_ENOUGH_SPACE or "No space left on device" in str(exc):
        return StoreRetryableError(f"{message} (ClickHouse has no disk space left: free space on its data disk; "
                                   "the sink pauses and retries until it can write)", code)
    if isinstance(exc, cc.OperationalError) or isinstance(exc, (ConnectionError, TimeoutError)):
        return StoreRetryableError(f"{message} (ClickHouse unreachable; retrying)", code)
    if isinstance(exc, cc.ClickHouseError) and code in RETRYABLE_CODES:
        return StoreRetryableError(message, code)
    if isinstance(exc, cc.ClickHouseError):
        return StoreRejectedError(message, code, row_level=code in ROW_REJECTION_CODES)
    if isinstance(exc, (ValueError, TypeError, OverflowError, KeyError, AttributeError)) or type(exc).__name__ == "error":
        # Raised by clickhouse-connect while serializing a column: the row does not fit the column type.
        return StoreRejectedError(f"{message} (a value does not fit its column type)", None, row_level=True)
    if isinstance(exc, OSError):
        return StoreRetryableError(message, None)
    return StoreRejectedError(message, code)


_LOW_CARDINALITY = re.compile(r"LowCardinality\(([^()]*(?:\([^()]*\))?[^()]*)\)")


def _without_low_cardinality(kind: str) -> str:
    """``Map(LowCardinality(String), String)`` -> ``Map(String, String)``; other types unchanged."""
    previous = None
    while previous != kind:
        previous, kind = kind, _LOW_CARDINALITY.sub(r"\1", kind)
    return kind


class FaultSeam:
    """Flag files under ``settings.sink_fault_dir`` that make the store or the loop fail on purpose (tests only)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _flag(self, name: str) -> Path | None:
        if self.directory is None:
            return None
        path = self.directory / name
        return path if path.exists() else None

    def before_insert(self, table: str) -> None:
        if self._flag("crash_before_insert") is not None:
            raise RuntimeError(f"insert into {table}: forced crash (fault seam crash_before_insert)")
        if self._flag("insert_unavailable") is not None:
            raise StoreRetryableError(f"insert into {table}: store unavailable (fault seam insert_unavailable)", 210)

    def after_insert(self, table: str) -> None:
        path = self._flag("insert_response_lost")
        if path is None:
            return
        try:
            left = int(path.read_text().strip() or "0")
        except ValueError:
            left = 0
        if left <= 0:
            return
        path.write_text(str(left - 1))
        raise StoreRetryableError(f"insert into {table}: response lost after the insert ran (fault seam)", 210)

    def before_commit(self, stop_requested: Any = None) -> None:
        """While ``pause_before_commit`` exists: announce it with ``paused_before_commit`` and wait there,
        so a test can SIGKILL the sink after an insert and before its offset commit."""
        path = self._flag("pause_before_commit")
        if path is None or self.directory is None:
            return
        marker = self.directory / "paused_before_commit"
        marker.write_text(str(time.time()))
        log.warning("fault seam: paused between insert and commit (remove %s to continue)", path)
        while path.exists():
            if stop_requested is not None and stop_requested():
                break
            time.sleep(0.05)
        marker.unlink(missing_ok=True)


class Store:
    """One clickhouse-connect client; ``database`` is the pipeline's database (tables are always qualified)."""

    def __init__(self, client: Any, database: str, *, dsn: str = "", fault_dir: Path | None = None,
                 cluster: str | None = None) -> None:
        self.client = client
        self.database = database
        self.dsn = dsn
        # On a cluster the tables are Distributed: an insert returns once every shard has its rows (not when
        # they are queued locally), so a stored offset means stored (see sinks/README.md "On a cluster").
        self.insert_settings: dict[str, Any] = {"insert_distributed_sync": 1} if cluster else {}
        self.faults = FaultSeam(fault_dir)
        self._wire_types: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    @classmethod
    def connect(cls, settings: Any) -> "Store":
        """A store for ``settings.dsn``; raises StoreRetryableError when a server is not reachable."""
        import clickhouse_connect

        try:
            client = clickhouse_connect.get_client(**settings.clickhouse_kwargs())
        except Exception as exc:  # noqa: BLE001 - classified and re-raised
            raise classify(exc, f"connect to {settings.redacted()['clickhouse_dsn']}") from exc
        return cls(client, settings.clickhouse_database, dsn=settings.dsn,
                   fault_dir=getattr(settings, "sink_fault_dir", None),
                   cluster=getattr(settings, "clickhouse_cluster", None))

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.command(sql, settings=settings)
        except Exception as exc:  # noqa: BLE001 - classified and re-raised
            raise classify(exc, f"ClickHouse statement failed ({sql.strip().splitlines()[0][:120]})") from exc

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return list(self.client.query(sql, parameters=parameters).result_rows)
        except Exception as exc:  # noqa: BLE001 - classified and re-raised
            raise classify(exc, f"ClickHouse query failed ({sql.strip().splitlines()[0][:120]})") from exc

    def insert(self, table: str, columns: Sequence[Sequence[Any]], column_names: Sequence[str],
               token: str | None = None) -> None:
        """Columnar insert of one block; ``token`` makes a retry of the same block a no-op."""
        self.faults.before_insert(table)
        settings = {**self.insert_settings, **({"insert_deduplication_token": token} if token else {})} or None
        types = self.wire_types(table, tuple(column_names))
        try:
            self.client.insert(self.table(table), columns, column_names=list(column_names),
                               column_type_names=types, column_oriented=True, settings=settings)
        except Exception as exc:  # noqa: BLE001 - classified and re-raised
            where = f" (data in {self.dsn.removeprefix('chdb://')})" if self.embedded else ""
            raise classify(exc, f"insert into {self.table(table)}{where}") from exc
        self.faults.after_insert(table)

    def wire_types(self, table: str, column_names: tuple[str, ...]) -> list[str]:
        """Column types to send: the table's, with ``LowCardinality`` removed. The engine converts String to
        LowCardinality(String) on insert in C++; clickhouse-connect would build the dictionaries in Python, which
        measured as the largest single cost of a columnar insert of touchpoints."""
        key = (table, column_names)
        found = self._wire_types.get(key)
        if found is None:
            declared = {name: kind for name, kind, *_ in self.query_rows(f"DESCRIBE TABLE {self.table(table)}")}
            found = [_without_low_cardinality(declared[name]) for name in column_names]
            self._wire_types[key] = found
        return found

    def high_water(self, table: str, topic: str, partition: int) -> int | None:
        """Highest Kafka offset of ``topic[partition]`` already stored in ``table`` (None: nothing stored)."""
        rows = self.query_rows(
            f"SELECT max(kafka_offset), count() FROM {self.table(table)} "
            "WHERE kafka_topic = {t:String} AND kafka_partition = {p:Int32}",
            {"t": topic, "p": partition},
        )
        if not rows or not rows[0][1]:
            return None
        return int(rows[0][0])

    def close(self) -> None:
        try:
            self.client.close()
        except Exception as exc:  # noqa: BLE001 - closing is best effort; say so
            log.debug("closing the ClickHouse client failed: %s", exc)
