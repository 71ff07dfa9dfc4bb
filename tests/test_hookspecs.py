"""Meta-tests: every hook is tested, documented with its signature, and typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from debsync import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name
    for name, fn in vars(hookspecs).items()
    if name.startswith("debsync_") and inspect.isfunction(fn)
)


def test_there_are_hooks() -> None:
    assert "debsync_register_connectors" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    assert f"def test_hook_{hook}(" in tests


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    signature = f"{hook}({', '.join(inspect.signature(spec).parameters)})"
    assert signature in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_typed_and_explained(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    assert all(
        p.annotation is not inspect.Parameter.empty
        for p in inspect.signature(spec).parameters.values()
    )
    doc = inspect.getdoc(spec) or ""
    assert ":param" in doc and ":return:" in doc and "Fires" in doc


def test_the_module_docstring_states_the_lifecycle_in_order() -> None:
    doc = hookspecs.__doc__ or ""
    order = [
        "debsync_register_connectors",
        "debsync_register_actions",
        "debsync_register_commands",
        "Sync",
        "debsync_sync_finished",
        "Plan",
        "debsync_veto_action",
        "Render and send",
        "debsync_action_finished",
    ]
    positions = [doc.index(word) for word in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_says_whether_it_takes_wrappers(hook: str) -> None:
    from debsync.plugins import NO_WRAPPER_HOOKS

    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    expected = "Takes no wrappers" if hook in NO_WRAPPER_HOOKS else "Wrappers are accepted"
    assert expected in " ".join(doc.split())
