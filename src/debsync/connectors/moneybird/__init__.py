"""The built-in ``moneybird`` connector: open sales invoices and their contacts from one
Moneybird administration (API v2), synced incrementally through the synchronization API.

A full snapshot pages through ``sales_invoices.json`` filtered on the open states with an
explicit wide ``period`` (Moneybird's default is ``this_year``). Its cursor keeps every open
invoice's and contact's ``version``; an incremental sync then asks the synchronization
endpoints for ids and versions (one call each), fetches only what changed by POSTing ids in
batches of :data:`SYNC_BATCH`, and closes invoices whose id left the open set. Reference:
``docs/connectors/moneybird.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar

import httpx

from debsync import hookimpl
from debsync.connectors.base import (
    JSON,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Page,
    RecordBuilder,
    WebhookRefused,
)
from debsync.connectors.http import (
    FatalHttpError,
    HeaderLimiter,
    HttpClient,
    PacingLimiter,
    RateLimiter,
    header_quota,
)
from debsync.connectors.moneybird import webhooks
from debsync.connectors.moneybird.mapping import (
    STATES,
    debtor_data,
    invoice_data,
    workflow_reminds,
)
from debsync.connectors.moneybird.oauth import MoneybirdOAuth
from debsync.connectors.moneybird.settings import MoneybirdSettings
from debsync.model import Invoice

__all__ = ["SYNC_BATCH", "MoneybirdConnector", "MoneybirdSettings", "debsync_register_connectors"]

SYNC_BATCH = 100
"""Ids per synchronization POST. Moneybird's reference documents no cap for the POST; 100 is
what its client libraries send and what the fake enforces, and it equals the ``per_page``
maximum of the lists."""


PACING_MARGIN = 1.0
"""Seconds added to Moneybird's window: its clock counts a call when it arrives, later than
the client started it, and ``RateLimit-Reset`` is whole seconds; without the margin the 151st
call can land a few milliseconds inside the window and get a 429."""


def moneybird_error(response: httpx.Response) -> str | None:
    """Moneybird's ``{"error": ...}`` may quote submitted data; only a short string is used."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) and len(error) <= 80 else None


