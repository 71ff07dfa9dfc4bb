"""Pauses of the dunning ladder: disputes, promises to pay, payment plans, manual holds.

A pause is two events in the dossier, ``pause.started`` and ``pause.ended``, never a mutable
row: who paused what, why and until when stays on record. A pause scopes one invoice, one
debtor or a whole connector instance. The scheduler decides whether a pause still holds
(a promise past its date plus grace, or a payment plan with a missed instalment, no longer
does); this module only records and lists them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.clock import Clock, system_clock
from debsync.errors import DebsyncError
from debsync.facts import Instalment, Pause, PauseKind, PauseScope
from debsync.store import Store
from debsync.store.schema import PAUSE_EVENTS, EventKind, debtors, events, invoices

STARTED, ENDED = EventKind.PAUSE_STARTED, EventKind.PAUSE_ENDED


class PauseError(DebsyncError):
    """A pause cannot be started or ended as asked (unknown target, unknown pause id, …)."""


def _target_debtor(conn: Connection, instance: str, scope: PauseScope, target: str) -> str | None:
    """Check the target exists; return the debtor id to file the events under."""
    if scope == "instance":
        return None
    if scope == "debtor":
        found = conn.execute(
            sa.select(debtors.c.external_id).where(
                debtors.c.instance == instance, debtors.c.external_id == target
            )
        ).scalar()
        if found is None:
            raise PauseError(f"no debtor {target!r} in instance {instance!r}")
        return str(found)
    found = conn.execute(
        sa.select(invoices.c.debtor_id).where(
            invoices.c.instance == instance, invoices.c.external_id == target
        )
    ).scalar()
    if found is None:
        raise PauseError(f"no invoice {target!r} in instance {instance!r}")
    return str(found)


def find_invoice(store: Store, instance: str | None, number: str) -> tuple[str, str]:
    """(instance, external id) of an invoice by its number; the number must be unambiguous."""
    query = sa.select(invoices.c.instance, invoices.c.external_id).where(
        invoices.c.number == number
    )
    if instance:
        query = query.where(invoices.c.instance == instance)
    with store.engine.connect() as conn:
        found = conn.execute(query).all()
    if not found:
        raise PauseError(f"no invoice numbered {number!r}")
    if len(found) > 1:
        where = ", ".join(row.instance for row in found)
        raise PauseError(f"invoice number {number!r} exists in {where}; name the instance")
    return str(found[0].instance), str(found[0].external_id)


def start_pause(
    store: Store,
    *,
    kind: PauseKind,
    instance: str,
    scope: PauseScope,
    target: str,
    reason: str,
    author: str,
    until: date | None = None,
    instalments: Sequence[Instalment] = (),
    clock: Clock = system_clock,
) -> Pause:
    """Record a pause; returns it with its new id."""
    if kind in (PauseKind.PROMISE, PauseKind.HOLD) and until is None:
        raise PauseError(f"a {kind.value} needs an end date")
    if kind is PauseKind.PAYMENT_PLAN and not instalments:
        raise PauseError("a payment plan needs at least one instalment")
    now = clock()
    pause_id = uuid.uuid4().hex[:12]
    with store.engine.begin() as conn:
        debtor_id = _target_debtor(conn, instance, scope, target)
        balance = None
        if kind is PauseKind.PAYMENT_PLAN:
            balance = _open_minor(conn, instance, scope, target)
        pause = Pause(
            id=pause_id,
            kind=kind,
            instance=instance,
            scope=scope,
            target=target,
            reason=reason,
            author=author,
            created_at=now,
            until=until,
            instalments=tuple(instalments),
            balance_minor=balance,
        )
        conn.execute(
            sa.insert(events).values(
                at=now,
                instance=instance,
                debtor_id=debtor_id,
                invoice_id=target if scope == "invoice" else None,
                kind=STARTED,
                data=_to_data(pause),
            )
        )
    return pause


def end_pause(
    store: Store, pause_id: str, *, reason: str, author: str, clock: Clock = system_clock
) -> Pause:
    """End an active pause (a dispute resolved, a hold lifted early, a plan cancelled)."""
    active = {p.id: p for p in active_pauses(store)}
    pause = active.get(pause_id)
    if pause is None:
        known = ", ".join(sorted(active)) or "none"
        raise PauseError(f"no active pause {pause_id!r} (active: {known})")
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(events).values(
                at=clock(),
                instance=pause.instance,
                debtor_id=_target_debtor(conn, pause.instance, pause.scope, pause.target),
                invoice_id=pause.target if pause.scope == "invoice" else None,
                kind=ENDED,
                data={"id": pause_id, "reason": reason, "author": author},
            )
        )
    return pause


def active_pauses(store: Store) -> list[Pause]:
    with store.engine.connect() as conn:
        return load_active(conn)


def load_active(conn: Connection) -> list[Pause]:
    """Pauses started and not ended, oldest first."""
    started: dict[str, Pause] = {}
    ended: set[str] = set()
    rows = conn.execute(
        sa.select(events.c.kind, events.c.at, events.c.instance, events.c.data)
        .where(PAUSE_EVENTS)
        .order_by(events.c.id)
    )
    for kind, at, instance, data in rows:
        if kind == ENDED:
            ended.add(data["id"])
        else:
            started[data["id"]] = _from_data(data, instance, at)
    return [p for pid, p in started.items() if pid not in ended]


def _open_minor(conn: Connection, instance: str, scope: PauseScope, target: str) -> int:
    query = sa.select(sa.func.coalesce(sa.func.sum(invoices.c.open_minor), 0)).where(
        invoices.c.instance == instance, invoices.c.state == "open", invoices.c.open_minor > 0
    )
    if scope == "debtor":
        query = query.where(invoices.c.debtor_id == target)
    elif scope == "invoice":
        query = query.where(invoices.c.external_id == target)
    return int(conn.execute(query).scalar_one())


def _to_data(pause: Pause) -> dict[str, Any]:
    return {
        "id": pause.id,
        "kind": pause.kind.value,
        "scope": pause.scope,
        "target": pause.target,
        "reason": pause.reason,
        "author": pause.author,
        "until": pause.until.isoformat() if pause.until else None,
        "instalments": [[i.due_on.isoformat(), i.amount_minor] for i in pause.instalments],
        "balance_minor": pause.balance_minor,
    }


def _from_data(data: dict[str, Any], instance: str, at: Any) -> Pause:
    return Pause(
        id=data["id"],
        kind=PauseKind(data["kind"]),
        instance=instance,
        scope=data["scope"],
        target=data["target"],
        reason=data["reason"],
        author=data["author"],
        created_at=at,
        until=date.fromisoformat(data["until"]) if data.get("until") else None,
        instalments=tuple(
            Instalment(date.fromisoformat(d), int(amount)) for d, amount in data["instalments"]
        ),
        balance_minor=data.get("balance_minor"),
    )
