"""One division through the Sync API: a full load, or the changes since its marks.

Each sync endpoint is read with ``$filter=Timestamp gt {mark}L`` and its highest
``Timestamp`` becomes the next mark: ``sync/Cashflow/PaymentTerms`` (receivable rows only),
``sync/Deleted``, ``sync/CRM/Accounts`` and ``sync/CRM/Contacts``. An unchanged division
therefore costs four calls. The division's open entries (row ids and open amounts) live in
its cursor, because a change to one row of a split receivable needs the others to know what
is still open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from debsync.connectors.exact.api import DivisionApi
from debsync.connectors.exact.mapping import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    RECEIPT,
    TERM_FIELDS,
    Entry,
)
from debsync.connectors.exact.odata import guid, int64

ENDPOINTS = {
    "deleted": ("sync/Deleted", "Timestamp,EntityKey,EntityType"),
    "accounts": ("sync/CRM/Accounts", ACCOUNT_FIELDS),
    "contacts": ("sync/CRM/Contacts", CONTACT_FIELDS),
    "terms": ("sync/Cashflow/PaymentTerms", TERM_FIELDS),
}
"""Read in this order: the deletion log first, so a row deleted while the terms are read
is in the next sync's log."""

DELETED_TERM = 10
"""``sync/Deleted`` ``EntityType`` of a payment term."""

BY_ID_BATCH = 20
"""Ids per ``or`` filter when fetching accounts or contacts by key (CRUD pages hold 60)."""

FIRST = 0
"""``Timestamp gt 0L``: everything (a full load; a regenerated division starts at 1)."""


def _id(value: Any) -> str:
    return str(value or "").strip().lower()


