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

from collections.abc import AsyncIterator, Callable
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
)
from debsync.connectors.http import (
    HeaderLimiter,
    HttpClient,
    PacingLimiter,
    RateLimiter,
    header_quota,
)
from debsync.connectors.moneybird.mapping import STATES, debtor_data, invoice_data
from debsync.connectors.moneybird.settings import MoneybirdSettings

__all__ = ["SYNC_BATCH", "MoneybirdConnector", "MoneybirdSettings", "debsync_register_connectors"]

SYNC_BATCH = 100
"""Ids per synchronization POST: the cap Moneybird's clients use and its fake enforces."""


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
    capabilities: ClassVar[frozenset[str]] = frozenset({"incremental"})

    @property
    def _filter(self) -> str:
        return f"state:{'|'.join(STATES)},period:{self.settings.period}"

    def __init__(
        self, instance: str, settings: MoneybirdSettings, context: ConnectorContext
    ) -> None:
        super().__init__(instance, settings, context)
        # Moneybird allows 150 calls per 5 minutes per token and reports what is left.
        self.limiters: list[RateLimiter] = [
            PacingLimiter(150, per=300),
            HeaderLimiter(header_quota("RateLimit-Remaining", "RateLimit-Reset", unit="epoch_s")),
        ]

    def _client(self) -> HttpClient:
        token = self.settings.token.get_secret_value()
        return self.context.http.client(
            name=f"moneybird {self.instance}",
            base_url=f"{self.settings.base_url.rstrip('/')}/{self.settings.administration_id}/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            limiters=self.limiters,
            secrets=[token],
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
        invoices: dict[str, int] = {}
        contacts: dict[str, list[Any]] = {}
        params = {"filter": self._filter, "per_page": self.settings.per_page, "page": 1}
        builder = RecordBuilder()
        seen: set[str] = set()
        pending: Page | None = None
        number = 0
        async for response in http.paginate("sales_invoices.json", params=params):
            number += 1
            if pending is not None:
                yield pending
            self._build(builder, response.json(), invoices, contacts, seen)
            pending = builder.page(cursor={"snapshot_page": number})
        last = pending or builder.page(cursor=None)
        last.cursor = {"invoices": invoices, "contacts": contacts}  # type: ignore[dict-item]
        last.snapshot_complete = True
        yield last

    def _build(
        self,
        builder: RecordBuilder,
        records: list[dict[str, Any]],
        invoices: dict[str, int],
        contacts: dict[str, list[Any]],
        seen: set[str],
    ) -> None:
        """Records of one batch of sales invoices, each embedded contact once per sync."""
        for raw in records:
            invoice_id = str(raw.get("id"))
            ref = f"sales invoice {invoice_id}"
            contact = raw.get("contact") or {}
            contact_id = str(raw.get("contact_id") or contact.get("id") or "")
            language = str(raw.get("language") or "nl")
            if contact_id and contact_id not in seen:
                seen.add(contact_id)
                builder.debtor(debtor_data(contact, language), ref=f"contact {contact_id}")
                contacts[contact_id] = [contact.get("version"), language]
            if builder.invoice(invoice_data(raw), ref=ref) is not None:
                invoices[invoice_id] = int(raw.get("version") or 0)

    async def _changes(self, http: HttpClient, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        """What changed since ``cursor``: one GET per synchronization list, POSTs only for
        changed ids, and the ids that left the open set closed."""
        known: dict[str, int] = dict(cursor["invoices"])
        contacts: dict[str, list[Any]] = {k: list(v) for k, v in cursor["contacts"].items()}
        listed = await http.get_json(
            "sales_invoices/synchronization.json", params={"filter": self._filter}
        )
        now = {str(item["id"]): int(item["version"]) for item in listed}
        gone = sorted(set(known) - set(now))
        changed = [i for i, version in now.items() if known.get(i) != version]
        for invoice_id in gone:
            del known[invoice_id]
        stale = await self._stale_contacts(http, contacts)
        builder = RecordBuilder()
        seen: set[str] = set()

        def state() -> JSON:
            return {"invoices": dict(known), "contacts": {k: list(v) for k, v in contacts.items()}}

        for start in range(0, len(changed), SYNC_BATCH):
            batch = changed[start : start + SYNC_BATCH]
            records = await self._post(http, "sales_invoices", batch)
            self._build(builder, records, known, contacts, seen)
            for raw in records:  # an id that left the open set between the two calls
                if raw.get("state") not in STATES:
                    known.pop(str(raw.get("id")), None)
            yield builder.page(cursor=state())
        for start in range(0, len(stale), SYNC_BATCH):
            records = await self._post(http, "contacts", stale[start : start + SYNC_BATCH])
            for contact in records:
                contact_id = str(contact.get("id"))
                language = contacts[contact_id][1]
                builder.debtor(debtor_data(contact, language), ref=f"contact {contact_id}")
                contacts[contact_id][0] = contact.get("version")
            yield builder.page(cursor=state())
        final = builder.page(cursor=state())
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


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(MoneybirdConnector)
