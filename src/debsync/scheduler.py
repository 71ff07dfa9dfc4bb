"""The scheduler: ``plan(snapshot, policies, now)`` decides which dunning step every open
invoice is due for today, and combines those steps into one action per debtor, channel and
currency, at the highest step among them.

It is a pure function: no I/O, no clock of its own, the same input gives the same plan. It
reports every invoice it does *not* act on with a reason code, and explains every decision.

Rules no policy can switch off (``debsync.law`` has the sources):

* nothing for an invoice that is paid, closed, a credit note, or whose debtor's net balance
  is zero or negative; open credit notes are offset against every message (the amount
  demanded, interest and costs are net); nothing after a handoff;
* the ladder is never skipped (:mod:`debsync.ladder`): a step the debtor cannot be reached
  for falls back to a letter or a call task, or the invoice needs contact details; a handoff
  follows every lower step that applies and is not waived, at least the aanmaning;
* collection costs for a consumer only after a veertiendagenbrief stating the exact amount
  was sent after the due date and its term ended unpaid; costs follow the remaining
  principal; a consumer claim is never handed off before that;
* in a combined message an invoice at a lower stage is named as a reminder and records its
  own step: it never carries a higher step's interest, costs or term;
* statutory interest and costs on EUR claims only; interest is never guessed past the rate
  table (the message goes without it and the plan says why);
* after downtime one step at a time: never a skipped step, never two steps for one invoice in
  one plan; later steps keep their spacing from the day the previous one was sent.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from debsync import claims, eligibility, law
from debsync.claims import Terms, build_action, wik_sent
from debsync.clock import local_date
from debsync.decisions import Decision, Plan, PlannedAction, Reason, StepReason
from debsync.facts import (
    DebtorFacts,
    InstanceFacts,
    InvoiceFacts,
    Pause,
    PendingStep,
    Snapshot,
    StepSent,
)
from debsync.ladder import Ladder, Unreachable
from debsync.model import DebtorKind
from debsync.pause_rules import describe_pause, pause_covering, pauses_in_force
from debsync.policy import Policy, Step

__all__ = ["collector_paused", "pause_covering", "pauses_in_force", "plan"]


@dataclass
class _Group:
    """The due steps of one debtor on one channel in one currency: one message."""

    instance: str
    debtor: DebtorFacts
    policy: Policy
    channel: str
    currency: str
    # (facts, own step position, why, whether this group decides the invoice)
    invoices: list[tuple[InvoiceFacts, int, StepReason, bool]] = field(default_factory=list)


Groups = dict[tuple[str, str, str, str], _Group]


class _DebtorView(NamedTuple):
    debtor: DebtorFacts
    ladder: Ladder | None
    blocked: Decision | None  # stale data or unknown policy: nothing for any invoice
    pause: Pause | None  # a debtor or instance pause


def plan(
    snapshot: Snapshot,
    policies: Mapping[str, Policy],
    now: datetime,
    *,
    rates: law.RateTable | None = None,
    check_freshness: bool = True,
) -> Plan:
    """Decide today's steps. Pure and deterministic.

    :param rates: the statutory interest table (default: the shipped one).
    :param check_freshness: ``False`` only to preview a future date, when no sync can be fresh.
    """
    with collector_paused():
        return _plan(snapshot, policies, now, rates, check_freshness=check_freshness)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector. Loading and planning allocate a few small,
    acyclic objects per invoice; with a million invoices the collector would otherwise walk
    the whole snapshot again and again for nothing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _plan(
    snapshot: Snapshot,
    policies: Mapping[str, Policy],
    now: datetime,
    rates: law.RateTable | None,
    *,
    check_freshness: bool,
) -> Plan:
    today = local_date(now)
    decisions, groups = _decide(snapshot, policies, now, check_freshness=check_freshness)
    warnings: list[str] = []
    credits = _open_credits(snapshot.invoices, groups) if groups else {}
    actions, decided = act_on(groups, credits, snapshot.history, today, rates, warnings)
    decisions.extend(decided)
    return Plan(today=today, actions=actions, decisions=decisions, warnings=sorted(set(warnings)))


def _decide(
    snapshot: Snapshot,
    policies: Mapping[str, Policy],
    now: datetime,
    *,
    check_freshness: bool,
) -> tuple[list[Decision], Groups]:
    """The decision on every invoice that is not acted on today, and the due steps of the
    rest, grouped into messages (decided by :func:`act_on`)."""
    today = local_date(now)
    today_ord = today.toordinal()
    decisions: list[Decision] = []
    add = decisions.append
    groups: Groups = {}
    stale = _freshness(snapshot.instances, policies, now) if check_freshness else {}
    pauses = pauses_in_force(snapshot, policies, today)
    invoice_pauses = {(i, t): p for (scope, i, t), p in pauses.items() if scope == "invoice"}
    net = _net_balances(snapshot.invoices)
    history = snapshot.history
    ladders: dict[tuple[str, DebtorKind, frozenset[str]], Ladder] = {}
    views: dict[tuple[str, str], _DebtorView] = {}
    wik_terms: dict[tuple[StepSent, str], tuple[date, date]] = {}
    no_history: tuple[StepSent, ...] = ()
    messaged = snapshot.messaged_today

    for inv in snapshot.invoices:
        inst, ext, number, debtor_id, due_date, currency, open_minor, _, closed, *_ = inv
        hist = history.get((inst, ext), no_history)
        current = hist[-1].step if hist else None
        if closed or open_minor == 0:
            add(Decision(inst, ext, number, debtor_id, Reason.PAID, current, None, None, ""))
            continue
        if open_minor < 0:
            add(Decision(inst, ext, number, debtor_id, Reason.CREDIT, current, None, None, ""))
            continue
        if net[(inst, debtor_id, currency)] <= 0:
            add(Decision(inst, ext, number, debtor_id, Reason.NET_BALANCE, current, None, None, ""))
            continue
        view = views.get((inst, debtor_id))
        if view is None:
            view = views[(inst, debtor_id)] = _debtor_view(
                snapshot, inst, debtor_id, policies, ladders, stale, pauses
            )
        if view.blocked is not None:
            add(view.blocked._replace(invoice_id=ext, number=number, current_step=current))
            continue
        ladder = view.ladder
        assert ladder is not None
        policy = ladder.policy
        if hist and hist[-1].role == "handoff":  # nothing is ever sent after a handoff
            add(Decision(inst, ext, number, debtor_id, Reason.HANDED_OFF, current, None, None, ""))
            continue
        pause = invoice_pauses.get((inst, ext)) if invoice_pauses else None
        if pause is not None or view.pause is not None:
            detail = describe_pause(pause or view.pause)  # type: ignore[arg-type]
            add(Decision(inst, ext, number, debtor_id, Reason.PAUSED, current, None, None, detail))
            continue
        held = eligibility.hold(inv, view.debtor, snapshot.instances[inst], policy, hist, today)
        if held is not None:
            add(held)
            continue
        due_ord = due_date.toordinal()

        # The ladder: which rung is next, and when.
        last_index = -1
        if hist:
            found = ladder.position.get(hist[-1].step)
            if found is None:
                detail = f"step {hist[-1].step!r} is not in policy {policy.name!r}"
                add(
                    Decision(
                        inst,
                        ext,
                        number,
                        debtor_id,
                        Reason.UNKNOWN_STEP,
                        current,
                        None,
                        None,
                        detail,
                    )
                )
                continue
            last_index = found
        rung = ladder.after[last_index]
        if rung is None:
            add(Decision(inst, ext, number, debtor_id, Reason.LADDER_DONE, current, None, None, ""))
            continue
        step = rung.step
        if isinstance(rung, Unreachable):
            reason = Reason.NEEDS_CONTACT
            add(
                Decision(
                    inst, ext, number, debtor_id, reason, current, step.name, None, rung.detail
                )
            )
            continue
        waiting = snapshot.pending.get((inst, ext)) if snapshot.pending else None
        if waiting is not None:
            at = ladder.position.get(waiting.step)
            if at is None or at >= rung.position:  # already queued for this step or later
                add(
                    Decision(
                        inst,
                        ext,
                        number,
                        debtor_id,
                        _pending_reason(waiting),
                        current,
                        waiting.step,
                        None,
                        f"action {waiting.key} ({waiting.step} by {waiting.channel}) is "
                        f"{waiting.state}",
                    )
                )
                continue
        if rung.after_previous is not None:
            step_ord = (hist[-1].sent_on.toordinal() if hist else due_ord) + rung.after_previous
        else:
            step_ord = due_ord + rung.after_due  # type: ignore[operator]
            if hist:  # after downtime, keep the spacing from the step actually sent
                spacing = max(rung.after_due - rung.previous_nominal, 1)  # type: ignore[operator]
                step_ord = max(step_ord, hist[-1].sent_on.toordinal() + spacing)
        if rung.min_overdue:
            step_ord = max(step_ord, due_ord + rung.min_overdue)
        if ladder.consumer:
            wik = wik_sent(hist) if hist else None
            if wik is not None:
                key = (wik, policy.name)
                dates = wik_terms.get(key)
                if dates is None:
                    dates = wik_terms[key] = claims.wik_dates(wik, policy)
                escalate_ord = dates[1].toordinal()
                if escalate_ord > step_ord:
                    step_ord = escalate_ord
                    if today_ord < step_ord:
                        detail = f"the veertiendagenbrief term runs until {dates[0]}"
                        add(
                            Decision(
                                inst,
                                ext,
                                number,
                                debtor_id,
                                Reason.WAITING_WIK_TERM,
                                current,
                                step.name,
                                dates[1],
                                detail,
                            )
                        )
                        continue
            elif step.role == "handoff":
                add(
                    Decision(
                        inst,
                        ext,
                        number,
                        debtor_id,
                        Reason.NO_WIK,
                        current,
                        step.name,
                        None,
                        "",
                    )
                )
                continue
        if step.role == "handoff" and not rung.required <= {sent.step for sent in hist}:
            missing = ", ".join(sorted(rung.required - {sent.step for sent in hist}))
            detail = f"step {step.name!r} follows {missing}, which was not sent"
            reason = Reason.LOWER_STEP_MISSING
            add(Decision(inst, ext, number, debtor_id, reason, current, step.name, None, detail))
            continue
        if today_ord < step_ord:
            add(
                Decision(
                    inst,
                    ext,
                    number,
                    debtor_id,
                    Reason.NOT_DUE,
                    current,
                    step.name,
                    date.fromordinal(step_ord),
                    "",
                )
            )
            continue
        if messaged:  # a second run the same day: one message per debtor and channel a day
            today_keys = [messaged.get((inst, debtor_id, c)) for c in rung.channels]
            earlier = next((key for key in today_keys if key), None)
            if earlier is not None:
                detail = f"action {earlier} went to the debtor today"
                reason, tomorrow = Reason.MESSAGED_TODAY, date.fromordinal(today_ord + 1)
                add(
                    Decision(
                        inst, ext, number, debtor_id, reason, current, step.name, tomorrow, detail
                    )
                )
                continue
        why = _why(step, hist[-1] if hist else None, number, due_date, today_ord - due_ord)
        for channel in rung.channels:
            gkey = (inst, debtor_id, channel, inv.currency)
            group = groups.get(gkey)
            if group is None:
                group = groups[gkey] = _Group(inst, view.debtor, policy, channel, inv.currency)
            # the invoice is decided once, by its step's first channel
            group.invoices.append((inv, rung.position, why, channel == rung.channels[0]))
    return decisions, groups


def act_on(
    groups: Groups,
    credits: Mapping[tuple[str, str, str], Sequence[InvoiceFacts]],
    history: Mapping[tuple[str, str], Sequence[StepSent]],
    today: date,
    rates: law.RateTable | None,
    warnings: list[str],
) -> tuple[list[PlannedAction], list[Decision]]:
    """The actions for the grouped due steps, in a stable order, and the decisions on the
    invoices they decide."""
    actions = []
    decisions: list[Decision] = []
    memo: dict[Any, Terms] = {}  # for this pass only: its groups keep the policies alive
    for group in sorted(groups.values(), key=_GROUP_ORDER):
        for step_index, members in combine(group.policy, group.invoices):
            action, outcome = _act(
                group, step_index, members, credits, history, today, rates, warnings, memo
            )
            if action is not None:
                actions.append(action)
            decisions.extend(outcome)
    return actions, decisions


Member = tuple[InvoiceFacts, int, StepReason, bool]


def combine(policy: Policy, members: Sequence[Member]) -> list[tuple[int, list[Member]]]:
    """One message per debtor and channel, at the highest step among its invoices. Kept out
    of it, and combined among themselves the same way: an invoice whose own step has a legal
    role (veertiendagenbrief, handoff), since its legal content cannot be a line in another
    step's message, and every lower invoice when the highest step is a handoff, since a
    handoff transfers the claims it names."""
    if len(members) == 1:  # most messages name one invoice
        return [(members[0][1], list(members))]
    top = max(position for _, position, _, _ in members)
    handoff = policy.steps[top].role == "handoff"
    together: list[Member] = []
    rest: list[Member] = []
    for member in members:
        position = member[1]
        lower = position != top
        alone = lower and (handoff or policy.steps[position].role is not None)
        (rest if alone else together).append(member)
    return [(top, together), *(combine(policy, rest) if rest else [])]


def _act(
    group: _Group,
    step_index: int,
    members: Sequence[Member],
    credits: Mapping[tuple[str, str, str], Sequence[InvoiceFacts]],
    history: Mapping[tuple[str, str], Sequence[StepSent]],
    today: date,
    rates: law.RateTable | None,
    warnings: list[str],
    memo: dict[Any, Terms],
) -> tuple[PlannedAction | None, list[Decision]]:
    """The action for one message, and the decisions on the invoices it decides."""
    policy = group.policy
    step = policy.steps[step_index]
    ordered = sorted(members, key=_by_due_date) if len(members) > 1 else members
    offset = credits.get((group.instance, group.debtor.external_id, group.currency), ())
    action = build_action(
        group.debtor,
        policy,
        step_index,
        group.channel,
        group.currency,
        [inv for inv, _, _, _ in ordered],
        history,
        today,
        rates,
        warnings,
        reasons=[
            why if at == step_index else replace(why, named_in=step.name)
            for _, at, why, _ in ordered
        ],
        stages={inv.external_id: at for inv, at, _, _ in ordered if at != step_index},
        credits=offset,
        memo=memo,
    )
    decided = [(inv, policy.steps[at], why) for inv, at, why, first in ordered if first]
    if action is None:
        total = sum(inv.open_minor for inv, _, _, _ in ordered) + sum(c.open_minor for c in offset)
        if total <= 0:
            reason, detail = Reason.NET_BALANCE, "open credit notes cover the amount due"
        else:
            minimum = max(policy.min_open_amount, step.min_open_amount)
            reason = Reason.BELOW_THRESHOLD
            detail = f"total principal for this message is below the minimum of {minimum}"
        return None, [
            _decision(inv, history, reason, own.name, None, detail) for inv, own, _ in decided
        ]
    return action, [
        _decision(
            inv,
            history,
            Reason.AWAITING_APPROVAL if step.requires_approval else Reason.PLANNED,
            own.name,
            today,
            why.why(),
        )
        for inv, own, why in decided
    ]


def _by_due_date(member: Member) -> tuple[date, str]:
    return member[0].due_date, member[0].number


def _decision(
    inv: InvoiceFacts,
    history: Mapping[tuple[str, str], Sequence[StepSent]],
    reason: Reason,
    step: str,
    on: date | None,
    detail: str,
) -> Decision:
    current = _current(history, inv)
    return Decision(
        inv.instance, inv.external_id, inv.number, inv.debtor_id, reason, current, step, on, detail
    )


def _open_credits(
    invoices: Sequence[InvoiceFacts], groups: Mapping[tuple[str, str, str, str], _Group]
) -> dict[tuple[str, str, str], list[InvoiceFacts]]:
    """Open credit notes by (instance, debtor, currency), for the debtors with a message."""
    wanted = {(inst, debtor, currency) for inst, debtor, _, currency in groups}
    found: dict[tuple[str, str, str], list[InvoiceFacts]] = defaultdict(list)
    for inv in invoices:
        key = (inv.instance, inv.debtor_id, inv.currency)
        if inv.open_minor < 0 and not inv.closed and key in wanted:
            found[key].append(inv)
    return found


_PENDING_REASONS = {
    "awaiting_approval": Reason.AWAITING_APPROVAL,
    "dead": Reason.ACTION_FAILED,
    "cancelled": Reason.REJECTED,
}


def _pending_reason(pending: PendingStep) -> Reason:
    if pending.state == "sent" and not pending.dispatched:
        return Reason.AWAITING_DISPATCH
    return _PENDING_REASONS.get(pending.state, Reason.QUEUED)


def _debtor_view(
    snapshot: Snapshot,
    inst: str,
    debtor_id: str,
    policies: Mapping[str, Policy],
    ladders: dict[tuple[str, DebtorKind, frozenset[str]], Ladder],
    stale: Mapping[str, str],
    pauses: Mapping[tuple[str, str, str], Pause],
) -> _DebtorView:
    """What holds for every invoice of one debtor, worked out once."""
    debtor = snapshot.debtors.get((inst, debtor_id)) or DebtorFacts(inst, debtor_id)
    policy_name = debtor.policy or snapshot.instances[inst].policy
    blocked = None
    if inst in stale:
        blocked = Decision(inst, "", "", debtor_id, Reason.STALE, None, None, None, stale[inst])
    elif policy_name not in policies:
        detail = f"policy {policy_name!r} is not configured"
        blocked = Decision(inst, "", "", debtor_id, Reason.NO_POLICY, None, None, None, detail)
    ladder = None
    if blocked is None:
        ladder_key = (policy_name, debtor.kind, debtor.unreachable)
        ladder = ladders.get(ladder_key)
        if ladder is None:
            ladder = ladders[ladder_key] = Ladder(
                policies[policy_name], debtor.kind, debtor.unreachable
            )
    pause = pauses.get(("debtor", inst, debtor_id)) or pauses.get(("instance", inst, inst))
    return _DebtorView(debtor, ladder, blocked, pause)


def _why(
    step: Step, last: StepSent | None, number: str, due_date: date, overdue: int
) -> StepReason:
    """Why an invoice's step is due today, as figures (both planning paths call this)."""
    if step.days_after_due is not None:
        return StepReason(number, step.name, due_date, overdue, days_after_due=step.days_after_due)
    return StepReason(
        number,
        step.name,
        due_date,
        overdue,
        days_after_previous=step.days_after_previous,
        previous_step=last.step if last is not None else None,
        previous_sent_on=last.sent_on if last is not None else None,
    )


