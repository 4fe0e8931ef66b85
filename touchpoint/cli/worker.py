"""Placeholder: `touchpoint worker` (being written)."""

from touchpoint.errors import TouchpointError


def worker() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint worker is not written yet")
