"""Status reports after sending: recorded once, filed in the dossier, polled until final, and
received over HTTP with signatures checked."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa

from debsync import inbound, outbox
from debsync.actions.base import (
    InboundError,
    InboundRequest,
    InboundSignatureError,
    SentAction,
    StatusReport,
)
from debsync.dossier import load_dossier
from debsync.server import ServerState, build_app
from debsync.store import Store
from debsync.store.schema import ActionState
from debsync.store.schema import outbox as outbox_table
from served import Running

from books import Book
from fakes import RecordingAction


class ReportingAction(RecordingAction):
    """A channel whose provider reports delivery: by callback (signed with a header) or when
    polled; polling answers from ``statuses``."""

    type_name: ClassVar[str] = "recording-reports"
    poll_window_days: ClassVar[int] = 2
    statuses: ClassVar[dict[str, str]] = {}
    polled: ClassVar[list[list[str]]] = []

    def receive(self, request: InboundRequest) -> list[StatusReport]:
        if request.header("X-Provider-Signature") != "valid":
            raise InboundSignatureError("bad signature")
        try:
            body = json.loads(request.body)
        except ValueError:
            raise InboundError("not JSON") from None
        return [report(body["id"], body["message"], body["status"])]

    async def poll(self, sent: Sequence[SentAction]) -> list[StatusReport]:
        self.polled.append(sorted(s.provider_id or "" for s in sent))
        return [
            report(
                f"poll-{s.provider_id}-{self.statuses[s.provider_id]}",
                s.provider_id,
                self.statuses[s.provider_id],
            )
            for s in sent
            if s.provider_id in self.statuses
        ]


def report(event_id: str, provider_id: str | None, status: str) -> StatusReport:
    return StatusReport(
        event_id=event_id,
        status=status,
        at=datetime(2026, 10, 2, 9, 0, tzinfo=UTC),
        provider_id=provider_id,
        final=status in ("delivered", "failed"),
        details={"provider_status": status.upper()},
    )


@pytest.fixture
def book(store: Store, tmp_path: Path) -> Book:
    RecordingAction.sent.clear()
    ReportingAction.statuses = {}
    ReportingAction.polled = []
    b = Book(store, tmp_path, ReportingAction)
    from fakes import invoice

    b.book(invoice("F1"), invoice("G1", debtor_id="D2"))
    b.act()
    return b


def providers(book: Book) -> dict[str, str]:
    """Debtor id -> the provider id its message got."""
    return {r.debtor_id: r.provider_id for r in book.rows() if r.state == ActionState.SENT}


def test_a_report_is_filed_once_in_the_debtors_dossier(book: Book) -> None:
    sent = providers(book)
    first = inbound.record(
        book.store, "mail", [report("e1", sent["D1"], "delivered")], book.clock(), channel="email"
    )
    again = inbound.record(
        book.store, "mail", [report("e1", sent["D1"], "delivered")], book.clock(), channel="email"
    )
    stray = inbound.record(
        book.store, "mail", [report("e2", "no-such-id", "failed")], book.clock(), channel="email"
    )

    assert (first.new, again.duplicates, stray.unmatched) == (1, 1, 1)
    (entry,) = [
        e for e in load_dossier(book.store, "books", "D1").entries if e.kind == "email.delivered"
    ]
    assert entry.summary == "email provider reports delivered"
    assert entry.data["provider_status"] == "DELIVERED" and entry.data["final"] is True


def test_the_key_the_provider_echoes_finds_the_action_too(book: Book) -> None:
    key = next(r.key for r in book.rows() if r.debtor_id == "D2")
    echoed = StatusReport(event_id="cm-1", status="accepted", at=book.clock(), key=key)
    assert inbound.record(book.store, "mail", [echoed], book.clock(), channel="email").new == 1
    kinds = [e.kind for e in load_dossier(book.store, "books", "D2").entries]
    assert kinds[-1] == "email.accepted"


def test_polling_asks_until_the_report_is_final(book: Book) -> None:
    sent = providers(book)
    action = book.dispatcher().action(book.config.actions["mail"])
    ReportingAction.statuses = {sent["D1"]: "delivered", sent["D2"]: "accepted"}

    first = asyncio.run(inbound.poll(book.store, {"mail": action}, book.clock))
    second = asyncio.run(inbound.poll(book.store, {"mail": action}, book.clock))

    assert first.new == 2 and second.duplicates == 1  # "accepted" again: already recorded
    assert ReportingAction.polled == [sorted(sent.values()), [sent["D2"]]]  # D1 is final

    book.clock.now += timedelta(days=3)  # past the poll window: nobody is asked
    asyncio.run(inbound.poll(book.store, {"mail": action}, book.clock))
    assert len(ReportingAction.polled) == 2


@pytest.fixture
def server(book: Book) -> Iterator[str]:
    """The daemon's HTTP server, taking the callbacks of the instance ``mail``."""
    app = build_app(
        book.config,
        book.store,
        book.plugins,
        clock=book.clock,
        state=ServerState(),
        public_url="https://debsync.example.nl",
    )
    running = Running(app)
    yield running.url
    running.close()


