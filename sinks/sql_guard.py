"""Settings an analyst may change on the read-only SQL interface, and the refusal error its layers raise.

What a statement is (its kind, table functions, INTO OUTFILE, SETTINGS clauses) is decided by the engine's
own parser in ``sql_statement.py``; limits are in ``sql_limits.py``. Refusals carry ClickHouse's error code and
text shape (``Code: 164. DB::Exception: ... (READONLY)``) so an analyst's client reports them the way it
reports a real readonly ClickHouse user.
"""

from __future__ import annotations

from touchpoint.errors import PermanentError

READONLY = 164
SYNTAX_ERROR = 62

# Settings an analyst may change (URL parameters, ``SET`` in a session). They shape output and bound work;
# none can write, reach the file system or the network, or lift ``readonly``.
_ALLOWED_SETTING_PREFIXES = ("output_format_", "format_", "date_time_", "max_", "join_", "optimize_")
_ALLOWED_SETTINGS = frozenset({
    "extremes", "result_overflow_mode", "timeout_overflow_mode", "read_overflow_mode", "group_by_overflow_mode",
    "sort_overflow_mode", "distinct_overflow_mode", "limit", "offset", "totals_mode", "totals_auto_threshold",
    "session_timezone", "final", "do_not_merge_across_partitions_select_final", "aggregate_functions_null_for_empty",
    "cast_keep_nullable", "transform_null_in", "union_default_mode", "count_distinct_implementation",
    "prefer_column_name_to_alias", "joined_subquery_requires_alias", "enable_analyzer", "allow_experimental_analyzer",
    "log_comment", "priority", "use_uncompressed_cache", "cast_string_to_dynamic_use_inference",
    "interval_output_format", "precise_float_parsing", "data_type_default_nullable", "use_query_cache",
    "min_count_to_compile_expression", "compile_expressions", "enable_named_columns_in_function_tuple",
})
# Inside the allowed prefixes, settings that name a server-side file (read for a format, or written) or lift
# a server-wide bound.
_NOT_ALLOWED = frozenset({
    "max_server_memory_usage", "max_concurrent_queries_for_all_users", "format_schema", "format_template_row",
    "format_template_resultset", "format_schema_source", "format_schema_message_name", "output_format_schema",
})


class ReadOnlyViolation(PermanentError):
    """A statement the read-only interface refuses; ``code`` is the ClickHouse error code it answers with."""

    def __init__(self, message: str, code: int = READONLY, name: str = "READONLY") -> None:
        self.code = code
        self.name = name
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")


def setting_allowed(name: str) -> bool:
    """True when an analyst may change setting ``name`` on the read-only interface."""
    if name in _NOT_ALLOWED:
        return False
    return name in _ALLOWED_SETTINGS or name.startswith(_ALLOWED_SETTING_PREFIXES)


def refuse_setting(name: str) -> ReadOnlyViolation:
    return ReadOnlyViolation(f"Cannot modify '{name}' setting in readonly mode")
