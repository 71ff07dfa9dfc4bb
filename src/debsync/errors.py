"""One error tree, named by what the runner should do and who should fix it, and
:func:`scrub`, which every error text passes before it is stored, printed or logged."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class DebsyncError(Exception):
    """Root of every error debsync raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One located problem in a configuration file: the operator fixes it."""

    file: Path | None
    key_path: tuple[str | int, ...]
    message: str

    @property
    def location(self) -> str:
        key = ".".join(str(part) for part in self.key_path) or "(top level)"
        return f"{self.file}: [{key}]" if self.file else f"[{key}]"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigError(DebsyncError):
    """Configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{lines}")


class SecretError(DebsyncError):
    """A secret reference cannot be resolved (missing variable, no keyring backend, …)."""


class PluginError(DebsyncError):
    """A plugin broke the contract: duplicate type names, a bad registration, …"""


class ConnectorError(DebsyncError):
    """A connector failed; subclasses say whether trying again can help."""


class RetryableConnectorError(ConnectorError):
    """Transient: a timeout, 429 or 5xx. The sync is retried later from the last cursor."""


class FatalConnectorError(ConnectorError):
    """Needs a person: bad credentials, a missing file, a contract violation."""


class StoreError(DebsyncError):
    """The store cannot be opened or migrated."""


_DATABASE_TAIL = re.compile(r"\s*\[(?:SQL|parameters):.*", re.DOTALL)
_DATABASE_DETAIL = re.compile(r"^\s*(?:DETAIL|HINT|CONTEXT):.*$\n?", re.MULTILINE)
_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[ -]?\d){8,14}(?!\w)")


def scrub(text: str) -> str:
    """An error text without personal data: a database error loses its statement, its
    parameters and its detail lines (a failing row holds names), and anything that looks like
    an e-mail address, IBAN or phone number is replaced. Ids, dates and amounts stay."""
    text = _DATABASE_DETAIL.sub("", _DATABASE_TAIL.sub("", text))
    text = _EMAIL.sub("[e-mail]", text)
    text = _IBAN.sub("[IBAN]", text)
    return _PHONE.sub("[phone]", text).strip()
