"""A stateful Exact Online fake: a ``(httpx.Request) -> httpx.Response`` handler for respx or
:class:`fake_http.FakeServer`, with the token endpoint of :class:`FakeExactOAuth`.

What it enforces, so a connector that gets Exact wrong fails: ``Authorization: Bearer`` with
a live token (401), ``Accept: application/json`` (else Atom XML), divisions the grant reaches
(403); minimal OData: ``$filter`` (``eq ne gt ge lt le``, ``and``/``or``, literals
``guid'…'``, ``datetime'…'``, ``123L``, strings, booleans; an unknown field is a 400 with
Exact's error envelope), ``$select`` (mandatory on sync endpoints; unknown fields 400),
``$top``; 60 records a page on CRUD endpoints and 1000 on sync endpoints, with ``d.__next``
carrying ``$skiptoken``; mandatory filtering on ``crm/Accounts`` and ``crm/Contacts``;
monotonic ``Timestamp`` row versions and ``sync/Deleted``; ``/Date(ms)/`` dates and padded
account codes; per-division ``X-RateLimit-*`` headers (epoch milliseconds), 429 on the
61st call in a minute (only the minutely headers) or past the daily budget (only the daily
ones); and after ten 4xx answers on one endpoint in an hour, 403 for that endpoint.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from debsync.connectors.exact.odata import format_date, padded_code

from fake_exact_oauth import FakeExactOAuth

SYNC_PAGE = 1000
CRUD_PAGE = 60
MINUTELY = 60
DAILY = 5000

_COND = re.compile(
    r"\s*(\w+) (eq|ne|gt|ge|lt|le) (guid'[^']*'|datetime'[^']*'|'(?:[^']|'')*'|-?\d+L|"
    r"-?\d+(?:\.\d+)?|true|false|null)\s*"
)
_JOIN = re.compile(r"(and|or)\b")
_SINCE = re.compile(r"^Timestamp gt (\d+)L$")


class ODataError(Exception):
    """An answer of 400 with Exact's error envelope."""


def _literal(text: str) -> Any:
    if text.startswith("guid'"):
        return str(uuid.UUID(text[5:-1]))
    if text.startswith("datetime'"):
        return format_date(datetime.fromisoformat(text[9:-1]))
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text.endswith("L"):
        return int(text[:-1])
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    return Decimal(text)


