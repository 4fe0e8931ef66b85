"""The single-node DDL of ``sinks/ddl/`` rendered for a replicated, sharded ClickHouse cluster.

Rules, applied to every statement of every migration file (nothing here names a table of ours):

- ``CREATE DATABASE`` / ``CREATE VIEW`` / ``DROP`` / other DDL: ``ON CLUSTER <name>`` after the object name.
- ``CREATE TABLE name (...) ENGINE = XMergeTree(args) ...`` becomes two tables, both ``ON CLUSTER``:
  ``name_local`` with ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/name_local', '{replica}', args)`` and
  the same columns, sorting, partition and version keys, TTL and settings (``non_replicated_deduplication_window``
  becomes ``replicated_deduplication_window``, its replicated counterpart); and ``name`` itself as
  ``Distributed(<cluster>, <db>, name_local, kafka_partition)``. Readers and the sink keep using ``name``.
- A plain view reads the Distributed tables; its ``JOIN`` / ``IN (SELECT ...)`` become ``GLOBAL`` so each shard is
  not asked to query the whole cluster again (ClickHouse denies such double-distributed subqueries by default).
- A materialized view fires on inserts into the *local* table of its shard, so its ``FROM``/``JOIN`` sources and
  its ``TO`` target are rewritten to their ``_local`` tables; a materialized view with its own engine gets the
  replicated engine under ``name_local`` and a Distributed ``name`` over it, like a table.
- ``ALTER TABLE name`` applies to ``name_local``; column changes also to the Distributed ``name``.
- Anything else is refused with ``ClusterDDLError`` naming the statement, so a new migration cannot slip through
  rendered wrongly: extend these rules instead.

Why shard by ``kafka_partition``: every table carries the Kafka coordinates of its row. The topics are keyed by
what the table's ``ORDER BY`` collapses on (events by customer/anonymous id, journeys by journey_id, metric windows
by their key, merges by anonymous id), so rows that replace each other come from one partition and land on one
shard, where ``FINAL`` collapses them; and the rows of one topic partition live on one shard, so the sink's
restart position (the highest stored offset per partition) stays exact: see sinks/README.md "On a cluster".
A table without a ``kafka_partition`` column gets a Distributed table with no sharding key: reads work, and a
direct insert through it fails loudly on more than one shard instead of spreading rows that must stay together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from touchpoint.errors import PermanentError

LOCAL_SUFFIX = "_local"
SHARDING_COLUMN = "kafka_partition"

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?"
_HEAD = re.compile(
    r"^\s*(?P<verb>CREATE(?:\s+OR\s+REPLACE)?\s+(?P<what>TABLE|VIEW|MATERIALIZED\s+VIEW|DATABASE|DICTIONARY|"
    r"FUNCTION)|ALTER\s+(?P<alter>TABLE)|DROP\s+(?:TABLE|VIEW|DATABASE|DICTIONARY))"
    r"(?P<exists>\s+IF\s+(?:NOT\s+)?EXISTS)?\s+(?P<name>" + _NAME + r")", re.IGNORECASE)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<engine>[A-Za-z]*MergeTree)\b(?:\s*\((?P<args>[^()]*)\))?", re.IGNORECASE)
_TO = re.compile(r"^\s*TO\s+(?P<target>" + _NAME + r")", re.IGNORECASE)
_COLUMN_ALTER = re.compile(r"^\s*(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.IGNORECASE)
_JOIN = re.compile(r"(?<![A-Za-z_])((?:(?:LEFT|RIGHT|INNER|FULL|CROSS)\s+(?:OUTER\s+|ANY\s+|ALL\s+|SEMI\s+|ANTI\s+)?)?JOIN)\b",
                   re.IGNORECASE)
_IN_SELECT = re.compile(r"(?<![A-Za-z_])((?:NOT\s+)?IN)(\s*\(\s*SELECT\b)", re.IGNORECASE)


class ClusterDDLError(PermanentError):
    """A migration statement this renderer has no rule for (the message names it and what to do)."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where the cluster DDL goes: the cluster's name (``remote_servers``) and the pipeline's database."""

    cluster: str
    database: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", self.cluster):
            raise ClusterDDLError(f"cluster name {self.cluster!r} must be letters, digits, _ or - "
                                  "(the name of a cluster in the servers' remote_servers)")

    @property
    def on(self) -> str:
        return f"ON CLUSTER {self.cluster}"


