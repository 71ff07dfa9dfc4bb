"""Fakes of e-Boekhouden's REST and SOAP APIs, as ``(httpx.Request) -> httpx.Response``
handlers for respx or ``FakeServer``.

REST: ``POST /v1/session`` validates the source and the API token and issues session tokens
that expire; other routes need a live session in ``Authorization``; errors use the ``Error``
model (``type``, ``code``, ``title``, ``status``); lists are ``{"items", "count"}`` paged with
``limit`` (1-2000) and ``offset``; the relation list is sparse (``id``, ``type``, ``code``)
against the full detail; a queued 429 carries ``Retry-After``.

SOAP: one endpoint dispatching on ``SOAPAction``; a failure is a 200 with ``ErrorMsg``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import httpx

API_TOKEN = "eb-api-token-7f3a"
SOURCE_PATTERN = re.compile(r"^[\w ]{1,10}$")
NS = "http://www.e-boekhouden.nl/soap"


def _number(value: Decimal) -> float:
    """JSON numbers as the API sends them; a float's shortest repr keeps the cents."""
    return float(value)


def error(status: int, kind: str, title: str, code: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"type": kind, "title": title, "status": status, "traceId": "00-fake"}
    if code:
        body["code"] = code
    return httpx.Response(status, json=body)


@dataclass
class Mutation:
    """An invoice sent (mutation type 2) and what has been paid on it."""

    id: int
    invoice_number: str
    relation_id: int
    date: date
    term: int | None
    total: Decimal
    paid: Decimal = Decimal(0)

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.paid


@dataclass
class FakeRest:
    """The REST API of one administration."""

    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    expires_in: int = 3600
    relations: dict[int, dict[str, Any]] = field(default_factory=dict)
    mutations: dict[int, Mutation] = field(default_factory=dict)
    sessions: dict[str, datetime] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    queued: list[httpx.Response] = field(default_factory=list)
    """Answers given to the next requests instead of the real ones (429s, 503s)."""
    gone: set[int] = field(default_factory=set)
    """Relations whose detail answers 404 while open items still name them."""
    refused: int = 0
    """Requests refused for a missing, unknown or expired session."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = re.sub(r"/\d+$", "/{id}", path)
        self.calls[f"{request.method} {route}"] += 1
        if self.queued:
            return self.queued.pop(0)
        if path == "/v1/session" and request.method == "POST":
            return self.session(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires = self.sessions.get(token)
        if expires is None or self.clock() >= expires:
            self.refused += 1
            return error(401, "security", "Session token is invalid or has expired.")
        if request.method != "GET":
            return error(405, "validation", "Method not allowed.")
        params = request.url.params
        if path == "/v1/mutation/invoice/outstanding":
            if params.get("credDeb") not in ("C", "D"):
                return error(400, "validation", "credDeb is required.", "MUTA_006")
            items = [
                self.outstanding(m) for m in sorted(self.mutations.values(), key=lambda m: m.id)
            ]
            return self.page(params, [i for i in items if i["outstandingAmount"] != 0])
        if path == "/v1/relation":
            sparse = [
                {"id": r["id"], "type": r["type"], "code": r["code"]}
                for _, r in sorted(self.relations.items())
            ]
            return self.page(params, sparse)
        if match := re.fullmatch(r"/v1/relation/(\d+)", path):
            relation = self.relations.get(int(match[1]))
            if relation is None or relation["id"] in self.gone:
                return error(404, "notfound", "Relation not found.", "REL_404")
            return httpx.Response(200, json=relation)
        if match := re.fullmatch(r"/v1/mutation/(\d+)", path):
            mutation = self.mutations.get(int(match[1]))
            if mutation is None:
                return error(404, "notfound", "Mutation not found.", "MUTA_404")
            return httpx.Response(200, json=self.detail(mutation))
        return error(404, "notfound", "Not found.")

    def session(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content)
        except ValueError:
            return error(400, "validation", "The body is not JSON.")
        source, token = body.get("source"), body.get("accessToken")
        if not source:
            return error(400, "validation", "Source is missing.", "API_SESSION_001")
        if not SOURCE_PATTERN.match(source):
            return error(400, "validation", "Source does not match pattern.", "API_SESSION_002")
        if not token:
            return error(400, "validation", "Access token is missing or empty.", "API_SESSION_003")
        if token != API_TOKEN:
            return error(401, "security", "Access token is invalid.")
        session = f"sess-{len(self.sessions) + 1:04d}-c0ffee"
        self.sessions[session] = self.clock() + timedelta(seconds=self.expires_in)
        return httpx.Response(200, json={"token": session, "expiresIn": self.expires_in})

    def page(self, params: httpx.QueryParams, items: list[dict[str, Any]]) -> httpx.Response:
        try:
            limit, offset = int(params.get("limit", "100")), int(params.get("offset", "0"))
        except ValueError:
            return error(400, "validation", "limit and offset must be numbers.")
        if not 1 <= limit <= 2000 or offset < 0:
            return error(400, "validation", "limit must be between 1 and 2000.")
        chosen = items[offset : offset + limit]
        return httpx.Response(200, json={"items": chosen, "count": len(chosen)})

    def outstanding(self, m: Mutation) -> dict[str, Any]:
        relation = self.relations[m.relation_id]
        return {
            "date": f"{m.date.isoformat()}T00:00:00",
            "mutationId": m.id,
            "invoiceNumber": m.invoice_number,
            "relationId": m.relation_id,
            "relationCode": relation["code"],
            "company": relation["name"],
            "totalAmount": _number(m.total),
            "paidAmount": _number(m.paid),
            "outstandingAmount": _number(m.outstanding),
        }

    def detail(self, m: Mutation) -> dict[str, Any]:
        return {
            "id": m.id,
            "type": 2,
            "date": m.date.isoformat(),
            "description": f"Factuur {m.invoice_number}",
            "termOfPayment": m.term,
            "ledgerId": 1300,
            "relationId": m.relation_id,
            "inExVat": "EX",
            "invoiceNumber": m.invoice_number,
            "entryNumber": m.invoice_number,
            "rows": [],
            "vat": [],
        }

    def throttle(self, seconds: int) -> None:
        """The next request is refused with 429 and ``Retry-After: seconds``."""
        self.queued.append(
            httpx.Response(
                429,
                headers={"Retry-After": str(seconds)},
                json={"type": "ratelimit", "title": "Too many requests.", "status": 429},
            )
        )

    def expire_sessions(self) -> None:
        """Every session token expires now (e-Boekhouden ended them early)."""
        self.sessions = {token: self.clock() for token in self.sessions}

    def detail_calls(self) -> int:
        return self.calls["GET /v1/relation/{id}"] + self.calls["GET /v1/mutation/{id}"]


def relation(
    id: int,
    name: str,
    *,
    kind: str = "B",
    code: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A full ``Relation`` as ``GET /v1/relation/{id}`` answers it."""
    full: dict[str, Any] = {
        "id": id,
        "type": kind,
        "code": code or f"DEB{id:05d}",
        "date": "2024-01-15",
        "name": name,
        "contact": "",
        "address": "",
        "postalCode": "",
        "city": "",
        "country": "NL",
        "phoneNumber": "",
        "mobilePhoneNumber": "",
        "emailAddress": "",
        "emailAddressInvoice": "",
        "emailAddressReminder": "",
        "vatNumber": "",
        "companyRegistrationNumber": "",
        "iban": "",
        "termOfPayment": 30,
        "inactive": False,
    }
    full.update(fields)
    return full


