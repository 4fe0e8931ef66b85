"""Second layer of the read-only SQL interface: classify a statement before the engine sees it.

The first layer is ClickHouse's own ``readonly = 1``, applied to every analyst query (see
``readonly_engine.py``). This module refuses what that setting lets through or what should never reach the
sink's engine at all: multi-statements (chdb runs them all, and a failed one leaks partial output into the
handle), ``INTO OUTFILE`` (chdb writes the file even under ``readonly = 1``), ``KILL`` (allowed by
``readonly`` and able to kill the sink's own inserts), and every statement kind that is not a read.

Refusals carry ClickHouse's error code and text shape (``Code: 164. DB::Exception: ... (READONLY)``) so an
analyst's client reports them the way it reports a real readonly ClickHouse user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from touchpoint.errors import PermanentError

READONLY = 164
SYNTAX_ERROR = 62

# Statement kinds an analyst may run. Everything else (INSERT, CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE, SYSTEM,
# KILL, RENAME, GRANT, REVOKE, ATTACH, DETACH, BACKUP, RESTORE, CHECK, DELETE, UPDATE, EXCHANGE, MOVE, UNDROP,
# WATCH, BEGIN/COMMIT, ...) is refused.
READ_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "SET", "USE"})
WRITE_KINDS = frozenset({
    "INSERT", "CREATE", "ALTER", "DROP", "TRUNCATE", "OPTIMIZE", "SYSTEM", "KILL", "RENAME", "GRANT", "REVOKE",
    "ATTACH", "DETACH", "BACKUP", "RESTORE", "CHECK", "DELETE", "UPDATE", "EXCHANGE", "MOVE", "UNDROP", "WATCH",
    "BEGIN", "COMMIT", "ROLLBACK", "REPLACE", "UNDROP", "EXECUTE",
})
ROW_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})

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
_NOT_ALLOWED = frozenset({"max_server_memory_usage", "max_concurrent_queries_for_all_users"})


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


@dataclass(frozen=True)
class Statement:
    """What the guard learnt about one statement: its kind and, for SET/USE, what it changes."""

    kind: str
    settings: dict[str, str] = field(default_factory=dict)  # SET: name -> SQL literal text
    database: str | None = None  # USE

    @property
    def returns_rows(self) -> bool:
        return self.kind in ROW_KINDS


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")


def _tokens(sql: str) -> list[str]:
    """Top-level tokens of ``sql``: words, ``;``, ``=``, ``,``, parens, quoted strings and
    identifiers (kept verbatim) and other punctuation; comments dropped. Enough to classify, not to parse."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) or (ch == "#" and (i + 1 == n or sql[i + 1] in " !")):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:  # ClickHouse block comments nest
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif ch == "$" and (m := _HEREDOC.match(sql, i)):
            end = sql.find(m.group(0), m.end())
            j = n if end < 0 else end + len(m.group(0))
            out.append("'" + sql[m.end():end if end >= 0 else n] + "'")
            i = j
        elif m := _WORD.match(sql, i):
            out.append(m.group(0))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    return out


def _unquote_identifier(token: str) -> str:
    if len(token) >= 2 and token[0] in "`\"" and token[-1] == token[0]:
        return token[1:-1]
    return token


def refuse_write_head(sql: str) -> None:
    """Refuse ``sql`` when it starts a write (``INSERT ... FORMAT Native`` in the URL with the rows in the body).

    The body of such a request is data, not SQL: a ``;`` or a quote byte in it must not turn the answer into a
    syntax error, so the statement in the URL is judged on its own first, as ClickHouse would.
    """
    tokens = [t.upper() for t in _tokens(sql) if t != "("]
    if tokens and tokens[0] in WRITE_KINDS:
        raise ReadOnlyViolation(f"{tokens[0]} is not allowed: this SQL interface is read-only "
                                "(Cannot execute query in readonly mode)")


def check_read_only(sql: str) -> Statement:
    """Classify ``sql`` (one statement) or raise ``ReadOnlyViolation``.

    Refuses: empty input, more than one statement, any kind outside ``READ_KINDS``, ``INTO OUTFILE``,
    ``SET`` of a setting outside the whitelist (or of ``readonly`` itself).
    """
    raw = _tokens(sql)
    while raw and raw[-1] == ";":
        raw.pop()
    tokens = [t.upper() if _WORD.fullmatch(t) else t for t in raw]
    if not tokens:
        raise ReadOnlyViolation("Empty query", SYNTAX_ERROR, "SYNTAX_ERROR")
    if ";" in tokens:
        raise ReadOnlyViolation("Syntax error: Multi-statements are not allowed", SYNTAX_ERROR, "SYNTAX_ERROR")
    first = next((t for t in tokens if t != "("), "")
    if first in WRITE_KINDS:
        raise ReadOnlyViolation(f"{first} is not allowed: this SQL interface is read-only (Cannot execute query in readonly mode)")
    if first not in READ_KINDS:
        raise ReadOnlyViolation(f"Syntax error: failed at position 1 ({first!r}): expected a read statement "
                                "(SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS, SET, USE)", SYNTAX_ERROR, "SYNTAX_ERROR")
    for a, b in zip(tokens, tokens[1:]):
        if a == "INTO" and b == "OUTFILE":
            raise ReadOnlyViolation("INTO OUTFILE is not allowed: this SQL interface is read-only (Cannot execute query in readonly mode)")
    if first == "SET":
        return Statement("SET", settings=_parse_set(raw[1:]))
    if first == "USE":
        if len(raw) != 2:
            raise ReadOnlyViolation("Syntax error: USE takes one database name", SYNTAX_ERROR, "SYNTAX_ERROR")
        return Statement("USE", database=_unquote_identifier(raw[1]))
    return Statement(first)


def _parse_set(body: list[str]) -> dict[str, str]:
    """Tokens after ``SET``: ``a = 1, b = 'x'`` -> {"a": "1", "b": "'x'"}; every name must be whitelisted."""
    result: dict[str, str] = {}
    i = 0
    while i < len(body):
        if i + 1 >= len(body) or body[i + 1] != "=" or not _WORD.fullmatch(body[i]):
            raise ReadOnlyViolation("Syntax error: expected SET name = value", SYNTAX_ERROR, "SYNTAX_ERROR")
        name = body[i].lower()
        j, depth, value = i + 2, 0, []
        while j < len(body) and not (body[j] == "," and depth == 0):
            depth += 1 if body[j] in "([" else -1 if body[j] in ")]" else 0
            value.append(body[j])
            j += 1
        if not value:
            raise ReadOnlyViolation(f"Syntax error: no value for setting '{name}'", SYNTAX_ERROR, "SYNTAX_ERROR")
        if not setting_allowed(name):
            raise refuse_setting(name)
        result[name] = "".join(value) if len(value) > 1 and value[0] in "-+" else " ".join(value)
        i = j + 1
    return result
