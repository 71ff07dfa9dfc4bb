"""``debsync --version`` and ``--help`` start without the heavy libraries (issue 16): the
command modules register their commands cheaply and load the store, the connectors, the
actions and their libraries in the command bodies that use them.

Each probe runs the real console-script entry point in a fresh interpreter and reports which
modules it imported, so an import moved back to module level anywhere under ``debsync.cli``
fails here, whatever the machine's speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from debsync import __version__
from debsync.plugins import Plugins

HEAVY = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "httpx",
    "aiosmtplib",
    "jinja2",
    "babel",
    "phonenumbers",
    "email_validator",
    "fpdf",
    "cryptography",
    "keyring",
    "pydantic",
    "openpyxl",
    "pluggy",
    "asyncio",
    "http.server",
    "debsync.model",
    "debsync.config",
    "debsync.store",
    "debsync.sync",
    "debsync.outbox",
    "debsync.connectors",
    "debsync.actions",
)
"""Libraries and debsync packages only some commands need (pluggy: the plugin host)."""

_PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["debsync", *json.loads(sys.argv[1])]
from debsync.cli import main
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
"""


def _loaded(args: list[str], cwd: Path, heavy: tuple[str, ...] = HEAVY) -> tuple[list[str], str]:
    """The ``heavy`` modules ``debsync ARGS`` imported, and what it printed on stdout."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(heavy)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=True,
    )
    marker = done.stderr.rindex("\nLOADED ")
    return json.loads(done.stderr[marker + len("\nLOADED ") :]), done.stdout


@pytest.mark.parametrize(
    ("args", "shown"),
    [(["--version"], f"debsync {__version__}"), (["--help"], "plan-payments"), ([], "Usage")],
)
def test_version_and_help_import_no_heavy_module(
    args: list[str], shown: str, tmp_path: Path
) -> None:
    loaded, stdout = _loaded(args, tmp_path)
    assert shown in stdout
    assert loaded == []


def test_version_alone_is_answered_before_typer_and_the_commands(tmp_path: Path) -> None:
    loaded, stdout = _loaded(["--version"], tmp_path, ("typer", "rich", "debsync.cli.common"))
    assert (stdout, loaded) == (f"debsync {__version__}\n", [])
    through_typer, stdout = _loaded(["-v", "--version"], tmp_path, ("typer",))
    assert (stdout, through_typer != []) == (f"debsync {__version__}\n", True)


def test_the_probe_sees_a_command_that_loads_the_plugins(tmp_path: Path) -> None:
    """``debsync plugins --all`` loads the built-in connectors and actions: the probe above
    would see an import that --version or --help made."""
    loaded, stdout = _loaded(["plugins", "--all", "--json"], tmp_path)
    assert "debsync.connectors.csv" in loaded and "pydantic" in loaded
    assert any(p["name"] == "debsync.connectors.csv" for p in json.loads(stdout)["plugins"])


def test_builtin_plugins_add_no_commands() -> None:
    """``main`` loads the plugins before parsing only when an installed plugin may add
    commands; that is sound only while the built-ins add none."""
    app = typer.Typer()
    plugins = Plugins(entry_points=False)
    plugins.register_commands(app)
    assert plugins.broken() == []
    assert app.registered_commands == [] and app.registered_groups == []
