"""README.md stays true: its settings and metrics tables, CLI list and two commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from tests.unit.deploy.readme_tables import README, metrics, metrics_table, section, settings_table
from touchpoint.cli.main import app
from touchpoint.config import Settings

TEXT = README.read_text()
ROOT = README.parent


def test_settings_table_is_every_settings_field():
    table = section(TEXT, "settings")
    assert table == settings_table(), "README settings table is stale: run `python -m tests.unit.deploy.readme_tables`"
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert listed == list(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description for the README"


def test_metrics_table_lists_every_metric_in_the_registry():
    table = section(TEXT, "metrics")
    assert table == metrics_table(), "README metrics table is stale: run `python -m tests.unit.deploy.readme_tables`"
    names = [m[0] for m in metrics()]
    assert len(names) >= 10
    for name in names:
        assert f"`{name}`" in table


def cli_commands() -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def test_every_command_is_in_the_cli_section():
    cli = TEXT.split("## The CLI", 1)[1].split("\n## ", 1)[0]
    for name in cli_commands():
        assert f"`touchpoint {name}" in cli, f"README's CLI section does not mention `touchpoint {name}`"


def test_the_two_commands_exist_and_do_what_the_readme_says():
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in TEXT and "make test" in TEXT
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)
    test = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert demo and "touchpoint demo" in demo.group(1)
    assert test and "pytest" in test.group(1)
    # both do the set-up themselves
    assert re.search(r"^demo:.*\bsetup\b", makefile, re.M) and re.search(r"^test:.*\bsetup\b", makefile, re.M)
    assert "bootstrap.sh" in makefile


def test_deploy_paths_named_in_the_readme_exist():
    for path in re.findall(r"`(deploy/[^`\s]*)`", TEXT):
        assert (ROOT / path.rstrip("/")).exists(), path


def test_readme_mentions_every_topic_kind_and_the_sql_port():
    s = Settings.model_construct()
    assert str(s.sink_sql_port) in TEXT and str(s.worker_web_port) in TEXT and str(s.sink_metrics_port) in TEXT


def test_help_of_every_command_is_complete():
    from typer.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in cli_commands():
        assert name in result.output
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, f"touchpoint {name} --help: {sub.output}"
        assert "(being written)" not in sub.output, f"touchpoint {name} --help is a placeholder"
        body = sub.output.split("Options", 1)[0]
        assert len(body.split()) > 6, f"touchpoint {name} --help says too little: {body!r}"
    for group in app.registered_groups:
        sub_app: typer.Typer = group.typer_instance
        for command in sub_app.registered_commands:
            cname = command.name or command.callback.__name__
            sub = runner.invoke(app, [group.name, cname, "--help"])
            assert sub.exit_code == 0, f"touchpoint {group.name} {cname} --help: {sub.output}"
