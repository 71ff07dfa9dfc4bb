"""What providers say after an action was sent: SMS delivery reports, agency case events.

Reports arrive by callback (``debsync serve``: ``POST /inbound/<action instance>``, or
``POST /inbound/<action instance>/<secret>`` for a provider that does not sign its callbacks)
or by polling (``debsync run`` asks each action with a ``poll_window_days`` about what it sent
recently). Providers report at least once and in any order, so each report is recorded once,
by its ``(action instance, event id)`` in ``received_events``, and filed in the dossier of the
action's debtor as an event ``<channel>.<status>`` (``sms.delivered``,
``agency.payment_received``). A report is matched only to actions its own instance sent: the
keys it may echo are visible to debtors (in every ``Message-ID``), so a key alone proves
nothing. A final report ends polling for that action.

The checks on a callback (:func:`callback_target`, :func:`body_length`,
:func:`handle_callback`) are plain functions, so another HTTP server can reuse them.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
READ_TIMEOUT_SECONDS = 10.0
"""How long one read from (or write to) a client may block."""
REQUEST_DEADLINE_SECONDS = 30.0
"""How long a client may take to send its whole request, however slowly it trickles."""
MAX_CONNECTIONS = 16
"""Requests handled at once; one more is answered 503 and closed."""

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


# -- the HTTP endpoint --------------------------------------------------------------------------

_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
)


class InboundServer(ThreadingHTTPServer):
    """``POST /inbound/<action instance>[/<secret>]`` for providers' callbacks,
    ``GET /healthz``. One request per connection, at most ``max_connections`` at once, each
    with read timeouts and a deadline.

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
        *,
        max_connections: int = MAX_CONNECTIONS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        deadline: float = REQUEST_DEADLINE_SECONDS,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.actions = actions
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_body = max_body
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per request while a slot is free; else 503 at once, from this thread."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (the deadline passed, the client left): no traceback,
        which could quote the request."""
        log.info("connection from %s ended with an error", client_address[0])


class _Handler(BaseHTTPRequestHandler):
    server: InboundServer
    server_version = "debsync"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)
        # a client trickling a byte per read_timeout is cut off at the deadline
        self._deadline = threading.Timer(self.server.deadline, self._expire)
        self._deadline.daemon = True
        self._deadline.start()

    def _expire(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._deadline.cancel()
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(HTTPStatus.OK, "ok")
        else:
            self._answer(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        try:
            name, action = callback_target(self.path, self.server.actions)
            length = body_length(
                self.headers.get("Content-Length"),
                self.headers.get("Transfer-Encoding"),
                self.server.max_body,
            )
        except CallbackRefused as refused:
            self._answer(refused.status, refused.text)
            return
        body = self.rfile.read(length)
        self._deadline.cancel()  # the whole request is in: what is left is ours to do
        if len(body) < length:
            self._answer(HTTPStatus.BAD_REQUEST, "incomplete body")
            return
        request = InboundRequest(
            method="POST",
            url=self.server.public_url + self.path,
            headers=dict(self.headers.items()),
            body=body,
        )
        status, text = handle_callback(
            self.server.store, name, action, request, self.server.clock()
        )
        self._answer(status, text)

    def _answer(self, status: HTTPStatus, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        command = getattr(self, "command", None) or "-"
        log.info("%s %s %s", command, loggable_path(getattr(self, "path", "")), code)

    def log_error(self, format: str, *args: Any) -> None:
        """Malformed requests and timeouts, without the request's text."""
        log.info("request from %s refused or timed out", self.client_address[0])
