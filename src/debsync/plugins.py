"""The plugin host: built-ins and entry points, loaded one at a time, behind a typed facade.

Built-in connectors and actions are ordinary plugin modules listed in ``DEFAULT_PLUGINS`` and
registered through the same hooks as third-party ones, so they are present even when an
installed plugin is broken. Third-party plugins come from the ``debsync`` entry-point group;
each is imported on its own, and one that fails to import, or whose registration fails, is
reported as broken while the rest runs. Core code asks this module for types and never calls
``pm.hook`` itself; every hook runs through pluggy here, so wrappers, ``firstresult`` and
hook-call monitoring (``DEBSYNC_TRACE_PLUGINS=1``) behave as pluggy documents them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from debsync.errors import PluginError

if TYPE_CHECKING:
    import pluggy
    import typer

    from debsync.actions.base import Action, ActionOutcome, MessageContext
    from debsync.connectors.base import Connector, SyncResult

log = logging.getLogger("debsync.plugins")

PROJECT = "debsync"
ENTRY_POINT_GROUP = "debsync"
DISABLE_ENV = "DEBSYNC_DISABLE_PLUGINS"
TRACE_ENV = "DEBSYNC_TRACE_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "debsync.connectors.csv",
    "debsync.connectors.moneybird",
    "debsync.connectors.eboekhouden",
    "debsync.connectors.exact",
    "debsync.actions.email",
    "debsync.actions.call",
    "debsync.actions.letter",
    "debsync.actions.sms",
    "debsync.actions.agency",
    "debsync.actions.webhook",
)

#: Hooks whose implementations contribute per plugin and are checked per plugin; a wrapper
#: around them would see, and could swallow, other plugins' registrations.
NO_WRAPPER_HOOKS: frozenset[str] = frozenset(
    {"debsync_register_connectors", "debsync_register_actions", "debsync_register_commands"}
)

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

PluginStatus = Literal["loaded", "broken", "disabled"]


@dataclass
class PluginInfo:
    """What ``debsync plugins`` shows for one plugin."""

    name: str
    builtin: bool
    status: PluginStatus = "loaded"
    version: str | None = None
    error: str | None = None
    connectors: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def disabled_from_env() -> frozenset[str]:
    """Plugin names listed (comma-separated) in ``DEBSYNC_DISABLE_PLUGINS``."""
    raw = os.environ.get(DISABLE_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Plugins:
    """Loads plugins and answers typed questions about what they registered.

    :param entry_points: load the ``debsync`` entry-point group (tests usually pass ``False``).
    :param extra: plugin objects (modules or instances) registered after the built-ins, as
        ``(name, plugin)`` pairs; tests and embedders use it.
    :param disabled: plugin names to block; defaults to ``DEBSYNC_DISABLE_PLUGINS``.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        extra: Iterable[tuple[str, object]] = (),
        disabled: Iterable[str] | None = None,
    ) -> None:
        import pluggy  # here, not at the top: the command line's --version needs no plugin host

        from debsync import hookspecs

        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        if os.environ.get(TRACE_ENV) == "1":
            self._pm.add_hookcall_monitoring(_trace_call, _trace_result)
        self._disabled = frozenset(disabled) if disabled is not None else disabled_from_env()
        self.infos: dict[str, PluginInfo] = {}
        self._connectors: dict[str, type[Connector[Any]]] = {}
        self._actions: dict[str, type[Action[Any]]] = {}
        for module_name in DEFAULT_PLUGINS:
            self._add(module_name, builtin=True, load=partial(importlib.import_module, module_name))
        for name, plugin in extra:
            self._add(name, builtin=False, load=partial(_identity, plugin))
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                version = ep.dist.version if ep.dist is not None else None
                self._add(ep.name, builtin=False, load=ep.load, version=version)

    # -- loading -------------------------------------------------------------------------

    def _add(
        self,
        name: str,
        *,
        builtin: bool,
        load: Callable[[], object],
        version: str | None = None,
    ) -> None:
        info = PluginInfo(name=name, builtin=builtin, version=version)
        self.infos[name] = info
        if name in self._disabled:
            info.status = "disabled"
            self._pm.set_blocked(name)
            return
        try:
            plugin = load()
            self._refuse_wrappers(name, plugin)
            self._pm.register(plugin, name=name)  # validates everything before changing state
        except Exception as exc:  # a broken plugin must not take the daemon down
            info.status, info.error = "broken", _describe(exc)
            return
        try:
            self._pm.check_pending()
            connectors, actions = self._collect(plugin)
        except Exception as exc:
            self._pm.unregister(plugin)
            info.status, info.error = "broken", _describe(exc)
            return
        for cls in connectors:
            self._connectors[cls.type_name] = cls
            info.connectors.append(cls.type_name)
        for action_cls in actions:
            self._actions[action_cls.type_name] = action_cls
            info.actions.append(action_cls.type_name)

    def _refuse_wrappers(self, name: str, plugin: object) -> None:
        """Refuse a wrapper on a hook that cannot take one, before anything is registered."""
        for attr in dir(plugin):
            opts = self._pm.parse_hookimpl_opts(plugin, attr)
            if opts is None or not (opts.get("wrapper") or opts.get("hookwrapper")):
                continue
            hook = opts.get("specname") or attr
            if hook in NO_WRAPPER_HOOKS:
                raise PluginError(
                    f"plugin {name} implements {hook} as a wrapper; registration hooks take "
                    "no wrapper or hookwrapper implementations"
                )

    def _collect(
        self, plugin: object
    ) -> tuple[list[type[Connector[Any]]], list[type[Action[Any]]]]:
        """Run one plugin's registration hooks; all its types register, or none do."""
        from debsync.actions.base import Action  # the bases (pydantic) load with the plugins
        from debsync.connectors.base import Connector

        connectors: list[type[Connector[Any]]] = []
        actions: list[type[Action[Any]]] = []

        def register_connector(cls: type[Connector[Any]]) -> None:
            _check_class(cls, Connector, "connector")
            _check_unique(cls, "connector", self._connectors, connectors)
            connectors.append(cls)

        def register_action(cls: type[Action[Any]]) -> None:
            _check_class(cls, Action, "action")
            _check_unique(cls, "action", self._actions, actions)
            actions.append(cls)

        others = [p for p in self._pm.get_plugins() if p is not plugin]
        for hook, register in (
            ("debsync_register_connectors", register_connector),
            ("debsync_register_actions", register_action),
        ):  # this plugin's implementation only, still called by pluggy
            self._pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        return connectors, actions

    # -- the typed facade -----------------------------------------------------------------

    def connector_types(self) -> dict[str, type[Connector[Any]]]:
        return dict(sorted(self._connectors.items()))

    def action_types(self) -> dict[str, type[Action[Any]]]:
        return dict(sorted(self._actions.items()))

    def broken(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "broken"]

    def veto(self, context: MessageContext) -> str | None:
        """The first reason a plugin gives to block this action (``debsync_veto_action``);
        a plugin that raises blocks it too, so nothing is sent on a broken check."""
        for name, outcome in self._each("debsync_veto_action", context=context):
            if isinstance(outcome, BaseException):
                return f"the veto check of plugin {name} failed: {_describe(outcome)}"
            if outcome:
                return f"{outcome} (plugin {name})"
        return None

    def sync_finished(self, instance: str, result: SyncResult) -> None:
        """Tell observers a sync run finished (``debsync_sync_finished``)."""
        self._observe("debsync_sync_finished", instance=instance, result=result)

    def action_finished(self, outcome: ActionOutcome) -> None:
        """Tell observers what became of an action (``debsync_action_finished``)."""
        self._observe("debsync_action_finished", outcome=outcome)

    def register_commands(self, app: typer.Typer) -> None:
        """Let plugins add subcommands (``debsync_register_commands``); a plugin whose
        registration raises is marked broken and the command line goes on without it."""
        for name, outcome in self._each("debsync_register_commands", app=app):
            if isinstance(outcome, BaseException) and name in self.infos:
                self.infos[name].status, self.infos[name].error = "broken", _describe(outcome)

    def _observe(self, hook: str, **kwargs: Any) -> None:
        for name, outcome in self._each(hook, **kwargs):
            if isinstance(outcome, BaseException):
                log.error("plugin %s failed in %s: %s", name, hook, _describe(outcome))

    def _each(self, hook: str, **kwargs: Any) -> Iterator[tuple[str, object]]:
        """Call the hook once per plugin that implements it, in pluggy's order (last
        registered first, honouring tryfirst/trylast), yielding its result or the exception it
        raised, so one broken plugin neither hides the others nor stops the daemon.

        Each call goes through pluggy (``subset_hook_caller`` leaving out the other plain
        implementations), so every wrapper of the hook wraps each plugin's call, ``firstresult``
        applies within it, and hook-call monitoring sees it. Without plain implementations the
        wrappers still run, once."""
        caller = getattr(self._pm.hook, hook)
        impls = caller.get_hookimpls()
        plain = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
        if not plain:
            yield ", ".join(impl.plugin_name for impl in reversed(impls)), _call(caller, kwargs)
            return
        for impl in reversed(plain):
            others = [other.plugin for other in plain if other is not impl]
            subset = self._pm.subset_hook_caller(hook, remove_plugins=others)
            yield impl.plugin_name, _call(subset, kwargs)


