"""Where each setting came from, so a configuration mistake is reported as one line naming the setting, its source
(which environment variable, or which file and line) and what to do.

Used only by ``touchpoint.config``: it checks the config file before pydantic reads it (an explicitly given
``TOUCHPOINT_CONFIG`` must be a readable TOML file; a syntax error is reported with its line), refuses two
variables that name the same setting with different values, and turns pydantic's validation errors into
``SettingsError`` messages.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

from touchpoint.errors import SettingsError

CONFIG_VARIABLE = "TOUCHPOINT_CONFIG"
DEFAULT_CONFIG_FILE = "touchpoint.toml"
ENV_PREFIX = "TOUCHPOINT_"

# Settings that have an unprefixed variable too (the names other Kafka / ClickHouse tools already use).
# Both variables of a pair may be set only to the same value: a silent winner would hide a mistake.
VARIABLE_PAIRS: dict[str, tuple[str, str]] = {
    "kafka_bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", "TOUCHPOINT_KAFKA_BOOTSTRAP_SERVERS"),
    "clickhouse_dsn": ("CLICKHOUSE_DSN", "TOUCHPOINT_CLICKHOUSE_DSN"),
}
SECRET_SETTINGS = frozenset({"kafka_sasl_password"})

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def config_file() -> Path:
    """The TOML file to read: ``TOUCHPOINT_CONFIG`` (which must then exist and not be a directory; ``/dev/null``
    means "no file") or ./touchpoint.toml (optional). Raises ConfigError for an explicit path that is missing, a directory, or not valid TOML."""
    explicit = os.environ.get(CONFIG_VARIABLE, "")
    if not explicit:
        path = Path(DEFAULT_CONFIG_FILE)
        if path.is_file():
            check_toml(path, f"{path} (the default config file in {Path.cwd()})")
        return path
    path = Path(explicit)
    if not path.exists():
        raise SettingsError(
            f"{CONFIG_VARIABLE}={explicit}: no such file; create it, correct the path, or unset {CONFIG_VARIABLE} "
            f"(then ./{DEFAULT_CONFIG_FILE} is read if present)"
        )
    if path.is_dir():
        raise SettingsError(f"{CONFIG_VARIABLE}={explicit} is a directory, not a TOML file; point it at the file itself")
    check_toml(path, f"{path} (from {CONFIG_VARIABLE})")
    return path


def check_toml(path: Path, shown: str) -> None:
    """Raise ConfigError naming the file and line when ``path`` is not valid UTF-8 TOML."""
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"config file {shown} cannot be read ({exc.strerror}); fix its permissions or the path") from None
    except UnicodeDecodeError:
        raise SettingsError(f"config file {shown} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        where = f"line {found.group(1)}" if found else "somewhere"
        reason = _TOML_LINE.sub("", str(exc)).strip()
        raise SettingsError(
            f"config file {shown} is not valid TOML at {where}: {reason}; fix that line "
            "(settings are `name = value`, strings in double quotes)"
        ) from None


def check_variable_pairs(environ: Mapping[str, str] | None = None) -> None:
    """Refuse both variables of a pair set to different values (e.g. CLICKHOUSE_DSN and TOUCHPOINT_CLICKHOUSE_DSN)."""
    env = os.environ if environ is None else environ
    for setting, (plain, prefixed) in VARIABLE_PAIRS.items():
        a, b = env.get(plain), env.get(prefixed)
        if a is not None and b is not None and a != b:
            raise SettingsError(
                f"{plain} and {prefixed} are both set, to different values, and both mean the setting {setting}; "
                f"unset one of them (either name works alone)"
            )


def source_of(setting: str, config: Path | None) -> tuple[str, str]:
    """(where the value of ``setting`` came from, what to do about it) for error messages."""
    names = VARIABLE_PAIRS.get(setting, (ENV_PREFIX + setting.upper(),))
    for name in names:
        if name in os.environ:
            return f"environment variable {name}", f"correct or unset {name}"
    line = _line_in(config, setting) if config is not None and config.is_file() else None
    if line is not None:
        return f"{config} line {line}", f"correct line {line} of {config}"
    return "the arguments", "correct the value passed in"


def _line_in(config: Path, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    try:
        lines = config.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((i for i, text in enumerate(lines, 1) if pattern.match(text)), None)


def describe(errors: Iterable[Mapping[str, Any]], config: Path | None, redact: Any) -> str:
    """One line for pydantic's errors: ``setting=value (from SOURCE): problem; what to do``, joined by ' | '."""
    problems = []
    for err in errors:
        setting = ".".join(str(p) for p in err["loc"]) or "?"
        # pydantic names a setting read through a validation alias by that alias (e.g. CLICKHOUSE_DSN).
        setting = next((name for name, pair in VARIABLE_PAIRS.items() if setting in pair), setting)
        source, fix = source_of(setting, config)
        if err.get("type") == "extra_forbidden":
            problems.append(f"{setting} (from {source}) is not a setting; remove it or correct its name "
                            "(every setting is listed in the README)")
            continue
        value = err.get("input")
        shown = "" if setting in SECRET_SETTINGS or isinstance(value, (dict, list)) else f"={redact(str(value))}"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{setting}{shown} (from {source}): {message}; {fix}")
    return "bad configuration: " + " | ".join(problems)
