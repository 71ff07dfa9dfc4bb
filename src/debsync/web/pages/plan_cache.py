"""Today's plan kept between page views, brought up to date debtor by debtor.

Planning a large book takes seconds; a person pages, sorts and searches the same plan many
times, while the book changes in small steps: a call outcome, an approval, a payment, a sync
with a few changed invoices. A plan depends on the store, the day, and which instances are too
stale to act on (:func:`debsync.planning.stale_instances`), and each debtor is planned on its
own. Every change to the books writes an event that names its debtor or its invoice (the sync
writer records each opened, changed and paid invoice; pauses, call outcomes and outbox
transitions are events). So the cache keeps the plan per debtor and re-plans only the debtors
new events name, and for an event on an invoice also the debtor that held it, so an invoice
moved to another debtor re-plans both. A new day, a change in staleness, a reloaded
configuration, an event that names neither a debtor nor an open invoice (an instance-wide
pause, a purge), or more than :data:`MAX_DEBTORS` debtors reached plan the whole book again.
A warning (the interest table lacks a period) stays shown until then.

New events are those above a window of :data:`WINDOW` ids below the newest; the ids inside it
are kept, so an event committed after a newer one (concurrent writers on PostgreSQL) is still
found, as long as fewer than ``WINDOW`` newer events came first.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from debsync.clock import local_date
from debsync.config import Config
from debsync.decisions import Plan, PlannedAction
from debsync.planning import plan_from_store, stale_instances
from debsync.store import Store
from debsync.store.reports import book_version, open_invoices_of
from debsync.store.schema import events, invoices
from debsync.web.pages.plan_items import PlanItem, PlanView, plan_view

WINDOW = 10_000
"""Events ids below the newest that are looked at again for late commits."""
MAX_DEBTORS = 1_000
"""Past this many debtors reached by a change, the whole book is planned again."""

Debtor = tuple[str, str]
Planner = Callable[..., Plan]
""":func:`debsync.planning.plan_from_store`, or a stand-in with its signature (tests)."""


@dataclass
class _Kept:
    """The plan of one configuration on one day, and what it was made from."""

    config: Config
    day: date
    stale: frozenset[str]
    version: tuple[int | None, int | None, int]  # newest event, newest run, events in window
    low: int  # the events with a higher id are in ``seen``
    seen: set[int]
    actions: dict[Debtor, list[PlannedAction]]
    warnings: set[str]
    owner: dict[tuple[str, str], str]  # (instance, open invoice) -> its debtor
    held: dict[Debtor, set[str]] = field(default_factory=lambda: defaultdict(set))
    view: PlanView | None = None
    items: dict[int, tuple[PlannedAction, PlanItem]] = field(default_factory=dict)


class PlanCache:
    """One plan per console; concurrent views of a stale plan wait for one computation."""

    def __init__(self, planner: Planner = plan_from_store):
        self._plan = planner
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    def get(self, config: Config, store: Store, now: datetime) -> PlanView:
        with self._lock:
            day, stale = local_date(now), stale_instances(config, store, now)
            kept = self._kept
            if kept is None or kept.config is not config or (kept.day, kept.stale) != (day, stale):
                kept = self._whole(config, store, now, day, stale)
            else:
                version = _version(store, kept.low)
                if version != kept.version:
                    kept = self._update(kept, store, now, version)
            if kept.view is None:
                ordered = [a for debtor in sorted(kept.actions) for a in kept.actions[debtor]]
                warnings = sorted(kept.warnings)
                kept.view = plan_view(config, store, now, ordered, warnings, kept.items)
            self._kept = kept
            return kept.view

    def _whole(
        self, config: Config, store: Store, now: datetime, day: date, stale: frozenset[str]
    ) -> _Kept:
        version = _version(store, None)
        low = max((version[0] or 0) - WINDOW, 0)
        seen = {row[0] for row in _events_above(store, low)}
        version = (version[0], version[1], len(seen))
        plan = self._plan(config, store, now)
        kept = _Kept(config, day, stale, version, low, seen, {}, set(plan.warnings), {})
        _keep(kept, plan.actions)
        _own(kept, store, None)
        return kept

    def _update(
        self, kept: _Kept, store: Store, now: datetime, version: tuple[int | None, int | None, int]
    ) -> _Kept:
        """Re-plan the debtors the events since the last look reach (the whole book when
        they reach too many or cannot be placed)."""
        top = max(kept.seen, default=kept.low)
        fresh = _events_above(store, top)
        if version[2] != len(kept.seen) + len(fresh):  # some came in below the newest
            fresh = [row for row in _events_above(store, kept.low) if row[0] not in kept.seen]
        reached: set[Debtor] = set()
        for _, instance, debtor_id, invoice_id in fresh:
            if debtor_id is None and invoice_id is None:
                return self._whole(kept.config, store, now, kept.day, kept.stale)
            if debtor_id is not None:
                reached.add((instance, debtor_id))
            if invoice_id is not None and (instance, invoice_id) in kept.owner:
                reached.add((instance, kept.owner[(instance, invoice_id)]))
        if len(reached) > MAX_DEBTORS:
            return self._whole(kept.config, store, now, kept.day, kept.stale)
        kept.seen |= {row[0] for row in fresh}
        if reached:
            plan = self._plan(kept.config, store, now, debtors=reached)
            for debtor in reached:
                kept.actions.pop(debtor, None)
            _keep(kept, plan.actions)
            kept.warnings |= set(plan.warnings)
            _own(kept, store, reached)
            kept.view = None
        newest = version[0] or 0
        if newest - WINDOW > kept.low:
            kept.low = newest - WINDOW
            kept.seen = {i for i in kept.seen if i > kept.low}
        kept.version = (version[0], version[1], len(kept.seen))
        return kept


def _version(store: Store, low: int | None) -> tuple[int | None, int | None, int]:
    """The newest event and sync run, and how many events lie above ``low``: a late commit
    below the newest id changes the count."""
    event, run = book_version(store)
    if low is None:
        return event, run, 0
    with store.engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(events).where(events.c.id > low)
        ).scalar_one()
    return event, run, int(count)


def _events_above(store: Store, low: int) -> list[tuple[int, str, str | None, str | None]]:
    query = sa.select(events.c.id, events.c.instance, events.c.debtor_id, events.c.invoice_id)
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query.where(events.c.id > low))]


def _keep(kept: _Kept, actions: Iterable[PlannedAction]) -> None:
    for action in actions:
        kept.actions.setdefault((action.instance, action.debtor_id), []).append(action)


def _own(kept: _Kept, store: Store, debtors: Collection[Debtor] | None) -> None:
    """Which debtor holds each open invoice (of ``debtors``, or of the whole book)."""
    query = sa.select(invoices.c.instance, invoices.c.external_id, invoices.c.debtor_id)
    if debtors is None:
        query = query.where(invoices.c.state == "open")
    else:
        query = query.where(open_invoices_of(debtors))
        for debtor in debtors:
            for invoice_id in kept.held.pop(debtor, ()):
                kept.owner.pop((debtor[0], invoice_id), None)
    with store.engine.connect() as conn:
        for instance, invoice_id, debtor_id in conn.execute(query):
            kept.owner[(instance, invoice_id)] = debtor_id
            kept.held[(instance, debtor_id)].add(invoice_id)
