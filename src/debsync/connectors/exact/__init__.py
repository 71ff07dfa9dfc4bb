"""The built-in ``exact`` connector: open receivables and their debtors from one or many
Exact Online divisions, incrementally through the Sync API.

The first sync is a full load of every division; later syncs read each division's changes
since its marks (:mod:`debsync.connectors.exact.division`). A division whose Timestamps were
regenerated (``DivisionMoveDate`` or ``DivisionHRLinkUnlinkDate`` moved in
``system/Divisions``), or that newly appears under ``divisions = "all"``, is loaded in full
again on its own. One JSON cursor holds every division's state. A division whose daily
budget is used up is skipped until its reset, said in ``debsync status``, while the others
carry on. Reference: ``docs/connectors/exact.md``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
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
from debsync.connectors.exact.api import DivisionApi, DivisionLimits, Tokens
from debsync.connectors.exact.division import Batch, DivisionState, DivisionSync
from debsync.connectors.exact.mapping import (
    Entry,
    debtor_data,
    fingerprint,
    invoice_data,
    key,
    main_contact,
    split_key,
)
from debsync.connectors.exact.oauth import ExactOAuth
from debsync.connectors.exact.odata import guid, results
from debsync.connectors.exact.settings import ExactSettings
from debsync.connectors.http import FatalHttpError, RetryableHttpError
from debsync.model import Invoice

__all__ = ["PAGE_SIZE", "ExactConnector", "ExactSettings", "debsync_register_connectors"]

log = logging.getLogger("debsync.connectors.exact")

PAGE_SIZE = 1000
"""Invoices per page handed to the sync engine."""

CURSOR_VERSION = 1


class ExactConnector(Connector[ExactSettings]):
    """Reads the open receivables of the configured divisions."""

    type_name: ClassVar[str] = "exact"
    Settings: ClassVar[type[ConnectorSettings]] = ExactSettings
    capabilities: ClassVar[frozenset[str]] = frozenset({"incremental", "documents", "notes"})

    def __init__(self, instance: str, settings: ExactSettings, context: ConnectorContext) -> None:
        super().__init__(instance, settings, context)
        self.tokens: Tokens = ExactOAuth(instance, settings, context)
        self.limits: dict[int | None, DivisionLimits] = {}
        """One set of quotas per division, kept for the life of the connector."""

    def _api(self, division: int | None) -> DivisionApi:
        return DivisionApi(
            name=f"exact {self.instance}",
            root=self.settings.api_root,
            division=division,
            tokens=self.tokens,
            http=self.context.http,
            limits=self.limits.setdefault(division, DivisionLimits()),
            secrets=[self.settings.client_secret.get_secret_value()],
        )

    def oauth(self) -> ExactOAuth:
        return ExactOAuth(self.instance, self.settings, self.context)

    def _now(self) -> datetime:
        return self.context.http.clock()

    # -- fetch -----------------------------------------------------------------------------

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        known = cursor if isinstance(cursor, dict) and cursor.get("v") == CURSOR_VERSION else None
        snapshot = known is None
        run = _Run(self, known or {"v": CURSOR_VERSION, "divisions": {}})
        await run.divisions(force=snapshot)
        codes = run.codes
        for index, division in enumerate(codes):
            last = index == len(codes) - 1
            async for page in run.division(division, snapshot=snapshot, last=last):
                yield page
        if not codes:  # no division can be read: what the store has stays as it is
            for external_id in self.previous.invoices:
                run.builder.unchanged("invoice", external_id)
            yield run.builder.page(cursor=run.cursor(), snapshot_complete=snapshot)

    # -- divisions, documents and notes ------------------------------------------------------

    async def system_divisions(
        self, anchor: int | None, select: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """``system/Divisions``: every division the token reaches, asked in ``anchor`` (the
        division in its URL is not checked), or in ``current/Me``'s ``CurrentDivision``
        when none is known yet; with the division asked in."""
        if anchor is None:
            async with self._api(None) as api:
                me = results(await api.body("current/Me", {"$select": "CurrentDivision"}))
            anchor = int(me[0]["CurrentDivision"])
        listed: list[dict[str, Any]] = []
        async with self._api(anchor) as api:
            async for records in api.pages("system/Divisions", {"$select": select}):
                listed.extend(records)
        return anchor, listed

    async def list_administrations(self) -> list[tuple[str, str]]:
        """The divisions the token reaches, as (code, description)."""
        _, listed = await self.system_divisions(None, "Code,Description")
        return [(str(d["Code"]), str(d.get("Description") or "")) for d in listed]

    async def fetch_document(self, invoice: Invoice) -> bytes | None:
        """The PDF attached to the sales entry's document, when Exact has one."""
        division, entry = split_key(invoice.external_id)
        host = httpx.URL(self.settings.api_root).host
        async with self._api(division) as api:
            documents = results(
                await api.body(
                    "documents/Documents",
                    {"$filter": f"FinancialTransactionEntryID eq {guid(entry)}", "$select": "ID"},
                )
            )
            for document in documents:
                attachments = results(
                    await api.body(
                        "documents/DocumentAttachments",
                        {
                            "$filter": f"Document eq {guid(str(document['ID']))}",
                            "$select": "ID,FileName,Url",
                        },
                    )
                )
                for attachment in attachments:
                    url = httpx.URL(str(attachment.get("Url") or ""))
                    pdf = str(attachment.get("FileName", "")).lower().endswith(".pdf")
                    if pdf and url.host == host:  # the bearer token goes to Exact only
                        response = await api.request("GET", str(url))
                        return response.content
        return None

    async def record_note(self, invoice: Invoice, text: str) -> None:
        """The step as a communication note on the invoice's account (``write_back``)."""
        if not self.settings.write_back:
            return
        division, account = split_key(invoice.debtor_id)
        subject = text.strip().splitlines()[0] if text.strip() else "debsync"
        body = {
            "Account": account,
            "Subject": f"{subject[:180]} ({invoice.number})",
            "Notes": text,
        }
        async with self._api(division) as api:
            await api.request("POST", "activities/CommunicationNotes", json=body)