def _split_columns(body: str) -> list[str]:
    """Top-level comma-separated items of a column list or an ALTER body (parentheses and quotes respected)."""
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(body):
        if quote:
            if ch == quote and body[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    return [item.strip() for item in items if item.strip()]


def _column_list(rest: str) -> tuple[str, str]:
    """(the parenthesised column list, what follows it) of a CREATE TABLE's remainder after the name."""
    start = rest.index("(")
    depth = 0
    for i in range(start, len(rest)):
        if rest[i] == "(":
            depth += 1
        elif rest[i] == ")":
            depth -= 1
            if depth == 0:
                return rest[start:i + 1], rest[i + 1:]
    raise ClusterDDLError("unbalanced parentheses in a column list")


def _has_column(columns: str, name: str) -> bool:
    return any(item.split()[0].strip("`") == name for item in _split_columns(columns[1:-1]))


def _replicated(spec: ClusterSpec, local: str, tail: str, statement: str) -> str:
    found = _ENGINE.search(tail)
    if found is None:
        raise ClusterDDLError(f"no *MergeTree engine in: {statement[:160]}")
    engine, args = found.group("engine"), (found.group("args") or "").strip()
    path = f"'/clickhouse/tables/{{shard}}/{spec.database}/{local.split('.')[-1]}'"
    params = ", ".join(p for p in (path, "'{replica}'", args) if p)
    tail = tail[:found.start()] + f"ENGINE = Replicated{engine}({params})" + tail[found.end():]
    # The insert dedup window that makes the sink's retried inserts no-ops is a different setting on replicated tables.
    return re.sub(r"\bnon_replicated_deduplication_window\b", "replicated_deduplication_window", tail)


def _distributed(spec: ClusterSpec, name: str, local: str, sharded: bool, exists: str) -> str:
    key = f", {SHARDING_COLUMN}" if sharded else ""
    return (f"CREATE TABLE{exists} {name} {spec.on} AS {local} "
            f"ENGINE = Distributed({spec.cluster}, {spec.database}, {local.split('.')[-1]}{key})")


def _to_local(sql: str, split: set[str]) -> str:
    for name in sorted(split, key=len, reverse=True):
        sql = re.sub(rf"(?<![A-Za-z0-9_.]){re.escape(name)}(?![A-Za-z0-9_])", name + LOCAL_SUFFIX, sql)
    return sql


def _global(select: str) -> str:
    def join(m: re.Match[str]) -> str:
        before = m.string[:m.start()].rstrip().upper()
        if before.endswith("GLOBAL") or before.endswith("ARRAY") or m.group(1).upper().startswith("ARRAY"):
            return m.group(1)  # already global, or an ARRAY JOIN (not a table join)
        return "GLOBAL " + m.group(1)

    select = _JOIN.sub(join, select)
    return _IN_SELECT.sub(lambda m: m.group(1) if m.string[:m.start()].rstrip().upper().endswith("GLOBAL")
                          else "GLOBAL " + m.group(1) + m.group(2), select)


def render_statement(spec: ClusterSpec, statement: str, split: set[str]) -> list[str]:
    """One single-node statement as its cluster statements; ``split`` collects tables that got a ``_local`` twin."""
    head = _HEAD.match(statement)
    if head is None:
        raise ClusterDDLError(f"no cluster rule for this statement (extend sinks/cluster_ddl.py): {statement[:160]}")
    name, exists = head.group("name"), head.group("exists") or ""
    rest = statement[head.end():]
    what = re.sub(r"\s+", " ", (head.group("what") or "").upper())
    verb = head.group("verb")
    if what == "TABLE" and _ENGINE.search(rest) and not rest.lstrip().startswith("("):
        raise ClusterDDLError(f"a *MergeTree table needs its column list to be rendered for a cluster: {statement[:160]}")
    if what == "TABLE" and _ENGINE.search(rest):
        columns, tail = _column_list(rest)
        local = name + LOCAL_SUFFIX
        split.add(name)
        return [f"{verb}{exists} {local} {spec.on}\n{columns}{_replicated(spec, local, tail, statement)}",
                _distributed(spec, name, local, _has_column(columns, SHARDING_COLUMN), exists)]
    if what == "MATERIALIZED VIEW":
        target = _TO.match(rest)
        if target is not None:
            return [f"{verb}{exists} {name} {spec.on}{_to_local(rest, split)}"]
        if _ENGINE.search(rest) is None:
            raise ClusterDDLError(f"materialized view without TO and without a *MergeTree engine: {statement[:160]}")
        engine_at = _ENGINE.search(rest)
        assert engine_at is not None
        as_at = re.search(r"\bAS\s+SELECT\b", rest, re.IGNORECASE)
        if as_at is None:
            raise ClusterDDLError(f"materialized view without AS SELECT: {statement[:160]}")
        local = name + LOCAL_SUFFIX
        body = _replicated(spec, local, rest[:as_at.start()], statement) + _to_local(rest[as_at.start():], split)
        split.add(name)
        return [f"{verb}{exists} {local} {spec.on}{body}", _distributed(spec, name, local, False, exists)]
    if what == "VIEW":
        return [f"{verb}{exists} {name} {spec.on}{_global(rest)}"]
    if head.group("alter"):
        out = [f"{verb} {name + LOCAL_SUFFIX if name in split else name} {spec.on}{rest}"]
        if name in split:
            # The Distributed table takes only the column changes: it has no sorting key, TTL or MergeTree settings.
            column_changes = [command for command in _split_columns(rest) if _COLUMN_ALTER.match(command)]
            if column_changes:
                out.append(f"{verb} {name} {spec.on}\n    " + ",\n    ".join(column_changes))
        return out
    if verb.upper().startswith("DROP") and name in split:
        return [f"{verb}{exists} {name} {spec.on}{rest}", f"{verb}{exists} {name + LOCAL_SUFFIX} {spec.on}{rest}"]
    # Databases, views' drops, tables without a MergeTree engine (Null, Memory...): the same on every node.
    return [f"{verb}{exists} {name} {spec.on}{rest}"]


def render_cluster(spec: ClusterSpec, statements: list[str], split: set[str] | None = None) -> list[str]:
    """Every statement rendered in order (``split`` carries the split tables across calls, e.g. across files)."""
    split = set() if split is None else split
    return [out for statement in statements for out in render_statement(spec, statement, split)]


def bookkeeping(spec: ClusterSpec) -> list[str]:
    """``schema_migrations`` on every node: one replica set across the whole cluster (no ``{shard}`` in its path),
    so each node knows every applied version."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {spec.database} {spec.on}",
        f"CREATE TABLE IF NOT EXISTS {spec.database}.schema_migrations {spec.on} "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{spec.database}/schema_migrations', '{{replica}}') "
        "ORDER BY version",
    ]
