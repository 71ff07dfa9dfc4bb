"""connectors.toml: per-type validation, secret references, located errors reported at once."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring

from debsync.config import load_config
from debsync.errors import ConfigError
from debsync.plugins import Plugins

from fakes import FakePlugin


@pytest.fixture
def plugins() -> Plugins:
    return Plugins(entry_points=False, extra=[("fake", FakePlugin())])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, plugins: Plugins) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins)
    return [str(p) for p in caught.value.problems]


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    yield
    keyring.set_keyring(previous)


def test_valid_config_loads_with_defaults(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
        [creditor]
        name = "Voorbeeld B.V."
        iban = "NL91 ABNA 0417 1643 00"
        phone = "020 123 4567"

        [connectors.books]
        type = "fake"
        label = "main ledger"
        """,
    )
    config = load_config(path, plugins)
    assert config.store_url == f"sqlite:///{tmp_path / 'var' / 'debsync.db'}"
    assert config.creditor is not None and config.creditor.iban == "NL91ABNA0417164300"
    assert config.creditor.phone == "+31201234567"
    books = config.connectors["books"]
    assert books.type_name == "fake" and books.settings.label == "main ledger"  # type: ignore[attr-defined]


def test_relative_sqlite_url_resolves_against_the_config_folder(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///state/books.db"\n')
    assert load_config(path, plugins).store_url == f"sqlite:///{tmp_path / 'state' / 'books.db'}"
    monkeypatch.setenv("DEBSYNC_DATABASE_URL", "postgresql://debsync@db/debsync")
    assert load_config(path, plugins).store_url == "postgresql://debsync@db/debsync"


def test_every_problem_is_reported_at_once_with_file_table_and_key(
    tmp_path: Path, plugins: Plugins
) -> None:
    path = write(
        tmp_path,
        """
        [creditor]
        name = "Voorbeeld B.V."
        iban = "NL00 ABNA 0000 0000 00"

        [connectors.books]
        type = "fake"
        lable = "typo"
        page_size = 0

        [connectors.other]
        type = "moneybrid"

        [polices.default]
        steps = []
        """,
    )
    found = problems(path, plugins)
    assert f"{path}: [creditor.iban]: Value error, IBAN check digits do not match" in found
    assert f"{path}: [connectors.books.lable]: unknown key" in found
    assert any(p.startswith(f"{path}: [connectors.books.page_size]: ") for p in found)
    unknown = f"{path}: [connectors.other.type]: unknown type 'moneybrid'; known: "
    assert any(
        p.startswith(unknown) and {"csv", "fake"} <= set(p.removeprefix(unknown).split(", "))
        for p in found
    )  # the built-ins grow; the list names every known type
    assert any(p.startswith(f"{path}: [polices]: unknown table") for p in found)
    assert len(found) == 5


def test_missing_type_lists_the_known_types(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "[connectors.books]\nlabel = 'x'\n")
    (message,) = problems(path, plugins)
    prefix = f"{path}: [connectors.books.type]: missing; known types: "
    assert message.startswith(prefix)
    known = message.removeprefix(prefix).split(", ")
    assert {"csv", "fake"} <= set(known) and known == sorted(known)  # built-ins grow


def test_invalid_toml_says_where(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "[connectors.books]\ntype = \n")
    (message,) = problems(path, plugins)
    assert message.startswith(f"{path}: [(top level)]: invalid TOML") and "line 2" in message


def test_missing_file_is_a_config_error(tmp_path: Path, plugins: Plugins) -> None:
    assert problems(tmp_path / "absent.toml", plugins) == [
        f"{tmp_path / 'absent.toml'}: [(top level)]: file not found"
    ]


def test_env_secret_is_resolved_and_never_kept_in_the_toml(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOKS_TOKEN", "s3cr3t")
    path = write(tmp_path, '[connectors.books]\ntype = "fake"\ntoken = { env = "BOOKS_TOKEN" }\n')
    settings = load_config(path, plugins).connectors["books"].settings
    assert settings.token.get_secret_value() == "s3cr3t"  # type: ignore[attr-defined]
    assert "s3cr3t" not in repr(settings)


def test_missing_env_secret_is_an_error_at_its_key(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOOKS_TOKEN", raising=False)
    path = write(tmp_path, '[connectors.books]\ntype = "fake"\ntoken = { env = "BOOKS_TOKEN" }\n')
    assert problems(path, plugins) == [
        f"{path}: [connectors.books.token]: environment variable BOOKS_TOKEN is not set or empty"
    ]


def test_keyring_secret_is_resolved(
    tmp_path: Path, plugins: Plugins, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.set_password("debsync", "books", "from-keyring")
    path = write(
        tmp_path, '[connectors.books]\ntype = "fake"\ntoken = { keyring = "debsync/books" }\n'
    )
    settings = load_config(path, plugins).connectors["books"].settings
    assert settings.token.get_secret_value() == "from-keyring"  # type: ignore[attr-defined]


def test_keyring_secret_missing_from_the_keyring(
    tmp_path: Path, plugins: Plugins, memory_keyring: MemoryKeyring
) -> None:
    path = write(
        tmp_path, '[connectors.books]\ntype = "fake"\ntoken = { keyring = "debsync/books" }\n'
    )
    (message,) = problems(path, plugins)
    assert "keyring set debsync books" in message


def test_keyring_reference_without_a_keyring_says_what_works(
    tmp_path: Path, plugins: Plugins, no_keyring: None
) -> None:
    path = write(
        tmp_path, '[connectors.books]\ntype = "fake"\ntoken = { keyring = "debsync/books" }\n'
    )
    (message,) = problems(path, plugins)
    assert message.startswith(f"{path}: [connectors.books.token]: keyring reference")
    assert "headless" in message and '{ env = "VAR" }' in message


def test_policies_are_validated_and_selected_per_instance(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
        [policies.gentle]
        min_open_amount = "25.00"

        [[policies.gentle.steps]]
        name = "reminder"
        channels = ["email"]
        days_after_due = 3

        [connectors.books]
        type = "fake"
        policy = "gentle"
        debtor_policies = { "D1" = "default" }
        """,
    )
    config = load_config(path, plugins)
    assert sorted(config.policies) == ["default", "gentle"]
    assert config.policies["gentle"].steps[0].days_after_due == 3
    books = config.connectors["books"]
    assert books.policy == "gentle" and books.debtor_policies == {"D1": "default"}


def test_policy_errors_name_the_step_and_key(tmp_path: Path, plugins: Plugins) -> None:
    path = write(
        tmp_path,
        """
        [[policies.gentle.steps]]
        name = "reminder"
        channels = ["email", "fax"]
        days_after_due = 3
        dayz_after_previous = 4

        [connectors.books]
        type = "fake"
        policy = "strict"
        """,
    )
    found = problems(path, plugins)
    assert any(p.startswith(f"{path}: [policies.gentle.steps.0.channels]: ") for p in found)
    assert f"{path}: [policies.gentle.steps.0.dayz_after_previous]: unknown key" in found
    assert f"{path}: [connectors.books.policy]: unknown policy 'strict'; known: default" in found
