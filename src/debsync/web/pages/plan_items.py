"""Today's plan as the plan page shows it, and a person's decisions on it.

What will be sent is two things: the outbox's open actions (queued by the last run, some
waiting for approval) and what the scheduler plans now that no run has queued yet (the dry run
of ``debsync act``). Both are shown with the scheduler's explanation. A decision on an action
not queued yet queues it first (``outbox.enqueue``, idempotent by its key), so approving and
rejecting always go through ``outbox.review`` and leave the same events as the CLI's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from debsync.clock import Clock
from debsync.config import Config
from debsync.decisions import PlannedAction, StepReason
from debsync.errors import DebsyncError
from debsync.facts import Pause, PauseKind
from debsync.model import Language
from debsync.outbox import review
from debsync.outbox.preview import against_outbox
from debsync.outbox.table import OutboxError, enqueue
from debsync.pauses import active_pauses, start_pause
from debsync.planning import plan_from_store
from debsync.store import Store
from debsync.store.schema import ActionState, outbox
from debsync.web.i18n import step_reason
from debsync.web.pages.work_lists import debtor_names, matching_debtors, reaches

NOT_QUEUED = "not_queued"
"""The state shown for an action the scheduler plans that no run has queued yet."""
SHOWN_STATES = (ActionState.AWAITING_APPROVAL, ActionState.APPROVED, ActionState.PLANNED)
"""Outbox states of what is still to be sent (failed ones retry on the outbox page)."""


@dataclass(frozen=True)
class PlanItem:
    """One message or task of today's plan: from the outbox (``state``) or not queued yet."""

    key: str
    state: str
    instance: str
    debtor_id: str
    debtor_name: str
    step: str
    channel: str
    requires_approval: bool
    numbers: tuple[str, ...]
    currency: str
    principal: Decimal
    interest: Decimal | None
    costs: Decimal | None
    deadline: date
    explanation: str
    invoice_ids: tuple[str, ...]
    paused: bool = False
    """A pause recorded after the action was queued reaches its invoices: the outbox cancels
    it as paused when it comes to send it."""
    reasons: tuple[StepReason, ...] = ()
    """Why each invoice is named; none for an action queued before they were stored."""

    @property
    def queued(self) -> bool:
        return self.state != NOT_QUEUED

    def why(self, language: Language) -> list[str]:
        """The explanation in the reader's language, one line per invoice; the stored English
        text when the action was queued without its reasons."""
        if not self.reasons:
            return [self.explanation]
        return [step_reason(reason, language) for reason in self.reasons]


@dataclass(frozen=True)
class PlanView:
    items: list[PlanItem]
    warnings: list[str]
    unrouted: list[str]


def _amount(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _from_row(row: Row[Any], name: str, pauses: Sequence[Pause]) -> PlanItem:
    plan = row.plan
    invoice_ids = tuple(row.invoice_ids)
    return PlanItem(
        key=row.key,
        state=row.state,
        instance=row.instance,
        debtor_id=row.debtor_id,
        debtor_name=name,
        step=row.step,
        channel=row.channel,
        requires_approval=row.requires_approval,
        numbers=tuple(line["number"] for line in plan["lines"]),
        currency=plan["currency"],
        principal=Decimal(plan["principal"]),
        interest=_amount(plan["interest"]),
        costs=_amount(plan["costs"]),
        deadline=date.fromisoformat(plan["deadline"]),
        explanation=plan["explanation"],
        invoice_ids=invoice_ids,
        paused=any(reaches(p, row.instance, row.debtor_id, set(invoice_ids)) for p in pauses),
        reasons=tuple(StepReason.from_json(r) for r in plan.get("reasons", ())),
    )


def _from_action(action: PlannedAction, name: str) -> PlanItem:
    return PlanItem(
        key=action.key,
        state=NOT_QUEUED,
        instance=action.instance,
        debtor_id=action.debtor_id,
        debtor_name=name,
        step=action.step,
        channel=action.channel,
        requires_approval=action.requires_approval,
        numbers=tuple(line.number for line in action.lines),
        currency=action.currency,
        principal=action.principal,
        interest=action.interest,
        costs=action.costs,
        deadline=action.deadline,
        explanation=action.explanation,
        invoice_ids=tuple(line.invoice_id for line in action.lines),
        reasons=action.reasons,
    )


def load_plan(config: Config, store: Store, now: datetime) -> PlanView:
    """The outbox's actions still to be sent, then the ones the scheduler adds today."""
    planned = plan_from_store(config, store, now)
    return plan_view(config, store, now, planned.actions, planned.warnings)


def plan_view(
    config: Config,
    store: Store,
    now: datetime,
    actions: Sequence[PlannedAction],
    warnings: Sequence[str],
    made: dict[int, tuple[PlannedAction, PlanItem]] | None = None,
) -> PlanView:
    """:func:`load_plan` for a plan already made (the cache's): the outbox read again.
    ``made`` holds the items shown before with the very action each shows, by its ``id`` (an
    action the cache kept is the same object, so its debtor's name has not changed; holding
    it keeps its ``id`` from being reused); it is left holding this view's."""
    dry = against_outbox(config, store, now, actions, warnings)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox).where(outbox.c.state.in_(SHOWN_STATES)).order_by(outbox.c.id)
        ).all()
    earlier = {key: item for key, (action, item) in (made or {}).items()}
    new = [a for a in dry.would_queue if id(a) not in earlier]
    refs = {(r.instance, r.debtor_id) for r in rows} | {(a.instance, a.debtor_id) for a in new}
    names = debtor_names(store, refs)
    pauses = active_pauses(store)
    items = [_from_row(r, names.get((r.instance, r.debtor_id), ""), pauses) for r in rows]
    for action in dry.would_queue:
        item = earlier.get(id(action))
        if item is None:
            item = _from_action(action, names.get((action.instance, action.debtor_id), ""))
        items.append(item)
    if made is not None:
        shown = zip(dry.would_queue, items[len(rows) :], strict=True)
        made.clear()
        made.update((id(action), (action, item)) for action, item in shown)
    return PlanView(items=items, warnings=dry.warnings, unrouted=dry.unrouted)


