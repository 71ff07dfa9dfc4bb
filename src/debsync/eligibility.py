"""Whether an open invoice may be dunned by debsync at all, before its ladder is consulted.

Some open invoices are someone else's to follow up, or not to be followed up yet: the
bookkeeping program's own reminder workflow handles them, or a direct-debit collection
(incasso) is still under way. The scheduler asks :func:`hold` once per open invoice with a
positive balance; a hold is the invoice's decision, with its reason and explanation.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from debsync.decisions import Decision, Reason
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, StepSent
from debsync.policy import Policy


def hold(
    inv: InvoiceFacts,
    debtor: DebtorFacts,
    instance: InstanceFacts,
    policy: Policy,
    history: Sequence[StepSent],
    today: date,
) -> Decision | None:
    """The decision to leave ``inv`` alone today, or None when its ladder decides.

    A pending direct debit is never dunned, however late: the creditor's bank is collecting
    it, and a reminder would ask the debtor to pay twice. A failed collection (a storno)
    makes the invoice ordinary; its messages then say that the incasso did not succeed.
    """
    if inv.reminded_by_source:
        source = instance.source or "the bookkeeping program"
        return _held(inv, history, Reason.SOURCE_REMINDS, f"left to {source}'s own reminders")
    if inv.direct_debit and not inv.direct_debit_failed:
        detail = "the direct-debit collection (incasso) is under way; dunned only if it fails"
        late = (today - inv.due_date).days
        if late > policy.direct_debit_grace_days:
            where = f" in {instance.source}" if instance.source else ""
            detail += f"; still pending {late} days after the due date: check the collection{where}"
        return _held(inv, history, Reason.DIRECT_DEBIT, detail)
    return None


def _held(
    inv: InvoiceFacts,
    history: Sequence[StepSent],
    reason: Reason,
    detail: str,
    next_on: date | None = None,
) -> Decision:
    current = history[-1].step if history else None
    return Decision(
        inv.instance,
        inv.external_id,
        inv.number,
        inv.debtor_id,
        reason,
        current,
        None,
        next_on,
        detail,
    )
