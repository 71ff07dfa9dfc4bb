"""What the work pages' lists share: finding debtors by what a person types (a name, a
debtor number or an invoice number), the debtors' names for rows that carry only their ids,
and paging and sorting the lists held in Python with :mod:`debsync.web.listing`'s parameters.

One search for the plan, the outbox, the call list and the debtors, so a number found on one
page is found on the others."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import sqlalchemy as sa

from debsync.facts import Pause
from debsync.store import Store
from debsync.store.schema import debtors, invoices
from debsync.web.listing import Listing, ListSpec, Page, equals

T = TypeVar("T")

CHUNK = 5000
"""Ids bound in one ``IN``: well below SQLite's and PostgreSQL's limits on parameters."""
DebtorRef = tuple[str, str]
"""(connector instance, debtor external id)."""


def matching(query: str) -> sa.CompoundSelect[Any]:
    """The debtors whose name or number contains ``query``, or who have an invoice whose
    number contains it (case-insensitive): a select for ``IN``."""
    pattern = f"%{query.strip().lower()}%"
    by_debtor = sa.select(debtors.c.instance, debtors.c.external_id).where(
        sa.or_(
            sa.func.lower(debtors.c.name).like(pattern),
            sa.func.lower(debtors.c.external_id).like(pattern),
        )
    )
    by_invoice = sa.select(invoices.c.instance, invoices.c.debtor_id).where(
        sa.func.lower(invoices.c.number).like(pattern)
    )
    return sa.union(by_debtor, by_invoice)


def matching_debtors(store: Store, query: str) -> set[DebtorRef]:
    with store.engine.connect() as conn:
        return {(str(row[0]), str(row[1])) for row in conn.execute(matching(query))}


def debtor_names(store: Store, refs: Iterable[DebtorRef]) -> dict[DebtorRef, str]:
    """Names of the given debtors, looked up per instance by an ``IN`` on their ids, in
    chunks (SQLite scans the whole table for a row-value ``IN``)."""
    by_instance: dict[str, set[str]] = {}
    for instance, debtor_id in refs:
        by_instance.setdefault(instance, set()).add(debtor_id)
    names: dict[DebtorRef, str] = {}
    with store.engine.connect() as conn:
        for instance, ids in by_instance.items():
            wanted = sorted(ids)
            for start in range(0, len(wanted), CHUNK):
                found = conn.execute(
                    sa.select(debtors.c.external_id, debtors.c.name).where(
                        debtors.c.instance == instance,
                        debtors.c.external_id.in_(wanted[start : start + CHUNK]),
                    )
                )
                names.update({(instance, str(d)): str(name) for d, name in found})
    return names


def reaches(pause: Pause, instance: str, debtor_id: str, invoice_ids: set[str]) -> bool:
    """Whether ``pause`` holds anything of this debtor (one of ``invoice_ids``, the debtor or
    the whole instance)."""
    if pause.instance != instance:
        return False
    if pause.scope == "invoice":
        return pause.target in invoice_ids
    return pause.scope == "instance" or pause.target == debtor_id


def python_spec(
    sorts: Sequence[str], default_sort: str, filters: Sequence[str] = (), **options: Any
) -> ListSpec:
    """A :class:`ListSpec` for a list held in Python (the plan, the call list): its names
    are checked as for SQL, and :func:`paged` sorts, filters and pages with them."""
    return ListSpec(
        sorts={name: sa.column(name) for name in sorts},
        default_sort=default_sort,
        filters={name: equals(sa.column(name)) for name in filters},
        **options,
    )


def paged(listing: Listing, items: Sequence[T], keys: Mapping[str, Callable[[T], Any]]) -> Page:
    """One page of ``items`` sorted by the listing's column (``keys[sort]``), stable, so
    equal rows keep their order; the filters are the caller's to apply first."""
    ordered = sorted(items, key=keys[listing.sort], reverse=listing.descending)
    per_page = listing.spec.per_page
    pages = max(1, math.ceil(len(ordered) / per_page))
    page = min(listing.page, pages)
    if page != listing.page:
        listing = replace(listing, page=page, params={**listing.params, "page": str(page)})
    start = (page - 1) * per_page
    return Page(listing, list(ordered[start : start + per_page]), len(ordered))


WORK_MESSAGES: dict[str, tuple[str, str]] = {
    "work.debtor": ("Debiteur", "Debtor"),
    "work.step": ("Stap", "Step"),
    "work.channel": ("Kanaal", "Channel"),
    "work.invoices": ("Facturen", "Invoices"),
    "work.principal": ("Hoofdsom", "Principal"),
    "work.interest": ("Rente", "Interest"),
    "work.costs": ("Kosten", "Costs"),
    "work.deadline": ("Betalen vóór", "Pay by"),
    "work.state": ("Status", "State"),
    "work.all": ("Alle", "All"),
    "work.search_label": (
        "Zoek op naam, debiteurnummer of factuurnummer",
        "Search by name, debtor number or invoice number",
    ),
    "work.approval": ("akkoord nodig", "needs approval"),
    "work.state.planned": ("ingepland", "queued"),
    "work.state.awaiting_approval": ("wacht op akkoord", "awaiting approval"),
    "work.state.approved": ("akkoord gegeven", "approved"),
    "work.state.not_queued": ("nog niet ingepland", "not queued yet"),
    "work.state.sending": ("wordt verstuurd", "sending"),
    "work.state.sent": ("verstuurd", "sent"),
    "work.state.failed": ("mislukt, volgt opnieuw", "failed, will retry"),
    "work.state.dead": ("opgegeven", "given up"),
    "work.state.cancelled": ("geannuleerd", "cancelled"),
    "work.state.in_doubt": ("onzeker of aangekomen", "in doubt"),
    "work.decision.approve": ("akkoord gegeven", "approved"),
    "work.decision.reject": ("afgewezen", "rejected"),
    "work.decision.hold": ("aangehouden", "held"),
    "work.decision.confirm": ("als verstuurd vastgelegd", "recorded as sent"),
    "work.decision.resend": ("wordt opnieuw verstuurd", "will be sent again"),
    "work.warnings": ("Let op", "Please note"),
    "work.done": ("{count} actie(s) verwerkt: {decision}.", "{count} action(s) done: {decision}."),
    "work.refused": ("Niet verwerkt", "Not done"),
}
"""Texts the work pages share; each page module registers them with its own."""
