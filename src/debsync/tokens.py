"""Where rotating OAuth tokens live: the connector's :class:`~debsync.connectors.base.TokenVault`.

An environment variable cannot hold a refresh token that changes on every refresh, so the
core keeps the tokens itself, in one of two vaults:

* :class:`DatabaseVault` when ``[store] token_key`` is set: a Fernet ciphertext of the JSON in
  the store's ``tokens`` table. Every process and machine that shares the store shares the
  tokens, which is what several workers on one PostgreSQL need, and it works headless.
* :class:`KeyringVault` otherwise, where this machine has a usable keyring: for one machine.

Either way the refresh is serialised across processes by a store lock (an advisory lock on
PostgreSQL, a lock file next to SQLite), so two processes never spend one refresh token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keyring
import keyring.errors
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import Engine

from debsync.connectors.base import TokenVault
from debsync.errors import FatalConnectorError, SecretError
from debsync.secrets import keyring_available, read_secret_file, resolve
from debsync.store import Store
from debsync.store.locks import store_lock
from debsync.store.schema import tokens as tokens_table

if TYPE_CHECKING:
    from debsync.config import Config

KEYRING_SERVICE = "debsync-tokens"


class TokenStoreError(FatalConnectorError):
    """The tokens cannot be read or written: a missing or wrong key, a keyring failure. It
    stops only the instance whose tokens they are."""


def new_key() -> str:
    """A fresh ``[store] token_key`` (``debsync auth --new-key``)."""
    return Fernet.generate_key().decode()


def read_token_key(reference: dict[str, str]) -> str:
    """The key ``[store] token_key`` names: ``{ env = "VAR" }`` or ``{ file = "path" }``."""
    try:
        if "file" in reference:
            return read_secret_file(Path(reference["file"]))
        return resolve(reference)
    except SecretError as exc:
        raise TokenStoreError(f"[store] token_key: {exc}") from None


def vault_for(config: Config, store: Store, instance: str) -> TokenVault | None:
    """The vault of ``instance``: the store when a token key is configured (an explicit
    choice, shared by every process of the store), else this machine's keyring, else none."""
    if config.token_key is not None:
        return DatabaseVault(store.engine, instance, partial(read_token_key, config.token_key))
    if keyring_available():
        return KeyringVault(store.engine, instance)
    return None


@contextlib.contextmanager
def _refresh_lock(engine: Engine, instance: str) -> Iterator[None]:
    with store_lock(engine, f"tokens-{instance}", wait=True):
        yield


class DatabaseVault:
    """The tokens of one instance in the store, encrypted with Fernet under the token key.

    :param key: reads the key when the vault is first used, so a missing key stops only the
        instances that keep tokens.
    """

    def __init__(self, engine: Engine, instance: str, key: Callable[[], str]) -> None:
        self.engine = engine
        self.instance = instance
        self._key = key
        self._fernet: Fernet | None = None
        self.generation = 0
        """The generation last read or written: bumped on every save."""

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _refresh_lock(self.engine, self.instance)

    def load(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tokens_table.c.ciphertext, tokens_table.c.generation).where(
                    tokens_table.c.instance == self.instance
                )
            ).first()
        if row is None:
            return None
        try:
            plain = self._cipher().decrypt(bytes(row.ciphertext))
        except InvalidToken:
            raise TokenStoreError(
                f"the tokens of {self.instance} cannot be decrypted with [store] token_key: "
                "it is not the key they were saved with. Set that key again, or re-authorise "
                f"with `debsync auth {self.instance}`"
            ) from None
        self.generation = int(row.generation)
        loaded: dict[str, Any] = json.loads(plain)
        return loaded

    def save(self, tokens: dict[str, Any]) -> None:
        """Encrypt and commit ``tokens``; on SQLite the commit is synced to disk
        (``synchronous=FULL`` for this write), not only to the WAL."""
        ciphertext = self._cipher().encrypt(json.dumps(tokens).encode())
        now = datetime.now(UTC)
        where = tokens_table.c.instance == self.instance
        with self.engine.connect() as conn, _synced(conn), conn.begin():
            generation = conn.execute(
                sa.select(tokens_table.c.generation).where(where)
            ).scalar_one_or_none()
            bumped = (generation or 0) + 1
            values = {"ciphertext": ciphertext, "generation": bumped, "updated_at": now}
            if generation is None:
                conn.execute(tokens_table.insert().values(instance=self.instance, **values))
            else:
                conn.execute(tokens_table.update().where(where).values(**values))
        self.generation = bumped

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            try:
                self._fernet = Fernet(self._key().encode())
            except ValueError:
                raise TokenStoreError(
                    "[store] token_key is not a Fernet key (32 url-safe base64-encoded "
                    "bytes); `debsync auth --new-key` prints one"
                ) from None
        return self._fernet


@contextlib.contextmanager
def _synced(conn: sa.Connection) -> Iterator[None]:
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA synchronous=FULL")
    conn.commit()  # ends SQLAlchemy's autobegun transaction; pysqlite began none for a PRAGMA
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        conn.commit()


class KeyringVault:
    """The tokens of one instance in this machine's keyring, as JSON. The lock is still the
    store's, since the processes sharing the keyring share the store too."""

    def __init__(self, engine: Engine, instance: str) -> None:
        self.engine = engine
        self.instance = instance
        url = engine.url.render_as_string(hide_password=True)
        store_id = hashlib.blake2b(url.encode(), digest_size=6).hexdigest()
        self.name = f"{instance}@{store_id}"
        """The keyring entry: the instance within this store, as two stores may share a
        machine and an instance name."""

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _refresh_lock(self.engine, self.instance)

    def load(self) -> dict[str, Any] | None:
        try:
            text = keyring.get_password(KEYRING_SERVICE, self.name)
        except keyring.errors.KeyringError as exc:
            raise TokenStoreError(f"the keyring cannot be read: {type(exc).__name__}") from None
        if text is None:
            return None
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def save(self, tokens: dict[str, Any]) -> None:
        try:
            keyring.set_password(KEYRING_SERVICE, self.name, json.dumps(tokens))
        except keyring.errors.KeyringError as exc:
            raise TokenStoreError(f"the keyring cannot be written: {type(exc).__name__}") from None
