"""Conformance checks for actions: render every shipped step in both languages, send to your
fake, keep the idempotency promise, map failures to what the outbox should do.

::

    from debsync.testing import ActionChecks, ActionHarness

    class TeamsHarness(ActionHarness):
        ...  # your action against your fake endpoint: action, deliveries, fail_next

    class TestTeams(ActionChecks):
        @pytest.fixture
        def harness(self, tmp_path):
            return TeamsHarness(tmp_path)
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from debsync.actions.base import (
    Action,
    ActionEnvironment,
    ActionSettings,
    ActionUnavailableError,
    OutcomeUnknownError,
    PermanentActionError,
    Receipt,
    RetryableActionError,
)
from debsync.model import DebtorKind, Language
from debsync.templates import Templates
from debsync.testing.samples import sample_context

SHIPPED_STEPS: dict[str, tuple[str, ...]] = {
    "email": ("courtesy", "reminder", "aanmaning", "veertiendagenbrief"),
    "letter": ("courtesy", "reminder", "aanmaning", "veertiendagenbrief"),
    "sms": ("courtesy", "reminder", "aanmaning", "veertiendagenbrief"),
    "call": ("call", "final-call"),
    "agency": ("handoff",),
    "webhook": ("reminder", "aanmaning", "handoff"),
}
"""The steps debsync ships templates (or, for agency and webhook, payloads) for, per channel."""

_ALL_STEPS: tuple[str, ...] = tuple(
    dict.fromkeys(s for steps in SHIPPED_STEPS.values() for s in steps)
)
"""Every shipped step once, in ladder order: the render check's parameters. The channel is only
known from the harness at run time, so a step the action's channel does not use is skipped."""

Failure = Literal["retryable", "permanent", "unknown", "unavailable"]

_EXPECTED: dict[str, tuple[type[Exception], str]] = {
    "retryable": (RetryableActionError, "tries again later"),
    "permanent": (PermanentActionError, "marks the action dead for a person to see"),
    "unknown": (OutcomeUnknownError, "holds the action for review instead of sending twice"),
    "unavailable": (ActionUnavailableError, "stops using the channel for this run"),
}


class ActionHarness(ABC):
    """Your action wired to a fake endpoint you control; subclass it in your test module.

    :cvar steps: the steps to render; default: what debsync ships for the action's channel.
    :cvar failures: the failures your fake can produce (see :meth:`fail_next`).
    """

    steps: ClassVar[tuple[str, ...] | None] = None
    failures: ClassVar[tuple[Failure, ...]] = ("retryable", "permanent", "unknown", "unavailable")

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def environment(self, instance: str = "conformance") -> ActionEnvironment:
        """The environment the core gives an action: shipped templates, a config directory."""
        return ActionEnvironment(instance=instance, config_dir=self.tmp_path, templates=Templates())

    @abstractmethod
    def action(self) -> Action[Any]:
        """Your configured action, sending to your fake (build it with
        :meth:`environment`)."""

    @abstractmethod
    def deliveries(self) -> int:
        """How many messages your fake has received so far (distinct deliveries: what a
        debtor would see)."""

    @abstractmethod
    def fail_next(self, kind: Failure) -> None:
        """Make your fake's next request fail: ``retryable`` (a 429, a 503, a 4xx SMTP reply),
        ``permanent`` (recipient rejected), ``unknown`` (connection lost after the message
        was sent), ``unavailable`` (authentication refused, server unreachable)."""


def _send(action: Action[Any], payload: dict[str, Any], key: str) -> Receipt:
    async def once() -> Receipt:
        async with action:
            return await action.send(payload, key)

    return asyncio.run(once())


