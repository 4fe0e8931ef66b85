"""Placeholder: `touchpoint bench` (being written)."""

from touchpoint.errors import TouchpointError


def bench() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint bench is not written yet")