@dataclass
class DivisionState:
    """What the cursor keeps per division."""

    marks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, FIRST))
    entries: dict[str, Entry] = field(default_factory=dict)
    """Open entries (invoices) by ``TransactionEntryID``, looked into or changed."""
    signal: str | None = None
    """The resync signal last seen in ``system/Divisions``."""
    paused_until: str | None = None
    """ISO time the daily budget resets, while it is used up."""
    stored: dict[str, list[Any]] = field(default_factory=dict)
    """Open entries still in the cursor's JSON form: an unchanged division converts none."""

    def to_json(self) -> dict[str, Any]:
        entries = dict(self.stored)
        entries.update((k, e.state()) for k, e in self.entries.items())
        return {
            "marks": dict(self.marks),
            "entries": entries,
            "signal": self.signal,
            "paused_until": self.paused_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DivisionState:
        return cls(
            marks={**dict.fromkeys(ENDPOINTS, FIRST), **data.get("marks", {})},
            signal=data.get("signal"),
            paused_until=data.get("paused_until"),
            stored=dict(data.get("entries", {})),
        )

    def entry(self, entry_id: str) -> Entry | None:
        """The open entry ``entry_id``, taken out of its JSON form."""
        if entry_id in self.stored:
            self.entries[entry_id] = Entry.from_state(self.stored.pop(entry_id))
        return self.entries.get(entry_id)

    def ids(self) -> set[str]:
        return self.entries.keys() | self.stored.keys()

    def accounts(self) -> set[str]:
        """Accounts with an open entry."""
        found = {e.account for e in self.entries.values()}
        return found | {_id(state[0].get("Account")) for state in self.stored.values()}


@dataclass
class Batch:
    """What one division sync yields: open entries to write, the accounts (with their
    contacts) to write as debtors, and entries that left the open set."""

    state: DivisionState
    entries: dict[str, Entry]
    accounts: dict[str, dict[str, Any]]
    contacts: dict[str, list[dict[str, Any]]]
    closed: list[str] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    """Accounts the open entries name that Exact does not return: their invoices have no
    debtor and are rejected."""


class DivisionSync:
    """Reads one division through ``api``."""

    def __init__(self, api: DivisionApi) -> None:
        self.api = api

    async def _read(self, name: str, marks: dict[str, int]) -> list[dict[str, Any]]:
        path, select = ENDPOINTS[name]
        params = {"$filter": f"Timestamp gt {int64(marks[name])}", "$select": select}
        found: list[dict[str, Any]] = []
        async for records in self.api.pages(path, params):
            found.extend(records)
        stamps = [int(r["Timestamp"]) for r in found if r.get("Timestamp") is not None]
        marks[name] = max([marks[name], *stamps])
        return found

    async def full(self, signal: str | None) -> Batch:
        """Every open receivable of the division, and the accounts they belong to."""
        state = DivisionState(signal=signal)
        await self._read("deleted", state.marks)
        accounts = {_id(a.get("ID")): a for a in await self._read("accounts", state.marks)}
        contacts = _by_account(await self._read("contacts", state.marks))
        for row in await self._read("terms", state.marks):
            if row.get("LineType") != RECEIPT:
                continue
            entry_id = _id(row.get("TransactionEntryID"))
            entry = state.entries.get(entry_id) or Entry()
            entry.apply(row)
            state.entries[entry_id] = entry
        state.entries = {k: e for k, e in state.entries.items() if e.owed}
        wanted = state.accounts()
        return Batch(
            state,
            dict(state.entries),
            {a: accounts[a] for a in wanted if a in accounts},
            {a: contacts.get(a, []) for a in wanted},
            unknown=wanted - accounts.keys(),
        )

    async def changes(self, before: DivisionState) -> Batch:
        """What changed since ``before``'s marks: changed open entries, closed ones, and
        the debtors whose account or contacts changed (or who owe a first invoice).
        ``before``'s entries are updated in place."""
        state = DivisionState(
            dict(before.marks), before.entries, before.signal, stored=before.stored
        )
        was_open = state.ids()
        deleted = {
            _id(d.get("EntityKey"))
            for d in await self._read("deleted", state.marks)
            if d.get("EntityType") == DELETED_TERM
        }
        changed_accounts = {_id(a.get("ID")): a for a in await self._read("accounts", state.marks)}
        changed_contacts = _by_account(await self._read("contacts", state.marks))
        rows = [r for r in await self._read("terms", state.marks) if r.get("LineType") == RECEIPT]
        known_accounts = state.accounts() if rows else set()
        touched: set[str] = set()
        if deleted:
            hit = [k for k, v in state.stored.items() if deleted & v[1].keys()]
            hit += [k for k, e in state.entries.items() if deleted & e.row_ids()]
            for entry_id in hit:
                entry = state.entry(entry_id)
                assert entry is not None
                entry.drop(deleted)
                touched.add(entry_id)
        for row in rows:
            entry_id = _id(row.get("TransactionEntryID"))
            entry = state.entry(entry_id) or state.entries.setdefault(entry_id, Entry())
            entry.apply(row)
            touched.add(entry_id)
        closed = sorted(e for e in touched if not state.entries[e].owed and e in was_open)
        for entry_id in touched:
            if not state.entries[entry_id].owed:
                del state.entries[entry_id]
        changed = changed_accounts.keys() | changed_contacts.keys()
        first = {state.entries[e].account for e in touched if e in state.entries}
        wanted = (changed & state.accounts() if changed else set()) | (first - known_accounts)
        accounts = {a: changed_accounts[a] for a in wanted if a in changed_accounts}
        missing = wanted - accounts.keys()
        accounts.update(await self._by_id("crm/Accounts", "ID", ACCOUNT_FIELDS, missing))
        contacts = await self._contacts(accounts, changed_contacts)
        entries = {e: state.entries[e] for e in touched if e in state.entries}
        unknown = (first - known_accounts) - accounts.keys()
        return Batch(state, entries, accounts, contacts, closed, unknown=unknown)

    async def _contacts(
        self,
        accounts: dict[str, dict[str, Any]],
        changed: dict[str, list[dict[str, Any]]],
    ) -> dict[str, list[dict[str, Any]]]:
        """The contacts each account's debtor needs: its main contact when it is among the
        changed ones, otherwise all its contacts, fetched."""
        need = {
            a
            for a, account in accounts.items()
            if _id(account.get("MainContact")) not in {_id(c.get("ID")) for c in changed.get(a, [])}
        }
        fetched = _by_account(await self._fetch_by("crm/Contacts", "Account", CONTACT_FIELDS, need))
        return {a: fetched.get(a, []) if a in need else changed[a] for a in accounts}

    async def _by_id(
        self, path: str, name: str, select: str, ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        return {_id(r.get("ID")): r for r in await self._fetch_by(path, name, select, ids)}

    async def _fetch_by(
        self, path: str, name: str, select: str, ids: Iterable[str]
    ) -> list[dict[str, Any]]:
        """Records whose ``name`` is one of ``ids``, ``BY_ID_BATCH`` per ``or`` filter."""
        wanted = sorted(ids)
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BY_ID_BATCH):
            batch = wanted[start : start + BY_ID_BATCH]
            text = " or ".join(f"{name} eq {guid(i)}" for i in batch)
            async for records in self.api.pages(path, {"$filter": text, "$select": select}):
                found.extend(records)
        return found


def _by_account(contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for contact in contacts:
        grouped.setdefault(_id(contact.get("Account")), []).append(contact)
    return grouped
