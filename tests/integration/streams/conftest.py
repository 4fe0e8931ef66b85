from __future__ import annotations

from pathlib import Path
from typing import Iterator

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
