"""Resolving secret references from ``connectors.toml``: ``{ env = "VAR" }`` or
``{ keyring = "service/name" }``.

Secrets never live in the TOML, the store or the logs. A daemon usually runs headless, where the
OS keyring is absent and ``keyring`` falls back to its ``fail`` backend; a keyring reference is
then an error that says what works instead, never a silent empty value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from debsync.errors import SecretError

SECRET_KINDS = ("env", "keyring")

HEADLESS_ADVICE = (
    "no usable system keyring on this machine (usual on headless servers and CI). "
    'Alternatives: put the secret in an environment variable and write { env = "VAR" }; '
    "or install and configure a keyring backend for this user (for example the Secret Service "
    "on a desktop session, or the keyrings.alt package for an encrypted file) and select it "
    "with PYTHON_KEYRING_BACKEND."
)

NO_TOKEN_STORE = (
    "no place to keep its rotating OAuth tokens: this machine has no usable system keyring and "
    "[store] token_key is not set. Either configure a keyring backend for this user (see "
    'PYTHON_KEYRING_BACKEND), or set [store] token_key = { env = "DEBSYNC_TOKEN_KEY" } (or '
    '{ file = "token.key" }) to a key printed by `debsync auth --new-key`, which keeps the '
    "tokens in the store, encrypted"
)
"""Why a connector with rotating tokens cannot run, and the two ways out."""


def is_secret_reference(value: object) -> bool:
    """A one-key table naming a secret source, e.g. ``{ env = "MONEYBIRD_TOKEN" }``."""
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and next(iter(value)) in SECRET_KINDS
        and isinstance(next(iter(value.values())), str)
    )


def _usable(backend: KeyringBackend) -> bool:
    # The fail backend and a chainer without children both have priority <= 0.
    try:
        return float(backend.priority) > 0
    except Exception:
        return False


def keyring_available() -> bool:
    """Whether a real keyring backend is configured for this process."""
    return _usable(keyring.get_keyring())


def split_keyring_reference(reference: str) -> tuple[str, str]:
    service, sep, name = reference.partition("/")
    if not sep or not service or not name:
        raise SecretError(f"keyring reference {reference!r} must look like 'service/name'")
    return service, name


def read_secret_file(path: Path) -> str:
    """The secret kept in the file at ``path`` (surrounding whitespace stripped). A file that
    other users may read or write is refused: the secret would not be one."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise SecretError(
                f"{path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                f"make it the owner's only: chmod 600 {path}"
            )
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"{path} cannot be read: {exc.strerror}") from None
    if not secret:
        raise SecretError(f"{path} is empty")
    return secret


def resolve(reference: Mapping[str, str]) -> str:
    """The secret a reference points at; raises :class:`SecretError` saying why not."""
    ((kind, target),) = reference.items()
    if kind == "env":
        value = os.environ.get(target)
        if not value:
            raise SecretError(f"environment variable {target} is not set or empty")
        return value
    service, name = split_keyring_reference(target)
    if not keyring_available():
        raise SecretError(f"keyring reference {target!r} cannot be read: {HEADLESS_ADVICE}")
    try:
        secret = keyring.get_password(service, name)
    except keyring.errors.KeyringError as exc:
        raise SecretError(f"keyring lookup of {target!r} failed: {exc}") from None
    if not secret:
        raise SecretError(
            f"no secret stored in the keyring under service {service!r}, name {name!r} "
            f"(store it with: keyring set {service} {name})"
        )
    return secret
