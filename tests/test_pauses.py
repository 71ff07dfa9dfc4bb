"""Pauses are recorded as dossier events and read back by the scheduler's snapshot."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.facts import Instalment, PauseKind
from debsync.pauses import PauseError, active_pauses, end_pause, find_invoice, start_pause
from debsync.planning import load_snapshot
from debsync.store import Store
from debsync.store.schema import EventKind, events
from debsync.sync import SyncEngine

from fakes import INSTANCE, FakeConnector, debtor, invoice, snapshot


@pytest.fixture
def synced(store: Store, clock: Any) -> Store:
    pages = snapshot(invoice("F1", "100.00"), invoice("F2", "50.00"), debtors=(debtor(),))
    assert asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, FakeConnector(pages))).ok
    return store


def test_pause_lifecycle_is_kept_in_the_dossier(synced: Store, clock: Any) -> None:
    dispute = start_pause(
        synced,
        kind=PauseKind.DISPUTE,
        instance="books",
        scope="invoice",
        target="F1",
        reason="wrong quantity",
        author="anna",
        clock=clock,
    )
    plan = start_pause(
        synced,
        kind=PauseKind.PAYMENT_PLAN,
        instance="books",
        scope="debtor",
        target="D1",
        reason="3 terms",
        author="bert",
        clock=clock,
        instalments=[Instalment(date(2026, 12, 1), 5000)],
    )
    assert plan.balance_minor == 15000  # open amount in scope when agreed
    assert {p.id for p in active_pauses(synced)} == {dispute.id, plan.id}

    end_pause(synced, dispute.id, reason="credit note agreed", author="anna", clock=clock)

    (remaining,) = active_pauses(synced)
    assert remaining == plan
    with synced.engine.connect() as conn:
        kinds = conn.execute(
            sa.select(events.c.kind, events.c.debtor_id, events.c.data)
            .where(events.c.kind.like("pause.%"))
            .order_by(events.c.id)
        ).all()
    assert [(k, d) for k, d, _ in kinds] == [
        ("pause.started", "D1"),
        ("pause.started", "D1"),
        ("pause.ended", "D1"),
    ]
    assert kinds[2][2] == {"id": dispute.id, "reason": "credit note agreed", "author": "anna"}


def test_pause_errors_are_clear(synced: Store, clock: Any) -> None:
    with pytest.raises(PauseError, match="no invoice 'F9'"):
        start_pause(
            synced,
            kind=PauseKind.DISPUTE,
            instance="books",
            scope="invoice",
            target="F9",
            reason="x",
            author="a",
            clock=clock,
        )
    with pytest.raises(PauseError, match="needs an end date"):
        start_pause(
            synced,
            kind=PauseKind.PROMISE,
            instance="books",
            scope="invoice",
            target="F1",
            reason="x",
            author="a",
            clock=clock,
        )
    with pytest.raises(PauseError, match="no active pause 'nope'"):
        end_pause(synced, "nope", reason="x", author="a", clock=clock)
    assert find_invoice(synced, None, "F1") == ("books", "F1")


def test_snapshot_reads_invoices_history_and_pauses(synced: Store, clock: Any) -> None:
    with synced.engine.begin() as conn:
        conn.execute(
            sa.insert(events).values(
                at=clock.now,
                instance="books",
                debtor_id="D1",
                invoice_id="F1",
                kind=EventKind.STEP_SENT,
                data={
                    "step": "reminder",
                    "sent_on": "2026-10-02",
                    "role": None,
                    "received_on": None,
                    "stated_costs_minor": None,
                },
            )
        )
    start_pause(
        synced,
        kind=PauseKind.HOLD,
        instance="books",
        scope="debtor",
        target="D1",
        reason="holiday",
        author="anna",
        until=date(2026, 12, 1),
        clock=clock,
    )

    loaded = load_snapshot(synced, {"books": "default"})

    assert sorted(i.external_id for i in loaded.invoices) == ["F1", "F2"]
    assert loaded.instances["books"].last_success_at == clock.now
    assert loaded.history[("books", "F1")][0].sent_on == date(2026, 10, 2)
    assert loaded.debtors[("books", "D1")].kind.value == "business"
    (hold,) = loaded.pauses
    assert (hold.kind, hold.target, hold.until) == (PauseKind.HOLD, "D1", date(2026, 12, 1))
