"""Placeholder: `touchpoint produce` (being written)."""

from touchpoint.errors import TouchpointError


def produce() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint produce is not written yet")
