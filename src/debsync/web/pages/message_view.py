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
from typing import Any

from debsync.actions.base import Payload
from debsync.actions.letter.pdf import build_pdf
from debsync.outbox.context import load_facts
from debsync.outbox.executor import Dispatcher, Ending
from debsync.outbox.preview import Preview, preview
from debsync.outbox.table import OutboxError, find
from debsync.store.schema import OPEN_STATES, PURGED_PAYLOAD

__all__ = ["Preview", "html_body", "letter_pdf", "payload", "preview"]


def payload(dispatcher: Dispatcher, key: str, today: date) -> Payload | None:
    """The payload the channel was handed (a sent action) or would be handed today; None
    when the action would not be sent or a purge removed it."""
    row = find(dispatcher.store, key)
    if row.payload == PURGED_PAYLOAD:
        return None
    if row.payload is not None and row.state not in OPEN_STATES:
        stored: dict[str, Any] = row.payload
        return stored
    configured = dispatcher.config.action_for(row.instance, row.channel)
    if configured is None:
        raise OutboxError(f"no [actions] instance carries channel {row.channel!r}")
    with dispatcher.store.engine.connect() as conn:
        facts = load_facts(conn, [row], dispatcher.config)
    composed = dispatcher.compose(dispatcher.action(configured), row, facts, today)
    return None if isinstance(composed, Ending) else composed.payload


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