class ActionChecks:
    """The conformance suite. Subclass it as ``Test<Something>`` and provide a ``harness``
    fixture returning your :class:`ActionHarness`."""

    @pytest.fixture
    def harness(self) -> ActionHarness:
        raise NotImplementedError(
            "define a `harness` fixture in your test class that returns your ActionHarness"
        )

    def _steps(self, harness: ActionHarness) -> tuple[str, ...]:
        action = harness.action()
        steps = harness.steps or SHIPPED_STEPS.get(action.channel)
        assert steps, (
            f"channel {action.channel!r} has no shipped steps: set `steps` on your harness"
        )
        return steps

    def test_settings_schema_is_valid_and_documented(self, harness: ActionHarness) -> None:
        """The settings model forbids unknown keys, yields a JSON Schema and documents every
        field; the class declares its channel and whether it is idempotent."""
        cls = type(harness.action())
        assert issubclass(cls.Settings, ActionSettings), (
            f"{cls.__name__}.Settings must derive from ActionSettings (unknown keys forbidden)"
        )
        undocumented = [
            name for name, field in cls.Settings.model_fields.items() if not field.description
        ]
        assert not undocumented, (
            f"settings of {cls.__name__} without description=...: {', '.join(undocumented)}"
        )
        assert cls.Settings.model_json_schema().get("type") == "object"
        assert isinstance(cls.channel, str) and cls.channel, f"{cls.__name__} needs a channel"
        assert isinstance(cls.idempotent, bool)

    def test_every_step_is_a_known_step(self, harness: ActionHarness) -> None:
        """The render check is parametrized over the shipped steps; a harness's own ``steps``
        must be among them, or it would silently go unchecked."""
        unknown = [step for step in self._steps(harness) if step not in _ALL_STEPS]
        assert not unknown, f"steps the kit cannot render-check: {', '.join(unknown)}"

    @pytest.mark.parametrize(
        ("step", "language"),
        [(step, language) for step in _ALL_STEPS for language in Language],
        ids=[f"{step}-{language.value}" for step in _ALL_STEPS for language in Language],
    )
    @pytest.mark.parametrize(
        "kind", [DebtorKind.CONSUMER, DebtorKind.BUSINESS], ids=lambda k: k.value
    )
    def test_renders_every_shipped_step(
        self, harness: ActionHarness, step: str, language: Language, kind: DebtorKind
    ) -> None:
        """Every step the channel ships renders for consumers and businesses in Dutch and
        English, to a JSON payload (the outbox stores and hashes it) with a readable preview.
        Rendering is pure: the same context renders the same payload."""
        action = harness.action()
        if step not in self._steps(harness):
            pytest.skip(f"channel {action.channel!r} does not send {step!r}")
        context = sample_context(step, action.channel, language, kind=kind)
        payload = action.render(context)
        assert isinstance(payload, dict), f"{step}: render must return a dict"
        try:
            json.dumps(payload)
        except TypeError as exc:
            pytest.fail(f"{step}: the payload is not JSON-serialisable: {exc}")
        assert action.render(context) == payload, f"{step}: rendering is not deterministic"
        assert action.preview(payload).strip(), f"{step}: preview() returned nothing"

    def test_sends_to_the_fake(self, harness: ActionHarness) -> None:
        """A rendered payload reaches the fake exactly once and comes back with a receipt."""
        action = harness.action()
        context = sample_context(self._steps(harness)[0], action.channel)
        before = harness.deliveries()
        receipt = _send(action, action.render(context), context.key)
        assert isinstance(receipt, Receipt), "send must return a Receipt"
        assert harness.deliveries() == before + 1, (
            f"after one send the fake counted {harness.deliveries() - before} deliveries"
        )

    def test_idempotency_is_declared_truthfully(self, harness: ActionHarness) -> None:
        """An action that declares itself idempotent never delivers twice for one key: the
        outbox retries its in-doubt sends without asking anyone, on that promise."""
        action = harness.action()
        if not action.idempotent:
            pytest.skip(f"{type(action).__name__} is not idempotent: in-doubt sends go to review")
        context = sample_context(self._steps(harness)[0], action.channel)
        payload = action.render(context)
        before = harness.deliveries()
        _send(action, payload, context.key)
        _send(harness.action(), payload, context.key)
        assert harness.deliveries() == before + 1, (
            f"{type(action).__name__} declares idempotent = True, but sending the same payload "
            f"with the same key twice delivered {harness.deliveries() - before} times"
        )

    @pytest.mark.parametrize("kind", list(_EXPECTED))
    def test_failures_map_to_what_the_outbox_should_do(
        self, harness: ActionHarness, kind: Failure
    ) -> None:
        """Each kind of failure raises the error that makes the outbox do the right thing:
        retry later, give up, ask a person, or stop using the channel for this run."""
        if kind not in harness.failures:
            pytest.skip(f"the harness cannot produce a {kind} failure")
        action = harness.action()
        context = sample_context(self._steps(harness)[0], action.channel)
        payload = action.render(context)
        harness.fail_next(kind)
        expected, meaning = _EXPECTED[kind]
        try:
            _send(action, payload, context.key)
        except expected as exc:
            if not str(exc):
                pytest.fail(f"the {kind} error has no message for the operator")
        except Exception as exc:
            pytest.fail(
                f"a {kind} failure raised {type(exc).__name__}: {exc}; it must raise "
                f"{expected.__name__} so that the outbox {meaning}"
            )
        else:
            pytest.fail(f"a {kind} failure raised nothing: the send looked successful")
