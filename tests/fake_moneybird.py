"""A stateful Moneybird API v2 fake: a ``(httpx.Request) -> httpx.Response`` handler for
respx or :class:`fake_http.FakeServer`.

What it enforces, so a connector that gets Moneybird wrong fails: routes only with the
``.json`` suffix under ``/api/v2/{administration_id}/``; the bearer token (401) and an active
subscription (402); ``filter=key:a|b,period:...`` with ``period`` defaulting to this_year;
``page``/``per_page`` (max 100) with ``Link`` headers; synchronization GET (ids and versions)
and POST (at most 100 ids, else 400); 150 calls per 5 minutes with ``RateLimit-*`` headers
and ``Retry-After`` on 429. Writes: notes, pause (422 when already paused) and resume,
mark_as_dubious, webhook registration (the secret shown once), the administrations the token
reaches; and :meth:`FakeMoneybird.delivery` builds signed webhook deliveries as Moneybird
sends them. OAuth2 (:class:`FakeMoneybirdOAuth`): ``POST /oauth/token`` with the
authorization_code and refresh_token grants (form-encoded, client credentials checked), access
tokens that do not expire and come without ``expires_in`` (as Moneybird documents), a refresh
answer with a new access token and no new refresh token, and the standard ``invalid_grant``
answer for a revoked grant; their bearer tokens are accepted next to the personal token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx

OPEN_STATES = ("open", "pending_payment", "reminded", "late")
WINDOW = 300.0
LIMIT = 150
INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "The provided authorization grant is invalid, expired, revoked, does not "
    "match the redirection URI used in the authorization request, or was issued to another client.",
}
"""RFC 6749 5.2's answer as Doorkeeper (which Moneybird's /oauth endpoints are) words it."""


class FakeMoneybirdOAuth:
    """Moneybird's token endpoint: one external application's grants and tokens."""

    def __init__(self, client_id: str = "mb-client", client_secret: str = "mb-secret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.codes: dict[str, str] = {}
        """Unused authorisation codes and the redirect URI each was issued for."""
        self.refresh_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.refreshes = 0
        self.exchanges = 0

    def code(self, redirect_uri: str) -> str:
        """A code as Moneybird's consent page hands it out (with characters to escape)."""
        code = f"{uuid.uuid4().hex}/+="
        self.codes[code] = redirect_uri
        return code

    def expire_access(self) -> None:
        """Moneybird stops accepting the access tokens issued so far (the grant lives)."""
        self.access_tokens.clear()

    def revoke(self) -> None:
        """The user revokes the application: no token of it works any more."""
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def valid(self, bearer: str) -> bool:
        return bearer in self.access_tokens

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return httpx.Response(415, json={"error": "unsupported_media_type"})
        form = {k: v[-1] for k, v in parse_qs(request.content.decode()).items()}
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = unquote(form.get("code", ""))
            if self.codes.pop(code, None) != form.get("redirect_uri"):
                return httpx.Response(400, json=INVALID_GRANT)
            self.exchanges += 1
            refresh = uuid.uuid4().hex
            self.refresh_tokens.add(refresh)
            return self._issued(refresh_token=refresh)
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(400, json=INVALID_GRANT)
            self.refreshes += 1
            return self._issued()
        return httpx.Response(400, json={"error": "unsupported_grant_type"})

    def _issued(self, **extra: str) -> httpx.Response:
        access = uuid.uuid4().hex
        self.access_tokens.add(access)
        body = {"access_token": access, "token_type": "bearer", "scope": "sales_invoices settings"}
        return httpx.Response(200, json={**body, **extra, "created_at": int(time.time())})


def _period(value: str, today: date) -> tuple[date, date]:
    if value == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    start, _, end = value.partition("..")
    return (
        date(int(start[:4]), int(start[4:6]), int(start[6:8])),
        date(int(end[:4]), int(end[4:6]), int(end[6:8])),
    )


def parse_filter(text: str) -> dict[str, list[str]]:
    """``state:open|late,period:20000101..20991231`` to ``{"state": ["open", "late"], ...}``."""
    result: dict[str, list[str]] = {}
    for part in filter(None, text.split(",")):
        key, _, values = part.partition(":")
        result[key] = values.split("|")
    return result


