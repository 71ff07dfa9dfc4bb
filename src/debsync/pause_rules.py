"""Which recorded pauses hold today: a dispute until it is resolved, a promise until its
date plus the policy's grace, a hold until its last day, a payment plan while its
instalments arrive. The scheduler and the outbox (right before sending) both ask here.

Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from debsync.facts import InvoiceFacts, Pause, PauseKind, Snapshot
from debsync.policy import DEFAULT_POLICY, Policy


def pauses_in_force(
    snapshot: Snapshot, policies: Mapping[str, Policy], today: date
) -> dict[tuple[str, str, str], Pause]:
    """Pauses in force today by (scope, instance, target); a broken promise or a missed
    instalment no longer pauses."""
    active: dict[tuple[str, str, str], Pause] = {}
    open_in_scope: dict[tuple[str, str, str], int] | None = None
    for pause in sorted(snapshot.pauses, key=lambda p: (p.created_at, p.id)):
        facts = snapshot.instances.get(pause.instance)
        policy = policies.get(facts.policy if facts else DEFAULT_POLICY)
        if pause.kind is PauseKind.PROMISE and pause.until is not None:
            grace = timedelta(days=policy.promise_grace_days if policy else 0)
            if today > pause.until + grace:
                continue  # a broken promise: the ladder resumes
        if pause.kind is PauseKind.HOLD and pause.until is not None and today > pause.until:
            continue
        if pause.kind is PauseKind.PAYMENT_PLAN:
            if open_in_scope is None:
                open_in_scope = _open_by_scope(snapshot.invoices)
            grace = timedelta(days=policy.instalment_grace_days if policy else 0)
            if _instalment_missed(pause, open_in_scope, today, grace):
                continue
        active[(pause.scope, pause.instance, pause.target)] = pause
    return active


def pause_covering(
    in_force: Mapping[tuple[str, str, str], Pause], invoice: InvoiceFacts
) -> Pause | None:
    """The pause (invoice, debtor or instance scope) that holds ``invoice``, if any."""
    inst = invoice.instance
    return (
        in_force.get(("invoice", inst, invoice.external_id))
        or in_force.get(("debtor", inst, invoice.debtor_id))
        or in_force.get(("instance", inst, inst))
    )


def _open_by_scope(invoices: Sequence[InvoiceFacts]) -> dict[tuple[str, str, str], int]:
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for inv in invoices:
        if inv.closed or inv.open_minor <= 0:
            continue
        totals[("invoice", inv.instance, inv.external_id)] += inv.open_minor
        totals[("debtor", inv.instance, inv.debtor_id)] += inv.open_minor
        totals[("instance", inv.instance, inv.instance)] += inv.open_minor
    return totals


def _instalment_missed(
    pause: Pause, open_in_scope: Mapping[tuple[str, str, str], int], today: date, grace: timedelta
) -> bool:
    if pause.balance_minor is None:
        return False
    owed = sum(i.amount_minor for i in pause.instalments if i.due_on + grace < today)
    allowed = pause.balance_minor - owed
    return open_in_scope.get((pause.scope, pause.instance, pause.target), 0) > allowed


def describe_pause(pause: Pause) -> str:
    label = {
        PauseKind.DISPUTE: "in dispute until resolved",
        PauseKind.PROMISE: f"promised to pay by {pause.until}",
        PauseKind.PAYMENT_PLAN: "payment plan in force",
        PauseKind.HOLD: f"on hold until {pause.until}",
    }[pause.kind]
    return f"{label} ({pause.scope} pause {pause.id} by {pause.author}: {pause.reason})"
