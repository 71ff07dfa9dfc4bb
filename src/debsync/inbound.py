"""What providers say after an action was sent: SMS delivery reports, agency case events.

Reports arrive by callback (the HTTP server of ``debsync run`` and ``debsync serve``: ``POST
/inbound/<action instance>``, or ``POST /inbound/<action instance>/<secret>`` for a provider
that does not sign its callbacks) or by polling (``debsync run`` asks each action with a
``poll_window_days`` about what it sent recently). Providers report at least once and in any
order, so each report is recorded once, by its ``(action instance, event id)`` in
``received_events``, and filed in the dossier of the action's debtor as an event
``<channel>.<status>`` (``sms.delivered``, ``agency.payment_received``). A report is matched
only to actions its own instance sent: the keys it may echo are visible to debtors (in every
``Message-ID``), so a key alone proves nothing. A final report ends polling for that action.

The checks on a callback (:func:`callback_target`, :func:`body_length`,
:func:`handle_callback`) are plain functions; :mod:`debsync.server` mounts them.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from debsync.actions.base import (
    Action,
    ActionError,
    InboundError,
    InboundRequest,
    InboundSignatureError,
    SentAction,
    StatusReport,
)
from debsync.clock import Clock, system_clock
from debsync.outbox.table import event_row
from debsync.store import Store
from debsync.store.schema import ActionState, events, outbox, received_events

log = logging.getLogger("debsync.inbound")


@dataclass
class Recorded:
    new: int = 0
    duplicates: int = 0
    unmatched: int = 0

    def add(self, other: Recorded) -> None:
        self.new += other.new
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched


def _insert(conn: Connection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(received_events)


def _action_row(
    conn: Connection, action: str, channel: str, report: StatusReport
) -> Row[Any] | None:
    """The outbox row a report is about, among the actions ``action`` carried on its
    ``channel``: by the key the provider echoed, else by the provider's id."""
    mine = sa.select(outbox).where(outbox.c.action == action, outbox.c.channel == channel)
    if report.key:
        found = conn.execute(mine.where(outbox.c.key == report.key)).first()
        if found is not None:
            return found
    if report.provider_id:
        return conn.execute(mine.where(outbox.c.provider_id == report.provider_id)).first()
    return None


def record(
    store: Store, action: str, reports: Sequence[StatusReport], now: datetime, *, channel: str
) -> Recorded:
    """File reports from the ``[actions]`` instance ``action`` (which carries ``channel``) in
    the dossier, each once; a report about another instance's action matches nothing."""
    result = Recorded()
    with store.engine.begin() as conn:
        for report in reports:
            row = _action_row(conn, action, channel, report)
            inserted = conn.execute(
                _insert(conn)
                .values(
                    source=action,
                    event_id=report.event_id[:255],
                    outbox_key=row.key if row is not None else None,
                    status=report.status[:64],
                    final=report.final,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["source", "event_id"])
                .returning(received_events.c.id)
            ).first()
            if inserted is None:
                result.duplicates += 1
                continue
            if row is None:
                result.unmatched += 1
                log.warning("%s: report %s matches no action", action, report.event_id)
                continue
            conn.execute(
                sa.insert(events).values(
                    **event_row(
                        row,
                        f"{row.channel}.{report.status}",
                        now,
                        event_id=report.event_id,
                        reported_at=report.at.isoformat(),
                        provider_id=report.provider_id,
                        final=report.final,
                        **dict(report.details),
                    )
                )
            )
            result.new += 1
    return result


def awaiting_reports(
    store: Store, action: str, window_days: int, now: datetime
) -> list[SentAction]:
    """Actions ``action`` sent within the window that have no final report yet."""
    finished = sa.select(received_events.c.outbox_key).where(
        received_events.c.source == action,
        received_events.c.final.is_(True),
        received_events.c.outbox_key.is_not(None),
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.key, outbox.c.provider_id, outbox.c.updated_at).where(
                outbox.c.action == action,
                outbox.c.state == ActionState.SENT,
                outbox.c.updated_at >= now - timedelta(days=window_days),
                outbox.c.key.not_in(finished),
            )
        ).all()
    return [SentAction(key, provider_id, sent_at) for key, provider_id, sent_at in rows]


async def poll(
    store: Store, actions: dict[str, Action[Any]], clock: Clock = system_clock
) -> Recorded:
    """Ask every action that can be polled about what it sent recently; a provider that
    cannot answer now is logged and asked again next time."""
    result = Recorded()
    for name, action in actions.items():
        if action.poll_window_days <= 0:
            continue
        sent = awaiting_reports(store, name, action.poll_window_days, clock())
        if not sent:
            continue
        try:
            async with action:
                reports = await action.poll(sent)
        except ActionError as exc:
            log.warning("polling %s failed: %s", name, exc)
            continue
        result.add(record(store, name, reports, clock(), channel=action.channel))
    return result


