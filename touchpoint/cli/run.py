"""Placeholder: `touchpoint run` (being written)."""

from touchpoint.errors import TouchpointError


def run() -> None:
    """(being written)"""
    raise TouchpointError("touchpoint run is not written yet")
