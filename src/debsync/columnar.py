"""A snapshot as columns: numpy arrays of the few fields a decision needs, one entry per
open invoice and one per step sent, with codes for names; and a plan's decisions built the
first time they are read.

:mod:`debsync.columnar_plan` plans over a :class:`Book`; :mod:`debsync.planning` loads one
from the store, :func:`from_snapshot` builds one from a snapshot. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from debsync.decisions import Decision
from debsync.facts import (
    DebtorFacts,
    InstanceFacts,
    InvoiceFacts,
    Pause,
    PendingStep,
    Snapshot,
    StepSent,
)
from debsync.scheduler import collector_paused

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
NO_DATE = 0
"""An absent date in an ordinal column (``date.toordinal`` is never 0)."""
NO_COSTS = np.iinfo(np.int64).min
ROLES: tuple[str | None, ...] = (None, "wik_notice", "handoff")
"""Role codes of the event columns; another role is appended to a book's own ``roles``."""


@dataclass
class Book:
    """A snapshot as columns: one entry per open invoice, one per step sent (in the order
    sent, ``ev_invoice`` naming the invoice's row), codes into the name lists.

    :param histories: whole histories kept as objects instead of columns (steps a source
        recorded before debsync took over); their debtors go through the reference loop.
    """

    instances: Mapping[str, InstanceFacts]
    instance_names: Sequence[str]
    debtors: Sequence[DebtorFacts]  # by debtor code
    inst: Ints
    external_id: Sequence[str]
    number: Sequence[str]
    debtor: Ints  # debtor code
    debtor_id: Sequence[str]
    due: Ints  # ordinal
    currencies: Sequence[str]
    currency: Ints
    open_minor: Ints
    closed: Bools
    direct_debit: Bools
    direct_debit_failed: Bools
    reminded_by_source: Bools
    step_names: Sequence[str]
    roles: Sequence[str | None]
    ev_invoice: Ints
    ev_step: Ints
    ev_role: Ints
    ev_sent: Ints
    ev_received: Ints
    ev_costs: Ints
    histories: Mapping[int, Sequence[StepSent]] = field(default_factory=dict)
    pauses: Sequence[Pause] = ()
    pending: Mapping[tuple[str, str], PendingStep] = field(default_factory=dict)
    messaged_today: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.external_id)

    def facts(self, rows: Sequence[int]) -> list[InvoiceFacts]:
        """The invoices of ``rows`` as the scheduler's facts."""
        at = np.asarray(rows, np.int64)
        names, currencies = self.instance_names, self.currencies
        day = days()
        return [
            InvoiceFacts(
                names[c],
                self.external_id[i],
                self.number[i],
                self.debtor_id[i],
                day(due),
                currencies[cur],
                amount,
                dd,
                closed,
                failed,
                reminded,
            )
            for i, c, due, cur, amount, dd, closed, failed, reminded in zip(
                rows,
                self.inst[at].tolist(),
                self.due[at].tolist(),
                self.currency[at].tolist(),
                self.open_minor[at].tolist(),
                self.direct_debit[at].tolist(),
                self.closed[at].tolist(),
                self.direct_debit_failed[at].tolist(),
                self.reminded_by_source[at].tolist(),
                strict=True,
            )
        ]


def days() -> Callable[[int], date]:
    """``date.fromordinal``, remembered: a book has few distinct days."""
    return _Days().__getitem__


class _Days(dict[int, date]):
    """Dates by ordinal, each made the first time it is asked for."""

    def __missing__(self, ordinal: int) -> date:
        found = self[ordinal] = date.fromordinal(ordinal)
        return found


def codes(values: Sequence[Any], names: dict[Any, int]) -> Ints:
    """Integer codes for ``values``, adding new ones to ``names`` (value → code)."""
    for value in dict.fromkeys(values):  # the distinct values, first seen first
        if value not in names:
            names[value] = len(names)
    return np.fromiter(map(names.__getitem__, values), np.int64, len(values))