def _identity(plugin: object) -> object:
    return plugin


def _call(caller: pluggy.HookCaller, kwargs: dict[str, Any]) -> object:
    try:
        return caller(**kwargs)
    except Exception as exc:
        return exc


def _trace_call(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
    """Log a hook call with argument types only: arguments carry debtors' personal data."""
    arguments = ", ".join(f"{key}=<{type(value).__name__}>" for key, value in kwargs.items())
    plugins = ", ".join(impl.plugin_name for impl in reversed(impls)) or "none"
    log.info("hook %s(%s) calls %s", hook, arguments, plugins)


def _trace_result(
    outcome: pluggy.Result[object],
    hook: str,
    impls: Sequence[pluggy.HookImpl],
    kwargs: Mapping[str, object],
) -> None:
    if outcome.exception is not None:
        log.info("hook %s raised %s", hook, _describe(outcome.exception))
    else:
        log.info("hook %s returned %r", hook, outcome.get_result())


def _check_class(cls: object, base: type, kind: str) -> None:
    from pydantic import BaseModel

    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"register() got {cls!r}, which is not a {base.__name__} subclass")
    type_name = getattr(cls, "type_name", None)
    if not isinstance(type_name, str) or not _TYPE_NAME.match(type_name):
        raise PluginError(
            f"{kind} class {_qualname(cls)} needs a type_name of lowercase letters, digits, "
            f"'-' or '_' (got {type_name!r})"
        )
    settings = getattr(cls, "Settings", None)
    if not (isinstance(settings, type) and issubclass(settings, BaseModel)):
        raise PluginError(f"{kind} class {_qualname(cls)} needs a pydantic Settings model")


def _check_unique(
    cls: type[Any], kind: str, registered: dict[str, type[Any]], pending: list[type[Any]]
) -> None:
    for other in [registered.get(cls.type_name), *pending]:
        if other is not None and other.type_name == cls.type_name:
            raise PluginError(
                f"duplicate {kind} type {cls.type_name!r}: registered by both "
                f"{_qualname(other)} and {_qualname(cls)}"
            )