class _Run:
    """One fetch: the division list, each division's batch, and the pages built from it."""

    def __init__(self, connector: ExactConnector, cursor: dict[str, Any]) -> None:
        self.connector = connector
        self.settings = connector.settings
        self.state: dict[str, Any] = {
            "v": CURSOR_VERSION,
            "divisions": dict(cursor.get("divisions", {})),
            "checked": cursor.get("checked"),
            "codes": cursor.get("codes"),
            "signals": cursor.get("signals", {}),
            "me": cursor.get("me"),
            "missing": cursor.get("missing", {}),
        }
        self.builder = RecordBuilder()
        self.codes: list[int] = []
        self.debtors: set[str] = set()

    def cursor(self) -> dict[str, Any]:
        return dict(self.state)

    async def divisions(self, *, force: bool) -> None:
        """The divisions to read and their resync signals, from ``system/Divisions`` at most
        every ``division_check_minutes`` (always for a full load)."""
        now = self.connector._now()
        checked = self.state.get("checked")
        interval = timedelta(minutes=self.settings.division_check_minutes)
        fresh = checked and now - datetime.fromisoformat(checked) < interval
        if force or not fresh or self.state.get("codes") is None:
            await self._list_divisions(now)
        self.codes = list(self.state["codes"])
        for name, reason in sorted(self.state.get("missing", {}).items()):
            self.builder.reject("row", f"division {name}", reason)

    async def _list_divisions(self, now: datetime) -> None:
        wanted = self.settings.divisions
        anchor = wanted[0] if isinstance(wanted, list) and wanted else self.state.get("me")
        self.state["me"], listed = await self.connector.system_divisions(
            anchor, "Code,Status,DivisionMoveDate,DivisionHRLinkUnlinkDate"
        )
        signals = {
            str(d["Code"]): f"{d.get('DivisionMoveDate')}|{d.get('DivisionHRLinkUnlinkDate')}"
            for d in listed
        }
        if isinstance(wanted, list):
            codes = list(wanted)
        else:
            codes = sorted(int(d["Code"]) for d in listed if d.get("Status", 1) == 1)
        missing = {
            str(code): f"division {code} is not among the divisions the authorisation "
            "reaches; its invoices are kept as last synced"
            for code in codes
            if str(code) not in signals
        }
        for name in self.state["divisions"].keys() - {str(c) for c in codes}:
            missing[name] = (
                f"division {name} was synced before and is no longer read; its invoices are "
                "kept as last synced (close them in Exact, or read the division again)"
            )
        self.state.update(
            codes=[c for c in codes if str(c) in signals],
            signals=signals,
            checked=now.isoformat(),
            missing=missing,
        )

    async def division(self, code: int, *, snapshot: bool, last: bool) -> AsyncIterator[Page]:
        """The pages of one division; its new state is in the cursor of its last page only,
        so a sync that stops midway reads the division again."""
        name = str(code)
        before_json = self.state["divisions"].get(name)
        before = DivisionState.from_json(before_json) if before_json else None
        signal = self.state["signals"].get(name)
        batch = await self._batch(code, before, signal, snapshot=snapshot)
        if batch is None:
            if snapshot:  # keep what the store has of a division skipped in a full load
                prefix = f"{code}:"
                for external_id in self.connector.previous.invoices:
                    if external_id.startswith(prefix):
                        self.builder.unchanged("invoice", external_id)
            if last:
                yield self.builder.page(cursor=self.cursor(), snapshot_complete=snapshot)
            return
        entries = sorted(batch.entries.items())
        for start in range(0, max(len(entries), 1), PAGE_SIZE):
            for entry_id, entry in entries[start : start + PAGE_SIZE]:
                if entry.account in batch.unknown:
                    self.builder.reject(
                        "invoice",
                        f"division {code} entry {entry_id}",
                        f"its account {entry.account} is not among the division's accounts",
                        invoice_id=key(code, entry_id),
                    )
                    continue
                self._debtor(code, batch, entry.account)
                self._invoice(code, entry_id, entry)
            final = start + PAGE_SIZE >= len(entries)
            if not final:
                yield self.builder.page(cursor=None if snapshot else self.cursor())
        for account in sorted(batch.accounts):
            self._debtor(code, batch, account)
        self.state["divisions"][name] = batch.state.to_json()
        if not last and not batch.closed and self._empty():
            return  # nothing to write: the next page carries this division's state
        page = self.builder.page(
            cursor=self.cursor() if last or not snapshot else None,
            snapshot_complete=snapshot and last,
        )
        page.closed = [key(code, e) for e in batch.closed]
        yield page

    async def _batch(
        self, code: int, before: DivisionState | None, signal: str | None, *, snapshot: bool
    ) -> Batch | None:
        """The division's batch, or ``None`` when it is skipped (its budget is used up, or
        Exact refused it while other divisions are read)."""
        limits = self.connector.limits.setdefault(code, DivisionLimits())
        now = self.connector._now()
        paused = before.paused_until if before else None
        if paused and now < datetime.fromisoformat(paused):
            self._paused(code, datetime.fromisoformat(paused))
            return None
        async with self.connector._api(code) as api:
            sync = DivisionSync(api)
            try:
                if snapshot or before is None or before.signal != signal:
                    batch = await sync.full(signal)
                    if before is not None:  # a resync: what it no longer lists is closed
                        batch.closed = sorted(before.ids() - batch.state.ids())
                    return batch
                return await sync.changes(before)
            except RetryableHttpError:
                reset = limits.daily_reset(self.connector._now())
                if reset is None:
                    raise
                self._paused(code, reset)
                kept = self.state["divisions"].get(str(code))
                kept = kept or DivisionState(signal=signal).to_json()
                self.state["divisions"][str(code)] = {**kept, "paused_until": reset.isoformat()}
                return None
            except FatalHttpError as exc:
                if len(self.codes) == 1:
                    raise
                self.builder.reject("row", f"division {code}", f"{exc}; the others carry on")
                return None

    def _empty(self) -> bool:
        built = self.builder
        return not (built.debtors or built.invoices or built.rejects or built.unchanged_invoices)

    def _paused(self, code: int, until: datetime) -> None:
        when = until.strftime("%Y-%m-%d %H:%M %Z").strip()
        self.builder.reject(
            "row",
            f"division {code}",
            f"the daily API budget of division {code} is used up until {when}; the division "
            "is synced again after the reset, the others carry on",
        )

    def _debtor(self, code: int, batch: Batch, account: str) -> None:
        external_id = key(code, account)
        raw_account = batch.accounts.get(account)
        if external_id in self.debtors or raw_account is None:
            return
        self.debtors.add(external_id)
        contact = main_contact(raw_account, batch.contacts.get(account, ()))
        raw = fingerprint(raw_account, contact, dict(sorted(self.settings.debtor_kinds.items())))
        if self.connector.previous.debtors.get(external_id) == raw:
            self.builder.unchanged("debtor", external_id)
            return
        data = debtor_data(code, raw_account, contact, self.settings.debtor_kinds)
        self.builder.debtor(data, ref=f"division {code} account {account}", raw=raw)

    def _invoice(self, code: int, entry_id: str, entry: Entry) -> None:
        external_id = key(code, entry_id)
        raw = fingerprint(*entry.state())
        if self.connector.previous.invoices.get(external_id) == raw:
            self.builder.unchanged("invoice", external_id)
            return
        ref = f"division {code} entry {entry_id}"
        try:
            data = invoice_data(code, entry_id, entry)
        except (ValueError, ArithmeticError) as exc:
            self.builder.reject("invoice", ref, str(exc)[:200], invoice_id=external_id)
            return
        self.builder.invoice(data, ref=ref, raw=raw)


@hookimpl
def debsync_register_connectors(register: Callable[[type[Connector[Any]]], None]) -> None:
    register(ExactConnector)
