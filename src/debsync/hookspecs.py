"""Every hook a debsync plugin can implement. These docstrings are the plugin author's reference.

A plugin is a module with functions decorated ``@debsync.hookimpl`` whose names match the
specifications below; an implementation may take fewer arguments than the spec (pluggy passes
only those it names), so new arguments never break existing plugins. Built-in connectors and
actions are plugins too: they register through exactly these hooks. Core code calls hooks only
through the typed facade in ``debsync.plugins``, which calls each plugin in its own pluggy call,
so one that raises never hides the others.

The lifecycle, in order:

1. :func:`debsync_register_connectors`, :func:`debsync_register_actions` (when the plugin is
   loaded) and :func:`debsync_register_commands` (when ``debsync`` starts) register types.
2. Sync: each connector instance's pages are committed, then :func:`debsync_sync_finished`.
3. Plan: the ladder proposes today's steps (no hook).
4. Veto: right before each attempt, :func:`debsync_veto_action` may block it.
5. Render and send: the action renders the message and sends it (no hook).
6. :func:`debsync_action_finished`, after the attempt's outcome is committed.

Wrappers (``@hookimpl(wrapper=True)`` or ``hookwrapper=True``) are accepted on the veto and the
observer hooks and wrap each plugin's call; the registration hooks refuse them when the plugin
is loaded, because a wrapper there would see and could swallow other plugins' registrations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from debsync.actions.base import Action, ActionOutcome, MessageContext
    from debsync.connectors.base import Connector, SyncResult

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
    configuration is validated). Collect-all: every plugin's implementation is called. Takes
    no wrappers: a wrapper implementation makes the plugin broken.
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
    Takes no wrappers.
    """


@hookspec(firstresult=True)
def debsync_veto_action(context: MessageContext) -> str | None:
    """Block a planned action right before it is sent, e.g. because a CRM knows of a dispute.

    :param context: everything the message would say: debtor, invoices, amounts, step,
        channel and the action's idempotency key (``context.key``).
    :return: a reason (one sentence, no personal data) to block the action, or ``None`` to let
        it go. A blocked action is cancelled with that reason in the dossier; when the next plan
        proposes it again it is revived and asked again, so a veto lasts as long as its cause.

    Fires once per attempt, after the outbox re-checked the invoices and before the channel
    renders the message (also for ``debsync preview``, so keep it free of side effects).
    ``firstresult``: the first plugin that returns a reason decides. A plugin that raises
    counts as a veto (nothing is sent on a broken check) and is reported in the reason.
    Wrappers are accepted: one sees each plugin's answer as its result and may replace it.
    """


@hookspec
def debsync_sync_finished(instance: str, result: SyncResult) -> None:
    """Observe a finished sync run of one connector instance, successful or not.

    :param instance: the connector instance name (``[connectors.<instance>]``).
    :param result: counts of new, changed, closed and rejected records, pages, ``ok`` and the
        error if it failed.
    :return: nothing; return values are ignored.

    Fires after the run's outcome is committed to the store. Collect-all: every plugin is
    called; one that raises is logged and does not stop the others or the daemon. Wrappers
    are accepted.
    """


@hookspec
def debsync_action_finished(outcome: ActionOutcome) -> None:
    """Observe what became of one attempt to carry out an action (audit trails, CRM notes,
    metrics).

    :param outcome: the action's key, instance, debtor id, step, channel, resulting state
        (``sent``, ``failed``, ``dead``, ``in_doubt``, ``cancelled``), attempt number, receipt
        and error. Ids only: look details up in the dossier if you need them.
    :return: nothing; return values are ignored.

    Fires after the outcome is committed to the outbox. Collect-all; a plugin that raises is
    logged and does not affect the action or the other plugins. Wrappers are accepted.
    """


@hookspec
def debsync_register_commands(app: typer.Typer) -> None:
    """Add subcommands to the ``debsync`` command line.

    :param app: the root typer application; add commands with ``@app.command()`` or groups
        with ``app.add_typer(...)``. Use names that cannot clash with debsync's own commands,
        e.g. prefixed with your plugin's name.
    :return: nothing; return values are ignored.

    Fires once, when the ``debsync`` command starts, before arguments are parsed.
    Collect-all. A plugin whose registration raises is reported as broken by
    ``debsync plugins``; the command line works without it. Takes no wrappers.
    """
