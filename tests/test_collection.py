"""Collection by others: invoices the bookkeeping program reminds itself, direct debits under
way and failed (storno), carried from the model through the store into the plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from debsync.decisions import Reason, explain
from debsync.planning import load_snapshot
from debsync.policy import default_policy
from debsync.scheduler import plan
from debsync.store import Store
from debsync.store.schema import EventKind, events, invoices
from debsync.sync import SyncEngine

from fakes import INSTANCE, FakeConnector, debtor, invoice, snapshot

POLICIES = {"default": default_policy()}


def sync(store: Store, clock: Any, *records: Any) -> None:
    pages = snapshot(*records, debtors=(debtor(),))
    assert asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, FakeConnector(pages))).ok


def planned(store: Store, now: datetime) -> dict[str, Any]:
    loaded = load_snapshot(store, {"books": "default"}, sources={"books": "moneybird"})
    result = plan(loaded, POLICIES, now, check_freshness=False)
    return {d.number: d for d in result.decisions}


def test_reminded_by_source_is_left_to_the_source_with_its_reason(store: Store, clock: Any) -> None:
    own = invoice("F1").model_copy(update={"reminded_by_source": True})
    sync(store, clock, own, invoice("F2"))

    decisions = planned(store, clock.now + timedelta(days=30))

    assert decisions["F1"].reason is Reason.SOURCE_REMINDS
    assert "left to moneybird's own reminders" in explain(decisions["F1"])
    assert decisions["F2"].reason is not Reason.SOURCE_REMINDS  # the ordinary one is dunned


def test_flags_are_stored_and_a_change_of_flag_is_a_change(store: Store, clock: Any) -> None:
    sync(store, clock, invoice("F1"))
    sync(store, clock, invoice("F1"))  # unchanged: no event
    flagged = invoice("F1").model_copy(update={"direct_debit": True, "direct_debit_failed": True})
    sync(store, clock, flagged)

    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(invoices.c.direct_debit_failed, invoices.c.reminded_by_source)
        ).one()
        kinds = conn.execute(
            sa.select(events.c.kind).where(events.c.invoice_id == "F1").order_by(events.c.id)
        ).scalars()
        assert tuple(row) == (True, False)
        assert list(kinds) == [EventKind.INVOICE_OPENED, EventKind.INVOICE_CHANGED]


def test_pending_direct_debit_is_never_dunned_and_a_storno_is(store: Store, clock: Any) -> None:
    pending = invoice("F1").model_copy(update={"direct_debit": True})
    storno = invoice("F2").model_copy(update={"direct_debit": True, "direct_debit_failed": True})
    sync(store, clock, pending, storno)
    late = datetime.combine(invoice("F1").due_date + timedelta(days=200), datetime.min.time(), UTC)

    decisions = planned(store, late.replace(hour=9))

    assert decisions["F1"].reason is Reason.DIRECT_DEBIT
    assert "still pending 200 days after the due date" in decisions["F1"].detail
    assert "check the collection in moneybird" in decisions["F1"].detail
    assert decisions["F2"].reason in (Reason.PLANNED, Reason.AWAITING_APPROVAL)
