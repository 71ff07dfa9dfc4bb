"""Conformance checks for connectors: one short test module gives a connector the whole suite.

::

    from debsync.testing import ConnectorChecks, ConnectorHarness

    class TwinfieldHarness(ConnectorHarness):
        ...  # your connector against your fake API: seed, set_open_amount, remove, fail_next

    class TestTwinfield(ConnectorChecks):
        @pytest.fixture
        def harness(self, tmp_path):
            return TwinfieldHarness(tmp_path)

Each check syncs the sample book (:mod:`debsync.testing.book`) through the real sync engine
into a throwaway SQLite store, so it proves what a user will see, and fails with a message that
says what the connector did wrong.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from debsync.config import ConnectorInstance
from debsync.connectors.base import Connector, ConnectorSettings, Page, SyncResult
from debsync.errors import FatalConnectorError, RetryableConnectorError
from debsync.model import Debtor, Invoice, Money, Payment
from debsync.store import Store
from debsync.store.schema import invoices, payments
from debsync.sync import SyncEngine
from debsync.testing.book import HALF, SampleBook, sample_book

MAX_PAGES = 10_000
"""A snapshot of the sample book taking more pages than this is taken to loop forever."""


class ConnectorHarness(ABC):
    """Your connector wired to a fake source you control; subclass it in your test module.

    :cvar min_pages: configure your connector's page size so that the sample book (seven
        invoices) takes at least this many pages, so pagination is really exercised.
    """

    min_pages: ClassVar[int] = 1

    @abstractmethod
    def connector(self) -> Connector[Any]:
        """A new, configured connector against your fake source. Each call stands for a
        restarted daemon: keep no state in the connector that the store should keep."""

    @abstractmethod
    def seed(self, book: SampleBook) -> None:
        """Put the sample book into your fake source, in the source's own format."""

    @abstractmethod
    def set_open_amount(self, number: str, amount: Money) -> None:
        """A payment arrived in the source: invoice ``number`` now has ``amount`` open."""

    @abstractmethod
    def remove(self, number: str) -> None:
        """Invoice ``number`` left the source's open set (paid in full, or withdrawn)."""

    @abstractmethod
    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        """Make the source's next request fail: ``"transient"`` like a timeout, a 429 or a 503,
        ``"fatal"`` like a 401 or a missing export file."""


class Synced:
    """A harness, a store and the sync engine between them."""

    def __init__(self, harness: ConnectorHarness, store: Store) -> None:
        self.harness = harness
        self.store = store
        self.book = sample_book()
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def sync(self) -> SyncResult:
        connector = self.harness.connector()
        instance = ConnectorInstance(
            name=connector.instance,
            type_name=connector.type_name,
            cls=type(connector),
            settings=connector.settings,
        )
        engine = SyncEngine(self.store, clock=lambda: self.now)
        result = asyncio.run(engine.run(instance, connector, allow_mass_close=True))
        assert result.ok, f"the sync failed: {result.error}"
        return result

    def invoices(self) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            return {r.number: r for r in conn.execute(sa.select(invoices))}

    def payments(self) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(payments)))


def fetch_all(connector: Connector[Any], cursor: Any = None) -> list[Page]:
    """Every page of one fetch, refusing to follow a snapshot past :data:`MAX_PAGES`."""

    async def collect(pages: AsyncIterator[Page]) -> list[Page]:
        found = []
        async for page in pages:
            found.append(page)
            assert len(found) <= MAX_PAGES, (
                f"the connector yielded more than {MAX_PAGES} pages for a seven-invoice book: "
                "its pagination does not terminate (does it follow the same 'next' link again?)"
            )
        return found

    return asyncio.run(collect(connector.fetch(cursor)))


def _numbers(pages: list[Page]) -> list[str]:
    return [i.number for page in pages for i in page.invoices]


