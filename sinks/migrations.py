"""Versioned DDL: ``sinks/ddl/NNNN_name.sql``, applied in order and recorded in ``schema_migrations``.

Steps of ``migrate``:
1. create the database and ``schema_migrations`` if missing;
2. read the versions already recorded;
3. for each file not recorded, in version order: run its statements one by one (every statement is written
   to be idempotent: ``IF NOT EXISTS``), then record the version with the file's checksum.

Re-running is a no-op. A failing statement stops with ``MigrationError`` naming the file, the statement number
and its first line, and nothing is recorded for that file, so fixing it and re-running resumes there.
Placeholders: ``{database}`` (settings.clickhouse_database) and ``{raw_ttl}`` (TTL clause from raw_ttl_days).
With ``settings.clickhouse_cluster`` every file is applied in its cluster rendering (``cluster_script``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from touchpoint.errors import ConfigError, PermanentError, TouchpointError

from touchpoint.sinks.store import Store

log = logging.getLogger(__name__)

# Not `migrations/`: a directory named like this module would shadow it for type checkers.
MIGRATIONS_DIR = Path(__file__).with_name("ddl")
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(PermanentError):
    """A migration file could not be applied; the message names the file and the statement."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """The statements of the file: comment lines dropped, split at ``;`` ending a line."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in version order; a badly named .sql file or a repeated version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} already used by {found[version].path.name}")
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


def render(statement: str, database: str, raw_ttl_days: int) -> str:
    ttl = f"TTL toDateTime(occurred_at) + INTERVAL {int(raw_ttl_days)} DAY" if raw_ttl_days > 0 else ""
    return statement.replace("{database}", database).replace("{raw_ttl}", ttl)


def cluster_script(database: str, cluster: str, raw_ttl_days: int,
                   directory: Path = MIGRATIONS_DIR) -> list[tuple[Migration, list[str]]]:
    """Every migration file's statements rendered for ``cluster`` (sinks/cluster_ddl.py), in version order."""
    from touchpoint.sinks.cluster_ddl import ClusterDDLError, ClusterSpec, render_statement

    spec = ClusterSpec(cluster, database)
    split: set[str] = set()
    out: list[tuple[Migration, list[str]]] = []
    for migration in load_migrations(directory):
        rendered: list[str] = []
        for number, statement in enumerate(migration.statements(), start=1):
            try:
                rendered += render_statement(spec, render(statement, database, raw_ttl_days), split)
            except ClusterDDLError as exc:
                raise MigrationError(f"migration {migration.path.name}, statement {number}: {exc}") from exc
        out.append((migration, rendered))
    return out


def migrate(store: Store, settings: Any, directory: Path = MIGRATIONS_DIR, *, cluster: str | None = None) -> list[str]:
    """Apply pending migrations; returns the file names applied (empty when up to date).

    ``cluster`` (else ``settings.clickhouse_cluster``): apply the cluster rendering of every file instead, with
    ``ON CLUSTER`` bookkeeping (see sinks/cluster_ddl.py); unset: the single-node DDL, unchanged.
    """
    database = store.database
    if not _IDENT_RE.match(database):
        raise ConfigError(f"clickhouse_database={database!r} is not a plain identifier (letters, digits, _); "
                          "set TOUCHPOINT_CLICKHOUSE_DATABASE")
    cluster = cluster or getattr(settings, "clickhouse_cluster", None)
    migrations = load_migrations(directory)
    if cluster:
        from touchpoint.sinks.cluster_ddl import ClusterSpec, bookkeeping

        for sql in bookkeeping(ClusterSpec(cluster, database)):
            store.command(sql)
        on_cluster = dict((m.version, sql) for m, sql in cluster_script(database, cluster, settings.raw_ttl_days,
                                                                        directory))
    else:
        store.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        store.command(
            f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
            "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
    applied = {int(v): c for v, c in store.query_rows(f"SELECT version, checksum FROM {database}.schema_migrations")}
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                log.warning("migration %s changed after it was applied (checksum %s, recorded %s); "
                            "add a new migration instead of editing an applied one",
                            migration.path.name, migration.checksum, applied[migration.version])
            continue
        statements = (on_cluster[migration.version] if cluster
                      else [render(statement, database, settings.raw_ttl_days) for statement in migration.statements()])
        for number, sql in enumerate(statements, start=1):
            try:
                store.command(sql)
            except TouchpointError as exc:
                first = sql.splitlines()[0][:100]
                raise MigrationError(
                    f"migration {migration.path.name} failed at statement {number} ({first} ...): {exc}. "
                    "Nothing of this file was recorded; fix it (or the database) and run `touchpoint sink migrate` again."
                ) from exc
        store.command(
            f"INSERT INTO {database}.schema_migrations (version, name, checksum) "
            f"VALUES ({migration.version}, '{migration.name}', '{migration.checksum}')"
        )
        log.info("applied migration %s", migration.path.name)
        done.append(migration.path.name)
    return done
