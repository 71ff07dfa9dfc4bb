"""What one action claims: principal, statutory interest, collection costs and the new last
day of payment, for a debtor's invoices on a given day, as the policy and the law allow.

The scheduler builds every planned action with :func:`build_action`; the outbox calls it again
right before sending, so the figures a debtor sees are never stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

from debsync import law
from debsync.decisions import ClaimLine, PlannedAction, idempotency_key
from debsync.facts import DebtorFacts, InvoiceFacts, StepSent
from debsync.model import DebtorKind, from_minor
from debsync.policy import Policy

EUR = "EUR"


def wik_sent(hist: Sequence[StepSent]) -> StepSent | None:
    for sent in reversed(hist):
        if sent.role == "wik_notice":
            return sent
    return None


def wik_dates(wik: StepSent, policy: Policy) -> tuple[date, date]:
    """(last day of the veertiendagenbrief term, first day a consumer claim may escalate:
    the term plus a buffer of business days for payments made on its last day)."""
    receipt = wik.received_on or law.presumed_receipt(
        wik.sent_on, "letter", delivery_days=policy.delivery_days
    )
    last_day = law.veertiendagenbrief_term(receipt).last_day
    return last_day, law.add_business_days(last_day, policy.wik_buffer_business_days)


def build_action(
    debtor: DebtorFacts,
    policy: Policy,
    step_index: int,
    channel: str,
    currency: str,
    invoices: Sequence[InvoiceFacts],
    history: Mapping[tuple[str, str], Sequence[StepSent]],
    today: date,
    rates: law.RateTable | None = None,
    warnings: list[str] | None = None,
    *,
    explanation: str = "",
) -> PlannedAction | None:
    """One message for ``debtor``: step ``step_index`` of ``policy`` on ``channel`` over
    ``invoices`` (their open amounts as of ``today``), with interest, costs and a deadline as
    the policy and the law allow. ``None`` when the principal is below the minimum.

    The scheduler builds every planned action with it; the outbox calls it again right before
    sending when invoices were paid or paused meanwhile, so the figures are never stale.
    """
    step = policy.steps[step_index]
    ordered = sorted(invoices, key=lambda inv: (inv.due_date, inv.number))
    principal = sum((from_minor(inv.open_minor, currency) for inv in ordered), Decimal(0))
    if principal < max(policy.min_open_amount, step.min_open_amount):
        return None
    business = policy.kind_of(debtor.kind) is DebtorKind.BUSINESS
    eur = currency == EUR
    notes: list[str] = []
    if not eur and (step.claim_interest or step.claim_costs or step.role == "wik_notice"):
        notes.append(f"no statutory interest or collection costs on a {currency} claim")

    lines = []
    interest_total: Decimal | None = Decimal(0) if step.claim_interest and eur else None
    for inv in ordered:
        amount = from_minor(inv.open_minor, currency)
        interest: Decimal | None = None
        if interest_total is not None:
            try:
                interest = law.statutory_interest(
                    amount,
                    inv.due_date + timedelta(days=1),
                    today,
                    commercial=business,
                    table=rates,
                )
            except law.RateUnknownError as exc:
                notes.append(f"interest left out: {exc}")
                if warnings is not None:
                    warnings.append(law.rate_gap_warning(exc, policy.send_without_interest))
                interest_total = None
            else:
                interest_total += interest
        lines.append(
            ClaimLine(
                inv.external_id,
                inv.number,
                inv.due_date,
                (today - inv.due_date).days,
                amount,
                interest,
            )
        )
    if interest_total is None:
        lines = [line._replace(interest=None) for line in lines]
    held = step.claim_interest and eur and interest_total is None  # no rate for a day
    held = held and not policy.send_without_interest
    if held:
        notes.append(law.HELD_WITHOUT_INTEREST)

    costs: Decimal | None = None
    announced: Decimal | None = None
    if eur and step.claim_costs:
        costs = _costs(debtor, policy, currency, ordered, principal, history, today, notes)
    wik_letter = step.role == "wik_notice" and not business
    if eur and wik_letter:
        announced = law.collection_costs(principal, vat_rate=policy.costs_vat_rate)
    legal_copy = step.role == "wik_notice" and (
        channel == "letter" or (channel == "email" and policy.email_is_legal_copy)
    )
    if wik_letter:
        receipt = law.presumed_receipt(
            today,
            "letter" if channel != "email" or not policy.email_is_legal_copy else "email",
            delivery_days=policy.delivery_days,
            email_is_legal_copy=policy.email_is_legal_copy,
        )
        deadline = law.veertiendagenbrief_term(receipt).last_day
    else:
        deadline = law.add_business_days(today, step.deadline_business_days)
    ids = [inv.external_id for inv in ordered]
    return PlannedAction(
        key=idempotency_key(ordered[0].instance, debtor.external_id, step.name, channel, ids),
        instance=ordered[0].instance,
        debtor_id=debtor.external_id,
        policy=policy.name,
        step=step.name,
        channel=channel,
        template=step.template_name,
        role=step.role,
        legal_copy=legal_copy,
        requires_approval=step.requires_approval or held,
        language=debtor.language,
        kind=policy.kind_of(debtor.kind),
        currency=currency,
        lines=tuple(lines),
        principal=principal,
        interest=interest_total,
        costs=costs,
        announced_costs=announced,
        deadline=deadline,
        notes=tuple(dict.fromkeys(notes)),
        explanation=explanation,
    )


def _costs(
    debtor: DebtorFacts,
    policy: Policy,
    currency: str,
    invoices: Sequence[InvoiceFacts],
    principal: Decimal,
    history: Mapping[tuple[str, str], Sequence[StepSent]],
    today: date,
    notes: list[str],
) -> Decimal | None:
    if policy.kind_of(debtor.kind) is DebtorKind.BUSINESS:
        if policy.b2b_costs == "none":
            return None
        if policy.b2b_costs == "compensation":
            return law.B2B_COMPENSATION * len(invoices)
        return law.collection_costs(principal, vat_rate=policy.costs_vat_rate)
    # Consumer (or unknown, treated as one): only after an expired veertiendagenbrief, for
    # every invoice in the message, and never above what the letter stated.
    letters: set[StepSent] = set()
    for inv in invoices:
        wik = wik_sent(history.get((inv.instance, inv.external_id), ()))
        if wik is None or wik.sent_on <= inv.due_date or today <= wik_dates(wik, policy)[0]:
            notes.append(
                "no collection costs: a consumer owes them only after a veertiendagenbrief "
                "whose term has ended unpaid (art. 6:96 lid 6 BW)"
            )
            return None
        letters.add(wik)
    costs = law.collection_costs(principal, vat_rate=policy.costs_vat_rate)
    if all(letter.stated_costs_minor is not None for letter in letters):
        stated = sum(letter.stated_costs_minor or 0 for letter in letters)
        costs = min(costs, from_minor(stated, currency))  # never above what was stated
    return costs
