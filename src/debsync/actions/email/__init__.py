"""E-mail: SMTP submission (``type = "email"``) and ``.eml`` files in a folder (``type = "file"``).

Both types send the same message (:mod:`~debsync.actions.email.message`): ``multipart/alternative``
text and HTML from the step template, with the invoice PDFs attached, built with the same code,
so a ``.eml`` file is byte for byte what SMTP would submit. How it leaves is the type:
:mod:`~debsync.actions.email.smtp` submits it to a mail server, :mod:`~debsync.actions.email.file`
writes it into a folder, the safe default of a fresh install.
"""

from __future__ import annotations

from debsync import hookimpl
from debsync.actions.email.file import FileAction, FileSettings
from debsync.actions.email.message import (
    THIS_MESSAGE,
    MailAddress,
    MessageAction,
    MessageSettings,
    ascii_address,
)
from debsync.actions.email.smtp import SmtpAction, SmtpSettings
from debsync.hookspecs import RegisterAction

__all__ = [
    "THIS_MESSAGE",
    "FileAction",
    "FileSettings",
    "MailAddress",
    "MessageAction",
    "MessageSettings",
    "SmtpAction",
    "SmtpSettings",
    "ascii_address",
    "debsync_register_actions",
]


@hookimpl
def debsync_register_actions(register: RegisterAction) -> None:
    register(SmtpAction)
    register(FileAction)
