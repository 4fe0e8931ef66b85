"""What a statement is, decided by ClickHouse's own parser: the read-only SQL interface's statement gate.

A hand-written tokenizer disagrees with ClickHouse's grammar somewhere (``x$a$`` is an identifier to ClickHouse
and the opening of a heredoc to a naive scanner; the bytes after ``INSERT ... FORMAT Native`` are data to
ClickHouse and SQL to a scanner). So the engine parses, without executing, in two steps:

1. ``formatQuerySingleLine(<statement>)`` (the statement bound as a query parameter, never spliced into SQL):
   the engine's parser accepts exactly one statement (two are a syntax error, code 62) and prints it back in
   its canonical form. Comments, heredocs and look-alike spellings are gone; identifiers that need quoting are
   quoted; the data after ``INSERT ... FORMAT x`` is not part of the statement, so data bytes can never change
   the answer. The canonical text is printed again and must come back unchanged: it is a single statement as
   the engine reads it, and it is the text that runs, so what runs is exactly what was judged.
2. ``EXPLAIN AST <canonical>``: the parse tree, whose node kinds are checked against allow-lists: the root is a
   read kind, every query node inside is a read, no table function outside ``ALLOWED_TABLE_FUNCTIONS``, no
   function that reads files, no ``SETTINGS`` clause (settings go in URL parameters or a session's ``SET``,
   checked there), no ``INTO OUTFILE`` (a literal directly under the root: chdb writes that file even under
   ``readonly = 1``).

The engine's ``readonly = 1`` and per-query limits stay as a second layer (``readonly_engine.py``).
Refusals carry ClickHouse's codes and text shape (``Code: 164. DB::Exception: ... (READONLY)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from touchpoint.sinks.sql_guard import SYNTAX_ERROR, ReadOnlyViolation

# Root node kinds of EXPLAIN AST an analyst may run (all read; Set/UseQuery change the session only).
READ_ROOTS = frozenset({
    "SelectWithUnionQuery", "ShowTables", "ShowColumns", "ShowIndexes", "ShowCreateTableQuery",
    "ShowCreateDatabaseQuery", "ShowCreateViewQuery", "ShowCreateDictionaryQuery", "DescribeQuery",
    "ExistsTableQuery", "ExistsDatabaseQuery", "ExistsViewQuery", "ExistsDictionaryQuery", "Explain",
    "ShowEngineQuery", "ShowFunctions",
})
SESSION_ROOTS = frozenset({"Set", "UseQuery"})
# Query nodes that may appear inside an allowed statement.
READ_QUERY_NODES = READ_ROOTS | SESSION_ROOTS | frozenset({"SelectQuery", "SelectIntersectExceptQuery", "Subquery", "TablesInSelectQuery"})
# Table functions that only compute (no file system, network, processes, other databases or Python objects).
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "values", "view", "generate_series", "generateseries",
    "generaterandom", "format", "primes",
})
# Ordinary functions that reach outside the query: `file` reads a server-side file into a string.
DENIED_FUNCTIONS = frozenset({"file", "catboostevaluate", "showcertificate", "generateserialid"})

_FORMAT_AT_END = re.compile(r"\bFORMAT ([A-Za-z0-9_]+)$")
_SET_ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*) = ((?:'(?:[^'\\]|\\.)*'|[^,'])+?)(?:, |$)", re.DOTALL)

Runner = Callable[[str, Mapping[str, str]], str]


@dataclass(frozen=True)
class Statement:
    """One statement as the engine parsed it: ``kind`` is the root node of its AST, ``canonical`` the engine's
    own single-line text of it (what runs), ``fmt`` its FORMAT clause, ``settings``/``database`` for SET/USE."""

    kind: str
    canonical: str
    fmt: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None

    @property
    def returns_rows(self) -> bool:
        return self.kind in READ_ROOTS


def escape_param(value: str) -> str:
    """``value`` in the escaped text form ClickHouse reads query parameters in (tab/newline/backslash escaped),
    so the parameter arrives byte for byte."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
            .replace("\0", "\\0"))


def readonly_refusal(what: str) -> ReadOnlyViolation:
    return ReadOnlyViolation(f"{what}: this SQL interface is read-only (Cannot execute query in readonly mode)")


