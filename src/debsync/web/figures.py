"""The dashboard's figures for one administration (connector instance), aggregated in SQL so
a book of a hundred thousand open invoices answers in a few scans.

Open and overdue amounts, aging, last sync and unknown kinds come from
:func:`debsync.store.reports.instance_status`, the figures ``debsync status`` prints. DSO and
the cash forecast are computed here, in the instance's main currency (the one with the most
open), since amounts in different currencies do not add up.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from debsync.facts import Pause, PauseKind
from debsync.model import from_minor, to_minor
from debsync.pauses import load_active
from debsync.store import Store
from debsync.store.reports import (
    OPEN_OFF_INDEX,
    InstanceStatus,
    book_version,
    instance_status,
    whole_instance,
)
from debsync.store.schema import debtors, invoices, payments

DSO_DAYS = 90
"""The sales window of the DSO: the last three months' invoiced amounts."""
TREND_MONTHS = 12
FORECAST_WEEKS = 8
EXPECTED_PAUSES = (PauseKind.PROMISE, PauseKind.PAYMENT_PLAN, PauseKind.DISPUTE)
"""Pauses that replace an invoice's due date in the forecast: a promise by its date, a plan
by its instalments, a dispute by nothing until it is settled."""


@dataclass(frozen=True)
class DsoPoint:
    on: date
    receivable: Decimal
    sales: Decimal
    days: Decimal | None
    """None when nothing was invoiced in the window: no DSO to speak of."""


@dataclass(frozen=True)
class Week:
    start: date
    end: date
    """The last day of the week (inclusive)."""
    due: Decimal
    promised: Decimal

    @property
    def total(self) -> Decimal:
        return self.due + self.promised


@dataclass(frozen=True)
class Figures:
    currency: str
    dso: list[DsoPoint]
    """Oldest first: the last day of each of the previous months, then today."""
    forecast: list[Week]
    without_contact: int


@dataclass
class FiguresCache:
    """The dashboard's figures kept for as long as the store has not changed. Every change
    to the books is a sync run or an event (the writer records each opened, changed and
    paid invoice; pauses are events), so the highest event and run ids, with the day, say
    whether the figures still hold. Asking that is one index lookup each."""

    key: tuple[object, ...] | None = None
    statuses: list[InstanceStatus] = field(default_factory=list)
    figures: dict[str, Figures] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses_for(
        self, store: Store, instances: dict[str, str], today: date
    ) -> list[InstanceStatus]:
        """Every instance's status (:func:`instance_status`), recomputed after a change."""
        key = (today, tuple(sorted(instances.items())), *book_version(store))
        with self.lock:
            if key != self.key:
                self.key, self.figures = key, {}
                self.statuses = instance_status(store, instances, today)
            return self.statuses

    def figures_for(self, store: Store, status: InstanceStatus, today: date) -> Figures:
        """An instance's figures as of the statuses last asked for."""
        with self.lock:
            if status.instance not in self.figures:
                self.figures[status.instance] = figures(store, status, today)
            return self.figures[status.instance]


def main_currency(status: InstanceStatus) -> str:
    if not status.totals:
        return "EUR"
    return max(status.totals.items(), key=lambda item: item[1].open_amount)[0]


def _minor(status: InstanceStatus, currency: str) -> int:
    totals = status.totals.get(currency)
    return to_minor(totals.open_amount, currency) if totals else 0


def month_ends(today: date, months: int = TREND_MONTHS) -> list[date]:
    """The last day of each of the ``months - 1`` months before today's, then today."""
    ends: list[date] = []
    end = today.replace(day=1) - timedelta(days=1)
    while len(ends) < months - 1:
        ends.append(end)
        end = end.replace(day=1) - timedelta(days=1)
    return [*reversed(ends), today]


def figures(store: Store, status: InstanceStatus, today: date) -> Figures:
    currency = main_currency(status)
    with store.engine.connect() as conn:
        return Figures(
            currency,
            dso_trend(conn, status.instance, currency, _minor(status, currency), today),
            forecast(conn, status.instance, currency, today),
            without_contact(conn, status.instance),
        )


