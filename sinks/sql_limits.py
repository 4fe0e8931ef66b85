"""Per-query limits of analyst SQL: ceilings an analyst may lower, never raise.

The analyst's queries run inside the process whose real job is storing the pipeline's data, so every query
runs with ClickHouse's own limits set on its handle (``max_execution_time``, ``max_result_rows``,
``max_result_bytes``, ``max_memory_usage``; the engine stops a query that passes one, with ClickHouse's code),
the number of queries at once is bounded, and so is the size of a statement. Defaults and descriptions live in
``touchpoint.config`` (``TOUCHPOINT_SINK_SQL_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from touchpoint.sinks.sql_guard import ReadOnlyViolation

TOO_MANY_SIMULTANEOUS_QUERIES = 202
QUERY_IS_TOO_LARGE = 229


@dataclass(frozen=True)
class QueryLimits:
    """The ceilings of one read-only engine (see ``touchpoint.config`` for each one's meaning and default)."""

    max_execution_seconds: float = 60.0
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 1 << 30
    max_memory_bytes: int = 1 << 30
    max_concurrent: int = 4
    max_query_bytes: int = 1 << 20

    @classmethod
    def from_settings(cls, settings: Any) -> "QueryLimits":
        return cls(
            max_execution_seconds=settings.sink_sql_max_execution_seconds,
            max_result_rows=settings.sink_sql_max_result_rows,
            max_result_bytes=settings.sink_sql_max_result_bytes,
            max_memory_bytes=settings.sink_sql_max_memory_bytes,
            max_concurrent=settings.sink_sql_max_concurrent,
            max_query_bytes=settings.sink_sql_max_query_bytes,
        )

    def ceilings(self) -> dict[str, float]:
        """ClickHouse setting name -> ceiling (0 means unlimited to ClickHouse, so it is never a valid value)."""
        return {
            "max_execution_time": self.max_execution_seconds,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "max_memory_usage": self.max_memory_bytes,
        }

    def settings_to_apply(self, current: dict[str, float], set_by_analyst: set[str]) -> dict[str, float]:
        """The limit settings to SET on a handle whose values are ``current``: each limit the analyst left alone
        gets its ceiling; a limit the analyst set is kept when it lowers the ceiling and refused (code 164, as a
        readonly ClickHouse user changing a constrained setting) when it would raise it or lift it (0)."""
        apply: dict[str, float] = {}
        for name, ceiling in self.ceilings().items():
            value = current.get(name, 0.0)
            if name in set_by_analyst:
                if value <= 0 or value > ceiling:
                    raise ReadOnlyViolation(
                        f"Setting {name} should not be greater than {_number(ceiling)} (and 0, unlimited, is not "
                        "allowed): this read-only interface lets a query lower its limits, not raise them")
            else:
                apply[name] = ceiling
        return apply

    def query_too_large(self, size: int) -> ReadOnlyViolation:
        return ReadOnlyViolation(
            f"Query is too large ({size}). max_query_size = {self.max_query_bytes} (the read-only interface's "
            "limit on a statement and on a request body, also after decompression; TOUCHPOINT_SINK_SQL_MAX_QUERY_BYTES)",
            QUERY_IS_TOO_LARGE, "QUERY_IS_TOO_LARGE")

    def too_many_queries(self) -> ReadOnlyViolation:
        return ReadOnlyViolation(
            f"Too many simultaneous queries. Maximum: {self.max_concurrent} (TOUCHPOINT_SINK_SQL_MAX_CONCURRENT); "
            "retry when one of them has finished", TOO_MANY_SIMULTANEOUS_QUERIES, "TOO_MANY_SIMULTANEOUS_QUERIES")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
