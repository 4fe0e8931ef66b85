"""Placeholder: `touchpoint query` and `touchpoint report` (being written)."""

from touchpoint.errors import TouchpointError


def query() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint query is not written yet")


def report() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint report is not written yet")
