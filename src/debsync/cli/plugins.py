"""debsync plugins, new and the schema commands: what is installed, and starting a plugin."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    app,
    err,
    fail,
    out,
    plugins_of,
    print_json,
)

new_app = typer.Typer(help="Start a plugin: a package that passes the conformance kit.")
app.add_typer(new_app, name="new")


def _new(kind: str, name: str, directory: Path) -> None:
    from debsync.scaffold import ScaffoldError, generate

    try:
        target = generate(kind, name, directory)
    except ScaffoldError as exc:  # a bad name, a directory in the way: usage
        fail(str(exc))
    out.print(f"created {target}")
    out.print(f"  cd {target} && pip install -e '.[test]' && pytest", markup=False)


NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="e.g. acme-books")]
DirectoryOption = Annotated[
    Path, typer.Option("--directory", "-d", help="Where to create debsync-NAME/.")
]


@new_app.command("connector")
def new_connector(name: NameArgument, directory: DirectoryOption = Path()) -> None:
    """Generate a connector plugin for a JSON API, with a conformance test."""
    _new("connector", name, directory)


@new_app.command("action")
def new_action(name: NameArgument, directory: DirectoryOption = Path()) -> None:
    """Generate an action plugin that posts events to an endpoint, with a conformance test."""
    _new("action", name, directory)


connectors_app = typer.Typer(help="Connector types and their settings.", no_args_is_help=True)
actions_app = typer.Typer(help="Action types and their settings.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")
app.add_typer(actions_app, name="actions")


def _schema(kind: str, known: dict[str, Any], type_name: str) -> None:
    cls = known.get(type_name)
    if cls is None:
        fail(f"unknown {kind} type {type_name!r}; known: {', '.join(known) or '(none)'}")
    schema = cls.Settings.model_json_schema()
    schema["title"] = f"[{kind}s.<instance>] type = {type_name!r}"
    print_json(schema)


@connectors_app.command("schema")
def connectors_schema(
    ctx: typer.Context, type_name: Annotated[str, typer.Argument(metavar="TYPE")]
) -> None:
    """Print a connector type's settings as JSON Schema (what its table may contain)."""
    _schema("connector", plugins_of(ctx).connector_types(), type_name)


@actions_app.command("schema")
def actions_schema(
    ctx: typer.Context, type_name: Annotated[str, typer.Argument(metavar="TYPE")]
) -> None:
    """Print an action type's settings as JSON Schema."""
    _schema("action", plugins_of(ctx).action_types(), type_name)


@app.command()
def plugins(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Include built-in plugins.")] = False,
) -> None:
    """Installed plugins, what they register, and any that are broken."""
    infos = [i for i in plugins_of(ctx).infos.values() if show_all or not i.builtin]
    if as_json:
        print_json({"version": JSON_VERSION, "plugins": [asdict(i) for i in infos]})
        return
    if not infos:
        out.print("No third-party plugins installed (use --all to include built-ins).")
        return
    table = Table(title="plugins", title_justify="left")
    for column in ("name", "version", "status", "connectors", "actions"):
        table.add_column(column)
    for i in infos:
        colour = {"loaded": "green", "broken": "red", "disabled": "yellow"}[i.status]
        table.add_row(
            i.name + (" (built-in)" if i.builtin else ""),
            i.version or "-",
            f"[{colour}]{i.status}[/]",
            ", ".join(i.connectors) or "-",
            ", ".join(i.actions) or "-",
        )
    out.print(table)
    for i in infos:
        if i.error:
            err.print(f"[red]{escape(i.name)}:[/] {escape(i.error)}", highlight=False)
