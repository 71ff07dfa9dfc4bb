"""Forged and hostile callbacks, over a real socket: a report is filed only for an action of
the instance it came in on, an unsigned provider needs the instance's URL secret, a request
carries a bounded number of reports, and malformed or slow requests are answered (or cut off)
instead of raising or hanging."""

from __future__ import annotations

import json
import logging
import select
import socket
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from debsync import inbound
from debsync.actions.agency import AgencyAction, AgencySettings
from debsync.actions.base import Action, ActionEnvironment
from debsync.actions.signing import sign
from debsync.actions.sms import SmsAction, SmsSettings
from debsync.dossier import load_dossier
from debsync.server import ServerState, build_app
from debsync.store.schema import outbox, received_events
from debsync.templates import Templates
from served import Running

from books import Book
from fakes import RecordingAction, invoice

AGENCY_SECRET = "s3cret-for-the-agency-signature"


@pytest.fixture
def book(store: Any, tmp_path: Path) -> Book:
    RecordingAction.sent.clear()
    b = Book(store, tmp_path, RecordingAction)
    b.book(invoice("F1"), invoice("G1", debtor_id="D2"))
    b.act()
    return b


def keys(book: Book) -> dict[str, str]:
    """Debtor id -> the key of the e-mail it was sent (visible to it in the Message-ID)."""
    return {r.debtor_id: r.key for r in book.rows()}


def actions(book: Book, tmp_path: Path) -> dict[str, Action[Any]]:
    cm = SmsSettings.model_validate(
        {"provider": "cm", "product_token": str(uuid.uuid4()), "sender": "Voorbeeld"}
    )
    agency = AgencySettings.model_validate(
        {
            "base_url": "https://agency.example.nl/v1",
            "name": "Incasso B.V.",
            "secret": AGENCY_SECRET,
            "wki_registration_number": "WKI-0001",
        }
    )

    def env(name: str) -> ActionEnvironment:
        return ActionEnvironment(name, tmp_path, Templates(), clock=book.clock)

    return {
        "cm": SmsAction("cm", cm, env("cm")),
        "agency": AgencyAction("agency", agency, env("agency")),
        "mail": book.dispatcher().action(book.config.actions["mail"]),
    }


class Served:
    def __init__(self, running: Running, actions: dict[str, Action[Any]]) -> None:
        self.running = running
        self.port = running.port
        self.actions = actions

    def path(self, name: str) -> str:
        return inbound.callback_path(name, self.actions[name])

    def send(self, data: bytes, timeout: float = 10.0) -> bytes:
        """Send raw bytes, read the answer until the server closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            return read_all(sock)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        lines = [f"POST {path} HTTP/1.1", "Host: x", "Connection: close"]
        lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def serve(book: Book, tmp_path: Path, **limits: Any) -> Iterator[Served]:
    found = actions(book, tmp_path)
    app = build_app(
        book.config,
        book.store,
        book.plugins,
        clock=book.clock,
        state=ServerState(),
        actions=found,
        public_url="https://debsync.example.nl",
    )
    running = Running(app, **limits)
    try:
        yield Served(running, found)
    finally:
        running.close()


@pytest.fixture
def server(book: Book, tmp_path: Path) -> Iterator[Served]:
    yield from serve(book, tmp_path, read_timeout=1.0, deadline=2.0)


def cm_report(reference: str, event: int = 0) -> dict[str, Any]:
    return {
        "received": "2026-10-02T10:31:07",
        "reference": reference,
        "status": {"code": "2", "errorCode": str(event), "errorDescription": "Delivered"},
    }


def cm_body(*messages: dict[str, Any]) -> bytes:
    found: Any = messages[0] if len(messages) == 1 else list(messages)
    return json.dumps({"messages": {"msg": found}}).encode()


def kinds(book: Book, debtor: str) -> list[str]:
    return [e.kind for e in load_dossier(book.store, "books", debtor).entries]


def received(book: Book) -> int:
    with book.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(received_events)).scalar())


# -- matching: only the instance's own actions ---------------------------------------------------


def test_a_cm_report_without_the_url_secret_is_not_found(book: Book, server: Served) -> None:
    body = cm_body(cm_report(keys(book)["D1"]))
    assert status(server.post("/inbound/cm", body)) == 404
    assert status(server.post("/inbound/cm/" + "0" * 32, body)) == 404
    assert received(book) == 0 and not any(k.startswith("email.") for k in kinds(book, "D1"))


def test_a_cm_report_naming_an_email_key_is_filed_nowhere(book: Book, server: Served) -> None:
    """The e-mail's key is in its Message-ID: echoed by CM it must not file a report in the
    debtor's dossier (it did, as email.delivered)."""
    answer = server.post(server.path("cm"), cm_body(cm_report(keys(book)["D1"])))
    assert status(answer) == 200 and answer.endswith(b"recorded 0\n")
    assert "email.delivered" not in kinds(book, "D1")


