"""The sync engine against a real store (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from debsync.connectors.base import Page, Reject, SyncResult
from debsync.store import Store
from debsync.store.schema import connector_state, debtors, events, invoices, payments, sync_runs
from debsync.sync import SyncEngine

from fakes import INSTANCE, FakeConnector, debtor, invoice, snapshot


def run(store: Store, clock: Any, pages: list[Page], **kwargs: Any) -> SyncResult:
    connector_kwargs = {k: kwargs.pop(k) for k in ("fail_after", "capabilities") if k in kwargs}
    connector = FakeConnector(pages, **connector_kwargs)
    return asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, connector, **kwargs))


def rows(store: Store, table: sa.Table, *order: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        query = sa.select(table).order_by(*(table.c[o] for o in order))
        return [dict(r) for r in conn.execute(query).mappings()]


def snapshot_of_store(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {
        "debtors": rows(store, debtors, "external_id"),
        "invoices": rows(store, invoices, "external_id"),
        "payments": rows(store, payments, "id"),
        "events": rows(store, events, "id"),
    }


BOOK = (invoice("F1"), invoice("F2", "60.50"), invoice("F3", total="-50.00", open_amount="-50.00"))


def test_first_sync_stores_records_and_opening_events(store: Store, clock: Any) -> None:
    result = run(store, clock, snapshot(*BOOK, debtors=(debtor(),)))

    assert result.ok and result.pages == 2 and result.snapshot
    stored = {r["external_id"]: r for r in rows(store, invoices, "external_id")}
    assert stored["F2"]["open_minor"] == 6050 and stored["F2"]["total_minor"] == 12100
    assert stored["F3"]["open_minor"] == -5000  # credit notes are kept, never dunned
    assert {r["state"] for r in stored.values()} == {"open"}
    kinds = [e["kind"] for e in rows(store, events, "id")]
    assert kinds == ["debtor.created", "invoice.opened", "invoice.opened", "invoice.opened"]
    state = rows(store, connector_state, "instance")[0]
    assert state["last_success_at"] == clock.now and state["snapshot_started_at"] is None


def test_unchanged_resync_writes_no_rows_and_no_events(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK, debtors=(debtor(),)))
    before = snapshot_of_store(store)
    clock.now += timedelta(hours=1)

    result = run(store, clock, snapshot(*BOOK, debtors=(debtor(),)))

    assert result.ok and result.counts.writes == 0
    assert snapshot_of_store(store) == before


def test_vanished_invoice_is_closed_with_a_payment_event(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK, debtors=(debtor(),)))

    result = run(store, clock, snapshot(BOOK[0], BOOK[2]))

    assert result.counts.invoices_closed == 1
    closed = {r["external_id"]: r for r in rows(store, invoices, "external_id")}["F2"]
    assert closed["state"] == "closed" and closed["closed_at"] == clock.now
    (payment,) = rows(store, payments, "id")
    assert (payment["invoice_id"], payment["amount_minor"], payment["source"]) == (
        "F2",
        6050,
        "derived",
    )
    event = rows(store, events, "id")[-1]
    assert event["kind"] == "invoice.closed" and event["debtor_id"] == "D1"
    assert event["data"]["paid"] == "60.50" and event["data"]["reason"] == "left the open set"


def test_lower_open_amount_is_a_partial_payment(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK))

    result = run(store, clock, snapshot(invoice("F1", "21.00"), *BOOK[1:]))

    assert result.counts.partial_payments == 1 and result.counts.invoices_closed == 0
    (payment,) = rows(store, payments, "id")
    assert payment["amount_minor"] == 10000 and payment["invoice_id"] == "F1"
    event = rows(store, events, "id")[-1]
    assert event["kind"] == "invoice.partially_paid"
    assert event["data"] == {
        "currency": "EUR",
        "paid": "100.00",
        "open_before": "121.00",
        "open": "21.00",
    }


def test_higher_open_amount_is_a_change_not_a_payment(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK))
    result = run(store, clock, snapshot(invoice("F1", "121.00"), invoice("F2", "121.00"), BOOK[2]))
    assert result.counts.invoices_changed == 1 and rows(store, payments, "id") == []


def test_closed_invoice_that_returns_is_reopened(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK))
    run(store, clock, snapshot(BOOK[0], BOOK[2]))
    result = run(store, clock, snapshot(*BOOK))
    assert result.counts.invoices_reopened == 1
    reopened = {r["external_id"]: r for r in rows(store, invoices, "external_id")}["F2"]
    assert reopened["state"] == "open" and reopened["open_minor"] == 6050


def test_rejected_invoice_is_not_closed_as_vanished(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK))
    pages = snapshot(BOOK[0], BOOK[2])
    pages[0].rejects.append(Reject("row", "open-items.csv:3", "bad date", invoice_id="F2"))

    result = run(store, clock, pages)

    assert result.ok and result.counts.invoices_closed == 0 and result.counts.rejects == 1
    assert {r["state"] for r in rows(store, invoices, "external_id")} == {"open"}


def test_crash_after_page_n_resumes_without_loss_or_doubles(store: Store, clock: Any) -> None:
    book = [invoice(f"F{i:02}") for i in range(10)]
    crashed = run(store, clock, snapshot(*book, per_page=2), fail_after=3)
    assert not crashed.ok and "crash before page 3" in (crashed.error or "")
    assert len(rows(store, invoices, "external_id")) == 6  # pages 0-2 committed
    state = rows(store, connector_state, "instance")[0]
    assert state["snapshot_started_at"] is not None and state["last_error"]

    resumed = run(store, clock, snapshot(*book, per_page=2))

    assert resumed.ok and resumed.counts.invoices_new == 4
    assert len(rows(store, invoices, "external_id")) == 10
    opened = [e["invoice_id"] for e in rows(store, events, "id") if e["kind"] == "invoice.opened"]
    assert sorted(opened) == [f"F{i:02}" for i in range(10)]  # each exactly once
    statuses = [r["status"] for r in rows(store, sync_runs, "id")]
    assert statuses == ["failed", "ok"]


def test_incremental_connector_resumes_from_the_committed_cursor(store: Store, clock: Any) -> None:
    incremental = frozenset({"incremental"})
    initial = snapshot(invoice("F1"))
    initial[-1].cursor = {"page": 0}  # the change feed starts at its first page
    run(store, clock, initial, capabilities=incremental)
    changes = [
        Page(invoices=[invoice(f"G{i}")], cursor={"page": i + 1, "since": i}) for i in range(4)
    ]
    crashed = run(store, clock, changes, fail_after=2, capabilities=incremental)
    assert not crashed.ok

    connector = FakeConnector(changes, capabilities=incremental)
    resumed = asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, connector))

    assert connector.cursors_seen == [{"page": 2, "since": 1}]
    assert resumed.ok and resumed.counts.invoices_new == 2 and not resumed.snapshot
    assert sorted(r["external_id"] for r in rows(store, invoices, "external_id")) == [
        "F1",
        "G0",
        "G1",
        "G2",
        "G3",
    ]


def test_snapshot_closing_most_open_invoices_is_refused(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*(invoice(f"F{i:02}") for i in range(30))))
    before = snapshot_of_store(store)

    refused = run(store, clock, snapshot(invoice("F00")))

    assert not refused.ok and "--allow-mass-close" in (refused.error or "")
    assert snapshot_of_store(store)["invoices"] == before["invoices"]
    allowed = run(store, clock, snapshot(invoice("F00")), allow_mass_close=True)
    assert allowed.ok and allowed.counts.invoices_closed == 29


def test_connector_reported_payments_are_recorded_once(store: Store, clock: Any) -> None:
    from debsync.model import Money, Payment

    paid = Payment(
        external_id="P1", invoice_id="F1", paid_on=clock.now.date(), amount=Money.of("21.00")
    )
    pages = snapshot(invoice("F1", "100.00"))
    pages[0].payments.append(paid)
    caps = frozenset({"payments"})
    first = run(store, clock, pages, capabilities=caps)
    second = run(store, clock, pages, capabilities=caps)
    assert first.counts.payments_new == 1 and second.counts.payments_new == 0
    (payment,) = rows(store, payments, "id")
    assert payment["source"] == "connector" and payment["amount_minor"] == 2100


def test_snapshot_without_completion_is_a_contract_error(store: Store, clock: Any) -> None:
    pages = snapshot(invoice("F1"))
    pages[-1].snapshot_complete = False
    result = run(store, clock, pages)
    assert not result.ok and "snapshot_complete" in (result.error or "")


def test_debtor_change_is_one_update_and_one_event(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK, debtors=(debtor(),)))
    result = run(store, clock, snapshot(*BOOK, debtors=(debtor(phones=["020 123 4567"]),)))
    assert result.counts.debtors_changed == 1
    (stored,) = rows(store, debtors, "external_id")
    assert stored["phones"] == ["+31201234567"]
    assert rows(store, events, "id")[-1]["kind"] == "debtor.changed"


def test_events_are_append_only(store: Store, clock: Any) -> None:
    run(store, clock, snapshot(*BOOK))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.delete(events))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.update(events).values(kind="rewritten"))


def test_changing_an_instance_type_fails_the_run_instead_of_mixing_records(
    store: Store, clock: Any
) -> None:
    from debsync.config import ConnectorInstance

    run(store, clock, snapshot(*BOOK))
    renamed = ConnectorInstance("books", "other", FakeConnector, INSTANCE.settings)
    result = asyncio.run(
        SyncEngine(store, clock=clock).run(renamed, FakeConnector(snapshot(*BOOK)))
    )
    assert not result.ok and "new instance name" in (result.error or "")
    assert rows(store, sync_runs, "id")[-1]["status"] == "failed"


def test_only_what_previous_lists_can_be_unchanged(store: Store, clock: Any) -> None:
    first = snapshot(invoice("F1"))
    first[-1].raw = {("invoice", "F1"): b"f1-raw-fingerprint"}
    assert run(store, clock, first).ok

    seen = snapshot()
    seen[-1].unchanged_invoices = ["F1"]
    kept = run(store, clock, seen)
    assert kept.ok and kept.counts.invoices_seen == 1 and kept.counts.invoices_closed == 0

    bogus = snapshot()
    bogus[-1].unchanged_invoices = ["F9"]
    refused = run(store, clock, bogus)
    assert not refused.ok and "did not store as open" in (refused.error or "")
