"""Reading and validating ``connectors.toml``.

Every problem is collected with its file, table and key, and reported at once: an operator
fixes a file in one pass, not one error per restart. Each connector and action instance is
validated by its own type's pydantic settings model, so a typo in a key is an error that names
the key; secret references are resolved here and nowhere else.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from debsync.actions.base import Action, ActionSettings
from debsync.connectors.base import Connector, ConnectorSettings
from debsync.errors import ConfigError, ConfigProblem, SecretError
from debsync.model import Address, Email, Phone, normalise_iban
from debsync.plugins import Plugins
from debsync.secrets import is_secret_reference, resolve

CONFIG_ENV = "DEBSYNC_CONFIG"
DATABASE_URL_ENV = "DEBSYNC_DATABASE_URL"
DEFAULT_CONFIG = Path("connectors.toml")
DEFAULT_DATABASE = Path("var") / "debsync.db"
"""The default SQLite file, relative to the directory that holds ``connectors.toml``."""

_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOP_LEVEL = ("store", "creditor", "connectors", "actions")

ModelT = TypeVar("ModelT", bound=BaseModel)
TypeT = TypeVar("TypeT", bound=type)


class StoreSettings(BaseModel):
    """``[store]``: where debsync keeps its state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file var/debsync.db next to "
        "connectors.toml. PostgreSQL: postgresql+psycopg://user@host/db. "
        f"{DATABASE_URL_ENV} overrides it.",
    )


class CreditorSettings(BaseModel):
    """``[creditor]``: the company that is owed, as shown in letters and messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    address: Address | None = None
    iban: str | None = None
    bic: str | None = None
    kvk: str | None = None
    vat: str | None = None
    email: Email | None = None
    phone: Phone | None = None
    website: str | None = None

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str | None) -> str | None:
        return normalise_iban(value) if value else None


@dataclass(frozen=True)
class ConnectorInstance:
    """A configured ``[connectors.<name>]`` table."""

    name: str
    type_name: str
    cls: type[Connector[Any]]
    settings: ConnectorSettings


@dataclass(frozen=True)
class ActionInstance:
    """A configured ``[actions.<name>]`` table."""

    name: str
    type_name: str
    cls: type[Action[Any]]
    settings: ActionSettings


@dataclass(frozen=True)
class Config:
    path: Path
    store_url: str
    creditor: CreditorSettings | None = None
    connectors: dict[str, ConnectorInstance] = field(default_factory=dict)
    actions: dict[str, ActionInstance] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent


def config_path(explicit: Path | None = None) -> Path:
    """``--config``, else ``DEBSYNC_CONFIG``, else ``./connectors.toml``."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


class _Problems:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.items: list[ConfigProblem] = []

    def add(self, key_path: tuple[str | int, ...], message: str) -> None:
        self.items.append(ConfigProblem(self.file, key_path, message))

    def add_validation(self, prefix: tuple[str | int, ...], error: ValidationError) -> None:
        for item in error.errors(include_url=False, include_input=False):
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            self.add(prefix + tuple(item["loc"]), message)


def load_config(path: Path, plugins: Plugins) -> Config:
    """Read, validate and resolve a configuration file; raises :class:`ConfigError` listing
    every problem found."""
    path = path.resolve()
    problems = _Problems(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path, (), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(path, (), f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(path, (), f"invalid TOML: {exc}")]) from None

    for key in raw:
        if key not in _TOP_LEVEL:
            problems.add((key,), f"unknown table; known: {', '.join(_TOP_LEVEL)}")

    store = _validate(StoreSettings, raw.get("store", {}), ("store",), problems)
    creditor = None
    if "creditor" in raw:
        creditor = _validate(CreditorSettings, raw["creditor"], ("creditor",), problems)
    connectors = {
        name: ConnectorInstance(name, type_name, cls, settings)
        for name, type_name, cls, settings in _instances(
            raw, "connectors", plugins.connector_types(), problems
        )
    }
    actions = {
        name: ActionInstance(name, type_name, cls, settings)
        for name, type_name, cls, settings in _instances(
            raw, "actions", plugins.action_types(), problems
        )
    }
    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        path=path,
        store_url=_store_url(store.url if store else None, path.parent),
        creditor=creditor,
        connectors=connectors,
        actions=actions,
    )


def _store_url(configured: str | None, directory: Path) -> str:
    url = os.environ.get(DATABASE_URL_ENV) or configured
    if not url:
        return f"sqlite:///{directory / DEFAULT_DATABASE}"
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return f"{prefix}{directory / url.removeprefix(prefix)}"  # relative to the config file
    return url


def _validate(
    model: type[ModelT], data: object, where: tuple[str | int, ...], problems: _Problems
) -> ModelT | None:
    if not isinstance(data, Mapping):
        problems.add(where, "must be a table")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems.add_validation(where, error)
        return None


def _instances(
    raw: Mapping[str, Any], section: str, known: Mapping[str, TypeT], problems: _Problems
) -> list[tuple[str, str, TypeT, Any]]:
    tables = raw.get(section, {})
    if not isinstance(tables, Mapping):
        problems.add((section,), "must be a table of named instances")
        return []
    found = []
    for name, table in tables.items():
        where: tuple[str | int, ...] = (section, name)
        if not _INSTANCE_NAME.match(name):
            problems.add(where, "instance names use lowercase letters, digits, '-' and '_'")
            continue
        if not isinstance(table, Mapping):
            problems.add(where, "must be a table")
            continue
        type_name = table.get("type")
        if not isinstance(type_name, str):
            problems.add((*where, "type"), f"missing; known types: {_names(known)}")
            continue
        cls = known.get(type_name)
        if cls is None:
            problems.add((*where, "type"), f"unknown type {type_name!r}; known: {_names(known)}")
            continue
        data = _resolve_secrets({k: v for k, v in table.items() if k != "type"}, where, problems)
        settings = _validate(cls.Settings, data, where, problems)  # type: ignore[attr-defined]
        if settings is not None:
            found.append((name, type_name, cls, settings))
    return found


def _names(known: Mapping[str, object]) -> str:
    return ", ".join(sorted(known)) or "(none installed)"


def _resolve_secrets(
    data: Mapping[str, Any], where: tuple[str | int, ...], problems: _Problems
) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in data.items():
        if is_secret_reference(value):
            try:
                resolved[key] = resolve(value)
            except SecretError as exc:
                problems.add((*where, key), str(exc))
                resolved[key] = ""
        else:
            resolved[key] = value
    return resolved