# -- checking a callback -----------------------------------------------------------------------

MAX_BODY_BYTES = 256 * 1024
"""A delivery report or case event is a few hundred bytes; anything far larger is refused
(413) before a byte of it is read."""
MAX_REPORTS = 100
"""Reports one callback may carry; more are refused (413) and nothing is recorded."""

_DIGITS = re.compile(r"[0-9]+")


class CallbackRefused(Exception):
    """A callback answered with ``status`` and a short ``text`` (no data from the request)
    and not recorded."""

    def __init__(self, status: HTTPStatus, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@runtime_checkable
class UnsignedCallbacks(Protocol):
    """An action whose provider does not sign its callbacks (CM.com): the URL the provider
    calls carries a secret of the instance instead, or ``None`` where the provider signs."""

    def callback_secret(self) -> str | None: ...


def callback_secret(action: Action[Any]) -> str | None:
    """The URL secret of an instance, if its provider does not sign its callbacks."""
    return action.callback_secret() if isinstance(action, UnsignedCallbacks) else None


def callback_path(name: str, action: Action[Any]) -> str:
    """The path a provider calls for the instance ``name``; give it to the provider only."""
    secret = callback_secret(action)
    return f"/inbound/{name}/{secret}" if secret else f"/inbound/{name}"


def loggable_path(path: str) -> str:
    """A request path for the log: the URL secret and the query left out."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[0] == "inbound" and len(parts) > 2:
        parts = [*parts[:2], "…"]
    return ("/" + "/".join(parts))[:80]


def callback_target(path: str, actions: Mapping[str, Action[Any]]) -> tuple[str, Action[Any]]:
    """The instance a callback path names, with its URL secret checked. An unknown instance,
    a missing or wrong secret and a secret where none belongs all answer the same 404.

    :raises CallbackRefused: 404.
    """
    parts = path.split("?", 1)[0].strip("/").split("/")
    action = actions.get(parts[1]) if parts[0] == "inbound" and len(parts) in (2, 3) else None
    if action is not None:
        expected = callback_secret(action)
        given = parts[2] if len(parts) == 3 else None
        if expected is None and given is None:
            return parts[1], action
        if (
            expected is not None
            and given is not None
            and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
        ):
            return parts[1], action
    raise CallbackRefused(HTTPStatus.NOT_FOUND, "no such action")


def body_length(
    content_length: str | None, transfer_encoding: str | None, limit: int = MAX_BODY_BYTES
) -> int:
    """The body's length, checked before any of it is read: a callback says how long it is
    (no chunked bodies) and stays within ``limit``.

    :raises CallbackRefused: 411 without a length, 400 for a malformed one, 413 above ``limit``.
    """
    if transfer_encoding is not None:
        raise CallbackRefused(HTTPStatus.LENGTH_REQUIRED, "send the body with Content-Length")
    if content_length is None:
        raise CallbackRefused(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
    text = content_length.strip()
    if not _DIGITS.fullmatch(text):
        raise CallbackRefused(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    if len(text.lstrip("0")) > len(str(limit)) or int(text) > limit:
        raise CallbackRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    return int(text)


def handle_callback(
    store: Store, name: str, action: Action[Any], request: InboundRequest, now: datetime
) -> tuple[HTTPStatus, str]:
    """Read a callback with its action and record what it reports: the answer to give.

    Whatever the action raises on a request it cannot read (a 5,000-digit timestamp, JSON
    nested too deep) refuses that request with 400; a store that fails answers 503, so the
    provider delivers again.
    """
    try:
        reports = action.receive(request)
    except InboundSignatureError as exc:
        log.warning("callback for %s refused: %s", name, exc)
        return HTTPStatus.UNAUTHORIZED, "signature refused"
    except InboundError as exc:
        log.warning("callback for %s not usable: %s", name, exc)
        return HTTPStatus.BAD_REQUEST, "not a report"
    except Exception as exc:  # an action's bug must not kill the request
        log.warning("callback for %s unreadable: %s", name, type(exc).__name__)
        return HTTPStatus.BAD_REQUEST, "not a report"
    if len(reports) > MAX_REPORTS:
        log.warning("callback for %s refused: %d reports in one request", name, len(reports))
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too many reports"
    try:
        recorded = record(store, name, reports, now, channel=action.channel)
    except Exception as exc:  # its text may quote the store's parameters
        log.error("callback for %s not recorded: %s", name, type(exc).__name__)
        return HTTPStatus.SERVICE_UNAVAILABLE, "try again later"
    return HTTPStatus.OK, f"recorded {recorded.new}"
