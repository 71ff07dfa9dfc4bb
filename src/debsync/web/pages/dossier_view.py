"""A debtor's dossier as the dossier page shows it, and the pauses a person records there.

The timeline is ``dossier.load_dossier``'s (every event, oldest first); the pauses in force are
``pauses.active_pauses``' that reach this debtor (one of their invoices, the debtor, or the
whole administration); the documents sent are the actions whose payload the outbox kept, each
previewable as it went out. Pauses are started and ended by ``pauses.start_pause`` and
``pauses.end_pause``, as ``debsync pause``, ``dispute``, ``promise``, ``plan-payments`` and
``resume`` record them, with the signed-in user as their author.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from debsync.clock import Clock, local_date
from debsync.dossier import Dossier, load_dossier
from debsync.facts import Instalment, Pause, PauseKind, PauseScope
from debsync.model import from_minor, to_minor
from debsync.pauses import PauseError, active_pauses, end_pause, start_pause
from debsync.store import Store
from debsync.store.schema import PURGED_PAYLOAD
from debsync.web.pages.work_lists import reaches


@dataclass(frozen=True)
class Document:
    """A message the outbox handed to its channel: its payload is kept, so it can be shown
    exactly as it went out."""

    key: str
    step: str
    channel: str
    dispatched_on: date | None
    payload_sha256: str | None


@dataclass(frozen=True)
class InvoiceLine:
    id: str
    number: str
    due_date: date
    currency: str
    total: Decimal
    open: Decimal
    state: str


@dataclass(frozen=True)
class DossierView:
    dossier: Dossier
    pauses: list[Pause]
    documents: list[Document]

    @property
    def invoices(self) -> list[InvoiceLine]:
        """The dossier's invoices with their dates and amounts as values, not text."""
        return [
            InvoiceLine(
                i["id"],
                i["number"],
                date.fromisoformat(i["due_date"]),
                i["currency"],
                Decimal(i["total"]),
                Decimal(i["open"]),
                i["state"],
            )
            for i in self.dossier.invoices
        ]

    def target(self, pause: Pause) -> str:
        """What a pause holds, by invoice number where it holds one invoice."""
        if pause.scope == "invoice":
            return next((i.number for i in self.invoices if i.id == pause.target), pause.target)
        return pause.scope


def load_view(store: Store, instance: str, debtor_id: str) -> DossierView:
    """Raises ``dossier.DossierError`` for an unknown debtor."""
    found = load_dossier(store, instance, debtor_id)
    invoice_ids = {i["id"] for i in found.invoices}
    return DossierView(
        dossier=found,
        pauses=[p for p in active_pauses(store) if reaches(p, instance, debtor_id, invoice_ids)],
        documents=[
            Document(
                a["key"],
                a["step"],
                a["channel"],
                date.fromisoformat(a["dispatched_on"]) if a["dispatched_on"] else None,
                a["payload_sha256"],
            )
            for a in found.actions
            if a["payload"] is not None and a["payload"] != PURGED_PAYLOAD
        ],
    )


def instalment_amounts(currency: str, amounts: Sequence[tuple[date, Decimal]]) -> list[Instalment]:
    """Instalments in minor units; each a positive amount in the currency's smallest units."""
    found = []
    for due_on, amount in amounts:
        minor = to_minor(amount, currency)
        if amount <= 0 or from_minor(minor, currency) != amount:
            raise PauseError(f"an instalment is a positive amount in {currency}, not {amount}")
        found.append(Instalment(due_on, minor))
    return sorted(found)


def pause(
    store: Store,
    view: DossierView,
    kind: PauseKind,
    *,
    invoice_id: str,
    reason: str,
    author: str,
    clock: Clock,
    until: date | None = None,
    instalments: Sequence[tuple[date, Decimal]] = (),
) -> Pause:
    """Pause one of the debtor's invoices (``invoice_id``) or, when it is empty, the debtor."""
    dossier = view.dossier
    scope: PauseScope = "invoice" if invoice_id else "debtor"
    if invoice_id and invoice_id not in {i["id"] for i in dossier.invoices}:
        raise PauseError(f"invoice {invoice_id!r} is not this debtor's")
    if not reason.strip():
        raise PauseError("a pause needs its reason")
    if kind is PauseKind.HOLD and until is not None and until < local_date(clock()):
        raise PauseError("a hold ends today or later")
    currency = next(
        (i["currency"] for i in dossier.invoices if not invoice_id or i["id"] == invoice_id),
        "EUR",
    )
    return start_pause(
        store,
        kind=kind,
        instance=dossier.instance,
        scope=scope,
        target=invoice_id or dossier.debtor["external_id"],
        reason=reason.strip(),
        author=author,
        until=until,
        instalments=instalment_amounts(currency, instalments),
        clock=clock,
    )


def resume(
    store: Store, view: DossierView, pause_id: str, *, reason: str, author: str, clock: Clock
) -> Pause:
    """End one of the pauses that reach this debtor."""
    if pause_id not in {p.id for p in view.pauses}:
        raise PauseError(f"no active pause {pause_id!r} for this debtor")
    if not reason.strip():
        raise PauseError("ending a pause needs its reason")
    return end_pause(store, pause_id, reason=reason.strip(), author=author, clock=clock)