class FakeMoneybird:
    """One administration with contacts and sales invoices, and the calls it served."""

    def __init__(
        self,
        *,
        administration_id: str = "123456789",
        token: str = "mb-test-token",
        today: date = date(2026, 11, 23),
        clock: Callable[[], float] = time.time,
        limit: int = LIMIT,
        oauth: FakeMoneybirdOAuth | None = None,
    ) -> None:
        self.administration_id = administration_id
        self.token = token
        self.oauth = oauth or FakeMoneybirdOAuth()
        self.today = today
        self.clock = clock
        self.limit = limit
        self.contacts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.starts: deque[float] = deque()
        self.max_in_window = 0
        self.failing: list[int] = []
        self.always: int | None = None
        self.subscription_active = True
        self.revoked = False
        self.administrations = [{"id": administration_id, "name": "Voorbeeld B.V."}]
        self.webhooks: list[dict[str, Any]] = []
        self._cache: tuple[tuple[str, int, int], list[dict[str, Any]]] | None = None
        self._next_id = 446241800000000000
        self._version = 1_700_000_000

    # -- state ---------------------------------------------------------------------------

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def bump(self) -> int:
        self._version += 1
        return self._version

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        contact = {"id": self.new_id(), "contact_people": [], **fields, "version": self.bump()}
        self.contacts[contact["id"]] = contact
        return contact

    def add_invoice(
        self, contact_id: str, number: str, *, total: str, unpaid: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        invoice = {
            "id": self.new_id(),
            "administration_id": self.administration_id,
            "contact_id": contact_id,
            "invoice_id": number,
            "state": "open",
            "currency": "EUR",
            "language": "nl",
            "paused": False,
            "reminder_count": 0,
            "next_reminder": None,
            "total_price_incl_tax": total,
            "total_paid": str(Decimal(total) - Decimal(unpaid or total)),
            "total_unpaid": unpaid or total,
            "payments": [],
            "notes": [],
            **fields,
            "version": self.bump(),
        }
        self.invoices[invoice["id"]] = invoice
        return invoice

    def by_number(self, number: str) -> dict[str, Any]:
        return next(i for i in self.invoices.values() if i["invoice_id"] == number)

    def pay(self, number: str, amount: Decimal) -> dict[str, Any]:
        """A payment registered: unpaid lowers, and the invoice is paid when nothing is left.
        Returns the payment, as a ``payment_registered`` push carries it."""
        invoice = self.by_number(number)
        unpaid = Decimal(invoice["total_unpaid"]) - amount
        payment = {
            "id": self.new_id(),
            "invoice_type": "SalesInvoice",
            "invoice_id": invoice["id"],
            "price": f"{amount:.2f}",
            "payment_date": str(self.today),
        }
        invoice["payments"].append(payment)
        invoice["total_unpaid"] = f"{unpaid:.2f}"
        invoice["total_paid"] = f"{Decimal(invoice['total_price_incl_tax']) - unpaid:.2f}"
        if unpaid == 0:
            invoice["state"] = "paid"
        invoice["version"] = self.bump()
        return payment

    def update_contact(self, contact_id: str, **fields: Any) -> None:
        self.contacts[contact_id].update(fields, version=self.bump())

    # -- webhooks --------------------------------------------------------------------------

    def delivery(
        self,
        action: str,
        entity: dict[str, Any],
        *,
        entity_type: str = "SalesInvoice",
        secrets: list[str],
        at: float | None = None,
        key: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of one push, signed with each of ``secrets`` (two during a
        rotation) at ``at`` (default now), with a fresh ``Idempotency-Key`` unless a retry's
        ``key`` is given."""
        if entity_type == "SalesInvoice":
            entity = self._full(entity)
        body = json.dumps(
            {
                "administration_id": self.administration_id,
                "webhook_id": self.webhooks[-1]["id"] if self.webhooks else "1",
                "entity_type": entity_type,
                "entity_id": entity["id"],
                "state": entity.get("state"),
                "action": action,
                "entity": entity,
            }
        ).encode()
        stamp = int(self.clock() if at is None else at)
        digests = [
            hmac.new(s.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            for s in secrets
        ]
        signature = ",".join([f"t={stamp}", *(f"v1={d}" for d in digests)])
        headers = {
            "Content-Type": "application/json",
            "Moneybird-Signature": signature,
            "Idempotency-Key": key or str(uuid.uuid4()),
        }
        return headers, body

    # -- HTTP ----------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if (request.method, path) == ("POST", "/oauth/token"):
            return self.oauth.handle(request)
        now = self.clock()
        while self.starts and self.starts[0] <= now - WINDOW:
            self.starts.popleft()
        if len(self.starts) >= self.limit:
            wait = int(self.starts[0] + WINDOW - now) + 1
            return self._json(429, {"error": "Too many requests"}, {"Retry-After": str(wait)})
        self.starts.append(now)
        self.max_in_window = max(self.max_in_window, len(self.starts))
        if self.failing or self.always:
            status = self.failing.pop(0) if self.failing else self.always
            assert status is not None
            extra = {"Retry-After": "7"} if status == 429 else {}
            return self._json(status, {"error": "failure on purpose"}, extra)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.revoked or not (bearer == self.token or self.oauth.valid(bearer)):
            return self._json(401, {"error": "Authorization required"})
        if not self.subscription_active:
            return self._json(402, {"error": "Payment required"})
        if (request.method, path) == ("GET", "/api/v2/administrations.json"):
            return self._json(200, self.administrations)
        prefix = f"/api/v2/{self.administration_id}/"
        if not path.startswith(prefix) or not path.endswith(".json"):
            return self._json(404, {"error": "Not found"})
        resource = path.removeprefix(prefix).removesuffix(".json")
        params = parse_qs(request.url.query.decode())
        route = (request.method, resource)
        if route == ("GET", "sales_invoices"):
            return self._list(request, params)
        if route == ("GET", "sales_invoices/synchronization"):
            found = self._filtered(params)
            return self._json(200, [{"id": i["id"], "version": i["version"]} for i in found])
        if route == ("GET", "contacts/synchronization"):
            listed = [{"id": c["id"], "version": c["version"]} for c in self.contacts.values()]
            return self._json(200, listed)
        if request.method == "POST" and resource in (
            "sales_invoices/synchronization",
            "contacts/synchronization",
        ):
            ids = json.loads(request.content).get("ids") or []
            if len(ids) > 100:
                return self._json(400, {"error": "ids: at most 100"})
            if resource.startswith("contacts"):
                return self._json(200, [self.contacts[i] for i in ids if i in self.contacts])
            return self._json(
                200, [self._full(self.invoices[i]) for i in ids if i in self.invoices]
            )
        write = self._write(request, resource)
        return write if write is not None else self._json(404, {"error": "Not found"})

    def _write(self, request: httpx.Request, resource: str) -> httpx.Response | None:
        """Notes, pause and resume, mark_as_dubious and webhook registration."""
        if (request.method, resource) == ("POST", "webhooks"):
            sent = json.loads(request.content)
            hook = {
                "id": self.new_id(),
                "url": sent["url"],
                "enabled_events": sent.get("enabled_events", []),
                "token": uuid.uuid4().hex,
                "secret": uuid.uuid4().hex,
            }
            self.webhooks.append(hook)
            return self._json(201, hook)
        match = re.fullmatch(r"sales_invoices/(\d+)/(notes|pause|resume|mark_as_dubious)", resource)
        if match is None or match[1] not in self.invoices:
            return None
        invoice, what = self.invoices[match[1]], match[2]
        methods = {"notes": "POST", "pause": "POST", "resume": "POST", "mark_as_dubious": "PATCH"}
        if request.method != methods[what]:
            return self._json(405, {"error": "Method not allowed"})
        if what == "notes":
            note = json.loads(request.content)["note"]
            invoice["notes"].append({"id": self.new_id(), "note": note["note"]})
        elif what in ("pause", "resume"):
            if invoice["paused"] == (what == "pause"):
                state = "already paused" if what == "pause" else "isn't paused"
                return self._json(422, {"error": f"The sales_invoice {state}"})
            invoice["paused"] = what == "pause"
        elif invoice.get("marked_dubious_on"):
            return self._json(422, {"error": "The sales_invoice is already marked as dubious"})
        else:
            invoice["marked_dubious_on"] = json.loads(request.content).get("date")
        invoice["version"] = self.bump()
        return self._json(201 if what == "notes" else 200, self._full(invoice))

    def _filtered(self, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The invoices a filter selects; the last answer is kept until anything changes
        (every change bumps a version), so paging through 50,000 costs the fake little."""
        key = (params.get("filter", [""])[0], self._version, len(self.invoices))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        wanted = parse_filter(key[0])
        states = wanted.get("state", ["all"])
        start, end = _period(wanted.get("period", ["this_year"])[0], self.today)
        found = [
            i
            for i in self.invoices.values()
            if ("all" in states or i["state"] in states)
            and start <= date.fromisoformat(i["invoice_date"]) <= end
        ]
        self._cache = (key, found)
        return found

    def _full(self, invoice: dict[str, Any]) -> dict[str, Any]:
        return {**invoice, "contact": self.contacts[invoice["contact_id"]]}

    def _list(self, request: httpx.Request, params: dict[str, list[str]]) -> httpx.Response:
        found = self._filtered(params)
        page = int(params.get("page", ["1"])[0])
        per_page = min(int(params.get("per_page", ["50"])[0]), 100)
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(found):
            following = re.sub(r"(?<![_a-z])page=\d+", f"page={page + 1}", str(request.url))
            if not re.search(r"(?<![_a-z])page=", str(request.url)):
                following = f"{request.url}&page={page + 1}"
            headers["Link"] = f'<{following}>; rel="next"'
        return self._json(200, [self._full(i) for i in chunk], headers)

    def _json(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        now = self.clock()
        reset = int((self.starts[0] if self.starts else now) + WINDOW)
        quota = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - len(self.starts))),
            "RateLimit-Reset": str(reset),
        }
        return httpx.Response(status, json=body, headers={**quota, **(headers or {})})