def post(url: str, body: bytes, signature: str = "valid") -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"X-Provider-Signature": signature}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_callbacks_are_checked_recorded_and_answered(book: Book, server: str) -> None:
    sent = providers(book)
    body = json.dumps({"id": "cb-1", "message": sent["D2"], "status": "failed"}).encode()

    assert post(f"{server}/inbound/mail", body) == (200, "recorded 1\n")
    assert post(f"{server}/inbound/mail", body) == (200, "recorded 0\n")  # at-least-once
    assert post(f"{server}/inbound/mail", body, signature="forged") == (401, "signature refused\n")
    assert post(f"{server}/inbound/mail", b"{not json") == (400, "not a report\n")
    assert post(f"{server}/inbound/nope", body)[0] == 404
    with urllib.request.urlopen(f"{server}/healthz", timeout=5) as health:
        assert health.read() == b"ok\n"
    kinds = [e.kind for e in load_dossier(book.store, "books", "D2").entries]
    assert kinds.count("email.failed") == 1


def test_agency_events_arrive_signed_and_are_filed(book: Book, tmp_path: Path) -> None:
    from debsync.actions.agency import AgencyAction, AgencySettings
    from debsync.actions.base import ActionEnvironment
    from debsync.actions.signing import sign
    from debsync.templates import Templates

    secret = "s3cret-for-the-agency-signature"
    settings = AgencySettings.model_validate(
        {
            "base_url": "https://agency.example.nl/v1",
            "name": "Incasso B.V.",
            "secret": secret,
            "wki_registration_number": "WKI-0001",
        }
    )
    env = ActionEnvironment("agency", tmp_path, Templates(), clock=book.clock)
    agency = AgencyAction("agency", settings, env)
    key = next(r.key for r in book.rows() if r.debtor_id == "D1")
    with book.store.engine.begin() as conn:  # the handoff the agency instance carried out
        conn.execute(
            sa.update(outbox_table)
            .where(outbox_table.c.key == key)
            .values(action="agency", channel="agency")
        )
    event = {
        "id": "evt_1",
        "type": "payment.received",
        "occurred_at": "2026-10-02T08:00:00Z",
        "handoff_id": key,
        "agency_case_id": "A-778812",
        "data": {"amount": "50.00", "currency": "EUR"},
    }
    raw = json.dumps(event).encode()
    request = InboundRequest(
        "POST",
        "https://debsync.example.nl/inbound/agency",
        {"Debsync-Signature": sign(secret, raw, book.clock())},
        raw,
    )

    reports = agency.receive(request)
    assert inbound.record(book.store, "agency", reports, book.clock(), channel="agency").new == 1

    entry = load_dossier(book.store, "books", "D1").entries[-1]
    assert entry.kind == "agency.payment_received"
    assert entry.summary == "agency provider reports payment received (€\xa050,00)"
    with pytest.raises(InboundSignatureError):
        agency.receive(InboundRequest("POST", request.url, {"Debsync-Signature": "t=1,v1=00"}, raw))


def test_outbox_rows_keep_their_state_whatever_is_reported(book: Book) -> None:
    sent = providers(book)
    inbound.record(
        book.store, "mail", [report("x", sent["D1"], "failed")], book.clock(), channel="email"
    )
    assert {r.state for r in outbox.rows(book.store)} == {ActionState.SENT}