class ConnectorChecks:
    """The conformance suite. Subclass it as ``Test<Something>`` and provide a ``harness``
    fixture returning your :class:`ConnectorHarness`."""

    @pytest.fixture
    def harness(self) -> ConnectorHarness:
        raise NotImplementedError(
            "define a `harness` fixture in your test class that returns your ConnectorHarness"
        )

    @pytest.fixture
    def synced(self, harness: ConnectorHarness, debsync_store: Store) -> Synced:
        synced = Synced(harness, debsync_store)
        harness.seed(synced.book)
        return synced

    def test_settings_schema_is_valid_and_documented(self, harness: ConnectorHarness) -> None:
        """The settings model forbids unknown keys (a typo in connectors.toml is an error),
        yields a JSON Schema (``debsync connectors schema``), and documents every field."""
        cls = type(harness.connector())
        settings = cls.Settings
        assert issubclass(settings, ConnectorSettings), (
            f"{cls.__name__}.Settings must derive from ConnectorSettings, which forbids unknown "
            "keys"
        )
        assert settings.model_config.get("extra") == "forbid", (
            f"{cls.__name__}.Settings must forbid unknown keys (model_config extra='forbid')"
        )
        schema = settings.model_json_schema()
        undocumented = [
            name for name, field in settings.model_fields.items() if not field.description
        ]
        assert not undocumented, (
            f"settings of {cls.__name__} without description=...: {', '.join(undocumented)}; "
            "operators read them in `debsync connectors schema`"
        )
        assert schema.get("type") == "object"

    def test_records_validate_and_match_the_book(self, synced: Synced) -> None:
        """A snapshot of the sample book yields valid debtors and invoices, no rejects, every
        invoice with its due date, open amount and currency, and the debtor of every invoice."""
        pages = fetch_all(synced.harness.connector())
        debtors = [d for page in pages for d in page.debtors]
        found = [i for page in pages for i in page.invoices]
        rejects = [r for page in pages for r in page.rejects]
        assert not rejects, f"the sample book is clean, yet the connector rejected: {rejects}"
        for record, model in [(d, Debtor) for d in debtors] + [(i, Invoice) for i in found]:
            assert isinstance(record, model), (
                f"a page holds a {type(record).__name__}, not a {model.__name__}"
            )
            _revalidates(record)
        for payment in (p for page in pages for p in page.payments):
            assert isinstance(payment, Payment)
            _revalidates(payment)
        by_number = {i.number: i for i in found}
        missing = sorted(synced.book.numbers - by_number.keys())
        assert not missing, f"invoices of the sample book missing from the snapshot: {missing}"
        for expected in synced.book.invoices:
            got = by_number[expected.number]
            assert (got.due_date, got.open_amount, got.currency) == (
                expected.due_date,
                expected.open_amount,
                expected.currency,
            ), (
                f"invoice {expected.number}: got due {got.due_date}, open {got.open_amount}; "
                f"the source says due {expected.due_date}, open {expected.open_amount}"
            )
        debtor_ids = {d.external_id for d in debtors}
        orphans = sorted({i.number for i in found if i.debtor_id not in debtor_ids})
        assert not orphans, f"invoices whose debtor the snapshot never yields: {orphans}"
        names = {d.name for d in debtors}
        assert {d.name for d in synced.book.debtors} <= names, (
            f"debtor names differ from the source: got {sorted(names)}"
        )

    def test_ids_are_unique_and_stable(self, synced: Synced) -> None:
        """Within a snapshot every invoice and debtor id appears once, and a second snapshot
        (from a restarted connector) yields the same ids: records are keyed by them, so an id
        that changes is a new invoice and the old one is closed as paid."""
        first = fetch_all(synced.harness.connector())
        second = fetch_all(synced.harness.connector())
        ids = [i.external_id for page in first for i in page.invoices]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        assert not duplicates, f"invoice ids yielded twice in one snapshot: {duplicates}"
        debtor_ids = [d.external_id for page in first for d in page.debtors]
        assert len(debtor_ids) == len(set(debtor_ids)), (
            "a debtor is yielded twice in one snapshot; yield each debtor once"
        )
        again = {(i.number, i.external_id) for page in second for i in page.invoices}
        assert {(i.number, i.external_id) for page in first for i in page.invoices} == again, (
            "invoice ids differ between two snapshots of the same data"
        )

    def test_pagination_terminates(self, synced: Synced) -> None:
        """A snapshot ends, takes at least ``min_pages`` pages (so paging is exercised), moves
        its cursor from page to page, and marks exactly its last page ``snapshot_complete``."""
        pages = fetch_all(synced.harness.connector())
        minimum = synced.harness.min_pages
        assert len(pages) >= minimum, (
            f"the snapshot took {len(pages)} page(s); the harness promises at least {minimum}: "
            "set a page size that makes the sample book span several pages"
        )
        flags = [p.snapshot_complete for p in pages]
        assert flags[-1] and not any(flags[:-1]), (
            f"exactly the last page of a full snapshot must set snapshot_complete; got {flags}"
        )
        cursors = [p.cursor for p in pages[:-1] if p.cursor is not None]
        assert len(cursors) == len({repr(c) for c in cursors}), (
            f"a cursor repeats between pages ({cursors}): a restart would loop"
        )

    def test_unchanged_resync_writes_nothing(self, synced: Synced) -> None:
        """Syncing the same data twice changes nothing in the store the second time: no rows,
        no events (so nothing re-triggers a dunning step)."""
        first = synced.sync()
        assert first.counts.invoices_new == len(synced.book.invoices), (
            f"the first sync stored {first.counts.invoices_new} invoices of "
            f"{len(synced.book.invoices)}"
        )
        second = synced.sync()
        assert second.counts.writes == 0, (
            f"an unchanged re-sync wrote {second.counts}; a record that did not change in the "
            "source must come out identical (same fields, same order of e-mail addresses, …)"
        )

    def test_a_partial_payment_is_the_only_change(self, synced: Synced) -> None:
        """When one invoice's open amount drops in the source, the next sync records exactly
        that partial payment and changes nothing else."""
        synced.sync()
        target = synced.book.invoice("2026-0101")
        lower = Money.of(target.open_amount.amount * HALF, target.currency)
        synced.harness.set_open_amount(target.number, lower)
        result = synced.sync()
        assert (result.counts.partial_payments, result.counts.invoices_changed) == (1, 0), (
            f"lowering one open amount gave {result.counts}; expected one partial payment"
        )
        assert synced.invoices()[target.number].open_minor == lower.minor
        others = result.counts.writes - result.counts.partial_payments - result.counts.payments_new
        assert others == 0, f"the change also rewrote other records: {result.counts}"

    def test_a_disappeared_invoice_is_closed(self, synced: Synced) -> None:
        """An invoice that leaves the open set is closed by the next sync, with its open amount
        recorded as paid (by the connector's payment, or derived)."""
        synced.sync()
        target = synced.book.invoice("2026-0104")
        synced.harness.remove(target.number)
        result = synced.sync()
        assert result.counts.invoices_closed == 1, (
            f"removing one invoice from the source gave {result.counts}; expected one closed"
        )
        stored = synced.invoices()[target.number]  # by number: each source has its own ids
        assert stored.state == "closed"
        paid = sum(p.amount_minor for p in synced.payments() if p.invoice_id == stored.external_id)
        assert paid == target.open_amount.minor, (
            f"invoice {target.number} closed with {paid} minor units recorded as paid, "
            f"expected {target.open_amount.minor}"
        )

    def test_cursor_survives_a_restart(self, synced: Synced) -> None:
        """After a sync, a restarted connector continues from the cursor the store kept: an
        incremental connector fetches only changes (no full snapshot), and any connector
        finds nothing new when nothing changed."""
        synced.sync()
        incremental = "incremental" in type(synced.harness.connector()).capabilities
        target = synced.book.invoice("2026-0106")
        synced.harness.set_open_amount(
            target.number, Money.of(target.open_amount.amount - Decimal(100), target.currency)
        )
        result = synced.sync()
        assert result.counts.partial_payments == 1, f"after a restart: {result.counts}"
        if incremental:
            assert not result.snapshot, (
                "the connector declares 'incremental' but a restarted sync fetched a full "
                "snapshot: does it return a cursor on its pages?"
            )
        assert synced.sync().counts.writes == 0

    def test_transient_errors_are_retryable(self, synced: Synced) -> None:
        """A timeout, 429 or 5xx surfaces as RetryableConnectorError: the daemon retries from
        the last committed cursor instead of asking a person."""
        _expect_failure(
            synced,
            "transient",
            RetryableConnectorError,
            "the daemon retries it later from the last committed cursor",
        )

    def test_fatal_errors_need_a_person(self, synced: Synced) -> None:
        """Bad credentials or a missing file surface as FatalConnectorError, so the status
        output tells the operator to act instead of retrying forever."""
        _expect_failure(
            synced, "fatal", FatalConnectorError, "debsync status tells the operator to act"
        )


def _expect_failure(
    synced: Synced,
    kind: Literal["transient", "fatal"],
    expected: type[Exception],
    meaning: str,
) -> None:
    synced.harness.fail_next(kind)
    try:
        fetch_all(synced.harness.connector())
    except expected:
        return
    except Exception as exc:
        pytest.fail(
            f"a {kind} failure raised {type(exc).__name__}: {exc}; it must raise "
            f"{expected.__name__} so that {meaning}"
        )
    pytest.fail(f"a {kind} failure raised nothing: the connector hid it")


def _revalidates(record: BaseModel) -> None:
    """A record must survive a round trip through its model unchanged."""
    again = type(record).model_validate(record.model_dump())
    assert again == record, f"{type(record).__name__} {record!r} changes when re-validated"
