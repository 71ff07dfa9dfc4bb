"""One error tree, named by what the runner should do and who should fix it."""

from __future__ import annotations

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
