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
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from debsync.actions.base import Action, ActionSettings
from debsync.connectors.base import Connector, ConnectorSettings
from debsync.errors import ConfigError, ConfigProblem, SecretError
from debsync.model import Address, Email, Phone, normalise_iban
from debsync.plugins import Plugins
from debsync.policy import DEFAULT_POLICY, Policy, default_policy
from debsync.secrets import is_secret_reference, resolve
from debsync.service_config import DaemonSettings, HttpSettings, WebSettings, parse_duration
from debsync.templates import Templates

CONFIG_ENV = "DEBSYNC_CONFIG"
DATABASE_URL_ENV = "DEBSYNC_DATABASE_URL"
DEFAULT_CONFIG = Path("connectors.toml")
DEFAULT_DATABASE = Path("var") / "debsync.db"
"""The default SQLite file, relative to the directory that holds ``connectors.toml``."""

_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOP_LEVEL = (
    "store",
    "creditor",
    "law",
    "outbox",
    "privacy",
    "daemon",
    "http",
    "web",
    "policies",
    "connectors",
    "actions",
)
_CORE_CONNECTOR_KEYS = ("type", "policy", "debtor_policies", "actions", "sync_every")
"""Keys of ``[connectors.<name>]`` the core reads; everything else belongs to the type."""

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
    token_key: dict[str, str] | None = Field(
        default=None,
        description="The Fernet key under which rotating OAuth tokens are kept in the store, "
        "for every process that shares it, instead of in this machine's keyring: "
        '{ env = "VAR" } or { file = "path" } (relative to connectors.toml, readable by its '
        "owner only). `debsync auth --new-key` prints one.",
    )

    @field_validator("token_key")
    @classmethod
    def _token_key(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and (len(value) != 1 or next(iter(value)) not in ("env", "file")):
            raise ValueError('must be { env = "VAR" } or { file = "path" }')
        return value


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


class LawSettings(BaseModel):
    """``[law]``: local additions to the shipped legal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interest_rates: Path | None = Field(
        default=None,
        description="A CSV of statutory interest rates that extends or overrides the shipped "
        "table (same format; see docs/configuration.md). Relative to connectors.toml.",
    )


class OutboxSettings(BaseModel):
    """``[outbox]``: how planned actions are carried out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: Path | None = Field(
        default=None,
        description="A directory of your own templates (<channel>/<step>.<language>.j2), "
        "searched before the shipped ones. Relative to connectors.toml.",
    )
    lease_seconds: int = Field(
        default=300,
        ge=5,
        description="How long a worker holds an action it is sending; a worker that dies "
        "leaves its action in doubt once this has passed.",
    )
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Actions per claim.")
    max_attempts: int = Field(
        default=8, ge=1, description="Failed sends before an action is marked dead."
    )
    retry_initial_seconds: int = Field(
        default=60, ge=1, description="First wait after a failed send; doubles each time."
    )
    retry_max_seconds: int = Field(
        default=6 * 3600, ge=1, description="Longest wait between two attempts."
    )


class PrivacySettings(BaseModel):
    """``[privacy]``: how long debsync keeps a debtor's personal data (``debsync purge``).

    The books' fiscal seven years are the bookkeeping program's duty, not this copy's.
    The default retention, 400 days after the debtor's last invoice closed, outlasts the
    13 months in which a SEPA direct debit can be reversed (reopening the invoice) and the
    usual time for a late dispute of the last reminder; the dossier's facts outlive it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purge: bool = Field(
        default=True,
        description="false: debsync purge refuses and personal data is kept until you "
        "delete it yourself.",
    )
    retention_days: int = Field(
        default=400,
        ge=1,
        le=3650,
        description="Days after a debtor's last invoice closed (nothing open, nothing in "
        "flight, no pause) before its personal data is pseudonymised.",
    )
    delete_files: bool = Field(
        default=True,
        description="Also delete the files debsync wrote for a purged debtor: the .eml "
        "files of the file action and the letter PDFs in the print folder.",
    )


@dataclass(frozen=True)
class ConnectorInstance:
    """A configured ``[connectors.<name>]`` table."""

    name: str
    type_name: str
    cls: type[Connector[Any]]
    settings: ConnectorSettings
    policy: str = DEFAULT_POLICY
    debtor_policies: dict[str, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    """Channel → ``[actions]`` instance, where more than one instance serves a channel."""
    sync_every: timedelta | None = None
    """This instance's own interval; None: ``[daemon] sync_every``."""


@dataclass(frozen=True)
class ActionInstance:
    """A configured ``[actions.<name>]`` table."""

    name: str
    type_name: str
    cls: type[Action[Any]]
    settings: ActionSettings

    @property
    def channel(self) -> str:
        return self.cls.channel


@dataclass(frozen=True)
class Config:
    path: Path
    store_url: str
    creditor: CreditorSettings | None = None
    law: LawSettings = field(default_factory=LawSettings)
    policies: dict[str, Policy] = field(default_factory=lambda: {DEFAULT_POLICY: default_policy()})
    connectors: dict[str, ConnectorInstance] = field(default_factory=dict)
    actions: dict[str, ActionInstance] = field(default_factory=dict)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    web: WebSettings = field(default_factory=WebSettings)
    token_key: dict[str, str] | None = None
    """``[store] token_key``, unresolved (a ``file`` made absolute): read by
    :mod:`debsync.tokens` only where tokens are kept, so a missing key stops only those."""

    @property
    def directory(self) -> Path:
        return self.path.parent

    def action_for(self, instance: str, channel: str) -> ActionInstance | None:
        """The ``[actions]`` instance that carries ``channel`` for a connector instance: the
        connector's own choice, else the only instance serving that channel."""
        chosen = self.connectors[instance].actions.get(channel)
        if chosen is not None:
            return self.actions[chosen]
        serving = [a for a in self.actions.values() if a.channel == channel]
        return serving[0] if len(serving) == 1 else None

    def routes(self) -> dict[tuple[str, str], ActionInstance]:
        """Every (connector instance, channel) that some action carries."""
        found = {}
        for name in self.connectors:
            for channel in {a.channel for a in self.actions.values()}:
                action = self.action_for(name, channel)
                if action is not None:
                    found[(name, channel)] = action
        return found

    def sync_every(self, instance: str) -> timedelta:
        return self.connectors[instance].sync_every or self.daemon.sync_every

    def policy_for(self, instance: str, debtor_id: str) -> Policy:
        connector = self.connectors[instance]
        return self.policies[connector.debtor_policies.get(debtor_id, connector.policy)]


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
    law = _validate(LawSettings, raw.get("law", {}), ("law",), problems)
    if law is not None and law.interest_rates is not None:
        law = LawSettings(interest_rates=path.parent / law.interest_rates)
    outbox = _validate(OutboxSettings, raw.get("outbox", {}), ("outbox",), problems)
    if outbox is not None and outbox.templates is not None:
        templates = path.parent / outbox.templates
        outbox = outbox.model_copy(update={"templates": templates})
        if not templates.is_dir():
            problems.add(("outbox", "templates"), f"{templates} is not a directory")
    privacy = _validate(PrivacySettings, raw.get("privacy", {}), ("privacy",), problems)
    daemon = _validate(DaemonSettings, raw.get("daemon", {}), ("daemon",), problems)
    http = _validate(HttpSettings, raw.get("http", {}), ("http",), problems)
    web = _validate(WebSettings, raw.get("web", {}), ("web",), problems)
    policies = _policies(raw.get("policies", {}), problems)
    connectors = {
        name: ConnectorInstance(name, type_name, cls, settings, **core)
        for name, type_name, cls, settings, core in _instances(
            raw, "connectors", plugins.connector_types(), problems
        )
    }
    for name, instance in connectors.items():
        wanted: list[tuple[tuple[str, ...], str]] = [((name, "policy"), instance.policy)]
        wanted += [((name, "debtor_policies", d), p) for d, p in instance.debtor_policies.items()]
        for key_path, policy_name in wanted:
            if policy_name not in policies:
                problems.add(
                    ("connectors", *key_path),
                    f"unknown policy {policy_name!r}; known: {_names(policies)}",
                )
    actions = {
        name: ActionInstance(name, type_name, cls, settings)
        for name, type_name, cls, settings, _ in _instances(
            raw, "actions", plugins.action_types(), problems
        )
    }
    _check_routes(connectors, actions, problems)
    _check_templates(connectors, actions, policies, outbox, problems)
    if actions and creditor is None and "creditor" not in raw:
        problems.add(("creditor",), "missing: messages to debtors need the creditor's name")
    if (
        creditor is not None
        and creditor.address is None
        and any(a.channel == "letter" for a in actions.values())
    ):
        problems.add(
            ("creditor", "address"),
            "missing: letters carry the creditor's address in the letterhead and the "
            "return line of the window envelope",
        )
    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        path=path,
        store_url=_store_url(store.url if store else None, path.parent),
        creditor=creditor,
        law=law or LawSettings(),
        policies=policies,
        connectors=connectors,
        actions=actions,
        outbox=outbox or OutboxSettings(),
        privacy=privacy or PrivacySettings(),
        daemon=daemon or DaemonSettings(),
        http=http or HttpSettings(),
        web=web or WebSettings(),
        token_key=_token_key(store.token_key if store else None, path.parent),
    )


