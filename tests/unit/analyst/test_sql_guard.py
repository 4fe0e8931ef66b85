"""The settings an analyst may change on the read-only SQL interface (statements: integration/analyst/test_statement_gate.py)."""

from __future__ import annotations

from touchpoint.sinks.sql_guard import setting_allowed


def test_setting_whitelist() -> None:
    for name in ("max_threads", "max_execution_time", "output_format_json_quote_64bit_integers", "date_time_output_format",
                 "join_use_nulls", "final", "session_timezone", "result_overflow_mode"):
        assert setting_allowed(name), name
    for name in ("readonly", "allow_ddl", "allow_introspection_functions", "send_logs_level", "insert_deduplication_token",
                 "max_server_memory_usage", "async_insert", "format_schema", "format_template_row", "output_format_schema"):
        assert not setting_allowed(name), name
