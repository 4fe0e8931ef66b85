"""The README's generated tables: settings (from Settings.model_fields) and metrics (from metrics.REGISTRY).

    python -m tests.unit.deploy.readme_tables        # rewrite both tables in README.md
The tests in test_readme.py fail when README.md and the code disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo

from touchpoint.config import Settings
from touchpoint.metrics import REGISTRY

README = Path(__file__).resolve().parents[3] / "README.md"


def env_names(name: str, field: FieldInfo) -> list[str]:
    names = [f"TOUCHPOINT_{name.upper()}"]
    for choice in getattr(field.validation_alias, "choices", []) or []:
        if isinstance(choice, str) and choice.isupper() and choice not in names:
            names.insert(0, choice)
    return names


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
        if not value:
            return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    return repr(value).strip("'") if isinstance(value, str) else str(value)


def settings_table() -> str:
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        env = " or ".join(f"`{n}`" for n in env_names(name, field))
        rows.append(f"| `{name}` | {env} | `{_default(field)}` | {meaning} |")
    return "\n".join(rows)


def metrics() -> list[tuple[str, str, str, str]]:
    """(name as scraped, type, labels, help) of every metric in REGISTRY."""
    out = []
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry has no public listing
        for family in collector.describe():
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = ", ".join(getattr(collector, "_labelnames", ()) or ())
            out.append((name, family.type, labels, family.documentation))
    return sorted(out)


def metrics_table() -> str:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name, kind, labels, doc in metrics():
        rows.append(f"| `{name}` | {kind} | {labels or '-'} | {doc} |")
    return "\n".join(rows)


def section(text: str, marker: str) -> str:
    match = re.search(rf"<!-- {marker}:start -->\n(.*?)\n?<!-- {marker}:end -->", text, re.S)
    if not match:
        raise AssertionError(f"README.md has no <!-- {marker}:start/end --> section")
    return match.group(1)


def replace_section(text: str, marker: str, body: str) -> str:
    return re.sub(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", lambda m: m.group(1) + body + "\n" + m.group(2),
                  text, flags=re.S)


if __name__ == "__main__":
    text = README.read_text()
    text = replace_section(text, "settings", settings_table())
    text = replace_section(text, "metrics", metrics_table())
    README.write_text(text)
    print(f"rewrote the settings and metrics tables in {README}")
