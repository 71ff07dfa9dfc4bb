"""The plugin host: built-ins, entry points one at a time, broken and duplicate plugins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from debsync import hookimpl
from debsync.cli import app
from debsync.connectors.base import Connector
from debsync.plugins import DEFAULT_PLUGINS, Plugins

from fakes import FakeConnector, FakePlugin, FakeSettings


def install_dist(site: Path, name: str, module_source: str, *, group_entry: str) -> None:
    """Write an installed distribution (dist-info + module) the way pip would."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = site / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[debsync]\n{group_entry} = {name}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "site-packages"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


GOOD_PLUGIN = """
    from debsync import hookimpl
    from debsync.connectors.base import Connector, ConnectorSettings

    class TwinfieldSettings(ConnectorSettings):
        office: str

    class TwinfieldConnector(Connector[TwinfieldSettings]):
        type_name = "twinfield"
        Settings = TwinfieldSettings

        async def fetch(self, cursor):
            if False:
                yield

    @hookimpl
    def debsync_register_connectors(register):
        register(TwinfieldConnector)
"""


def test_builtins_register_through_the_same_hooks() -> None:
    plugins = Plugins(entry_points=False)
    assert plugins.connector_types()["csv"].__module__ == "debsync.connectors.csv"
    assert all(plugins.infos[name].builtin for name in DEFAULT_PLUGINS)
    assert plugins.infos["debsync.connectors.csv"].connectors == ["csv"]


def test_broken_entry_point_is_isolated_and_listed(site: Path) -> None:
    install_dist(
        site, "debsync_broken", "raise ImportError('needs libfoo')\n", group_entry="broken"
    )
    install_dist(site, "debsync_twinfield", GOOD_PLUGIN, group_entry="twinfield")

    plugins = Plugins()

    assert plugins.infos["broken"].status == "broken"
    assert plugins.infos["broken"].error == "ImportError: needs libfoo"
    assert plugins.infos["twinfield"].status == "loaded"
    assert plugins.infos["twinfield"].version == "1.2.3"
    assert "twinfield" in plugins.connector_types() and "csv" in plugins.connector_types()

    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    listed = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert listed["broken"]["status"] == "broken"
    assert listed["twinfield"]["connectors"] == ["twinfield"]
    assert "debsync.connectors.csv" not in listed  # built-ins only with --all


def test_disabled_plugins_are_blocked_by_name(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_dist(site, "debsync_twinfield", GOOD_PLUGIN, group_entry="twinfield")
    monkeypatch.setenv("DEBSYNC_DISABLE_PLUGINS", "twinfield, debsync.connectors.csv")
    plugins = Plugins()
    assert plugins.infos["twinfield"].status == "disabled"
    assert plugins.infos["debsync.connectors.csv"].status == "disabled"
    assert not {"twinfield", "csv"} & plugins.connector_types().keys()


def test_duplicate_type_name_is_an_error_naming_both_classes() -> None:
    class Impostor(FakeConnector):
        pass

    class ImpostorPlugin:
        @hookimpl
        def debsync_register_connectors(self, register: Any) -> None:
            register(Impostor)

    plugins = Plugins(
        entry_points=False, extra=[("fake", FakePlugin()), ("impostor", ImpostorPlugin())]
    )
    assert plugins.connector_types()["fake"] is FakeConnector
    error = plugins.infos["impostor"].error or ""
    assert plugins.infos["impostor"].status == "broken"
    assert "fakes.FakeConnector" in error and "Impostor" in error and "'fake'" in error


def test_plugin_types_register_all_or_nothing() -> None:
    class HalfBroken:
        @hookimpl
        def debsync_register_connectors(self, register: Any) -> None:
            register(FakeConnector)
            register(object)

    plugins = Plugins(entry_points=False, extra=[("half", HalfBroken())])
    assert "fake" not in plugins.connector_types()
    assert "not a Connector subclass" in (plugins.infos["half"].error or "")


def test_hookimpl_for_unknown_hook_marks_plugin_broken() -> None:
    class Typo:
        @hookimpl
        def debsync_register_conectors(self, register: Any) -> None:  # misspelt on purpose
            raise AssertionError("never called")

    plugins = Plugins(entry_points=False, extra=[("typo", Typo())])
    assert plugins.infos["typo"].status == "broken"
    assert "debsync_register_conectors" in (plugins.infos["typo"].error or "")


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"type_name": "Bad Name"}, "needs a type_name"),
        ({"Settings": dict}, "needs a pydantic Settings model"),
    ],
)
def test_registered_classes_must_carry_name_and_settings(
    attrs: dict[str, Any], message: str
) -> None:
    bad = type("Bad", (FakeConnector,), attrs)

    class Plugin:
        @hookimpl
        def debsync_register_connectors(self, register: Any) -> None:
            register(bad)

    plugins = Plugins(entry_points=False, extra=[("bad", Plugin())])
    assert message in (plugins.infos["bad"].error or "")


def test_hook_debsync_register_actions() -> None:
    from debsync.actions.base import Action, ActionSettings, Receipt

    class EchoSettings(ActionSettings):
        pass

    class Echo(Action[EchoSettings]):
        type_name = "echo"
        Settings = EchoSettings
        channel = "webhook"

        def render(self, context: Any) -> Any:
            return dict(context)

        async def send(self, payload: Any, idempotency_key: str) -> Receipt:
            return Receipt(provider_id=idempotency_key)

    class Plugin:
        @hookimpl
        def debsync_register_actions(self, register: Any) -> None:
            register(Echo)

    plugins = Plugins(entry_points=False, extra=[("echo", Plugin())])
    assert plugins.action_types()["echo"] is Echo
    assert plugins.infos["echo"].actions == ["echo"]