def from_snapshot(snapshot: Snapshot) -> Book:
    """The columnar book of a snapshot (for tests and benchmarks; the store loads columns)."""
    invs = snapshot.invoices
    inst_codes: dict[str, int] = {name: i for i, name in enumerate(snapshot.instances)}
    debtor_codes: dict[tuple[str, str], int] = {}
    currencies: dict[str, int] = {}
    debtor = codes([(inv.instance, inv.debtor_id) for inv in invs], debtor_codes)
    index = {(inv.instance, inv.external_id): i for i, inv in enumerate(invs)}
    steps: dict[str, int] = {}
    roles: dict[str | None, int] = {role: i for i, role in enumerate(ROLES)}
    events: list[tuple[int, int, int, int, int, int]] = []
    histories: dict[int, Sequence[StepSent]] = {}
    for key, hist in snapshot.history.items():
        row = index.get(key)
        if row is None or not hist:
            continue
        if any(s.elsewhere for s in hist):
            histories[row] = hist
            continue
        for s in hist:
            costs = NO_COSTS if s.stated_costs_minor is None else s.stated_costs_minor
            received = s.received_on.toordinal() if s.received_on else NO_DATE
            step, role = steps.setdefault(s.step, len(steps)), roles.setdefault(s.role, len(roles))
            events.append((row, step, role, s.sent_on.toordinal(), received, costs))
    ev = np.array(events, np.int64).reshape(-1, 6)

    def column(get: Callable[[InvoiceFacts], Any], dtype: Any) -> Any:
        return np.fromiter((get(inv) for inv in invs), dtype, len(invs))

    return Book(
        instances=snapshot.instances,
        instance_names=list(inst_codes),
        debtors=[snapshot.debtors.get(k) or DebtorFacts(*k) for k in debtor_codes],
        inst=codes([inv.instance for inv in invs], inst_codes),
        external_id=[inv.external_id for inv in invs],
        number=[inv.number for inv in invs],
        debtor=debtor,
        debtor_id=[inv.debtor_id for inv in invs],
        due=column(lambda inv: inv.due_date.toordinal(), np.int64),
        currency=codes([inv.currency for inv in invs], currencies),
        currencies=list(currencies),
        open_minor=column(lambda inv: inv.open_minor, np.int64),
        closed=column(lambda inv: inv.closed, np.bool_),
        direct_debit=column(lambda inv: inv.direct_debit, np.bool_),
        direct_debit_failed=column(lambda inv: inv.direct_debit_failed, np.bool_),
        reminded_by_source=column(lambda inv: inv.reminded_by_source, np.bool_),
        step_names=list(steps),
        roles=list(roles),
        ev_invoice=ev[:, 0],
        ev_step=ev[:, 1],
        ev_role=ev[:, 2],
        ev_sent=ev[:, 3],
        ev_received=ev[:, 4],
        ev_costs=ev[:, 5],
        histories=histories,
        pauses=snapshot.pauses,
        pending=snapshot.pending,
        messaged_today=snapshot.messaged_today,
    )


# Codes of the decisions the vectorised pass settles (index into _SETTLED), and of the rest.


class Decisions(Sequence[Decision]):
    """A plan's decisions, built the first time they are read: most of a large book's are
    never read (``act`` reads only the actions)."""

    def __init__(
        self, length: int, build: Callable[[], Iterator[Decision] | list[Decision]]
    ) -> None:
        self._length, self._build = length, build
        self._items: list[Decision] | None = None

    def _all(self) -> list[Decision]:
        if self._items is None:
            with collector_paused():
                self._items = list(self._build())
        return self._items

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Decision: ...
    @overload
    def __getitem__(self, index: slice) -> list[Decision]: ...
    def __getitem__(self, index: int | slice) -> Decision | list[Decision]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Decision]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._all() == list(other)

    __hash__ = None  # type: ignore[assignment]
