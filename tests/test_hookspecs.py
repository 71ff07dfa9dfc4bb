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
