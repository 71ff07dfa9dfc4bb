"""Whether an open invoice may be dunned by debsync at all, before its ladder is consulted.

Some open invoices are not to be followed up: their claim has prescribed (verjaard, see
:mod:`debsync.law.prescription`), the bookkeeping program's own reminder workflow handles
them, or a direct-debit collection (incasso) is still under way. The scheduler asks
:func:`hold` once per open invoice with a positive balance; a hold is the invoice's
decision, with its reason and explanation.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from debsync import law
from debsync.decisions import Decision, Plan, Reason
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, StepSent
from debsync.model import DebtorKind
from debsync.policy import Policy

_YOUNG_DAYS = 365 * law.PRESCRIPTION_MIN_YEARS
"""An invoice less than this many days past due cannot have prescribed."""
_CHECK = "check the collection"


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
    if (today - inv.due_date).days >= _YOUNG_DAYS:
        found = prescription(inv, debtor, policy, history)
        if found.applies(today):
            return _held(inv, history, Reason.PRESCRIBED, found.describe())
    if inv.reminded_by_source:
        source = instance.source or "the bookkeeping program"
        return _held(inv, history, Reason.SOURCE_REMINDS, f"left to {source}'s own reminders")
    if inv.direct_debit and not inv.direct_debit_failed:
        detail = "the direct-debit collection (incasso) is under way; dunned only if it fails"
        late = (today - inv.due_date).days
        if late > policy.direct_debit_grace_days:
            where = f" in {instance.source}" if instance.source else ""
            detail += f"; still pending {late} days after the due date: {_CHECK}{where}"
        return _held(inv, history, Reason.DIRECT_DEBIT, detail)
    return None


def prescription(
    inv: InvoiceFacts, debtor: DebtorFacts, policy: Policy, history: Sequence[StepSent]
) -> law.Prescription:
    """When the claim of ``inv`` prescribes. A consumer's claim (and, the safe side, one of a
    debtor of unknown kind, whatever ``unknown_kind`` says) has the two years of a consumer
    sale unless the policy says the creditor sells no goods; debsync's own steps interrupt
    only as the policy's ``interrupting_steps`` say, from the day they were received (or, if
    not known, sent)."""
    consumer = debtor.kind is not DebtorKind.BUSINESS and policy.consumer_sales
    term = law.PrescriptionTerm.CONSUMER_SALE if consumer else law.PrescriptionTerm.GENERAL
    days = [s.received_on or s.sent_on for s in history if policy.interrupts(s.step, s.role)]
    outside = policy.interruptions.get(inv.number)
    if outside is not None:
        days.append(outside)
    return law.prescription(inv.due_date, term, days)


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


def held(plan: Plan) -> dict[str, list[dict[str, str]]]:
    """The invoices ``status`` and ``plan`` list, ids and dates only: ``prescribed`` ones, and
    ``collections_to_check``: direct debits still pending past the policy's
    ``direct_debit_grace_days``, which debsync never duns, so a person should look."""
    found: dict[str, list[dict[str, str]]] = {key: [] for key in _HEADINGS}
    for d in plan.decisions:
        if d.reason is Reason.PRESCRIBED:
            key = "prescribed"
        elif d.reason is Reason.DIRECT_DEBIT and _CHECK in d.detail:
            key = "collections_to_check"
        else:
            continue
        found[key].append(
            {
                "instance": d.instance,
                "debtor": d.debtor_id,
                "invoice": d.invoice_id,
                "number": d.number,
                "detail": d.detail,
            }
        )
    return found


_HEADINGS = {
    "prescribed": "prescribed, not dunned",
    "collections_to_check": "direct debits pending past the grace days, not dunned",
}


def held_lines(plan: Plan) -> list[str]:
    """:func:`held` for a person: per list a heading, then one line per invoice."""
    lines = []
    for key, found in held(plan).items():
        if found:
            lines.append(f"{_HEADINGS[key]}: {len(found)} invoice(s)")
            lines += [
                f"  {h['instance']}/{h['debtor']} {h['number']}: {h['detail']}" for h in found
            ]
    return lines
