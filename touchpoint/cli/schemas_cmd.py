"""`touchpoint schemas`: list the Avro contracts, check their evolution, publish new versions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from touchpoint.schemas.compat import check_backward, check_lock, lock_path, read_lock, write_lock
from touchpoint.schemas.registry import LocalRegistry

app = typer.Typer(
    no_args_is_help=True,
    help="The Avro contracts under schemas/avro/<name>/v<N>.avsc: list them, check that the newest version of "
    "each reads every older one, and publish new versions to the lock.",
)

_out = Console()

DirOption = typer.Option(None, "--dir", help="Schema folder (default: the installed schemas/avro).",
                         exists=True, file_okay=False, dir_okay=True, resolve_path=True)
LockOption = typer.Option(None, "--lock", help="Lock file (default: <dir>/published.lock).", dir_okay=False,
                          resolve_path=True)


def _root(directory: Optional[Path]) -> Path:
    if directory is not None:
        return directory
    from importlib import resources

    return Path(str(resources.files("touchpoint.schemas") / "avro"))


@app.command("list")
def list_schemas(directory: Optional[Path] = DirOption, lock: Optional[Path] = LockOption) -> None:
    """Every schema version with its fingerprint (CRC-64-AVRO of the canonical form) and publication state."""
    root = _root(directory)
    registry = LocalRegistry.load(root)
    published = read_lock(lock or lock_path(root))
    table = Table(title=f"Schemas in {root}")
    for col in ("schema", "version", "record", "fingerprint", "fields", "state"):
        table.add_column(col, overflow="fold", no_wrap=col in ("fingerprint", "version"))
    for v in registry:
        latest = registry.latest(v.name) is v
        state = ("published" if (v.name, v.version) in published else "[yellow]unpublished[/yellow]") + (
            ", reader" if latest else "")
        table.add_row(v.name, f"v{v.version}", v.full_name, v.fingerprint_hex, str(len(v.raw.get("fields", []))),
                      state)
    _out.print(table)


@app.command("check")
def check(directory: Optional[Path] = DirOption, lock: Optional[Path] = LockOption,
          update_lock: bool = typer.Option(False, "--update-lock", help="On success, record new versions in the "
                                           "lock (same as `touchpoint schemas publish`).")) -> None:
    """Exit 1 if a schema's newest version cannot read an older version's data, or a published one changed.

    Prints every violation with schema, versions and field path. Exit 0 when all is well (unpublished new
    versions are listed; record them with `touchpoint schemas publish`).
    """
    root = _root(directory)
    registry = LocalRegistry.load(root)
    lock_file = lock or lock_path(root)
    incompatible = check_backward(registry)
    lock_problems, unpublished = check_lock(registry, read_lock(lock_file))
    for name in registry.names():
        versions = registry.versions(name)
        bad = [i for i in incompatible if i.schema == name]
        status = "[red]FAIL[/red]" if bad or any(p.schema == name for p in lock_problems) else "[green]ok[/green]"
        _out.print(f"{status} {name}: v{versions[-1].version} reads "
                   + (", ".join(f"v{v.version}" for v in versions[:-1]) or "(no older versions)"))
    if incompatible:
        _out.print("[bold]Backward-incompatible changes[/bold] (reader version ← writer version, field: problem)")
        for i in incompatible:
            writer = f"v{i.writer_version}" if i.writer_version else "-"
            _out.print(f"  [red]✗[/red] {i.schema} v{i.reader_version} ← {writer}  [bold]{i.path}[/bold]: {i.message}",
                       highlight=False)
    for p in lock_problems:
        _out.print(f"[red]published version changed:[/red] {p}")
    if incompatible or lock_problems:
        _out.print(f"[bold red]schemas check failed[/bold red]: {len(incompatible)} incompatible change(s), "
                   f"{len(lock_problems)} published version(s) altered. Fix: give new fields a default, keep enum "
                   "symbols (or add an enum default), only promote types, and never edit a published vN.avsc: "
                   "add vN+1.")
        raise typer.Exit(1)
    if unpublished:
        names = ", ".join(f"{v.name} v{v.version}" for v in unpublished)
        if update_lock:
            write_lock(registry, lock_file)
            _out.print(f"published: {names} → {lock_file}")
        else:
            _out.print(f"[yellow]not yet published:[/yellow] {names} (record with `touchpoint schemas publish`)")
    _out.print("[bold green]schemas check passed[/bold green]")


@app.command("publish")
def publish(directory: Optional[Path] = DirOption, lock: Optional[Path] = LockOption) -> None:
    """Run the check, then record every new version in the lock so it can never change again."""
    check(directory=directory, lock=lock, update_lock=True)


@app.command("show")
def show(name: str = typer.Argument(..., help="Schema name, e.g. touchpoint."),
         version: Optional[int] = typer.Option(None, "--version", "-v", help="Version (default: newest)."),
         canonical: bool = typer.Option(False, "--canonical", help="Print the Parsing Canonical Form."),
         directory: Optional[Path] = DirOption) -> None:
    """Print one schema version (as written, or its canonical form)."""
    import json

    registry = LocalRegistry.load(_root(directory))
    versions = registry.versions(name)
    chosen = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
    if chosen is None:
        _out.print(f"[red]{name} has no v{version}[/red] (versions: {', '.join(f'v{v.version}' for v in versions)})")
        raise typer.Exit(1)
    _out.print(f"# {chosen.name} v{chosen.version} {chosen.full_name} {chosen.fingerprint_hex}", highlight=False)
    print(chosen.canonical if canonical else json.dumps(chosen.raw, indent=2))
