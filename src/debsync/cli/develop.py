"""Commands for plugin authors: generate a plugin package, print a type's settings schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from debsync.cli.common import EXIT_FAILED, app, fail, out, print_json
from debsync.plugins import Plugins
from debsync.scaffold import ScaffoldError, generate

new_app = typer.Typer(help="Start a plugin: a package that passes the conformance kit.")
app.add_typer(new_app, name="new")


def _new(kind: str, name: str, directory: Path) -> None:
    try:
        target = generate(kind, name, directory)
    except ScaffoldError as exc:
        fail(str(exc), EXIT_FAILED)
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
def connectors_schema(type_name: Annotated[str, typer.Argument(metavar="TYPE")]) -> None:
    """Print a connector type's settings as JSON Schema (what its table may contain)."""
    _schema("connector", Plugins().connector_types(), type_name)


@actions_app.command("schema")
def actions_schema(type_name: Annotated[str, typer.Argument(metavar="TYPE")]) -> None:
    """Print an action type's settings as JSON Schema."""
    _schema("action", Plugins().action_types(), type_name)
