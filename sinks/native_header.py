"""The 0-row Native block ClickHouse sends for an empty result, built from a RowBinaryWithNamesAndTypes header.

chdb sends nothing for an empty Native result, while ClickHouse sends one block with the column names and
types and no rows; clients (clickhouse-connect) need it to report the columns of an empty result.
"""

from __future__ import annotations


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def native_header(data: bytes) -> bytes:
    """``data``: a statement's output in RowBinaryWithNamesAndTypes (only its header is read); b"" for b""."""
    pos = 0

    def leb() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def text() -> bytes:
        nonlocal pos
        size = leb()
        pos += size
        return data[pos - size:pos]

    if not data:
        return b""
    count = leb()
    names = [text() for _ in range(count)]
    types = [text() for _ in range(count)]
    out = bytearray(_leb128(count) + _leb128(0))
    for name, type_name in zip(names, types):
        out += _leb128(len(name)) + name + _leb128(len(type_name)) + type_name
    return bytes(out)