def test_a_cm_report_is_filed_for_the_text_cm_sent(book: Book, server: Served) -> None:
    key = keys(book)["D2"]
    with book.store.engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.key == key)
            .values(action="cm", channel="sms", provider_id=key)
        )
    answer = server.post(server.path("cm"), cm_body(cm_report(key)))
    assert answer.endswith(b"recorded 1\n")
    assert kinds(book, "D2")[-1] == "sms.delivered"


def test_a_signed_agency_event_about_an_email_is_filed_nowhere(book: Book, server: Served) -> None:
    """Correctly signed by the agency, but about an e-mail action: it was filed as
    email.closed."""
    event = {
        "id": "evt_1",
        "type": "case.closed",
        "occurred_at": "2026-10-02T08:00:00Z",
        "handoff_id": keys(book)["D1"],
        "agency_case_id": "A-1",
        "data": {"reason": "paid"},
    }
    raw = json.dumps(event).encode()
    signature = sign(AGENCY_SECRET, raw, book.clock())
    answer = server.post("/inbound/agency", raw, {"Debsync-Signature": signature})
    assert status(answer) == 200 and answer.endswith(b"recorded 0\n")
    assert "email.closed" not in kinds(book, "D1")


def test_a_request_carries_a_bounded_number_of_reports(book: Book, server: Served) -> None:
    """500 reports in one CM request wrote 500 rows."""
    body = cm_body(*(cm_report(f"ref{n}") for n in range(500)))
    assert status(server.post(server.path("cm"), body)) == 413
    assert received(book) == 0


# -- malformed input: 400 (or 411, 413), never an uncaught exception ----------------------------


def raw_post(path: str, length: str, body: bytes = b"{}") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode() + body


@pytest.mark.parametrize(
    ("length", "expected"),
    # h11 refuses the malformed ones, and the 5,000 digits Python will not make an int of
    [("abc", 400), ("-1", 400), ("1e3", 400), (str(10**12), 413), ("9" * 5000, 400)],
)
def test_a_malformed_or_huge_content_length_is_refused_unread(
    server: Served, length: str, expected: int
) -> None:
    assert status(server.send(raw_post("/inbound/mail", length))) == expected


def test_a_chunked_body_or_none_needs_a_length(server: Served) -> None:
    chunked = (
        b"POST /inbound/mail HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert status(server.send(chunked)) == 411
    assert status(server.send(b"POST /inbound/mail HTTP/1.1\r\nHost: x\r\n\r\n")) == 411


def test_a_five_thousand_digit_timestamp_is_a_bad_request(book: Book, server: Served) -> None:
    header = f"t={'9' * 5000},v1={'0' * 64}"
    answer = server.post("/inbound/agency", b"{}", {"Debsync-Signature": header})
    assert status(answer) == 400


def test_json_nested_a_hundred_thousand_deep_is_a_bad_request(server: Served) -> None:
    assert status(server.post(server.path("cm"), b"[" * 100_000)) == 400


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xff\xfe garbage\r\n\r\n", b"POST\r\n\r\n", b"GET / HTTP/9.9 extra\r\n\r\n", b"\r\n"],
)
def test_a_garbage_request_line_is_answered(server: Served, garbage: bytes) -> None:
    """Answered 400 (an HTTP/0.9-looking line gets the error page without a status line) or
    closed; before, a line too short to parse raised in the server's logging."""
    answer = server.send(garbage)
    assert answer == b"" or b"400" in answer


