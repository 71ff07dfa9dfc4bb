"""Applying one connector page to the store inside the page's transaction: upserts that write
only what changed, the dossier events of every change, derived payments, closings, rejects.

A record the store refuses (a value a column cannot hold that the model let through) costs
that record, never the page: the page is applied under a savepoint, and when the store refuses
it, again record by record, each refused one becoming a reject."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from functools import partial
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.clock import Clock, local_date
from debsync.connectors.base import Page, Previous, Reject, SyncCounts
from debsync.errors import FatalConnectorError, scrub
from debsync.invoice_rows import InvoiceRow, rows_of
from debsync.model import Debtor, Payment, from_minor
from debsync.store.schema import EventKind, debtors, events, invoices, payments
from debsync.sync.history import prior_key, recorded_steps
from debsync.sync.rows import insert_many, insert_rejects, insert_tuples

MASS_CLOSE_MIN_OPEN = 20
MASS_CLOSE_FRACTION = 0.5


class MassCloseRefused(FatalConnectorError):
    """A snapshot would close more than half of the open invoices; an operator must confirm."""


Event = tuple[datetime, str, str | None, str | None, str, int, dict[str, Any]]
"""A dossier event to insert, its values in the order of :data:`_EVENT_COLUMNS`."""
_EVENT_COLUMNS = ("at", "instance", "debtor_id", "invoice_id", "kind", "run_id", "data")


class Known(NamedTuple):
    """What the engine remembers of a stored invoice to detect changes without re-reading it."""

    fingerprint: bytes
    state: str
    open_minor: int
    currency: str
    debtor_id: str
    number: str


def _fingerprint(data: str) -> bytes:
    return hashlib.blake2b(data.encode(), digest_size=16).digest()


_INVOICE_COLUMNS = (
    "external_id",
    "number",
    "debtor_id",
    "issue_date",
    "due_date",
    "currency",
    "total_minor",
    "open_minor",
    "payment_reference",
    "payment_url",
    "direct_debit",
    "has_document",
    "direct_debit_failed",
    "reminded_by_source",
)
"""The columns an :class:`InvoiceRow` fills, in its order."""
_INVOICE_INSERT = (
    "instance",
    *_INVOICE_COLUMNS,
    *("fingerprint", "raw_fingerprint", "state", "closed_at", "updated_at", "created_at"),
)


def _invoice_fingerprint(row: InvoiceRow) -> bytes:
    """Of the stored values and the prior step; the flags from migration 0004 and a prior
    step count only when set, so an upgrade changes no fingerprint."""
    values = row[1:12] + tuple([flag for flag in row[12:14] if flag is not False])
    return _fingerprint(repr(values + prior_key(row)))


def _debtor_row(debtor: Debtor) -> dict[str, Any]:
    return {
        "name": debtor.name,
        "kind": debtor.kind.value,
        "emails": list(debtor.emails),
        "phones": list(debtor.phones),
        "language": debtor.language.value,
        "address": debtor.address.model_dump(mode="json") if debtor.address else None,
        "kvk": debtor.kvk,
        "vat": debtor.vat,
        "iban": debtor.iban,
    }


def _amount(minor: int, currency: str) -> str:
    return str(from_minor(minor, currency))


def _refusal(exc: Exception) -> str:
    """Why the store refused a record: the database's first line, scrubbed."""
    cause = getattr(exc, "orig", None) or exc
    first = "".join(scrub(str(cause)).splitlines()[:1])
    return f"the store refused the record: {type(cause).__name__}: {first}".rstrip(": ")


def _begin(conn: Connection) -> None:
    """On SQLite, begin the transaction before the first savepoint: pysqlite begins lazily,
    and a savepoint that opens the transaction would commit it when released."""
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            conn.exec_driver_sql("BEGIN")


_INVOICE_UPDATE = (
    sa.update(invoices)
    .where(
        invoices.c.instance == sa.bindparam("k_instance"),
        invoices.c.external_id == sa.bindparam("k_external_id"),
    )
    .execution_options(synchronize_session=False)
)
_INVOICE_RAW = _INVOICE_UPDATE.values(raw_fingerprint=sa.bindparam("raw"))

