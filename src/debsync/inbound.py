"""What providers say after an action was sent: SMS delivery reports, agency case events.

Reports arrive by callback (``debsync serve``: ``POST /inbound/<action instance>``) or by
polling (``debsync run`` asks each action with a ``poll_window_days`` about what it sent
recently). Providers report at least once and in any order, so each report is recorded once,
by its ``(action instance, event id)`` in ``received_events``, and filed in the dossier of the
action's debtor as an event ``<channel>.<status>`` (``sms.delivered``,
``agency.payment_received``). A final report ends polling for that action.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


def _action_row(conn: Connection, action: str, report: StatusReport) -> Row[Any] | None:
    """The outbox row a report is about: by the key the provider echoed, else by its id."""
    if report.key:
        found = conn.execute(sa.select(outbox).where(outbox.c.key == report.key)).first()
        if found is not None:
            return found
    if report.provider_id:
        return conn.execute(
            sa.select(outbox).where(
                outbox.c.action == action, outbox.c.provider_id == report.provider_id
            )
        ).first()
    return None


def record(store: Store, action: str, reports: Sequence[StatusReport], now: datetime) -> Recorded:
    """File reports from the ``[actions]`` instance ``action`` in the dossier, each once."""
    result = Recorded()
    with store.engine.begin() as conn:
        for report in reports:
            row = _action_row(conn, action, report)
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
        result.add(record(store, name, reports, clock()))
    return result


# -- the HTTP endpoint --------------------------------------------------------------------------


class InboundServer(ThreadingHTTPServer):
    """``POST /inbound/<action instance>`` for providers' callbacks, ``GET /healthz``.

    :param public_url: the base URL providers call (behind a reverse proxy, the URL they sign
        is not the one this server sees), e.g. ``https://debsync.example.nl``.
    """

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        actions: dict[str, Action[Any]],
        public_url: str,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.actions = actions
        self.public_url = public_url.rstrip("/")
        self.clock = clock


class _Handler(BaseHTTPRequestHandler):
    server: InboundServer
    server_version = "debsync"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(HTTPStatus.OK, "ok")
        else:
            self._answer(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        action = self.server.actions.get(parts[1]) if len(parts) == 2 else None
        if parts[0] != "inbound" or action is None:
            self._answer(HTTPStatus.NOT_FOUND, "no such action")
            return
        length = int(self.headers.get("Content-Length") or 0)
        request = InboundRequest(
            method="POST",
            url=self.server.public_url + self.path,
            headers=dict(self.headers.items()),
            body=self.rfile.read(length),
        )
        try:
            reports = action.receive(request)
        except InboundSignatureError as exc:
            log.warning("callback for %s refused: %s", parts[1], exc)
            self._answer(HTTPStatus.UNAUTHORIZED, "signature refused")
            return
        except InboundError as exc:
            log.warning("callback for %s not usable: %s", parts[1], exc)
            self._answer(HTTPStatus.BAD_REQUEST, "not a report")
            return
        recorded = record(self.server.store, parts[1], reports, self.server.clock())
        self._answer(HTTPStatus.OK, f"recorded {recorded.new}")

    def _answer(self, status: HTTPStatus, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.command, self.path.split("?", 1)[0])