def _token_key(reference: dict[str, str] | None, directory: Path) -> dict[str, str] | None:
    if reference is not None and "file" in reference:
        return {"file": str(directory / reference["file"])}
    return reference


def _check_templates(
    connectors: Mapping[str, ConnectorInstance],
    actions: Mapping[str, ActionInstance],
    policies: Mapping[str, Policy],
    outbox: OutboxSettings | None,
    problems: _Problems,
) -> None:
    """Every step a used policy sends on a templated channel has its template, in both
    languages: found now, not by the first debtor who would have received it."""
    templated = {a.channel for a in actions.values() if a.cls.uses_templates}
    if not templated:
        return
    templates = Templates(outbox.templates if outbox else None)
    used = {c.policy for c in connectors.values()}
    used |= {p for c in connectors.values() for p in c.debtor_policies.values()}
    for name in sorted(used & policies.keys()):
        for index, step in enumerate(policies[name].steps):
            for channel in sorted(templated & set(step.channels)):
                missing = templates.missing(channel, [step.template_name])
                if missing:
                    problems.add(
                        ("policies", name, "steps", index, "template"),
                        f"step {step.name!r} sends on {channel} but there is no "
                        f"{' or '.join(missing)}; set template to a shipped one (e.g. "
                        '"reminder") or add the file to [outbox] templates',
                    )


