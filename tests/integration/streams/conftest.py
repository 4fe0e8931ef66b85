from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.integration.streams.harness import Pipeline


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    """An isolated pipeline (own topics, worker id, data dir); every worker it started is stopped at the end."""
    p = Pipeline(kafka_bootstrap, tmp_path)
    p.create_topics()
    try:
        yield p
    finally:
        for w in p.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)


@pytest.fixture
def pipeline_factory(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[[int], Pipeline]]:
    """Like ``pipeline`` with a chosen partition count."""
    made: list[Pipeline] = []

    def make(partitions: int) -> Pipeline:
        p = Pipeline(kafka_bootstrap, tmp_path / f"p{len(made)}", partitions=partitions)
        p.create_topics()
        made.append(p)
        return p

    try:
        yield make
    finally:
        for p in made:
            for w in p.workers:
                if w.proc is not None and w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait(10)
