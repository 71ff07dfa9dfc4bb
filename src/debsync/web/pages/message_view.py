"""One action's message as the console shows it: exactly as it went out, or as it would go
out today.

The text and the reason an action would not be sent are ``outbox.preview.preview``'s, the
same as ``debsync preview``. An e-mail's HTML body and a letter's PDF come from the payload:
the stored one when the outbox kept what it handed to the channel, else the one the
dispatcher composes today; the PDF is built by the letter channel's own ``build_pdf``, so it
is the PDF a letter action sends.
"""

from __future__ import annotations

from datetime import date

from debsync.actions.base import Payload
from debsync.actions.letter.pdf import build_pdf
from debsync.outbox.executor import Dispatcher
from debsync.outbox.preview import Preview, preview
from debsync.outbox.table import find

__all__ = ["Preview", "html_body", "letter_pdf", "payload", "preview"]


def payload(dispatcher: Dispatcher, key: str, today: date) -> Payload | None:
    """The payload the channel was handed (a sent action) or would be handed today; None
    when the action would not be sent or a purge removed it."""
    return preview(dispatcher, key, today).payload


def html_body(dispatcher: Dispatcher, key: str, today: date) -> str | None:
    """An e-mail's HTML part, as the MIME message carries it."""
    found = payload(dispatcher, key, today)
    html = found.get("html") if found else None
    return html if isinstance(html, str) else None


def letter_pdf(dispatcher: Dispatcher, key: str, today: date) -> bytes | None:
    """A letter's PDF, laid out by the letter channel as it sends it."""
    row = find(dispatcher.store, key)
    if row.channel != "letter":
        return None
    found = payload(dispatcher, key, today)
    return build_pdf(found) if found else None