def select(
    store: Store,
    items: Iterable[PlanItem],
    *,
    search: str = "",
    channel: str = "",
    state: str = "",
) -> list[PlanItem]:
    """The items a search (debtor name or number, invoice number) and filters leave."""
    chosen = [i for i in items if (not channel or i.channel == channel)]
    chosen = [i for i in chosen if (not state or i.state == state)]
    if search.strip():
        found = matching_debtors(store, search)
        chosen = [i for i in chosen if (i.instance, i.debtor_id) in found]
    return chosen


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    HOLD = "hold"


@dataclass
class Outcome:
    """What a (bulk) decision did: the keys it applied to, and why the others were refused."""

    done: list[str]
    refused: dict[str, str]


def decide(
    config: Config,
    store: Store,
    keys: Sequence[str],
    decision: Decision,
    *,
    author: str,
    clock: Clock,
    reason: str = "",
    until: date | None = None,
) -> Outcome:
    """Apply one decision to each of ``keys`` (full action keys), each on its own: one
    refused action (changed meanwhile, wrong state) leaves the others decided."""
    now = clock()
    outcome = Outcome(done=[], refused={})
    with store.engine.connect() as conn:
        queued = {
            r.key: r for r in conn.execute(sa.select(outbox).where(outbox.c.key.in_(list(keys))))
        }
    planned: dict[str, PlannedAction] = {}
    if set(keys) - set(queued):
        planned = {a.key: a for a in plan_from_store(config, store, now).actions}
    for key in keys:
        try:
            if decision is Decision.HOLD:
                _hold(store, queued.get(key), planned.get(key), key, author, reason, until, clock)
            else:
                if key not in queued:
                    if key not in planned:
                        raise OutboxError(f"action {key[:12]} is no longer planned today")
                    enqueue(store, [planned[key]], now)
                if decision is Decision.APPROVE:
                    review.approve(store, key, author, now)
                else:
                    review.reject(store, key, author, reason, now)
        except DebsyncError as exc:
            outcome.refused[key] = str(exc)
        else:
            outcome.done.append(key)
    return outcome


def _hold(
    store: Store,
    row: Row[Any] | None,
    action: PlannedAction | None,
    key: str,
    author: str,
    reason: str,
    until: date | None,
    clock: Clock,
) -> None:
    """Hold the action's invoices until ``until``: a pause of kind hold on each, as
    ``debsync pause --invoice`` records it; the outbox cancels a queued action as paused."""
    if row is not None:
        instance, invoice_ids = row.instance, list(row.invoice_ids)
    elif action is not None:
        instance, invoice_ids = action.instance, [line.invoice_id for line in action.lines]
    else:
        raise OutboxError(f"action {key[:12]} is no longer planned today")
    for invoice_id in invoice_ids:
        start_pause(
            store,
            kind=PauseKind.HOLD,
            instance=instance,
            scope="invoice",
            target=invoice_id,
            reason=reason,
            author=author,
            until=until,
            clock=clock,
        )
