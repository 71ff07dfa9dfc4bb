"""Recording the dunning steps a source already took (an invoice's ``prior_step``) as
``step.recorded_elsewhere`` events, once per invoice, step and date however often it syncs.

The planning loader turns these events into the invoice's history (:mod:`debsync.prior_steps`),
so the ladder continues where the bookkeeping program left off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.invoice_rows import InvoiceRow
from debsync.store.schema import EventKind, events


def prior_key(invoice: InvoiceRow) -> tuple[str, ...]:
    """The prior step as part of the invoice's fingerprint: empty when there is none, so
    fingerprints stored before the field existed still match."""
    if invoice.prior_step is None or invoice.prior_step_on is None:
        return ()
    return (invoice.prior_step, invoice.prior_step_on.isoformat())


def recorded_steps(
    conn: Connection, instance: str, changed: Sequence[InvoiceRow], today: date
) -> list[dict[str, Any]]:
    """The data of the events to write for ``changed`` invoices whose prior step is not yet
    recorded (with ``invoice_id`` and ``debtor_id``); a step dated after ``today`` is left
    out (a source's clock or a typo: no step is recorded before it happened)."""
    wanted = {
        inv.external_id: inv
        for inv in changed
        if inv.prior_step is not None and inv.prior_step_on is not None
        if inv.prior_step_on <= today
    }
    if not wanted:
        return []
    data = events.c.data
    query = sa.select(
        events.c.invoice_id, data["step"].as_string(), data["sent_on"].as_string()
    ).where(
        events.c.instance == instance,
        events.c.kind == EventKind.STEP_RECORDED_ELSEWHERE,
        events.c.invoice_id.in_(list(wanted)),
    )
    known = {tuple(row) for row in conn.execute(query)}
    found = []
    for ext, inv in wanted.items():
        step, sent_on = prior_key(inv)
        if (ext, step, sent_on) not in known:
            found.append(
                {
                    "invoice_id": ext,
                    "debtor_id": inv.debtor_id,
                    "step": step,
                    "sent_on": sent_on,
                    "source": instance,
                }
            )
    return found
