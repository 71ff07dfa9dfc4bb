"""What one action claims: principal net of open credit notes, statutory interest,
collection costs and the new last day of payment, for a debtor's invoices on a given day, as
the policy and the law allow; an invoice named below the action's step claims only what its
own step claims.

The scheduler builds every planned action with :func:`build_action`; the outbox calls it again
right before sending, so the figures a debtor sees are never stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from debsync import law
from debsync.decisions import ClaimLine, PlannedAction, StepReason, english, idempotency_key
from debsync.facts import DebtorFacts, InvoiceFacts, StepSent
from debsync.model import DebtorKind, from_minor
from debsync.policy import Policy, Step

EUR = "EUR"
_ONE_DAY = timedelta(days=1)
_BY_DUE_DATE = attrgetter("due_date", "number")
"""How a message lists invoices and credit notes: oldest first."""


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
    reasons: Sequence[StepReason] = (),
    stages: Mapping[str, int] | None = None,
    credits: Sequence[InvoiceFacts] = (),
    memo: dict[Any, Terms] | None = None,
) -> PlannedAction | None:
    """One message for ``debtor``: step ``step_index`` of ``policy`` on ``channel`` over
    ``invoices`` (their open amounts as of ``today``) net of the open ``credits``, with
    interest, costs and a deadline as the policy and the law allow. ``None`` when the net
    principal is below the minimum (or the credits cover it).

    ``stages`` maps an invoice to its own step when it is lower than ``step_index``: such an
    invoice is named as a reminder at its own stage; interest, costs and a veertiendagenbrief's
    announced costs are claimed only on invoices whose own step claims them.

    ``reasons`` say why each invoice is named, and the explanation is worded from them; an
    action rebuilt from the outbox passes the ``explanation`` it stored instead.

    ``memo`` keeps the :class:`Terms` of each step, channel, currency and kind across the
    messages of one planning pass (its policies stay alive, so their ids are safe keys).
    """
    step = policy.steps[step_index]
    ordered = sorted(invoices, key=_BY_DUE_DATE) if len(invoices) > 1 else list(invoices)
    if stages:
        own = {
            inv.external_id: min(stages.get(inv.external_id, step_index), step_index)
            for inv in ordered
        }
        if own and max(own.values()) < step_index:  # its own invoices were paid before
            step_index = max(own.values())  # sending: the rest goes at the highest left
            step = policy.steps[step_index]
        steps = {ext: policy.steps[at] for ext, at in own.items()}
    else:
        own = dict.fromkeys([inv.external_id for inv in ordered], step_index)
        steps = dict.fromkeys(own, step)
    amounts = {inv.external_id: from_minor(inv.open_minor, currency) for inv in ordered}
    gross = sum(amounts.values(), Decimal(0))
    open_credits = (
        sorted(
            (c for c in credits if c.open_minor < 0 and c.currency == currency and not c.closed),
            key=_BY_DUE_DATE,
        )
        if credits
        else []
    )
    credit_total = -sum((from_minor(c.open_minor, currency) for c in open_credits), Decimal(0))
    principal = gross - credit_total
    if memo is None:
        terms = step_terms(policy, step, channel, currency, debtor.kind, today)
    else:
        known = (id(policy), step_index, channel, currency, debtor.kind, today)
        terms = memo.get(known) or memo.setdefault(
            known, step_terms(policy, step, channel, currency, debtor.kind, today)
        )
    if principal <= 0 or principal < terms.minimum:
        return None
    net = _allocate(ordered, own, amounts, credit_total) if credit_total else amounts
    business, eur = terms.business, terms.eur
    notes = list(terms.notes)

    lines = []
    bearing = step.claim_interest and eur and any(s.claim_interest for s in steps.values())
    interest_total: Decimal | None = Decimal(0) if bearing else None  # not lower stages only
    for inv in ordered:
        ext = inv.external_id
        interest: Decimal | None = None
        if interest_total is not None and steps[ext].claim_interest:
            try:
                interest = law.statutory_interest(
                    net[ext],
                    inv.due_date + _ONE_DAY,
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
                ext,
                inv.number,
                inv.due_date,
                (today - inv.due_date).days,
                amounts[ext],
                interest,
                steps[ext].name,
            )
        )
    gap = bearing and interest_total is None  # no rate for a day: no interest on any line
    if gap:
        lines = [line._replace(interest=None) for line in lines]
    held = gap and not policy.send_without_interest
    if held:
        notes.append(law.HELD_WITHOUT_INTEREST)

    costs: Decimal | None = None
    announced: Decimal | None = None
    if eur and step.claim_costs:
        basis = [i for i in ordered if steps[i.external_id].claim_costs and net[i.external_id]]
        base = sum((net[inv.external_id] for inv in basis), Decimal(0))
        costs = _costs(debtor, policy, currency, basis, base, history, today, notes)
    if eur and terms.wik_letter:
        announced = law.collection_costs(
            sum(
                (net[i.external_id] for i in ordered if own[i.external_id] == step_index),
                Decimal(0),
            ),
            vat_rate=policy.costs_vat_rate,
        )
    ids = [
        inv.external_id
        if own[inv.external_id] == step_index
        else f"{inv.external_id}@{steps[inv.external_id].name}"
        for inv in ordered
    ]
    instance = ordered[0].instance
    return PlannedAction(
        key=idempotency_key(instance, debtor.external_id, step.name, channel, ids),
        instance=instance,
        debtor_id=debtor.external_id,
        policy=policy.name,
        step=step.name,
        channel=channel,
        template=step.template_name,
        role=step.role,
        legal_copy=terms.legal_copy,
        requires_approval=step.requires_approval or held,
        language=debtor.language,
        kind=terms.kind,
        currency=currency,
        lines=tuple(lines),
        principal=principal,
        interest=interest_total,
        costs=costs,
        announced_costs=announced,
        deadline=terms.deadline,
        notes=tuple(dict.fromkeys(notes)) if notes else (),
        explanation=explanation or english(reasons),
        reasons=tuple(reasons),
        credits=tuple(
            ClaimLine(
                c.external_id,
                c.number,
                c.due_date,
                (today - c.due_date).days,
                from_minor(c.open_minor, currency),
                None,
            )
            for c in open_credits
        )
        if open_credits
        else (),
    )


class Terms(NamedTuple):
    """What a message's step, channel and currency fix for a debtor of one kind on one day,
    whatever its invoices."""

    kind: DebtorKind
    business: bool
    eur: bool
    minimum: Decimal  # no message below this principal
    notes: tuple[str, ...]  # the foreign currency's note, or none
    wik_letter: bool  # a veertiendagenbrief to a consumer
    legal_copy: bool
    deadline: date


def step_terms(
    policy: Policy, step: Step, channel: str, currency: str, kind: DebtorKind, today: date
) -> Terms:
    """The :class:`Terms` of ``step`` on ``channel`` in ``currency`` for a debtor of ``kind``."""
    kind = policy.kind_of(kind)
    business = kind is DebtorKind.BUSINESS
    eur = currency == EUR
    notes: tuple[str, ...] = ()
    if not eur and (step.claim_interest or step.claim_costs or step.role == "wik_notice"):
        notes = (f"no statutory interest or collection costs on a {currency} claim",)
    wik_letter = step.role == "wik_notice" and not business
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
    minimum = max(policy.min_open_amount, step.min_open_amount)
    return Terms(kind, business, eur, minimum, notes, wik_letter, legal_copy, deadline)


def _allocate(
    ordered: Sequence[InvoiceFacts],
    own: Mapping[str, int],
    amounts: Mapping[str, Decimal],
    credit: Decimal,
) -> dict[str, Decimal]:
    """Each invoice's amount net of the credits, offset first against the invoices at the
    highest stage and, among them, the oldest: those bear interest and costs, so the debtor
    is never charged on an amount a credit note already covers."""
    net = dict(amounts)
    for inv in sorted(ordered, key=lambda i: -own[i.external_id]):  # stable: oldest first
        offset = min(credit, net[inv.external_id])
        net[inv.external_id] -= offset
        credit -= offset
    return net


def line_stages(policy: Policy, lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The invoices' own steps as the outbox stored them (``plan_to_json`` lines), for
    :func:`build_action` right before sending; a line without one is at the action's step."""
    stages = {}
    for line in lines:
        index = policy.index(line["step"]) if line.get("step") else None
        if index is not None:
            stages[line["invoice_id"]] = index
    return stages


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
    if not invoices:
        return None
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