def parse_filter(text: str, fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for an OData v2 ``$filter`` of comparisons joined by ``and``/``or``
    (``and`` binds tighter)."""
    groups: list[list[tuple[str, str, Any]]] = [[]]
    position = 0
    while True:
        match = _COND.match(text, position)
        if match is None:
            raise ODataError(f"This $filter parameter is not supported: {text[position:][:60]}")
        name, op, literal = match.groups()
        if name not in fields:
            raise ODataError(f"Filtering on these fields is not supported: {name}")
        groups[-1].append((name, op, _literal(literal)))
        position = match.end()
        if position >= len(text):
            break
        join = _JOIN.match(text, position)
        if join is None:
            raise ODataError(f"This $filter parameter is not supported: {text[position:][:60]}")
        if join.group(1) == "or":
            groups.append([])
        position = join.end()

    def compare(value: Any, op: str, literal: Any) -> bool:
        if isinstance(value, str) and isinstance(literal, str) and _is_guid(literal):
            value = value.lower()
        if op == "eq":
            return bool(value == literal)
        if op == "ne":
            return bool(value != literal)
        if value is None or literal is None:
            return False
        return bool(
            {"gt": value > literal, "ge": value >= literal, "lt": value < literal}.get(
                op, value <= literal
            )
        )

    def predicate(record: dict[str, Any]) -> bool:
        return any(all(compare(record.get(n), o, v) for n, o, v in g) for g in groups)

    return predicate


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def new_guid() -> str:
    return str(uuid.uuid4())


class MemoryVault:
    """A :class:`~debsync.connectors.base.TokenVault` in memory, for tests."""

    def __init__(self, tokens: dict[str, Any] | None = None) -> None:
        self.tokens = tokens
        self.saves = 0
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any] | None:
        return dict(self.tokens) if self.tokens else None

    def save(self, tokens: dict[str, Any]) -> None:
        self.tokens = dict(tokens)
        self.saves += 1

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield


class Division:
    """One administration: accounts, contacts, payment terms, the deletion log."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.accounts: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.terms: dict[str, dict[str, Any]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.notes: list[dict[str, Any]] = []
        self.move_date: str | None = None


class FakeExact:
    """Many divisions behind one grant, and the calls they served."""

    def __init__(
        self,
        divisions: list[int] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        oauth: FakeExactOAuth | None = None,
        sync_page: int = SYNC_PAGE,
        crud_page: int = CRUD_PAGE,
        minutely: int = MINUTELY,
        daily: int = DAILY,
        budgets: dict[int, int] | None = None,
    ) -> None:
        self.clock = clock
        self.oauth = oauth or FakeExactOAuth(clock=clock)
        self.divisions = {code: Division(code) for code in divisions or [3001]}
        self.sync_page, self.crud_page = sync_page, crud_page
        self.minutely, self.daily = minutely, daily
        self.budgets = budgets or {}
        """Daily budgets of particular divisions (others have ``daily``)."""
        self.calls: list[tuple[int | None, str]] = []
        self.answered: list[tuple[str, int]] = []
        """Every request and the status it got, the token endpoint's included."""
        self.failing: list[int] = []
        """Statuses the next API calls answer, in order (a 429 with minutely headers)."""
        self.max_per_minute: dict[int, int] = defaultdict(int)
        self._starts: dict[int, deque[float]] = defaultdict(deque)
        self._minute: dict[int, tuple[int, int]] = {}
        self._day: dict[int, tuple[int, int]] = {}
        self._errors: dict[tuple[int, str], deque[float]] = defaultdict(deque)
        self._stamp = 1000
        self._lock = threading.Lock()

    # -- state -------------------------------------------------------------------------

    def tick(self) -> int:
        self._stamp += 1
        return self._stamp

    def add_account(self, division: int, name: str, code: str | int, **fields: Any) -> str:
        account_id = new_guid()
        self.divisions[division].accounts[account_id] = {
            "ID": account_id,
            "Code": padded_code(code),
            "Name": name,
            "Status": "C",
            **fields,
            "Timestamp": self.tick(),
        }
        return account_id

    def add_contact(
        self, division: int, account_id: str, *, main: bool = True, **fields: Any
    ) -> str:
        contact_id = new_guid()
        self.divisions[division].contacts[contact_id] = {
            "ID": contact_id,
            "Account": account_id,
            **fields,
            "Timestamp": self.tick(),
        }
        if main:
            self.update_account(division, account_id, MainContact=contact_id)
        return contact_id

    def update_account(self, division: int, account_id: str, **fields: Any) -> None:
        self.divisions[division].accounts[account_id].update(fields, Timestamp=self.tick())

    def update_contact(self, division: int, contact_id: str, **fields: Any) -> None:
        self.divisions[division].contacts[contact_id].update(fields, Timestamp=self.tick())

    def add_receivable(
        self,
        division: int,
        account_id: str,
        number: str | int,
        *,
        amount: Decimal | str,
        invoice_date: date,
        due_date: date,
        currency: str = "EUR",
        open_amount: Decimal | str | None = None,
        line_type: int = 20,
        **fields: Any,
    ) -> str:
        """A sales entry with one open payment term (or, with ``open_amount``, one matched
        part and one open part, as Exact splits a partly paid receivable)."""
        entry_id = new_guid()
        total = Decimal(amount)
        base = {
            "LineType": line_type,
            "Account": account_id,
            "AccountCode": self.divisions[division].accounts[account_id]["Code"],
            "TransactionEntryID": entry_id,
            "InvoiceNumber": number,
            "InvoiceDate": format_date(invoice_date),
            "DueDate": format_date(due_date),
            "TransactionAmountFC": total,
            "Currency": currency,
            "PaymentMethod": "B",
            "PaymentReference": str(number),
            "DirectDebitMandate": None,
            "Division": division,
            **fields,
        }
        left = Decimal(open_amount) if open_amount is not None else total
        self._term(division, base, left, status=20)
        if left != total:
            self._term(division, base, total - left, status=50)
        return entry_id

    def _term(self, division: int, base: dict[str, Any], amount: Decimal, *, status: int) -> str:
        term_id = new_guid()
        self.divisions[division].terms[term_id] = {
            **base,
            "ID": term_id,
            "AmountFC": amount,
            "Status": status,
            "IsFullyPaid": status == 50,
            "Timestamp": self.tick(),
        }
        return term_id

    def open_terms(self, division: int, entry_id: str) -> list[dict[str, Any]]:
        return [
            t
            for t in self.divisions[division].terms.values()
            if t["TransactionEntryID"] == entry_id and t["Status"] != 50
        ]

    def entry(self, division: int, number: str | int) -> str:
        return str(
            next(
                t["TransactionEntryID"]
                for t in self.divisions[division].terms.values()
                if t["InvoiceNumber"] == number
            )
        )

    def pay(self, division: int, entry_id: str, amount: Decimal) -> None:
        """A payment matched: the open term is split into a matched part and what is left,
        or closed when nothing is left."""
        term = self.open_terms(division, entry_id)[0]
        left = term["AmountFC"] - amount
        term.update(AmountFC=amount, Status=50, IsFullyPaid=True, Timestamp=self.tick())
        if left:
            self._term(division, {k: v for k, v in term.items() if k != "ID"}, left, status=20)

    def delete_entry(self, division: int, entry_id: str) -> None:
        """The sales entry was deleted: its terms leave, each in ``sync/Deleted``."""
        book = self.divisions[division]
        for term_id in [t for t, v in book.terms.items() if v["TransactionEntryID"] == entry_id]:
            del book.terms[term_id]
            book.deleted[term_id] = {
                "EntityKey": term_id,
                "EntityType": 10,
                "Timestamp": self.tick(),
                "Division": division,
            }

    def regenerate(self, division: int) -> None:
        """A division move: every Timestamp is regenerated (lower than before)."""
        book = self.divisions[division]
        book.move_date = format_date(datetime.fromtimestamp(self.clock(), UTC))
        for n, record in enumerate(
            [*book.accounts.values(), *book.contacts.values(), *book.terms.values()], start=1
        ):
            record["Timestamp"] = n

    def attach_pdf(self, division: int, entry_id: str, content: bytes) -> None:
        book = self.divisions[division]
        document_id, attachment_id = new_guid(), new_guid()
        book.documents[document_id] = {"ID": document_id, "FinancialTransactionEntryID": entry_id}
        book.attachments[attachment_id] = {
            "ID": attachment_id,
            "Document": document_id,
            "FileName": "factuur.pdf",
            "Url": f"/docs/SysAttachment.aspx?ID={attachment_id}&_Division_={division}",
        }
        book.files[attachment_id] = content

    # -- HTTP ------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            response = self._serve(request)
            self.answered.append((f"{request.method} {request.url.path}", response.status_code))
            return response

    def _serve(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/oauth2/"):
            return self.oauth.handle(request)
        match = re.match(r"^/api/v1/(\d+)/(.+)$", path)
        division = int(match.group(1)) if match else None
        if path == "/docs/SysAttachment.aspx":
            division = int(request.url.params.get("_Division_", "0"))
        self.calls.append((division, f"{request.method} {path}"))
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not self.oauth.valid(auth[7:]):
            return self._error(401, "Unauthorized", division)
        if path == "/api/v1/current/Me":
            first = min(self.divisions)
            return self._ok({"d": {"results": [{"CurrentDivision": first}]}}, None)
        listing = match is not None and match.group(2) == "system/Divisions"
        if division is None or (division not in self.divisions and not listing):
            return self._error(403, "Forbidden: no access to this division", None)
        limited = self._limit(division)
        if limited is not None:
            return limited
        if self.failing:
            status = self.failing.pop(0)
            if status == 429:  # the minute is used up although the last answer said otherwise
                self._minute[division] = (int(self.clock() // 60) * 60, self.minutely)
                return self._error(429, "Too many requests", division, headers="minutely")
            return self._error(status, "failure on purpose", division)
        endpoint = f"{request.method} {match.group(2) if match else path}"
        errors = self._errors[(division, endpoint)]
        while errors and errors[0] <= self.clock() - 3600:
            errors.popleft()
        if len(errors) >= 10:
            return self._error(403, "Blocked: too many errors on this endpoint", division)
        response = self._route(request, division, match.group(2) if match else path)
        if 400 <= response.status_code < 500:
            errors.append(self.clock())
        return response

    def _route(self, request: httpx.Request, division: int, resource: str) -> httpx.Response:
        if "json" not in request.headers.get("Accept", ""):
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
            )
            return httpx.Response(200, text=xml, headers={"Content-Type": "application/atom+xml"})
        params = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        if resource == "system/Divisions":
            listed = [
                {
                    "Code": d.code,
                    "Description": f"Administratie {d.code}",
                    "Status": 1,
                    "DivisionMoveDate": d.move_date,
                }
                for d in self.divisions.values()
            ]
            try:
                return self._ok({"d": {"results": _select(listed, params)}}, division)
            except ODataError as exc:
                return self._error(400, str(exc), division)
        book = self.divisions[division]
        try:
            if request.method == "POST" and resource == "activities/CommunicationNotes":
                note = {"ID": new_guid(), **json.loads(request.content), "Division": division}
                book.notes.append(note)
                return self._ok({"d": note}, division, status=201)
            if resource == "/docs/SysAttachment.aspx":
                content = book.files[request.url.params["ID"]]
                return httpx.Response(
                    200, content=content, headers={"Content-Type": "application/pdf"}
                )
            sync_tables = {
                "sync/Cashflow/PaymentTerms": book.terms,
                "sync/Deleted": book.deleted,
                "sync/CRM/Accounts": book.accounts,
                "sync/CRM/Contacts": book.contacts,
            }
            if resource in sync_tables:
                return self._sync(request, division, sync_tables[resource], params)
            crud_tables = {
                "crm/Accounts": (book.accounts, True),
                "crm/Contacts": (book.contacts, True),
                "documents/Documents": (book.documents, True),
                "documents/DocumentAttachments": (book.attachments, True),
            }
            if resource == "documents/DocumentAttachments":  # Exact's Url is absolute
                origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
                for attachment in book.attachments.values():
                    if attachment["Url"].startswith("/"):
                        attachment["Url"] = origin + attachment["Url"]
            if resource in crud_tables:
                table, mandatory = crud_tables[resource]
                return self._crud(request, division, table, params, mandatory=mandatory)
        except ODataError as exc:
            return self._error(400, str(exc), division)
        return self._error(404, "Not found", division)

    def _sync(
        self,
        request: httpx.Request,
        division: int,
        table: dict[str, dict[str, Any]],
        params: dict[str, str],
    ) -> httpx.Response:
        if "$select" not in params:
            raise ODataError("Please add a $select statement to the query string")
        after = int(params.get("$skiptoken", "0L").removesuffix("L"))
        since = _SINCE.match(params.get("$filter", ""))
        if since:  # the usual filter, read without the general parser (the bench's pages)
            after = max(after, int(since.group(1)))
            params = {k: v for k, v in params.items() if k != "$filter"}
        rows = sorted(
            (r for r in table.values() if r["Timestamp"] > after), key=lambda r: r["Timestamp"]
        )
        rows = self._filtered(rows, params)
        return self._page(
            request, division, rows, self.sync_page, params, lambda r: f"{r['Timestamp']}L"
        )

    def _crud(
        self,
        request: httpx.Request,
        division: int,
        table: dict[str, dict[str, Any]],
        params: dict[str, str],
        *,
        mandatory: bool,
    ) -> httpx.Response:
        if mandatory and "$filter" not in params:
            raise ODataError(
                "This endpoint has mandatory filtering applied. A GET request for this "
                "endpoint must have a $filter parameter"
            )
        rows = sorted(table.values(), key=lambda r: str(r["ID"]))
        rows = self._filtered(rows, params)
        if "$skiptoken" in params:
            after = str(uuid.UUID(params["$skiptoken"][5:-1]))
            rows = [r for r in rows if str(r["ID"]) > after]
        return self._page(
            request, division, rows, self.crud_page, params, lambda r: f"guid'{r['ID']}'"
        )

    def _filtered(self, rows: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
        if "$filter" in params:
            fields = set(rows[0]) if rows else set()
            fields |= {"Timestamp", "ID", "Account", "Document", "FinancialTransactionEntryID"}
            predicate = parse_filter(params["$filter"], fields)
            rows = [r for r in rows if predicate(r)]
        if "$top" in params:
            rows = rows[: int(params["$top"])]
        return rows

    def _page(
        self,
        request: httpx.Request,
        division: int,
        rows: list[dict[str, Any]],
        size: int,
        params: dict[str, str],
        token: Callable[[dict[str, Any]], str],
    ) -> httpx.Response:
        chunk = rows[:size]
        body: dict[str, Any] = {"results": _select(chunk, params)}
        if len(rows) > size and "$top" not in params:
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$skiptoken"] = token(chunk[-1])
            body["__next"] = f"{request.url.copy_with(query=None)}?{urlencode(query)}"
        return self._ok({"d": body}, division)

    # -- limits and answers ----------------------------------------------------------------

    def _limit(self, division: int) -> httpx.Response | None:
        now = self.clock()
        starts = self._starts[division]
        starts.append(now)
        while starts and starts[0] <= now - 60:
            starts.popleft()
        self.max_per_minute[division] = max(self.max_per_minute[division], len(starts))
        minute_start = int(now // 60) * 60
        window, used = self._minute.get(division, (minute_start, 0))
        if window != minute_start:
            window, used = minute_start, 0
        day_start = int(now // 86400) * 86400
        day, spent = self._day.get(division, (day_start, 0))
        if day != day_start:
            day, spent = day_start, 0
        if spent >= self.budgets.get(division, self.daily):
            return self._error(429, "Too many requests (daily)", division, headers="daily")
        if used >= self.minutely:
            return self._error(429, "Too many requests", division, headers="minutely")
        self._minute[division] = (window, used + 1)
        self._day[division] = (day, spent + 1)
        return None

    def quota_headers(self, division: int | None, which: str = "both") -> dict[str, str]:
        if division is None:
            return {}
        now = self.clock()
        window, used = self._minute.get(division, (int(now // 60) * 60, 0))
        day, spent = self._day.get(division, (int(now // 86400) * 86400, 0))
        minutely = {
            "X-RateLimit-Minutely-Limit": str(self.minutely),
            "X-RateLimit-Minutely-Remaining": str(max(0, self.minutely - used)),
            "X-RateLimit-Minutely-Reset": str((window + 60) * 1000),
        }
        budget = self.budgets.get(division, self.daily)
        daily = {
            "X-RateLimit-Limit": str(budget),
            "X-RateLimit-Remaining": str(max(0, budget - spent)),
            "X-RateLimit-Reset": str((day + 86400) * 1000),
        }
        return {"minutely": minutely, "daily": daily}.get(which, {**minutely, **daily})

    def _ok(self, body: Any, division: int | None, *, status: int = 200) -> httpx.Response:
        content = json.dumps(body, default=_json_default).encode()
        headers = {"Content-Type": "application/json", **self.quota_headers(division)}
        return httpx.Response(status, content=content, headers=headers)

    def _error(
        self, status: int, message: str, division: int | None, *, headers: str = "both"
    ) -> httpx.Response:
        body = {"error": {"code": "", "message": {"lang": "", "value": message}}}
        return httpx.Response(
            status,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.quota_headers(division, headers)},
        )


def _select(rows: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    if "$select" not in params:
        return rows
    names = [n.strip() for n in params["$select"].split(",")]
    known = set().union(*(r.keys() for r in rows)) if rows else set(names)
    unknown = [n for n in names if n not in known and n not in _OPTIONAL]
    if unknown:
        raise ODataError(f"Property '{unknown[0]}' does not exist")
    return [{n: r.get(n) for n in names} for r in rows]


_OPTIONAL = frozenset(
    {"Email", "Phone", "AddressLine1", "AddressLine2", "Postcode", "City", "Country"}
    | {"Language", "VATNumber", "ChamberOfCommerce", "MainContact", "BusinessEmail"}
    | {"Mobile", "BusinessPhone", "DivisionMoveDate", "DivisionHRLinkUnlinkDate", "Status"}
    | {"PaymentReference", "DirectDebitMandate", "EntityKey", "EntityType"}
)
"""Fields every record of its entity has in Exact, even when the fake left them out."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
