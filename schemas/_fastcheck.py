"""Generated fast-path checks for records: straight-line Python, one ``dict.get`` and one type test per field.

A fast check returns True when the record certainly matches its schema and False when it *may* not; the caller
then runs the precise (slower) checker, which finds the field and the rule, or passes when the fast check was
merely conservative (e.g. a string longer than max_bytes/4 characters whose UTF-8 size is still under the limit).
Measured on the touchpoint envelope: about 2x faster than calling one closure per field.
"""

from __future__ import annotations

from typing import Any, Callable

FastCheck = Callable[[Any], bool]
_MISSING = object()
_PRIMITIVES = {"string", "int", "long", "boolean", "double", "float", "null", "bytes"}
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _base(schema: Any) -> dict[str, Any]:
    if isinstance(schema, str):
        return {"type": schema}
    if isinstance(schema.get("type"), (dict, list)):
        return _base(schema["type"])
    return dict(schema)


def compile_fast(schema: dict[str, Any], max_bytes: int, min_timestamp: int,
                 union_field: tuple[str, str, dict[str, FastCheck]] | None = None) -> FastCheck:
    """A fast check for a record schema (named references already expanded).

    union_field: (field, discriminator field, {discriminator value: fast check}) for a union of records whose
    branch another field names (the touchpoint payload and its event_type).
    """
    quick = max_bytes // 4
    ns: dict[str, Any] = {"M": _MISSING, "ALLOWED": frozenset(f["name"] for f in schema["fields"])}
    # Unknown keys: a record of exactly len(fields) keys with every field present has none, so the key-set
    # comparison (~0.15 us per record) only runs when a key is missing or the length differs ("short").
    # Required fields are read with rec[name] (a missing one: KeyError, False), cheaper than rec.get.
    lines = ["def fast(rec):",
             "    if rec.__class__ is not dict:",
             "        return False",
             "    g = rec.get",
             f"    short = len(rec) != {len(schema['fields'])}",
             "    try:"]
    for i, f in enumerate(schema["fields"]):
        name = f["name"]
        if union_field is not None and name == union_field[0]:
            ns[f"BR{i}"] = union_field[2]
            lines += [f"    b = BR{i}.get(rec[{union_field[1]!r}])",
                      f"    if b is None or not b(rec[{name!r}]):",
                      "        return False"]
            continue
        ftype = f["type"]
        nullable = False
        if isinstance(ftype, list):
            non_null = [t for t in ftype if t != "null"]
            if len(ftype) != 2 or len(non_null) != 1:
                ns[f"C{i}"] = _generic(ftype)
                lines += [f"    if not C{i}(g({name!r}, M)):", "        return False"]
                if "default" in f:
                    lines += [f"    if {name!r} not in rec:", "        short = True"]
                continue
            nullable, ftype = True, non_null[0]
        base = _base(ftype)
        kind = base["type"]
        if "default" in f:
            ns[f"D{i}"] = f["default"]
            lines += [f"    v = g({name!r}, M)", "    if v is M:", "        short = True", f"        v = D{i}"]
        else:
            lines.append(f"    v = rec[{name!r}]")
        test: str
        if kind == "string":
            test = f"v.__class__ is not str or len(v) > {quick}"
        elif kind in ("int", "long"):
            lo, hi = _INT_RANGE[kind]
            if base.get("logicalType") == "timestamp-millis":
                lo = min_timestamp
            test = f"v.__class__ is not int or not {lo} <= v <= {hi}"
        elif kind == "boolean":
            test = "v.__class__ is not bool"
        elif kind == "enum":
            ns[f"S{i}"] = frozenset(base["symbols"])
            test = f"v.__class__ is not str or v not in S{i}"
        elif kind == "map" and _base(base["values"])["type"] == "string" and not isinstance(base["values"], list):
            ns[f"MAPOK{i}"] = _string_map_ok
            test = f"v.__class__ is not dict or not MAPOK{i}(v, {quick})"
        elif kind == "record":
            ns[f"R{i}"] = compile_fast(base, max_bytes, min_timestamp)
            test = f"not R{i}(v)"
        else:
            ns[f"C{i}"] = _generic(ftype)
            test = f"not C{i}(v)"
        if nullable:
            test = f"v is not None and ({test})"
        lines += [f"    if {test}:", "        return False"]
    lines += ["    if short and not rec.keys() <= ALLOWED:", "        return False", "    return True"]
    # the field checks run inside the try (one more indent level)
    lines = lines[:6] + ["    " + line for line in lines[6:]] + ["    except KeyError:", "        return False"]
    exec("\n".join(lines), ns)  # noqa: S102 - source built above from the schema only
    fast: FastCheck = ns["fast"]
    return fast


def _string_map_ok(m: dict[Any, Any], quick: int) -> bool:
    for k, v in m.items():
        if k.__class__ is not str or v.__class__ is not str or len(k) > quick or len(v) > quick:
            return False
    return True


def _generic(schema: Any) -> FastCheck:
    """Types without a fast path (arrays, maps of non-strings, general unions): always ask the precise checker."""
    def never_sure(v: Any) -> bool:
        return False
    return never_sure