def dso_trend(
    conn: sa.Connection, instance: str, currency: str, open_now: int, today: date
) -> list[DsoPoint]:
    """DSO on each of :func:`month_ends`.

    ``DSO(d) = receivable(d) / sales(d - 90 days, d] × 90``: the receivable on day ``d`` over
    what was invoiced in the 90 days up to it, in days of sales. The receivable is rebuilt
    backwards from today's exact open amount (``open_now``, in minor units, as
    :func:`instance_status` summed it): ``receivable(d) = open today − invoiced after d + paid
    after d``, from the invoices' issue dates and totals (one scan, grouped by issue date)
    and the payments' dates and amounts. An invoice closed after
    ``d`` without any recorded payment (a write-off) counts as settled already on ``d``.
    """
    points = month_ends(today)
    since = points[0] - timedelta(days=DSO_DAYS)
    issued = conn.execute(
        sa.select(invoices.c.issue_date, sa.func.sum(invoices.c.total_minor))
        .where(
            whole_instance(conn, instance),
            invoices.c.currency == currency,
            invoices.c.issue_date > since,
        )
        .group_by(invoices.c.issue_date)
    ).all()
    paid = conn.execute(
        sa.select(payments.c.paid_on, sa.func.sum(payments.c.amount_minor))
        .where(
            payments.c.instance == instance,
            payments.c.currency == currency,
            payments.c.paid_on > points[0],
        )
        .group_by(payments.c.paid_on)
    ).all()
    result = []
    for on in points:
        invoiced_after = sum(int(total) for day, total in issued if day > on)
        paid_after = sum(int(amount) for day, amount in paid if day > on)
        receivable = open_now - invoiced_after + paid_after
        sales = sum(total for day, total in issued if on - timedelta(days=DSO_DAYS) < day <= on)
        days = None
        if sales > 0:
            days = (Decimal(receivable) / Decimal(sales) * DSO_DAYS).quantize(Decimal("0.1"))
        result.append(
            DsoPoint(on, from_minor(receivable, currency), from_minor(sales, currency), days)
        )
    return result


def forecast(conn: sa.Connection, instance: str, currency: str, today: date) -> list[Week]:
    """Cash expected in each of the next :data:`FORECAST_WEEKS` weeks (week one starts today).

    An open invoice is expected on its due date; one under a promise, a payment plan or a
    dispute is not: a promise brings its scope's open amount on the promised date, a plan
    its instalments on their dates, a dispute nothing. Overdue amounts without a promise are
    not forecast: they are the overdue figure.
    """
    end = today + timedelta(weeks=FORECAST_WEEKS)
    due: dict[date, int] = defaultdict(int)
    promised: dict[date, int] = defaultdict(int)
    window = sa.and_(
        invoices.c.currency == currency, invoices.c.state == "open", invoices.c.open_minor > 0
    )
    rows = conn.execute(
        sa.select(invoices.c.due_date, sa.func.sum(invoices.c.open_minor))
        .where(
            whole_instance(conn, instance),
            window,
            invoices.c.due_date >= today,
            invoices.c.due_date < end,
        )
        .group_by(invoices.c.due_date)
    )
    for day, amount in rows:
        due[day] += int(amount)
    pauses = [p for p in load_active(conn) if p.instance == instance and p.kind in EXPECTED_PAUSES]
    covered: set[str] = set()
    for pause in pauses:
        scoped = conn.execute(
            sa.select(invoices.c.external_id, invoices.c.due_date, invoices.c.open_minor).where(
                invoices.c.instance == instance, _scope(pause), *_paused_window(currency)
            )
        ).all()
        for external_id, day, amount in scoped:
            if external_id not in covered and today <= day < end:
                due[day] -= int(amount)
            covered.add(external_id)
        if pause.kind is PauseKind.PROMISE and pause.until is not None:
            promised[pause.until] += sum(int(amount) for _, _, amount in scoped)
        for instalment in pause.instalments if pause.kind is PauseKind.PAYMENT_PLAN else ():
            promised[instalment.due_on] += instalment.amount_minor
    weeks = []
    for n in range(FORECAST_WEEKS):
        start = today + timedelta(weeks=n)
        days = [start + timedelta(days=i) for i in range(7)]
        weeks.append(
            Week(
                start,
                days[-1],
                from_minor(sum(due.get(d, 0) for d in days), currency),
                from_minor(sum(promised.get(d, 0) for d in days), currency),
            )
        )
    return weeks


def _paused_window(currency: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The forecast's window for a pause's invoices, read through the debtor or invoice index
    (:data:`OPEN_OFF_INDEX`), not by walking every open invoice of the instance per pause."""
    return (invoices.c.currency == currency, OPEN_OFF_INDEX, invoices.c.open_minor > 0)


def _scope(pause: Pause) -> sa.ColumnElement[bool]:
    if pause.scope == "invoice":
        return invoices.c.external_id == pause.target
    if pause.scope == "debtor":
        return invoices.c.debtor_id == pause.target
    return sa.true()


def without_contact(conn: sa.Connection, instance: str) -> int:
    """Debtors with something open that debsync cannot reach at all: no e-mail address, no
    phone number and no postal address."""
    has_open = (
        sa.select(invoices.c.debtor_id)
        .where(
            invoices.c.instance == debtors.c.instance,
            invoices.c.debtor_id == debtors.c.external_id,
            invoices.c.state == "open",
            invoices.c.open_minor > 0,
        )
        .exists()
    )
    empty = ("[]", "null")
    query = sa.select(sa.func.count()).where(
        debtors.c.instance == instance,
        debtors.c.purged_at.is_(None),
        sa.cast(debtors.c.emails, sa.Text).in_(empty),
        sa.cast(debtors.c.phones, sa.Text).in_(empty),
        sa.or_(debtors.c.address.is_(None), sa.cast(debtors.c.address, sa.Text) == "null"),
        has_open,
    )
    return int(conn.execute(query).scalar_one())
