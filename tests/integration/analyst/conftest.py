"""Analyst-layer fixtures: a migrated per-test database on the session's one chdb path, and the read-only port.

No Kafka here: the analyst layer reads ClickHouse only, so these fixtures do not pull in a broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from touchpoint.config import Settings, load_settings


@pytest.fixture
def ch_settings(unique: str, tmp_path: Path, chdb_dsn: str) -> Settings:
    return load_settings(data_dir=tmp_path, clickhouse_database=f"tp_{unique}", clickhouse_dsn=chdb_dsn,
                         sink_sql_port=0, sink_metrics_port=0)


@pytest.fixture
def store(ch_settings: Settings) -> Iterator[Any]:
    """The sink's Store with the sink's migrations applied to a fresh database (dropped afterwards)."""
    from touchpoint.sinks.migrations import migrate
    from touchpoint.sinks.store import Store

    st = Store.connect(ch_settings)
    migrate(st, ch_settings)
    try:
        yield st
    finally:
        st.client.command(f"DROP DATABASE IF EXISTS {ch_settings.clickhouse_database}")
        st.close()


@pytest.fixture
def loaded(store: Any) -> Any:
    """``store`` holding the hand-made dataset of ``dataset.py``."""
    from tests.integration.analyst import dataset

    dataset.load(store.client, store.database)
    return store


@pytest.fixture
def sql_server(store: Any, ch_settings: Settings) -> Iterator[Any]:
    """The read-only ClickHouse HTTP interface over ``store`` on a free loopback port."""
    from touchpoint.sinks.http_server import serve_readonly

    server = serve_readonly(store.client, port=0, database=store.database, settings=ch_settings)
    try:
        yield server
    finally:
        server.close()