def _check_routes(
    connectors: Mapping[str, ConnectorInstance],
    actions: Mapping[str, ActionInstance],
    problems: _Problems,
) -> None:
    """Each connector's channel choices name a fitting action; no channel is ambiguous."""
    by_channel: dict[str, list[str]] = {}
    for name, action in actions.items():
        by_channel.setdefault(action.channel, []).append(name)
    for name, connector in connectors.items():
        for channel, chosen in connector.actions.items():
            where = ("connectors", name, "actions", channel)
            if chosen not in actions:
                problems.add(where, f"unknown action instance {chosen!r}; known: {_names(actions)}")
            elif actions[chosen].channel != channel:
                problems.add(
                    where, f"action {chosen!r} carries channel {actions[chosen].channel!r}"
                )
        for channel, names in by_channel.items():
            if len(names) > 1 and channel not in connector.actions:
                problems.add(
                    ("connectors", name, "actions"),
                    f"several action instances carry channel {channel!r} ({', '.join(names)}); "
                    f'choose one: actions = {{ {channel} = "{names[0]}" }}',
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


def _policies(tables: object, problems: _Problems) -> dict[str, Policy]:
    policies = {DEFAULT_POLICY: default_policy()}
    if not isinstance(tables, Mapping):
        problems.add(("policies",), "must be a table of named policies")
        return policies
    for name, table in tables.items():
        where: tuple[str | int, ...] = ("policies", name)
        if not isinstance(table, Mapping):
            problems.add(where, "must be a table")
            continue
        policy = _validate(Policy, {**table, "name": name}, where, problems)
        if policy is not None:
            policies[name] = policy
    return policies


def _instances(
    raw: Mapping[str, Any], section: str, known: Mapping[str, TypeT], problems: _Problems
) -> list[tuple[str, str, TypeT, Any, dict[str, Any]]]:
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
        core_keys = _CORE_CONNECTOR_KEYS if section == "connectors" else ("type",)
        core = {k: table[k] for k in core_keys[1:] if k in table}
        if not _valid_core(core, where, problems):
            continue
        data = _resolve_secrets(
            {k: v for k, v in table.items() if k not in core_keys}, where, problems
        )
        settings = _validate(cls.Settings, data, where, problems)  # type: ignore[attr-defined]
        if settings is not None:
            found.append((name, type_name, cls, settings, core))
    return found


def _valid_core(core: dict[str, Any], where: tuple[str | int, ...], problems: _Problems) -> bool:
    ok = True
    if "policy" in core and not isinstance(core["policy"], str):
        problems.add((*where, "policy"), "must be a policy name")
        ok = False
    for key, what in (
        ("debtor_policies", "debtor ids to policy names"),
        ("actions", "channels to action instances"),
    ):
        mapping = core.get(key, {})
        if not isinstance(mapping, Mapping) or not all(
            isinstance(v, str) for v in mapping.values()
        ):
            problems.add((*where, key), f"must map {what}")
            ok = False
    if "sync_every" in core:
        try:
            core["sync_every"] = parse_duration(core["sync_every"])
        except ValueError as exc:
            problems.add((*where, "sync_every"), str(exc))
            ok = False
    return ok


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


def missing_files(config: Config) -> list[ConfigProblem]:
    """The files and folders the configuration names that are not there, each with its key:
    ``config check`` reports them (a sync would fail on them; loading does not, since an
    export may appear later). A connector's or action's path setting must exist, except an
    action's output folder (a ``directory`` key), which must only be creatable."""
    found: list[ConfigProblem] = []

    def check(key_path: tuple[str | int, ...], value: Path, *, output: bool = False) -> None:
        path = value.expanduser()
        path = path if path.is_absolute() else config.directory / path
        if output:
            if path.exists() and not path.is_dir():
                found.append(ConfigProblem(config.path, key_path, f"{path} is not a folder"))
            elif not path.exists() and not _creatable(path):
                found.append(ConfigProblem(config.path, key_path, f"{path} cannot be created"))
        elif not path.exists():
            found.append(ConfigProblem(config.path, key_path, f"{path} does not exist"))

    if config.law.interest_rates is not None:
        check(("law", "interest_rates"), config.law.interest_rates)
    if config.outbox.templates is not None:
        check(("outbox", "templates"), config.outbox.templates)
    for section, instances in (("connectors", config.connectors), ("actions", config.actions)):
        for name, instance in instances.items():
            for key, value in instance.settings:
                if isinstance(value, Path):
                    output = section == "actions" and "directory" in key
                    check((section, name, key), value, output=output)
    return found


def _creatable(path: Path) -> bool:
    """Whether the nearest existing ancestor of ``path`` is a folder this process may write."""
    for parent in path.parents:
        if parent.exists():
            return parent.is_dir() and os.access(parent, os.W_OK)
    return False
