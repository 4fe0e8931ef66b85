"""Placeholder: `touchpoint demo` (being written)."""

from touchpoint.errors import TouchpointError


def demo() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint demo is not written yet")