_DEBTOR_UPDATE = sa.update(debtors).where(
    debtors.c.instance == sa.bindparam("k_instance"),
    debtors.c.external_id == sa.bindparam("k_external_id"),
)
_DEBTOR_RAW = _DEBTOR_UPDATE.values(raw_fingerprint=sa.bindparam("raw"))


class PageWriter:
    """Turns one page into batched inserts, updates and events inside the caller's
    transaction; the in-memory view of the store advances only once that transaction commits."""

    def __init__(
        self,
        *,
        instance: str,
        run_id: int,
        clock: Clock,
        derive_payments: bool,
        known_debtors: dict[str, bytes],
        known_invoices: dict[str, Known],
        known_raw: dict[tuple[str, str], bytes],
        previous: Previous,
        counts: SyncCounts,
    ) -> None:
        self.instance = instance
        self.run_id = run_id
        self.clock = clock
        self.derive_payments = derive_payments
        self.known_debtors = known_debtors
        self.known_invoices = known_invoices
        self.known_raw = known_raw
        self.previous = previous
        self.counts = counts
        self._pending_debtors: dict[str, bytes] = {}
        self._pending_raw: dict[tuple[str, str], bytes] = {}
        self._pending_invoices: dict[str, Known] = {}
        self._pending_counts: dict[str, int] = {}
        self._known_payments: set[str] | None = None
        self._pending_payments: set[str] = set()

    # -- bookkeeping of what is committed -------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self._pending_counts[name] = self._pending_counts.get(name, 0) + n

    def committed(self) -> None:
        self.known_debtors.update(self._pending_debtors)
        self.known_invoices.update(self._pending_invoices)
        self.known_raw.update(self._pending_raw)
        self._pending_raw = {}
        if self._known_payments is not None:
            self._known_payments |= self._pending_payments
        for name, n in self._pending_counts.items():
            setattr(self.counts, name, getattr(self.counts, name) + n)
        self._pending_debtors, self._pending_invoices = {}, {}
        self._pending_payments, self._pending_counts = set(), {}

    def _event(
        self,
        kind: str,
        now: datetime,
        *,
        debtor_id: str | None,
        invoice_id: str | None = None,
        **data: Any,
    ) -> Event:
        return (now, self.instance, debtor_id, invoice_id, kind, self.run_id, data)

    # -- one page -------------------------------------------------------------------------

    def page(self, conn: Connection, page: Page) -> None:
        """Apply one page; what the store refuses is added to ``page.rejects``."""
        unknown = [ext for ext in page.unchanged_invoices if ext not in self.previous.invoices]
        if unknown:
            raise FatalConnectorError(
                f"the connector reported {len(unknown)} invoice(s) as unchanged that the last "
                f"sync did not store as open (e.g. {unknown[0]!r}): only what Previous lists "
                "can be unchanged"
            )
        _begin(conn)
        if self._attempt(conn, page) is None:
            return
        refused: list[Reject] = []
        for part, refuse in self._records(page):
            error = self._attempt(conn, part)
            if error is not None:
                refused.append(refuse(_refusal(error)))
        rest = Page(
            closed=page.closed,
            rejects=[*page.rejects, *refused],
            unchanged_invoices=page.unchanged_invoices,
        )
        self._apply(conn, rest)  # no record left: a failure here is the store's, not a record's
        page.rejects.extend(refused)

    def _attempt(self, conn: Connection, page: Page) -> Exception | None:
        """Apply ``page`` under a savepoint; on failure roll it back, with what the writer
        would have remembered of it, and return the error."""
        saved = (
            dict(self._pending_debtors),
            dict(self._pending_raw),
            dict(self._pending_invoices),
            dict(self._pending_counts),
            set(self._pending_payments),
        )
        try:
            with conn.begin_nested():
                self._apply(conn, page)
        except Exception as exc:  # whatever a driver raises for one bad value
            (
                self._pending_debtors,
                self._pending_raw,
                self._pending_invoices,
                self._pending_counts,
                self._pending_payments,
            ) = saved
            return exc
        return None

    def _records(self, page: Page) -> Iterator[tuple[Page, Callable[[str], Reject]]]:
        """The page's records one at a time, each with the reject it becomes when refused."""
        for debtor in page.debtors:
            yield (
                Page(debtors=[debtor], raw=page.raw),
                partial(Reject, "debtor", debtor.external_id),
            )
        for invoice in page.invoices:
            ext = invoice.external_id
            yield (
                Page(invoices=[invoice], raw=page.raw),
                partial(Reject, "invoice", ext, invoice_id=ext),
            )
        for payment in page.payments:
            yield Page(payments=[payment]), partial(Reject, "payment", payment.external_id)

    def _apply(self, conn: Connection, page: Page) -> None:
        now = self.clock()
        today = local_date(now)
        new_events: list[Event] = []
        new_payments: list[dict[str, Any]] = []
        self._debtors(conn, page.debtors, page.raw, now, new_events)
        self._invoices(conn, rows_of(page.invoices), page.raw, now, today, new_events, new_payments)
        self._count("invoices_seen", len(page.unchanged_invoices))
        if page.payments:
            self._payments(conn, page.payments, now, new_events, new_payments)
        if page.closed:
            self._close(conn, page.closed, "closed by the source", now, new_events, new_payments)
        if page.rejects:
            insert_rejects(conn, self.instance, self.run_id, page.rejects)
            self._count("rejects", len(page.rejects))
        if new_payments:
            insert_many(conn, payments, new_payments)
        if new_events:
            insert_tuples(conn, events, _EVENT_COLUMNS, new_events)
        self._count("invoices_seen", len(page.invoices))

    def _remember_raw(
        self, kind: str, ext: str, raw: bytes | None, stale: list[dict[str, Any]]
    ) -> None:
        """Keep an unchanged record's raw fingerprint current, without an event, so the next
        sync may skip it (a store from before raw fingerprints, a re-spelled row)."""
        if raw is not None and self.known_raw.get((kind, ext)) != raw:
            stale.append({"k_instance": self.instance, "k_external_id": ext, "raw": raw})
            self._pending_raw[(kind, ext)] = raw

    def _debtors(
        self,
        conn: Connection,
        records: list[Debtor],
        raws: dict[tuple[str, str], bytes],
        now: datetime,
        out: list[Event],
    ) -> None:
        inserts, updates = [], []
        stale: list[dict[str, Any]] = []
        for debtor in records:
            row = _debtor_row(debtor)
            fingerprint = _fingerprint(debtor.model_dump_json())
            ext = debtor.external_id
            raw = raws.get(("debtor", ext))
            before = self._pending_debtors.get(ext) or self.known_debtors.get(ext)
            if before == fingerprint:
                self._remember_raw("debtor", ext, raw, stale)
                continue
            if raw is not None:
                self._pending_raw[("debtor", ext)] = raw
            row["raw_fingerprint"] = raw
            row["fingerprint"] = fingerprint
            row["updated_at"] = now
            if before is None:
                inserts.append(
                    {"instance": self.instance, "external_id": ext, "created_at": now, **row}
                )
                out.append(self._event(EventKind.DEBTOR_CREATED, now, debtor_id=ext))
                self._count("debtors_new")
            else:
                updates.append({"k_instance": self.instance, "k_external_id": ext, **row})
                out.append(self._event(EventKind.DEBTOR_CHANGED, now, debtor_id=ext))
                self._count("debtors_changed")
            self._pending_debtors[ext] = fingerprint
        if inserts:
            insert_many(conn, debtors, inserts)
        if updates:
            conn.execute(_DEBTOR_UPDATE, updates)
        if stale:
            conn.execute(_DEBTOR_RAW, stale)

    def _invoices(
        self,
        conn: Connection,
        records: list[InvoiceRow],
        raws: dict[tuple[str, str], bytes],
        now: datetime,
        today: date,
        out: list[Event],
        new_payments: list[dict[str, Any]],
    ) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: list[dict[str, Any]] = []
        stale: list[dict[str, Any]] = []
        pending, known, instance = self._pending_invoices, self.known_invoices, self.instance
        opened = EventKind.INVOICE_OPENED
        for row in records:
            fingerprint = _invoice_fingerprint(row)
            ext = row.external_id
            raw = raws.get(("invoice", ext))
            before = pending.get(ext) or known.get(ext)
            if before is not None and before.fingerprint == fingerprint and before.state == "open":
                self._remember_raw("invoice", ext, raw, stale)
                continue
            if raw is not None:
                self._pending_raw[("invoice", ext)] = raw
            currency, open_minor, debtor_id = row.currency, row.open_minor, row.debtor_id
            if before is None:
                inserts.append((instance, *row[:14], fingerprint, raw, "open", None, now, now))
                out.append(
                    self._event(
                        opened,
                        now,
                        debtor_id=debtor_id,
                        invoice_id=ext,
                        number=row.number,
                        due_date=row.due_date.isoformat(),
                        currency=currency,
                        total=_amount(row.total_minor, currency),
                        open=_amount(open_minor, currency),
                    )
                )
            else:
                update: dict[str, Any] = dict(zip(_INVOICE_COLUMNS[1:], row[1:14], strict=True))
                update.update(
                    k_instance=instance,
                    k_external_id=ext,
                    fingerprint=fingerprint,
                    raw_fingerprint=raw,
                    state="open",
                    closed_at=None,
                    updated_at=now,
                )
                updates.append(update)
                self._describe_change(before, row, now, today, out, new_payments)
            pending[ext] = Known(fingerprint, "open", open_minor, currency, debtor_id, row.number)
        self._count("invoices_new", len(inserts))
        for data in recorded_steps(conn, self.instance, records, today):
            out.append(self._event(EventKind.STEP_RECORDED_ELSEWHERE, now, **data))
        if inserts:
            insert_tuples(conn, invoices, _INVOICE_INSERT, inserts)
        if updates:
            conn.execute(_INVOICE_UPDATE, updates)
        if stale:
            conn.execute(_INVOICE_RAW, stale)

    def _describe_change(
        self,
        before: Known,
        row: InvoiceRow,
        now: datetime,
        today: date,
        out: list[Event],
        new_payments: list[dict[str, Any]],
    ) -> None:
        ext, debtor_id, currency = row.external_id, row.debtor_id, row.currency
        old_open = before.open_minor if before.state == "open" else None
        if before.state != "open":
            out.append(
                self._event(
                    EventKind.INVOICE_REOPENED,
                    now,
                    debtor_id=debtor_id,
                    invoice_id=ext,
                    open=_amount(row.open_minor, currency),
                    currency=currency,
                )
            )
            self._count("invoices_reopened")
            return
        paid = (old_open or 0) - row.open_minor
        if before.currency == currency and paid > 0 and row.open_minor >= 0:
            out.append(
                self._event(
                    EventKind.INVOICE_PARTIALLY_PAID,
                    now,
                    debtor_id=debtor_id,
                    invoice_id=ext,
                    currency=currency,
                    paid=_amount(paid, currency),
                    open_before=_amount(before.open_minor, currency),
                    open=_amount(row.open_minor, currency),
                )
            )
            if self.derive_payments:
                new_payments.append(self._derived_payment(ext, paid, currency, today, now))
            self._count("partial_payments")
        else:
            out.append(
                self._event(
                    EventKind.INVOICE_CHANGED,
                    now,
                    debtor_id=debtor_id,
                    invoice_id=ext,
                    currency=currency,
                    open_before=_amount(before.open_minor, before.currency),
                    open=_amount(row.open_minor, currency),
                )
            )
            self._count("invoices_changed")

    def _derived_payment(
        self, invoice_id: str, minor: int, currency: str, today: date, now: datetime
    ) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "external_id": None,
            "invoice_id": invoice_id,
            "paid_on": today,
            "currency": currency,
            "amount_minor": minor,
            "source": "derived",
            "recorded_at": now,
        }

    def _payments(
        self,
        conn: Connection,
        records: list[Payment],
        now: datetime,
        out: list[Event],
        new_payments: list[dict[str, Any]],
    ) -> None:
        if self._known_payments is None:
            self._known_payments = set(
                conn.execute(
                    sa.select(payments.c.external_id).where(
                        payments.c.instance == self.instance, payments.c.external_id.is_not(None)
                    )
                ).scalars()
            )
        for payment in records:
            ext = payment.external_id
            if ext in self._known_payments or ext in self._pending_payments:
                continue
            currency = payment.amount.currency
            new_payments.append(
                {
                    "instance": self.instance,
                    "external_id": ext,
                    "invoice_id": payment.invoice_id,
                    "paid_on": payment.paid_on,
                    "currency": currency,
                    "amount_minor": payment.amount.minor,
                    "source": "connector",
                    "recorded_at": now,
                }
            )
            known = self._pending_invoices.get(payment.invoice_id) or self.known_invoices.get(
                payment.invoice_id
            )
            out.append(
                self._event(
                    EventKind.PAYMENT_RECORDED,
                    now,
                    debtor_id=known.debtor_id if known else None,
                    invoice_id=payment.invoice_id,
                    payment_id=ext,
                    paid_on=payment.paid_on.isoformat(),
                    currency=currency,
                    amount=str(payment.amount.amount),
                )
            )
            self._pending_payments.add(ext)
            self._count("payments_new")

    def _close(
        self,
        conn: Connection,
        external_ids: Iterable[str],
        reason: str,
        now: datetime,
        out: list[Event],
        new_payments: list[dict[str, Any]],
    ) -> None:
        today = local_date(now)
        closing = []
        for ext in external_ids:
            before = self._pending_invoices.get(ext) or self.known_invoices.get(ext)
            if before is None or before.state != "open":
                continue
            closing.append({"k_instance": self.instance, "k_external_id": ext})
            if self.derive_payments and before.open_minor > 0:
                new_payments.append(
                    self._derived_payment(ext, before.open_minor, before.currency, today, now)
                )
            out.append(
                self._event(
                    EventKind.INVOICE_CLOSED,
                    now,
                    debtor_id=before.debtor_id,
                    invoice_id=ext,
                    reason=reason,
                    number=before.number,
                    currency=before.currency,
                    paid=_amount(before.open_minor, before.currency),
                )
            )
            self._pending_invoices[ext] = before._replace(state="closed", open_minor=0)
            self._count("invoices_closed")
        if closing:
            conn.execute(
                _INVOICE_UPDATE.values(state="closed", closed_at=now, updated_at=now, open_minor=0),
                closing,
            )

    def close_absent(self, conn: Connection, seen: set[str], *, allow_mass_close: bool) -> None:
        """Close every open invoice a complete snapshot did not mention."""
        open_ids = [ext for ext, k in self.known_invoices.items() if k.state == "open"]
        absent = [ext for ext in open_ids if ext not in seen]
        if (
            not allow_mass_close
            and len(open_ids) >= MASS_CLOSE_MIN_OPEN
            and len(absent) > MASS_CLOSE_FRACTION * len(open_ids)
        ):
            raise MassCloseRefused(
                f"the snapshot would close {len(absent)} of {len(open_ids)} open invoices; "
                "if the source really shows them paid, run `debsync sync --allow-mass-close`"
            )
        if not absent:
            return
        new_events: list[Event] = []
        new_payments: list[dict[str, Any]] = []
        self._close(conn, absent, "left the open set", self.clock(), new_events, new_payments)
        if new_payments:
            insert_many(conn, payments, new_payments)
        insert_tuples(conn, events, _EVENT_COLUMNS, new_events)
