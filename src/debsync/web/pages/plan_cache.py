"""Today's plan kept between page views, brought up to date debtor by debtor.

Planning a large book takes seconds; a person pages, sorts and searches the same plan many
times, while the book changes in small steps: a call outcome, an approval, a payment, a sync
with a few changed invoices. A plan depends on the store, the day, and which instances are too
stale to act on (:func:`debsync.planning.stale_instances`), and each debtor is planned on its
own. Every change to the books writes an event that names its debtor or its invoice (the sync
writer records each opened, changed and paid invoice; pauses, call outcomes and outbox
transitions are events). So the cache keeps the plan per debtor and re-plans only the debtors
new events name, and for an event on an invoice also the debtor that held it, so an invoice
moved to another debtor re-plans both. An instance whose staleness changed, an event that
names neither a debtor nor an open invoice (a pause on a whole administration, a purge), or
more than :data:`MAX_DEBTORS` debtors reached in one instance re-plan that instance; a new day
or a reloaded configuration the whole book. A warning (the interest table lacks a period)
stays shown until its instance or the book is planned whole again.

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
from debsync.store.reports import OPEN_OFF_INDEX, book_version, of_debtors
from debsync.store.schema import events, invoices
from debsync.web.pages.plan_items import PlanItem, PlanView, plan_view

WINDOW = 10_000
"""Events ids below the newest that are looked at again for late commits."""
MAX_DEBTORS = 1_000
"""Past this many debtors of one instance reached by a change, the instance is planned whole."""

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
            if kept is None or kept.config is not config or kept.day != day:
                kept = self._whole(config, store, now, day, stale)
            else:
                version = _version(store, kept.low)
                if version != kept.version or stale != kept.stale:
                    self._update(kept, store, now, version, stale)
            if kept.view is None:
                ordered = [a for debtor in sorted(kept.actions) for a in kept.actions[debtor]]
                warnings = sorted(kept.warnings)
                kept.view = plan_view(config, store, now, ordered, warnings, kept.items)
            self._kept = kept
            return kept.view

    def _whole(
        self, config: Config, store: Store, now: datetime, day: date, stale: frozenset[str]
    ) -> _Kept:
        event, run = book_version(store)
        low = max((event or 0) - WINDOW, 0)
        seen = {row[0] for row in _events_above(store, low)}
        version = (event, run, len(seen))
        plan = self._plan(config, store, now)
        kept = _Kept(config, day, stale, version, low, seen, {}, set(plan.warnings), {})
        _keep(kept, plan.actions)
        _own(kept, store)
        return kept

    def _update(
        self,
        kept: _Kept,
        store: Store,
        now: datetime,
        version: tuple[int | None, int | None, int],
        stale: frozenset[str],
    ) -> None:
        """Re-plan the debtors the events since the last look reach, and whole the instances
        whose staleness changed, that an instance-wide event reached, or where too many
        debtors were reached."""
        top = max(kept.seen, default=kept.low)
        fresh = _events_above(store, top)
        if version[2] != len(kept.seen) + len(fresh):  # some came in below the newest
            fresh = [row for row in _events_above(store, kept.low) if row[0] not in kept.seen]
        whole = set(stale ^ kept.stale)
        reached: dict[str, set[Debtor]] = defaultdict(set)
        for _, instance, debtor_id, invoice_id in fresh:
            if debtor_id is None and invoice_id is None:
                whole.add(instance)
            if debtor_id is not None:
                reached[instance].add((instance, debtor_id))
            if invoice_id is not None and (instance, invoice_id) in kept.owner:
                reached[instance].add((instance, kept.owner[(instance, invoice_id)]))
        whole |= {name for name, debtors in reached.items() if len(debtors) > MAX_DEBTORS}
        some = {d for name, debtors in reached.items() if name not in whole for d in debtors}
        kept.seen |= {row[0] for row in fresh}
        kept.stale = stale
        if whole:
            plan = self._plan(kept.config, store, now, instances=whole)
            _drop(kept, [d for d in kept.actions if d[0] in whole])
            _keep(kept, plan.actions)
            kept.warnings |= set(plan.warnings)
            _own(kept, store, instances=whole)
        if some:
            plan = self._plan(kept.config, store, now, debtors=some)
            _drop(kept, some)
            _keep(kept, plan.actions)
            kept.warnings |= set(plan.warnings)
            _own(kept, store, debtors=some)
        if whole or some:
            kept.view = None
        newest = version[0] or 0
        if newest - WINDOW > kept.low:
            kept.low = newest - WINDOW
            kept.seen = {i for i in kept.seen if i > kept.low}
        kept.version = (version[0], version[1], len(kept.seen))


def _version(store: Store, low: int) -> tuple[int | None, int | None, int]:
    """The newest event and sync run, and how many events lie above ``low``: a late commit
    below the newest id changes the count."""
    event, run = book_version(store)
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


def _drop(kept: _Kept, debtors: Iterable[Debtor]) -> None:
    for debtor in list(debtors):
        kept.actions.pop(debtor, None)


def _own(
    kept: _Kept,
    store: Store,
    *,
    debtors: Collection[Debtor] | None = None,
    instances: Collection[str] | None = None,
) -> None:
    """Which debtor holds each open invoice: of ``debtors``, of ``instances``, or of the
    whole book."""
    query = sa.select(invoices.c.instance, invoices.c.external_id, invoices.c.debtor_id)
    if debtors is not None:
        query = query.where(of_debtors(invoices, debtors), OPEN_OFF_INDEX)
        forget: Iterable[Debtor] = debtors
    else:
        query = query.where(invoices.c.state == "open")
        if instances is not None:
            query = query.where(invoices.c.instance.in_(sorted(instances)))
        forget = [d for d in kept.held if instances is None or d[0] in instances]
    for debtor in list(forget):
        for invoice_id in kept.held.pop(debtor, ()):
            kept.owner.pop((debtor[0], invoice_id), None)
    with store.engine.connect() as conn:
        for instance, invoice_id, debtor_id in conn.execute(query):
            kept.owner[(instance, invoice_id)] = debtor_id
            kept.held[(instance, debtor_id)].add(invoice_id)
