"""debsync: Dutch accounts-receivable follow-up next to an existing bookkeeping program.

Plugin authors need only ``hookimpl`` from here, plus the base classes in
``debsync.connectors.base`` and ``debsync.actions.base`` and the records in ``debsync.model``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pluggy

    hookimpl: pluggy.HookimplMarker
    """Decorate plugin functions with ``@debsync.hookimpl`` to implement a hook."""


def __getattr__(name: str) -> object:
    """``hookimpl`` is made on first use, so ``debsync --version`` starts without pluggy."""
    if name != "hookimpl":
        raise AttributeError(f"module 'debsync' has no attribute {name!r}")
    import pluggy

    marker = pluggy.HookimplMarker("debsync")
    globals()["hookimpl"] = marker
    return marker


__all__ = ["__version__", "hookimpl"]
