"""Placeholder: `touchpoint simulate` (being written)."""

from touchpoint.errors import TouchpointError


def simulate() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint simulate is not written yet")
