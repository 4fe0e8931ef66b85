"""The chaos suite (`make chaos`): real faults on the real pipeline, minutes per fault, so not part of `make test`.

Collected only with TOUCHPOINT_CHAOS=1 (the `make chaos` target sets it): `pytest tests` in CI neither runs nor
skips them. Each fault appends its figures to .touchpoint/chaos/results.jsonl and rewrites its recorded series in
deploy/prometheus/chaos/<fault>.yml; `python -m tests.chaos.report` prints the README table.
"""

from __future__ import annotations

import os

if os.environ.get("TOUCHPOINT_CHAOS") != "1":
    collect_ignore_glob = ["test_*.py"]
