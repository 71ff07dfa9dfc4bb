"""``debsync new``: a plugin package to start from, whose conformance tests pass as generated.

The templates beside this module (``connector/``, ``action/``) are rendered with the plugin's
names into ``<directory>/debsync-<name>/``: a pyproject with the ``debsync`` entry point, a
module with the hook implementation and a settings model, a README, and a conformance test
against a fake of the remote side. CI generates both kinds and runs their tests.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from debsync import __version__
from debsync.errors import DebsyncError

KINDS = ("connector", "action")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(DebsyncError):
    """The plugin cannot be generated as asked (a bad name, an existing directory)."""


@dataclass(frozen=True)
class Names:
    """Every spelling of a plugin's name the templates need."""

    name: str  # the type name in connectors.toml: acme-books
    package: str  # the distribution: debsync-acme-books
    module: str  # the import name: debsync_acme_books
    class_name: str  # AcmeBooks
    title: str  # Acme Books
    env_var: str  # ACME_BOOKS_TOKEN
    debsync_version: str


def names(name: str) -> Names:
    if not _NAME.match(name) or len(name) > 40:
        raise ScaffoldError(
            f"{name!r} is not a plugin name: use lowercase letters and digits, words joined by "
            "'-', e.g. acme-books"
        )
    words = name.split("-")
    return Names(
        name=name,
        package=f"debsync-{name}",
        module="debsync_" + "_".join(words),
        class_name="".join(w.capitalize() for w in words),
        title=" ".join(w.capitalize() for w in words),
        env_var="_".join(words).upper() + "_TOKEN",
        debsync_version=__version__,
    )


def generate(kind: str, name: str, directory: Path) -> Path:
    """Write a new plugin package and return its directory."""
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    spelled = names(name)
    target = directory / spelled.package
    if target.exists():
        raise ScaffoldError(f"{target} exists already; choose another name or directory")
    env = Environment(
        loader=PackageLoader("debsync", "scaffold"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # generating Python and TOML, not HTML
    )
    variables = asdict(spelled)
    for template in env.list_templates(filter_func=lambda n: n.startswith(f"{kind}/")):
        relative = template.removeprefix(f"{kind}/").removesuffix(".j2")
        if relative.startswith("src/"):
            relative = f"src/{spelled.module}/{relative.removeprefix('src/')}"
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(variables), encoding="utf-8")
    return target
