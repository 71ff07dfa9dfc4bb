"""Every hook a debsync plugin can implement. These docstrings are the plugin author's reference.

A plugin is a module with functions decorated ``@debsync.hookimpl`` whose names match the
specifications below. Built-in connectors and actions are plugins too: they register through
exactly these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from debsync.actions.base import Action
    from debsync.connectors.base import Connector

hookspec = pluggy.HookspecMarker("debsync")

RegisterConnector = Callable[["type[Connector[Any]]"], None]
RegisterAction = Callable[["type[Action[Any]]"], None]


@hookspec
def debsync_register_connectors(register: RegisterConnector) -> None:
    """Register connector types (bookkeeping sources).

    Call ``register(MyConnector)`` once per class. The class must subclass
    :class:`debsync.connectors.base.Connector` and carry ``type_name`` (the ``type = "..."`` of
    ``[connectors.<instance>]`` tables) and ``Settings`` (a pydantic model).

    :param register: callback that records a connector class. Registering a ``type_name`` that
        another plugin already registered is an error naming both classes.
    :return: nothing; return values are ignored.

    Fires once per process, when the plugin manager first builds its registry (before any
    configuration is validated). Collect-all: every plugin's implementation is called.
    """


@hookspec
def debsync_register_actions(register: RegisterAction) -> None:
    """Register action types (channels that carry out dunning steps).

    Call ``register(MyAction)`` once per class. The class must subclass
    :class:`debsync.actions.base.Action` and carry ``type_name``, ``Settings``, ``channel`` and
    ``idempotent``.

    :param register: callback that records an action class. Duplicate ``type_name`` values are
        an error naming both classes.
    :return: nothing; return values are ignored.

    Fires once per process, when the plugin manager first builds its registry. Collect-all.
    """