def _current(
    history: Mapping[tuple[str, str], Sequence[StepSent]], inv: InvoiceFacts
) -> str | None:
    hist = history.get((inv.instance, inv.external_id))
    return hist[-1].step if hist else None


_GROUP_ORDER = attrgetter("instance", "debtor.external_id", "currency", "channel")


def _freshness(
    instances: Mapping[str, InstanceFacts], policies: Mapping[str, Policy], now: datetime
) -> dict[str, str]:
    """Instances whose data is too old to act on, with the reason."""
    stale = {}
    for name, facts in instances.items():
        policy = policies.get(facts.policy)
        max_age = timedelta(hours=policy.max_sync_age_hours if policy else 24)
        if facts.last_success_at is None:
            stale[name] = "never synced successfully"
        elif now - facts.last_success_at > max_age:
            stale[name] = (
                f"last successful sync {facts.last_success_at:%Y-%m-%d %H:%M} UTC is older than "
                f"{max_age.total_seconds() / 3600:.0f} h"
            )
    return stale


def _net_balances(invoices: Sequence[InvoiceFacts]) -> dict[tuple[str, str, str], int]:
    net: dict[tuple[str, str, str], int] = defaultdict(int)
    for inv in invoices:
        if not inv.closed:
            net[(inv.instance, inv.debtor_id, inv.currency)] += inv.open_minor
    return net
