"""The package stays mypy-clean (STYLE habit 8): type errors fail the suite, not a later review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_mypy_reports_no_errors_on_the_package(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=290,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
