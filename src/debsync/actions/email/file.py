"""``type = "file"``: each message as ``<key>.eml`` in a folder, sent by nobody.

The safe default of a fresh install: nothing reaches a debtor until an operator configures a
mail server. The bytes are those SMTP would submit (:meth:`MessageAction.compose`).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from debsync.actions.base import (
    ActionEnvironment,
    ActionSettings,
    ActionUnavailableError,
    Payload,
    Receipt,
)
from debsync.actions.email.message import MessageAction, MessageSettings
from debsync.actions.files import write_atomically


class FileSettings(MessageSettings):
    """``type = "file"``: one ``<key>.eml`` per message in a folder."""

    directory: Path = Field(
        description="Folder for the .eml files; relative to the folder of connectors.toml; "
        "created if missing."
    )


class FileAction(MessageAction[FileSettings]):
    """Writes ``<key>.eml`` into a folder, for another program or a person to send.
    Idempotent: writing the same key again replaces the file, it cannot reach a debtor twice."""

    type_name: ClassVar[str] = "file"
    Settings: ClassVar[type[ActionSettings]] = FileSettings
    idempotent: ClassVar[bool] = True

    def __init__(self, instance: str, settings: FileSettings, env: ActionEnvironment) -> None:
        super().__init__(instance, settings, env)
        directory = settings.directory
        self.directory = directory if directory.is_absolute() else env.config_dir / directory

    async def send(self, payload: Payload, idempotency_key: str) -> Receipt:
        content = await self.compose(payload, idempotency_key)
        path = self.directory / f"{idempotency_key}.eml"
        try:
            # Mode 0o600: the message holds personal data, for the daemon's user only.
            await asyncio.to_thread(write_atomically, path, content, mode=0o600)
        except OSError as exc:
            raise ActionUnavailableError(
                f"action {self.instance}: cannot write to {self.directory}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc
        self.env.logger.info("action %s: written to %s", idempotency_key, path)
        return Receipt(
            provider_id=path.name,
            details={"message_id": payload["message_id"], "path": str(path)},
            content_sha256=hashlib.sha256(content).hexdigest(),
        )