class MoneybirdConnector(Connector[MoneybirdSettings]):
    """Reads one administration's open sales invoices; incremental by versions."""

    type_name: ClassVar[str] = "moneybird"
    Settings: ClassVar[type[ConnectorSettings]] = MoneybirdSettings
    capabilities: ClassVar[frozenset[str]] = frozenset({"incremental", "webhooks", "notes"})

    @property
    def _filter(self) -> str:
        return f"state:{'|'.join(STATES)},period:{self.settings.period}"

    def __init__(
        self, instance: str, settings: MoneybirdSettings, context: ConnectorContext
    ) -> None:
        super().__init__(instance, settings, context)
        # Moneybird allows 150 calls per 5 minutes per token and reports what is left.
        self.limiters: list[RateLimiter] = [
            PacingLimiter(150, per=300 + PACING_MARGIN),
            HeaderLimiter(
                header_quota("RateLimit-Remaining", "RateLimit-Reset", unit="epoch_s"),
                margin=PACING_MARGIN,
            ),
        ]
        self._oauth = MoneybirdOAuth(instance, settings, context) if settings.uses_oauth else None

    def oauth(self) -> MoneybirdOAuth | None:
        return self._oauth

    def _client(self) -> HttpClient:
        """A client with the personal token, or with the OAuth flow's bearer (a 401 gets one
        refresh and one more try)."""
        headers = {"Accept": "application/json"}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        return self.context.http.client(
            name=f"moneybird {self.instance}",
            base_url=f"{self.settings.base_url.rstrip('/')}/{self.settings.administration_id}/",
            headers=headers,
            auth=self._oauth.auth() if self._oauth is not None else None,
            limiters=self.limiters,
            secrets=[self.settings.token, self.settings.client_secret],
            error_detail=moneybird_error,
        )

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        async with self._client() as http:
            if isinstance(cursor, dict) and "invoices" in cursor:
                async for page in self._changes(http, cursor):
                    yield page
            else:
                async for page in self._snapshot(http):
                    yield page

    async def _snapshot(self, http: HttpClient) -> AsyncIterator[Page]:
        """Every open invoice, a page per API page; the last page carries the versions."""
        state = _State({}, {}, set())
        params = {"filter": self._filter, "per_page": self.settings.per_page, "page": 1}
        builder = RecordBuilder()
        seen: set[str] = set()
        pending: Page | None = None
        number = 0
        async for response in http.paginate("sales_invoices.json", params=params):
            number += 1
            if pending is not None:
                yield pending
            records = response.json()
            self._build(builder, records, state, seen)
            await self._pause(http, records, state)
            pending = builder.page(cursor={"snapshot_page": number})
        last = pending or builder.page(cursor=None)
        last.cursor = state.cursor()
        last.snapshot_complete = True
        yield last

    def _build(
        self, builder: RecordBuilder, records: list[dict[str, Any]], state: _State, seen: set[str]
    ) -> None:
        """Records of one batch of sales invoices, each embedded contact once per sync."""
        respect = self.settings.native_reminders == "respect"
        for raw in records:
            invoice_id = str(raw.get("id"))
            ref = f"sales invoice {invoice_id}"
            contact = raw.get("contact") or {}
            contact_id = str(raw.get("contact_id") or contact.get("id") or "")
            language = str(raw.get("language") or "nl")
            if contact_id and contact_id not in seen:
                seen.add(contact_id)
                builder.debtor(debtor_data(contact, language), ref=f"contact {contact_id}")
                state.contacts[contact_id] = [contact.get("version"), language]
            data = invoice_data(raw, reminded_by_source=respect and workflow_reminds(raw))
            if builder.invoice(data, ref=ref) is not None:
                state.invoices[invoice_id] = int(raw.get("version") or 0)

    async def _pause(self, http: HttpClient, records: list[dict[str, Any]], state: _State) -> None:
        """With ``native_reminders = "pause"``: pause Moneybird's reminders of each open
        invoice its workflow would remind, once (the cursor remembers it)."""
        if self.settings.native_reminders != "pause":
            return
        for raw in records:
            invoice_id = str(raw.get("id"))
            if (
                raw.get("state") in STATES
                and invoice_id not in state.paused
                and workflow_reminds(raw)
            ):
                try:
                    await http.request("POST", f"sales_invoices/{invoice_id}/pause.json")
                except FatalHttpError as exc:
                    if exc.status != 422:  # 422: already paused, which is what was wanted
                        raise
                state.paused.add(invoice_id)

    async def _changes(self, http: HttpClient, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        """What changed since ``cursor``: one GET per synchronization list, POSTs only for
        changed ids, and the ids that left the open set closed."""
        state = _State.of(cursor)
        listed = await http.get_json(
            "sales_invoices/synchronization.json", params={"filter": self._filter}
        )
        now = {str(item["id"]): int(item["version"]) for item in listed}
        gone = sorted(set(state.invoices) - set(now))
        changed = [i for i, version in now.items() if state.invoices.get(i) != version]
        for invoice_id in gone:
            del state.invoices[invoice_id]
            state.paused.discard(invoice_id)
        stale = await self._stale_contacts(http, state.contacts)
        builder = RecordBuilder()
        seen: set[str] = set()
        for start in range(0, len(changed), SYNC_BATCH):
            batch = changed[start : start + SYNC_BATCH]
            records = await self._post(http, "sales_invoices", batch)
            self._build(builder, records, state, seen)
            for raw in records:  # an id that left the open set between the two calls
                if raw.get("state") not in STATES:
                    state.invoices.pop(str(raw.get("id")), None)
            await self._pause(http, records, state)
            yield builder.page(cursor=state.cursor())
        for start in range(0, len(stale), SYNC_BATCH):
            records = await self._post(http, "contacts", stale[start : start + SYNC_BATCH])
            for contact in records:
                contact_id = str(contact.get("id"))
                language = state.contacts[contact_id][1]
                builder.debtor(debtor_data(contact, language), ref=f"contact {contact_id}")
                state.contacts[contact_id][0] = contact.get("version")
            yield builder.page(cursor=state.cursor())
        final = builder.page(cursor=state.cursor())
        final.closed = gone
        yield final

    async def _stale_contacts(self, http: HttpClient, contacts: dict[str, list[Any]]) -> list[str]:
        """Contacts of open invoices whose version moved; contacts of no open invoice are not
        asked for."""
        if not contacts:
            return []
        listed = await http.get_json("contacts/synchronization.json")
        versions = {str(item["id"]): item["version"] for item in listed}
        return [
            c for c, (version, _) in contacts.items() if c in versions and versions[c] != version
        ]

    async def _post(self, http: HttpClient, resource: str, ids: list[str]) -> list[dict[str, Any]]:
        response = await http.request(
            "POST", f"{resource}/synchronization.json", json={"ids": ids}, idempotent=True
        )
        records: list[dict[str, Any]] = response.json()
        return records

    # -- administrations -----------------------------------------------------------------

    async def list_administrations(self) -> list[tuple[str, str]]:
        """``(id, name)`` of every administration the token reaches, for ``debsync auth
        --list-administrations``."""
        async with self._client() as http:
            url = f"{self.settings.base_url.rstrip('/')}/administrations.json"
            listed = await http.get_json(url)
        return [(str(a.get("id")), str(a.get("name") or "")) for a in listed]

    # -- write-back ----------------------------------------------------------------------

    async def record_note(self, invoice: Invoice, text: str) -> None:
        """A note on the sales invoice (``POST sales_invoices/{id}/notes.json``)."""
        async with self._client() as http:
            await http.request(
                "POST",
                f"sales_invoices/{invoice.external_id}/notes.json",
                json={"note": {"note": text, "todo": False}},
            )

    async def record_handoff(self, invoice: Invoice) -> None:
        """With ``mark_dubious_on_handoff``: the sales invoice marked as dubious
        (``PATCH sales_invoices/{id}/mark_as_dubious.json``), dated today."""
        if not self.settings.mark_dubious_on_handoff:
            return
        today = self.context.clock().date().isoformat()
        async with self._client() as http:
            try:
                await http.request(
                    "PATCH",
                    f"sales_invoices/{invoice.external_id}/mark_as_dubious.json",
                    json={"date": today},
                )
            except FatalHttpError as exc:
                if exc.status != 422:  # 422: marked already (a retried write-back)
                    raise

    # -- webhooks ------------------------------------------------------------------------

    async def register_webhook(self, url: str) -> str:
        """``POST webhooks.json`` with the events of :data:`webhooks.EVENTS`; Moneybird
        returns the signing secret in this answer only."""
        async with self._client() as http:
            response = await http.request(
                "POST", "webhooks.json", json={"url": url, "enabled_events": list(webhooks.EVENTS)}
            )
        secret = response.json().get("secret")
        if not isinstance(secret, str) or not secret:
            raise WebhookRefused("Moneybird registered the webhook but returned no secret")
        return secret

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str:
        if self.settings.webhook_secret is None:
            raise WebhookRefused(f"instance {self.instance!r} has no webhook_secret configured")
        secret = self.settings.webhook_secret.get_secret_value()
        return webhooks.verify(headers, body, secret, self.context.clock())

    async def webhook_page(self, payload: Mapping[str, Any], cursor: JSON) -> Page | None:
        """A sales invoice or payment event as the invoice's state now (a payment's invoice
        is fetched: one call); a contact event as the debtor, for contacts of open invoices.
        An entity older than the version the last sync saw is stale and skipped."""
        state = _State.of(cursor) if isinstance(cursor, dict) and "invoices" in cursor else None
        entity = payload.get("entity")
        kind = payload.get("entity_type")
        if state is None or not isinstance(entity, dict):
            return None
        builder = RecordBuilder()
        if kind == "Contact":
            contact_id = str(entity.get("id"))
            if contact_id not in state.contacts:
                return None
            language = state.contacts[contact_id][1]
            builder.debtor(debtor_data(entity, language), ref=f"contact {contact_id}")
            return builder.page(cursor=None)
        if kind == "Payment" and entity.get("invoice_type") == "SalesInvoice":
            async with self._client() as http:
                found = await self._post(http, "sales_invoices", [str(entity.get("invoice_id"))])
            if not found:
                return None
            entity = found[0]
        elif kind != "SalesInvoice":
            return None
        invoice_id = str(entity.get("id"))
        if int(entity.get("version") or 0) < state.invoices.get(invoice_id, 0):
            return None
        if entity.get("state") not in STATES or str(payload.get("action")).endswith("destroyed"):
            page = builder.page(cursor=None)
            page.closed = [invoice_id]
            return page
        self._build(builder, [entity], state, set())
        return builder.page(cursor=None)


class _State:
    """What the cursor keeps: every open invoice's version, each contact's version and
    language, and the invoices whose Moneybird reminders debsync paused."""

    def __init__(
        self, invoices: dict[str, int], contacts: dict[str, list[Any]], paused: set[str]
    ) -> None:
        self.invoices = invoices
        self.contacts = contacts
        self.paused = paused

    @classmethod
    def of(cls, cursor: dict[str, Any]) -> _State:
        return cls(
            dict(cursor["invoices"]),
            {k: list(v) for k, v in cursor["contacts"].items()},
            set(cursor.get("paused") or ()),
        )

    def cursor(self) -> JSON:
        state: dict[str, JSON] = {
            "invoices": dict(self.invoices),
            "contacts": {k: list(v) for k, v in self.contacts.items()},
        }
        if self.paused:
            state["paused"] = sorted(self.paused)  # type: ignore[assignment]
        return state


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(MoneybirdConnector)
