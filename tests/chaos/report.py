"""Print the chaos table (newest row per fault) for the README: `python -m tests.chaos.report`."""

from __future__ import annotations

from tests.chaos.harness import RESULTS, table

if __name__ == "__main__":
    print(f"<!-- from {RESULTS.name}: `make chaos` -->")
    print(table())
