"""Durable file output for actions that hand their result to a folder (``.eml`` files, letters
for the print queue)."""

from __future__ import annotations

import os
import uuid
from contextlib import suppress
from pathlib import Path


def write_atomically(target: Path, data: bytes, *, mode: int) -> Path:
    """Write ``target`` so that a reader (a person, a mail program, a print queue) never sees
    half a file, and the file survives a crash once this returns.

    :param mode: permission bits of the new file, less the umask (``0o600`` keeps personal
        data to the daemon's user; ``0o666`` is an ordinary file).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(partial, flags, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, target)
    except BaseException:
        with suppress(FileNotFoundError):
            partial.unlink()
        raise
    if os.name == "posix":  # make the rename itself durable
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return target
