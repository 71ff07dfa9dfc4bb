"""The layering of ``src/debsync`` as docs/architecture.md states it, checked on the import graph.

The graph is read with ``ast`` (no module is imported), so a forbidden import fails here even
when it sits in a code path no other test runs.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "debsync"
ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

PURE = (
    "model",
    "invoice_rows",
    "plain_debtors",
    "errors",
    "clock",
    "policy",
    "law",
    "kinds",
    "formatting",
    "facts",
    "decisions",
    "eligibility",
    "prior_steps",
    "ladder",
    "pause_rules",
    "claims",
    "scheduler",
    "columnar",
    "columnar_plan",
    "send_window",
)
"""Modules that decide without I/O: same input, same output."""
IO = (
    "store",
    "sync",
    "planning",
    "planning_columnar",
    "outbox",
    "daemon",
    "schedule",
    "workers",
    "inbound",
    "pauses",
    "dossier",
    "config",
    "secrets",
    "plugins",
    "connectors",
    "actions",
    "templates",
    "http",
    "cli",
)
CORE_IO = ("store", "sync", "planning", "outbox", "daemon", "inbound", "pauses", "dossier")
"""The core's own I/O: plugins reach none of it."""
IO_LIBRARIES = ("sqlalchemy", "alembic", "httpx", "aiosmtplib", "keyring", "psycopg")


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` may not import modules under any of ``forbidden``."""

    source: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()  # third-party packages it may not import either


RULES = (
    Rule(
        "store",
        ("*",),
        "the store knows only the model and its own schema",
        allowed=("store", "model", "errors"),
    ),
    *(Rule(m, IO, "it is pure: no I/O, no clock of its own", libraries=IO_LIBRARIES) for m in PURE),
    Rule("connectors", ("actions",), "connectors and actions never meet"),
    Rule("actions", ("connectors",), "connectors and actions never meet"),
    *(
        Rule(
            side,
            ("store", "sync", "planning", "outbox", "daemon", "inbound", "pauses", "dossier"),
            why,
        )
        for side, why in (
            ("connectors", "a connector yields pages; the sync engine owns the store"),
            ("actions", "an action gets its context; the outbox owns the store"),
        )
    ),
    Rule("actions", ("law",), "the core passes what an action prints in its context"),
    Rule("sync", ("planning", "outbox", "daemon"), "data flows connector → sync → store"),
    Rule("planning", ("outbox", "daemon", "sync"), "planning reads the store, above it"),
    Rule("outbox", ("daemon",), "the daemon drives the outbox, not the other way round"),
    *(
        Rule(m, ("cli",), "nothing below the CLI imports it")
        for m in ("debsync", *PURE, *[m for m in IO if m != "cli"], "hookspecs", "testing")
    ),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "debsync.outbox.table"
    target: str  # what it imports, e.g. "debsync.store.schema"
    path: Path
    line: int


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Absolute imports anywhere in the module, type-checking blocks included: a type-only
    import still ties the layers together."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "debsync":
                for alias in node.names:
                    yield f"debsync.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno


def import_graph(root: Path) -> list[Import]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if "scaffold" in path.parts or "migrations" in path.parts:
            continue  # templates for other packages, and alembic's own scripts
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, line in _imports(tree):
            found.append(Import(module, target, path, line))
    return found


def _within(module: str, area: str) -> bool:
    """Whether ``module`` is the top-level ``area`` (``debsync`` itself) or lies in it."""
    if area == "debsync":
        return module == "debsync"
    name = f"debsync.{area}"
    return module == name or module.startswith(name + ".")


def _breaks(rule: Rule, imp: Import) -> bool:
    if imp.target.split(".")[0] in rule.libraries:
        return True
    if rule.forbidden == ("*",):
        internal = imp.target.startswith("debsync.")
        return internal and not any(_within(imp.target, area) for area in rule.allowed)
    return any(_within(imp.target, area) for area in rule.forbidden)


def violations(graph: list[Import], root: Path) -> list[str]:
    return sorted(
        {
            f"{imp.path.relative_to(root).as_posix()}:{imp.line}: {imp.module} imports "
            f"{imp.target}: {rule.why}"
            for imp in graph
            for rule in RULES
            if _within(imp.module, rule.source) and _breaks(rule, imp)
        }
    )


def test_the_layering_holds() -> None:
    assert violations(import_graph(SOURCE), SOURCE) == []


@pytest.mark.parametrize(
    ("module", "line", "broken_rule"),
    [
        ("store/reports.py", "from debsync.outbox import table", "the store knows only"),
        ("scheduler.py", "from debsync.store import Store", "it is pure"),
        ("law/costs.py", "import sqlalchemy", "it is pure"),
        ("connectors/csv/reader.py", "from debsync.actions.base import Action", "never meet"),
        ("actions/call.py", "from debsync.store import Store", "the outbox owns the store"),
        ("actions/webhook.py", "from debsync import law", "passes what an action prints"),
        ("outbox/table.py", "from debsync.cli.common import app", "nothing below the CLI"),
        ("sync/engine.py", "from debsync.outbox import enqueue", "data flows"),
    ],
    ids=[
        "store-up",
        "pure-io",
        "pure-library",
        "connector-action",
        "action-store",
        "action-law",
        "below-cli",
        "sync-up",
    ],
)
def test_a_forbidden_import_fails_the_check(
    tmp_path: Path, module: str, line: str, broken_rule: str
) -> None:
    copy = tmp_path / "debsync"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    found = violations(import_graph(copy), copy)
    assert len(found) == 1 and broken_rule in found[0], found


def test_every_module_is_in_the_architecture_table() -> None:
    """docs/architecture.md names every module (or package) of src/debsync."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = []
    for path in sorted(SOURCE.rglob("*.py")):
        if {"scaffold", "migrations", "testing"} & set(path.parts) or not path.read_text().strip():
            continue  # an empty __init__.py only makes a directory a package
        relative = path.relative_to(SOURCE)
        names = {f"`{relative.as_posix()}`", f"`{relative.parent.as_posix()}/`"}
        if not any(name in text for name in names):
            missing.append(relative.as_posix())
    assert missing == []


def test_no_module_is_over_600_lines() -> None:
    long = {
        path.relative_to(SOURCE).as_posix(): n
        for path in SOURCE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
