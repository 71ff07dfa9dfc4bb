"""The ``debsync`` command line. Thin: every command calls the modules that own the work.

Exit codes: 0 ok, 1 a run failed, 2 bad usage or configuration. ``--json`` output shapes are
documented in ``docs/cli.md`` and versioned by their ``"version"`` field.
"""

from __future__ import annotations

from debsync.cli import actions, books, develop, pauses  # noqa: F401  (registers commands)
from debsync.cli.common import app, main

__all__ = ["app", "main"]