def test_an_incomplete_body_is_dropped(book: Book, server: Served) -> None:
    """The client ends its side with the body short: there is nobody left to answer (uvicorn
    closes the connection), and nothing is recorded."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw_post(server.path("cm"), "100", cm_body(cm_report("x"))[:50]))
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b""
    assert received(book) == 0


# -- slow clients and many of them --------------------------------------------------------------


def test_a_request_line_that_never_ends_is_cut_off(server: Served) -> None:
    """The client would wait 10 s; the server closes after its read timeout."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /inbound/mail HTT")
        assert read_all(sock) == b""  # closed by the server, not a client timeout


def test_a_body_that_never_comes_is_cut_off(server: Served) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw_post("/inbound/mail", "100", b"{"))
        assert read_all(sock) == b""


def test_a_client_trickling_headers_is_cut_off_at_the_deadline(server: Served) -> None:
    """Each header arrives within the read timeout, but the whole request not within the
    deadline: the server ends the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /inbound/mail HTTP/1.1\r\n")
        for n in range(200):  # 20 s of trickling at most
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                break
            try:
                sock.sendall(f"X-Slow-{n}: 1\r\n".encode())
            except OSError:
                break
        else:
            pytest.fail("the server let a trickling client keep its connection")


def test_connections_beyond_the_limit_are_answered_busy(book: Book, tmp_path: Path) -> None:
    for served in serve(book, tmp_path, max_connections=2, read_timeout=5.0, deadline=10.0):
        idle = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in "ab"]
        try:
            answer = served.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert status(answer) == 503 and b"Retry-After" in answer
        finally:
            for sock in idle:
                sock.close()
        for _ in range(100):  # the idle connections' slots come free once they are closed
            if status(served.send(b"GET /healthz HTTP/1.0\r\n\r\n")) == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the slots of closed connections never came free")


def test_the_url_secret_stays_out_of_the_log(
    book: Book, server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = inbound.callback_secret(server.actions["cm"])
    assert secret is not None and len(secret) == 32
    server.post(server.path("cm"), cm_body(cm_report("nothing")))
    server.send(b"GET /inbound/cm/" + secret.encode() + b" HTTP/9\r\n\r\n")
    assert "/inbound/cm" in caplog.text and secret not in caplog.text


# -- the checks, as another server would call them ----------------------------------------------


def test_the_checks_as_functions(book: Book, tmp_path: Path) -> None:
    found = actions(book, tmp_path)
    cm_path = inbound.callback_path("cm", found["cm"])
    assert inbound.callback_target(cm_path + "?x=1", found)[0] == "cm"
    assert inbound.callback_target("/inbound/agency", found)[0] == "agency"
    for path in ("/inbound/cm", "/inbound/agency/extra", "/inbound/nope", "/other/cm", "/"):
        with pytest.raises(inbound.CallbackRefused) as refused:
            inbound.callback_target(path, found)
        assert refused.value.status is HTTPStatus.NOT_FOUND
    assert inbound.body_length("0042", None) == 42
    assert inbound.body_length(" 12 ", None) == 12
    for length, code in (("", 400), ("+1", 400), ("٣", 400), (str(2**20), 413)):
        with pytest.raises(inbound.CallbackRefused) as refused:
            inbound.body_length(length, None)
        assert refused.value.status == code
    other = SmsAction(
        "cm2",
        SmsSettings.model_validate(
            {"provider": "cm", "product_token": str(uuid.uuid4()), "sender": "Voorbeeld"}
        ),
        ActionEnvironment("cm2", tmp_path, Templates()),
    )
    assert inbound.callback_secret(other) != inbound.callback_secret(found["cm"])
    assert inbound.callback_secret(found["agency"]) is None  # it signs its events