def test_hook_debsync_register_connectors() -> None:
    plugins = Plugins(entry_points=False, extra=[("fake", FakePlugin())])
    assert plugins.connector_types()["fake"] is FakeConnector
    assert issubclass(plugins.connector_types()["fake"], Connector)
    assert FakeConnector.Settings is FakeSettings


def test_hook_debsync_sync_finished(store: Any, clock: Any) -> None:
    import asyncio

    from debsync.sync import SyncEngine

    from fakes import INSTANCE, invoice, snapshot

    seen: list[tuple[str, bool, int]] = []

    class Observer:
        @hookimpl
        def debsync_sync_finished(self, instance: str, result: Any) -> None:
            seen.append((instance, result.ok, result.counts.invoices_new))

    class Broken:
        @hookimpl
        def debsync_sync_finished(self, instance: str) -> None:
            raise RuntimeError("metrics backend down")

    plugins = Plugins(entry_points=False, extra=[("obs", Observer()), ("broken", Broken())])
    engine = SyncEngine(store, clock=clock, plugins=plugins)
    result = asyncio.run(engine.run(INSTANCE, FakeConnector(snapshot(invoice("F1")))))

    assert result.ok and seen == [("books", True, 1)]  # the broken observer changed nothing


def test_hook_debsync_register_commands() -> None:
    import typer

    class Export:
        @hookimpl
        def debsync_register_commands(self, app: typer.Typer) -> None:
            @app.command("crm-export")
            def crm_export(target: str) -> None:
                """Export dunning state to the CRM."""
                typer.echo(f"exported to {target}")

    class Clash:
        @hookimpl
        def debsync_register_commands(self, app: typer.Typer) -> None:
            raise ValueError("needs a newer typer")

    app = typer.Typer()

    @app.command()
    def status() -> None:
        typer.echo("status")

    plugins = Plugins(entry_points=False, extra=[("crm", Export()), ("clash", Clash())])
    plugins.register_commands(app)

    result = CliRunner().invoke(app, ["crm-export", "acme"])
    assert result.exit_code == 0 and result.stdout == "exported to acme\n"
    assert plugins.infos["clash"].status == "broken"
    assert plugins.infos["clash"].error == "ValueError: needs a newer typer"


class Dispute:
    @hookimpl
    def debsync_veto_action(self, context: Any) -> str | None:
        return "the CRM records a dispute"


class Timing:
    """A wrapper around the veto: it must wrap the call, never be taken as a reason itself."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def debsync_veto_action(self, context: Any) -> Any:
        self.seen.append("before")
        reason = yield
        self.seen.append(f"after: {reason}")
        return reason


def test_a_wrapper_of_the_veto_vetoes_nothing_and_wraps_the_call() -> None:
    from debsync.testing import sample_context

    timing = Timing()
    plugins = Plugins(entry_points=False, extra=[("timing", timing)])
    assert plugins.veto(sample_context()) is None
    assert timing.seen == ["before", "after: None"]


def test_a_reason_still_vetoes_through_a_wrapper() -> None:
    from debsync.testing import sample_context

    timing = Timing()
    plugins = Plugins(entry_points=False, extra=[("crm", Dispute()), ("timing", timing)])
    assert plugins.veto(sample_context()) == "the CRM records a dispute (plugin crm)"
    assert timing.seen == ["before", "after: the CRM records a dispute"]


@pytest.mark.parametrize("style", ["wrapper", "hookwrapper"])
@pytest.mark.parametrize(
    "hook",
    ["debsync_register_connectors", "debsync_register_actions", "debsync_register_commands"],
)
def test_a_wrapper_of_a_registration_hook_is_refused(style: str, hook: str) -> None:
    def wrap(*args: Any) -> Any:
        yield

    plugin = type("Sneaky", (), {hook: staticmethod(hookimpl(**{style: True})(wrap))})()
    plugins = Plugins(entry_points=False, extra=[("sneaky", plugin)])
    assert plugins.infos["sneaky"].status == "broken"
    assert plugins.infos["sneaky"].error == (
        f"PluginError: plugin sneaky implements {hook} as a wrapper; registration hooks take "
        "no wrapper or hookwrapper implementations"
    )
    assert "csv" in plugins.connector_types()


def test_trace_env_logs_every_hook_call_and_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from debsync.testing import sample_context

    monkeypatch.setenv("DEBSYNC_TRACE_PLUGINS", "1")
    plugins = Plugins(entry_points=False, extra=[("crm", Dispute())])
    with caplog.at_level("INFO", logger="debsync.plugins"):
        plugins.veto(sample_context())
    lines = [r.getMessage() for r in caplog.records if r.name == "debsync.plugins"]
    assert "hook debsync_veto_action(context=<MessageContext>) calls crm" in lines
    assert "hook debsync_veto_action returned 'the CRM records a dispute'" in lines


def test_without_the_trace_env_hooks_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from debsync.testing import sample_context

    plugins = Plugins(entry_points=False, extra=[("crm", Dispute())])
    with caplog.at_level("DEBUG", logger="debsync.plugins"):
        plugins.veto(sample_context())
    assert not [r for r in caplog.records if r.name == "debsync.plugins"]
