"""The ``debsync`` command line. Thin: every command parses its arguments, calls the module
that owns the work, and prints; one module per command or command group.

Exit codes: 0 ok, 1 a run failed, 2 bad usage or configuration. ``--json`` output shapes are
documented in ``docs/cli.md`` and versioned by their ``"version"`` field.

Importing a command module registers its commands on :data:`app`; they are imported when
``app`` is first asked for, and ``debsync --version`` alone is answered before that, without
typer.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from debsync import __version__

if TYPE_CHECKING:
    import typer

    app: typer.Typer


def _registered() -> typer.Typer:
    """The typer app with every command registered."""
    from debsync.cli import (  # noqa: F401  (importing a module registers its commands)
        auth,
        calls,
        config,
        dossier,
        letters,
        outbox,
        pauses,
        plan,
        plugins,
        privacy,
        run,
        status,
        sync,
        users,
        web,
        webhooks,
        workers,
    )
    from debsync.cli.common import app

    globals()["app"] = app
    return app


def __getattr__(name: str) -> object:
    if name != "app":
        raise AttributeError(f"module 'debsync.cli' has no attribute {name!r}")
    return _registered()


def main() -> None:
    """Console-script entry point (``debsync``)."""
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"debsync {__version__}\n")
        return
    _registered()
    from debsync.cli.common import main as run

    run()


__all__ = ["app", "main"]
