"""`debsync new`: the generated plugin packages pass their own conformance tests as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from debsync.cli import app
from debsync.scaffold import ScaffoldError, generate, names


@pytest.mark.parametrize(("kind", "name"), [("connector", "acme-books"), ("action", "crm-notify")])
def test_generated_plugin_passes_its_conformance_tests(
    kind: str, name: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["new", kind, name, "--directory", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / f"debsync-{name}"
    spelled = names(name)
    pyproject = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["entry-points"]["debsync"] == {name: spelled.module}
    assert (package / "src" / spelled.module / "__init__.py").is_file()
    assert "debsync_register_" in (package / "src" / spelled.module / "__init__.py").read_text()

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
        env={**os.environ, "PYTHONPATH": str(package / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_names_are_spelled_for_every_place() -> None:
    spelled = names("acme-books2")
    assert (spelled.package, spelled.module, spelled.class_name, spelled.env_var) == (
        "debsync-acme-books2",
        "debsync_acme_books2",
        "AcmeBooks2",
        "ACME_BOOKS2_TOKEN",
    )


@pytest.mark.parametrize("bad", ["Acme", "acme_books", "-acme", "acme--books", "9acme", ""])
def test_bad_names_are_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="is not a plugin name"):
        generate("connector", bad, tmp_path)


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    generate("action", "crm-notify", tmp_path)
    with pytest.raises(ScaffoldError, match="exists already"):
        generate("action", "crm-notify", tmp_path)
