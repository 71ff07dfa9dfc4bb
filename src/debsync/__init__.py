"""debsync: Dutch accounts-receivable follow-up next to an existing bookkeeping program.

Plugin authors need only ``hookimpl`` from here, plus the base classes in
``debsync.connectors.base`` and ``debsync.actions.base`` and the records in ``debsync.model``.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("debsync")
"""Decorate plugin functions with ``@debsync.hookimpl`` to implement a hook."""

__all__ = ["__version__", "hookimpl"]
