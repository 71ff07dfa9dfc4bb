"""The ``debsync`` command line. Thin: every command parses its arguments, calls the module
that owns the work, and prints; one module per command or command group.

Exit codes: 0 ok, 1 a run failed, 2 bad usage or configuration. ``--json`` output shapes are
documented in ``docs/cli.md`` and versioned by their ``"version"`` field.
"""

from __future__ import annotations

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
    webhooks,
)
from debsync.cli.common import app, main

__all__ = ["app", "main"]
