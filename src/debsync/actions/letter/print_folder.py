"""``type = "letter"``: each letter as a PDF in a print folder, for a person to print and post.

The letter waits there until someone posts it and records the posting date with ``debsync
letters posted``: the veertiendagenbrief's term counts from that date, not from the file.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from debsync.actions.base import (
    ActionSettings,
    ActionUnavailableError,
    Payload,
    PermanentActionError,
    Receipt,
)
from debsync.actions.files import write_atomically
from debsync.actions.letter.action import LetterAction

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


class PrintLetterSettings(ActionSettings):
    transport: Literal["print"] = Field(
        default="print",
        description=(
            '"print": write each letter as a PDF into `directory` for a person to print and '
            "post. Hybrid-mail providers are action types of their own built on LetterAction."
        ),
    )
    directory: Path = Field(
        default=Path("letters"),
        description=(
            "Print folder, relative to the directory of connectors.toml unless absolute; "
            "created if missing. Each letter is <action id>.pdf."
        ),
    )


class PrintLetterAction(LetterAction[PrintLetterSettings]):
    """The built-in transport: a PDF in the print folder, posted later by a person."""

    type_name: ClassVar[str] = "letter"
    Settings: ClassVar[type[ActionSettings]] = PrintLetterSettings
    idempotent: ClassVar[bool] = True  # rewriting the file cannot reach the debtor twice

    @property
    def directory(self) -> Path:
        directory = self.settings.directory.expanduser()
        return directory if directory.is_absolute() else self.env.config_dir / directory

    async def deliver(self, pdf: bytes, payload: Payload, key: str) -> Receipt:
        if not _SAFE_NAME.fullmatch(key):
            raise PermanentActionError(f"action id {key!r} is not usable as a file name")
        name = f"{key}.pdf"
        try:
            path = await asyncio.to_thread(write_atomically, self.directory / name, pdf, mode=0o666)
        except OSError as exc:
            raise ActionUnavailableError(
                f"print folder {self.directory} cannot be written: {exc.strerror or exc}"
            ) from None
        self.env.logger.info("letter %s is in the print folder as %s", key, name)
        return Receipt(provider_id=name, details={"path": str(path)}, dispatched=False)