class StatementGate:
    """Classifies statements with the engine's parser; ``run(sql, params)`` runs SQL on some engine handle and
    returns its TabSeparatedRaw output (raising the engine's error). ``table_functions`` are the engine's
    table function names (lower case), so a Function node of any of them outside the allow-list is refused
    wherever it appears in the tree."""

    def __init__(self, run: Runner, table_functions: frozenset[str]) -> None:
        self._run = run
        self.table_functions = table_functions

    def canonical(self, sql: str) -> str:
        """The engine's canonical single-line text of ``sql``; raises the engine's error (62 for two
        statements or bad syntax). The text is re-formatted and must be a fixed point: one statement."""
        out = self._run("SELECT formatQuerySingleLine({q:String}) AS c, formatQuerySingleLine(c) = c",
                        {"q": escape_param(sql)})
        text, _, stable = out.rstrip("\n").rpartition("\t")
        if stable != "1" or not text.strip():
            raise ReadOnlyViolation("Syntax error: the statement does not read back as one statement",
                                    SYNTAX_ERROR, "SYNTAX_ERROR")
        return text.strip()

    def kind(self, sql: str) -> str:
        """The root node kind of ``sql`` (parsed, not run); only its head matters, so an INSERT's data never
        counts. Raises the engine's error when ``sql`` does not parse."""
        canonical = self.canonical(sql)
        return self._tree(canonical, {})[0][1]

    def classify(self, sql: str, params: Mapping[str, str] | None = None) -> Statement:
        """The statement in ``sql`` if an analyst may run it, else ``ReadOnlyViolation`` (or the engine's own
        parse error). ``params`` are the request's query parameters (EXPLAIN AST needs them bound)."""
        canonical = self.canonical(sql)
        nodes = self._tree(canonical, params or {})
        root = nodes[0][1]
        if root not in READ_ROOTS and root not in SESSION_ROOTS:
            raise readonly_refusal(f"{kind_name(root)} is not allowed")
        if root == "Explain":  # what is explained must be a read too (node ids of some writes lack "Query")
            explained = next((kind for depth, kind, _ in nodes if depth == 1 and kind != "Set"), "")
            if explained not in READ_ROOTS:
                raise readonly_refusal(f"EXPLAIN of {kind_name(explained) or 'nothing'} is not allowed")
        for depth, kind, rest in nodes:
            if kind == "Function":
                name = rest.split(" ", 1)[0].lower()
                if name in self.table_functions and name not in ALLOWED_TABLE_FUNCTIONS:
                    raise readonly_refusal(f"table function {name}() is not allowed (allowed: "
                                           f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))})")
                if name in DENIED_FUNCTIONS:
                    raise readonly_refusal(f"function {name}() is not allowed")
            elif kind == "Set" and root != "Set" and not (depth == 1 and root == "Explain"):
                raise ReadOnlyViolation("Cannot modify settings with a SETTINGS clause in readonly mode; pass an "
                                        "allowed setting as a URL parameter or SET it in a session")
            elif (kind.endswith("Query") or kind == "Explain") and kind not in READ_QUERY_NODES:
                raise readonly_refusal(f"{kind_name(kind)} is not allowed")
            elif depth == 1 and kind == "Literal" and root in READ_ROOTS:
                raise readonly_refusal("INTO OUTFILE is not allowed")
        if root == "Set":
            return Statement("Set", canonical, settings=_set_items(canonical))
        if root == "UseQuery":
            return Statement("UseQuery", canonical, database=nodes[0][2].split(" ", 1)[0] or None)
        found = _FORMAT_AT_END.search(canonical)
        return Statement(root, canonical, fmt=found.group(1) if found else None)

    def _tree(self, canonical: str, params: Mapping[str, str]) -> list[tuple[int, str, str]]:
        """EXPLAIN AST of ``canonical`` as (depth, node kind, rest of line)."""
        dump = self._run(f"EXPLAIN AST {canonical}", params)
        nodes = []
        for line in dump.splitlines():
            stripped = line.lstrip(" ")
            if stripped:
                kind, _, rest = stripped.partition(" ")
                nodes.append((len(line) - len(stripped), kind, rest))
        if not nodes:
            raise ReadOnlyViolation("Empty query", SYNTAX_ERROR, "SYNTAX_ERROR")
        return nodes


def kind_name(kind: str) -> str:
    """``InsertQuery`` -> ``INSERT``: the statement kind as an analyst wrote it."""
    base = kind[:-5] if kind.endswith("Query") else kind
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).upper()


def _set_items(canonical: str) -> dict[str, str]:
    """``SET a = 1, b = 'x'`` (the engine's canonical text) -> {"a": "1", "b": "'x'"}."""
    body = canonical[4:] if canonical.startswith("SET ") else ""
    items: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        found = _SET_ITEM.match(body, pos)
        if found is None:
            raise ReadOnlyViolation("Syntax error: expected SET name = value", SYNTAX_ERROR, "SYNTAX_ERROR")
        items[found.group(1)] = found.group(2)
        pos = found.end()
    if not items:
        raise ReadOnlyViolation("Syntax error: expected SET name = value", SYNTAX_ERROR, "SYNTAX_ERROR")
    return items
