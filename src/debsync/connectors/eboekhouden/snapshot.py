"""One full snapshot of the REST API's open debtor items: the list, and the details only for
what the last sync did not already build.

An unchanged sync of N open items costs the session and ceil((N + 1) / limit) list calls: an
item whose fingerprint matches ``Previous`` is reported unchanged, a relation whose list entry
(id, code, company) matches is reported unchanged, and neither detail is fetched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from debsync.connectors.base import Page, Previous, RecordBuilder
from debsync.connectors.eboekhouden.mapping import (
    Fingerprints,
    ItemError,
    OpenItem,
    build_debtor,
    invoice_data,
    known_term,
    payment_term,
    rest_item,
)
from debsync.connectors.eboekhouden.rest import OUTSTANDING, RestApi
from debsync.connectors.eboekhouden.settings import EboekhoudenSettings
from debsync.connectors.http import FatalHttpError


class RestSnapshot:
    """Builds the pages of one snapshot; state lives for one ``fetch``."""

    def __init__(self, api: RestApi, settings: EboekhoudenSettings, previous: Previous) -> None:
        self.api = api
        self.settings = settings
        self.previous = previous
        self.fingerprints = Fingerprints(f"rest:{settings.default_payment_term_days}")
        self.builder = RecordBuilder()
        self.seen: set[str] = set()
        self.debtors: dict[str, bool] = {}
        """Relation id → whether it is usable (built, or unchanged) in this snapshot."""

    async def pages(self) -> AsyncIterator[Page]:
        limit = self.settings.page_size
        async for offset, items, last in self.api.pages(OUTSTANDING, {"credDeb": "D"}, limit=limit):
            for index, raw in enumerate(items):
                await self.item(raw, f"open item {offset + index + 1}")
            yield self.builder.page(cursor={"offset": offset}, snapshot_complete=last)

    async def item(self, raw: Any, position: str) -> None:
        builder = self.builder
        if not isinstance(raw, dict):
            builder.reject("row", position, "the open item is not an object")
            return
        try:
            item = rest_item(raw)
        except ItemError as exc:
            mutation = raw.get("mutationId")
            known = str(mutation) if isinstance(mutation, int) else None
            ref = f"mutation {known}" if known else position
            builder.reject("invoice", ref, str(exc), invoice_id=known)
            return
        if item.external_id in self.seen:  # offset paging under a changing list repeats one
            return
        self.seen.add(item.external_id)
        ref = f"mutation {item.external_id}"
        if not await self.debtor(item):
            builder.reject(
                "invoice",
                ref,
                f"relation {item.debtor_id} is unusable",
                invoice_id=item.external_id,
            )
            return
        previous = self.previous.invoices.get(item.external_id)
        term = known_term(previous, self.fingerprints, item)
        if term is not None and previous == self.fingerprints.invoice(item, term):
            builder.unchanged("invoice", item.external_id)
            return
        if term is None:
            term = await self.term(item, ref)
            if term is None:
                return
        try:
            data = invoice_data(item, term)
        except ItemError as exc:
            builder.reject("invoice", ref, str(exc), invoice_id=item.external_id)
            return
        builder.invoice(data, ref=ref, raw=self.fingerprints.invoice(item, term))

    async def term(self, item: OpenItem, ref: str) -> int | None:
        """The payment term from the mutation's detail, the one call a new item costs."""
        try:
            mutation = await self.api.get(f"v1/mutation/{item.external_id}")
        except FatalHttpError as exc:
            if exc.status != 404:
                raise
            self.builder.reject(
                "invoice", ref, "its mutation is not found (404)", invoice_id=item.external_id
            )
            return None
        default = self.settings.default_payment_term_days
        return payment_term(mutation if isinstance(mutation, dict) else {}, default)

    async def debtor(self, item: OpenItem) -> bool:
        """Make sure the item's relation is in this snapshot: unchanged, or fetched and built."""
        relation_id = item.debtor_id
        if relation_id in self.debtors:
            return self.debtors[relation_id]
        raw = self.fingerprints.debtor(item)
        if self.previous.debtors.get(relation_id) == raw:
            self.builder.unchanged("debtor", relation_id)
            self.debtors[relation_id] = True
            return True
        ref = f"relation {relation_id}"
        try:
            relation = await self.api.get(f"v1/relation/{relation_id}")
        except FatalHttpError as exc:
            if exc.status != 404:
                raise
            self.builder.reject("debtor", ref, "relation not found (404)")
            self.debtors[relation_id] = False
            return False
        debtor = build_debtor(
            self.builder,
            relation if isinstance(relation, dict) else {},
            external_id=relation_id,
            fallback_name=item.debtor_entry[2],
            ref=ref,
            raw=raw,
        )
        self.debtors[relation_id] = debtor is not None
        return debtor is not None