@dataclass
class OpenPost:
    number: str
    relation_code: str
    company: str
    date: date
    total: Decimal
    paid: Decimal = Decimal(0)


@dataclass
class FakeSoap:
    """The legacy SOAP API: ``OpenSession``, ``GetOpenPosten``, ``CloseSession``."""

    username: str = "debsync-demo"
    code_1: str = "a3f1c2b4d5e6f708192a3b4c5d6e7f80"
    code_2: str = "5D1E4F6A-2B3C-4D5E-8F90-A1B2C3D4E5F6"
    posts: list[OpenPost] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    failing: list[tuple[str, str]] = field(default_factory=list)
    """(code, description) answered as ``ErrorMsg`` by the next calls."""
    sessions: set[str] = field(default_factory=set)
    queued: list[httpx.Response] = field(default_factory=list)
    """HTTP answers given to the next requests instead of the real ones (503s)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers.get("SOAPAction", "").strip('"').removeprefix(f"{NS}/")
        self.calls[action] += 1
        if self.queued:
            return self.queued.pop(0)
        try:
            body = ET.fromstring(request.content).find(f".//{{{NS}}}{action}")
        except ET.ParseError:
            body = None
        if body is None:
            return httpx.Response(500, text="<soap:Fault>bad request</soap:Fault>")
        args = {child.tag.removeprefix(f"{{{NS}}}"): child.text or "" for child in body}
        if self.failing:
            return self.answer(action, "", error=self.failing.pop(0))
        if action == "OpenSession":
            if (args.get("Username"), args.get("SecurityCode1"), args.get("SecurityCode2")) != (
                self.username,
                self.code_1,
                self.code_2,
            ):
                return self.answer(action, "", error=("E0001", "Ongeldige inloggegevens."))
            session = f"SESSION-{len(self.sessions) + 1}"
            self.sessions.add(session)
            return self.answer(action, f"<SessionID>{session}</SessionID>")
        if args.get("SessionID") not in self.sessions:
            return self.answer(action, "", error=("E0002", "Sessie is verlopen."))
        if action == "CloseSession":
            self.sessions.discard(args["SessionID"])
            return self.answer(action, "")
        if action == "GetOpenPosten":
            if args.get("SecurityCode2") != self.code_2 or args.get("OpSoort") != "Debiteuren":
                return self.answer(action, "", error=("E0003", "Ongeldige parameters."))
            rows = "".join(self.row(post) for post in self.posts if post.total != post.paid)
            return self.answer(action, f"<Openposten>{rows}</Openposten>")
        return httpx.Response(500, text="unknown SOAPAction")

    def row(self, post: OpenPost) -> str:
        open_amount = post.total - post.paid
        return (
            "<cOpenPost>"
            f"<MutDatum>{post.date.isoformat()}T00:00:00</MutDatum>"
            f"<MutFactuur>{escape(post.number)}</MutFactuur>"
            f"<RelCode>{escape(post.relation_code)}</RelCode>"
            f"<RelBedrijf>{escape(post.company)}</RelBedrijf>"
            f"<Bedrag>{post.total}</Bedrag><Voldaan>{post.paid}</Voldaan>"
            f"<Openstaand>{open_amount}</Openstaand>"
            "</cOpenPost>"
        )

    def answer(
        self, action: str, inner: str, *, error: tuple[str, str] | None = None
    ) -> httpx.Response:
        code, description = error or ("", "")
        message = (
            f"<ErrorMsg><LastErrorCode>{code}</LastErrorCode>"
            f"<LastErrorDescription>{escape(description)}</LastErrorDescription></ErrorMsg>"
        )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<{action}Response xmlns="{NS}"><{action}Result>{message}{inner}</{action}Result>'
            f"</{action}Response></soap:Body></soap:Envelope>"
        )
        return httpx.Response(200, content=xml.encode(), headers={"Content-Type": "text/xml"})
