"""The call list as the calls page shows it, and recording what came of a call.

The open call tasks are ``outbox.calls.open_calls``'s; an outcome is recorded by
``outbox.calls.complete`` as ``debsync calls done`` records it (a promise or a dispute pauses
the task's invoices), with the signed-in user as its author.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from debsync.call_outcomes import Outcome
from debsync.clock import Clock
from debsync.facts import Pause
from debsync.outbox.calls import CallTask, complete, open_calls
from debsync.outbox.table import OutboxError
from debsync.store import Store
from debsync.web.pages.work_lists import matching_debtors


@dataclass(frozen=True)
class CallLine:
    """An open invoice the call is about, as it stood when the task was filed."""

    number: str
    due_date: date
    days_overdue: int
    open: Decimal


@dataclass(frozen=True)
class Contact:
    """An earlier message to the debtor: when, which step, by which channel."""

    on: date
    step: str
    channel: str


@dataclass(frozen=True)
class CallItem:
    key: str
    instance: str
    debtor_id: str
    debtor_name: str
    step: str
    filed_on: date
    phones: tuple[str, ...]
    currency: str
    lines: tuple[CallLine, ...]
    total: Decimal | None
    script: str
    contacts: tuple[Contact, ...]


def _item(task: CallTask) -> CallItem:
    payload = task.payload
    return CallItem(
        key=task.key,
        instance=task.instance,
        debtor_id=task.debtor_id,
        debtor_name=str(payload.get("debtor_name", "")),
        step=task.step,
        filed_on=task.filed_on,
        phones=tuple(payload.get("phones", ())),
        currency=str(payload.get("currency", "EUR")),
        lines=tuple(
            CallLine(
                number=i["number"],
                due_date=date.fromisoformat(i["due_date"]),
                days_overdue=int(i["days_overdue"]),
                open=Decimal(i["open"]),
            )
            for i in payload.get("invoices", ())
        ),
        total=Decimal(payload["total"]) if "total" in payload else None,
        script=str(payload.get("script", "")),
        contacts=tuple(Contact(date.fromisoformat(d), s, c) for d, s, c in task.last_contacts),
    )


def load_calls(store: Store, *, search: str = "") -> list[CallItem]:
    """Open call tasks, oldest first; with a search, those of the debtors it finds."""
    items = [_item(task) for task in open_calls(store)]
    if search.strip():
        found = matching_debtors(store, search)
        items = [i for i in items if (i.instance, i.debtor_id) in found]
    return items


def record_outcome(
    store: Store,
    key: str,
    outcome: Outcome,
    *,
    author: str,
    clock: Clock,
    promise_date: date | None = None,
    promise_amount: Decimal | None = None,
    note: str = "",
) -> list[Pause]:
    """Record a call's outcome. A promise names its date and may name an amount (kept in the
    note, which becomes the pause's reason); a dispute needs its reason."""
    note = note.strip()
    if outcome is Outcome.DISPUTED and not note:
        raise OutboxError("a dispute needs its reason")
    if outcome is Outcome.PROMISED and promise_amount is not None:
        if promise_amount <= 0:
            raise OutboxError("a promised amount is positive")
        note = f"promised amount {promise_amount:.2f}" + (f"; {note}" if note else "")
    return complete(
        store,
        key,
        outcome,
        author=author,
        promise_date=promise_date,
        note=note or None,
        clock=clock,
    )
