"""The debtors and each one's dossier: the timeline, the pauses in force with the forms that
start and end them (hold, dispute, promise, payment plan), and the documents sent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync.dossier import DossierError
from debsync.facts import PauseKind
from debsync.pauses import PauseError
from debsync.store.schema import debtors, invoices
from debsync.web.auth import require
from debsync.web.context import NavItem, console, render, today
from debsync.web.listing import ListSpec, equals
from debsync.web.pages.dossier_view import DossierView, load_view, pause, resume
from debsync.web.pages.work_lists import WORK_MESSAGES, matching
from debsync.web.roles import Role, allows

INSTALMENT_ROWS = 6
"""Instalment lines the payment-plan form offers."""
OPEN = sa.and_(invoices.c.state == "open", invoices.c.open_minor > 0)
SPEC = ListSpec(
    sorts={
        "name": debtors.c.name,
        "number": debtors.c.external_id,
        "open": sa.column("open_invoices"),
    },
    default_sort="name",
    filters={"instance": equals(debtors.c.instance)},
    tiebreak=(debtors.c.instance, debtors.c.external_id),
)


@require(Role.VIEWER)
def debtor_list(request: Request) -> Response:
    parts = console(request)
    listing = SPEC.read(request)
    open_count = (
        sa.select(sa.func.count())
        .where(
            invoices.c.instance == debtors.c.instance,
            invoices.c.debtor_id == debtors.c.external_id,
            OPEN,
        )
        .scalar_subquery()
        .label("open_invoices")
    )
    query = sa.select(
        debtors.c.instance, debtors.c.external_id, debtors.c.name, debtors.c.kind, open_count
    )
    if listing.query:
        query = query.where(
            sa.tuple_(debtors.c.instance, debtors.c.external_id).in_(matching(listing.query))
        )
    with parts.store.engine.connect() as conn:
        page = listing.fetch(conn, query)
    return render(
        request,
        "work_debtors.html",
        {"page": page, "instances": sorted(parts.config.connectors)},
    )


def _view(request: Request) -> DossierView:
    try:
        return load_view(
            console(request).store,
            request.path_params["instance"],
            request.path_params["debtor_id"],
        )
    except DossierError:
        raise HTTPException(404) from None


def _page(
    request: Request, view: DossierView, result: object = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "work_dossier.html",
        {
            "view": view,
            "d": view.dossier.debtor,
            "instance": view.dossier.instance,
            "day": today(request),
            "kinds": [k.value for k in PauseKind],
            "instalment_rows": range(INSTALMENT_ROWS),
            "can_pause": allows(request.state.user.role, Role.OPERATOR),
            "result": result,
        },
        status_code=status_code,
    )


@require(Role.VIEWER)
def dossier(request: Request) -> Response:
    return _page(request, _view(request))


def _instalments(form: Any) -> list[tuple[date, Decimal]]:
    """The filled instalment lines (a date and an amount from a number input)."""
    found = []
    dates, amounts = form.getlist("instalment_date"), form.getlist("instalment_amount")
    for due, amount in zip(dates, amounts, strict=True):
        if due or amount:
            found.append((date.fromisoformat(str(due)), Decimal(str(amount))))
    return found


@require(Role.OPERATOR)
def dossier_pause(request: Request) -> Response:
    view = _view(request)
    form = request.state.form
    parts = console(request)
    try:
        kind = PauseKind(str(form.get("kind", "")))
        until_text = str(form.get("until", "")).strip()
        until = date.fromisoformat(until_text) if until_text else None
        instalments = _instalments(form) if kind is PauseKind.PAYMENT_PLAN else []
    except (ValueError, InvalidOperation):
        return _page(request, view, {"error": "dossier.error.form"}, 400)
    try:
        started = pause(
            parts.store,
            view,
            kind,
            invoice_id=str(form.get("invoice", "")),
            reason=str(form.get("reason", "")),
            author=request.state.user.name,
            clock=parts.clock,
            until=until if kind in (PauseKind.HOLD, PauseKind.PROMISE) else None,
            instalments=instalments,
        )
    except PauseError as exc:
        return _page(request, view, {"refused": str(exc)}, 409)
    return _page(request, _view(request), {"started": started.id})


@require(Role.OPERATOR)
def dossier_resume(request: Request) -> Response:
    view = _view(request)
    form = request.state.form
    parts = console(request)
    try:
        ended = resume(
            parts.store,
            view,
            str(form.get("pause", "")),
            reason=str(form.get("reason", "")),
            author=request.state.user.name,
            clock=parts.clock,
        )
    except PauseError as exc:
        return _page(request, view, {"refused": str(exc)}, 409)
    return _page(request, _view(request), {"ended": ended.id})


routes = [
    Route("/debtors", debtor_list, methods=["GET"], name="debtors"),
    Route("/debtors/{instance}/{debtor_id}", dossier, methods=["GET"], name="dossier"),
    Route(
        "/debtors/{instance}/{debtor_id}/pause",
        dossier_pause,
        methods=["POST"],
        name="dossier_pause",
    ),
    Route(
        "/debtors/{instance}/{debtor_id}/resume",
        dossier_resume,
        methods=["POST"],
        name="dossier_resume",
    ),
]
nav = [NavItem("debtors", "nav.debtors")]
messages = {
    **WORK_MESSAGES,
    "nav.debtors": ("Debiteuren", "Debtors"),
    "debtors.title": ("Debiteuren", "Debtors"),
    "debtors.instance": ("Administratie", "Administration"),
    "debtors.number": ("Nummer", "Number"),
    "debtors.kind": ("Soort", "Kind"),
    "debtors.open": ("Open facturen", "Open invoices"),
    "dossier.title": ("Dossier {name}", "Dossier {name}"),
    "dossier.contact": ("Contactgegevens", "Contact details"),
    "dossier.invoices": ("Facturen", "Invoices"),
    "dossier.number": ("Factuur", "Invoice"),
    "dossier.due": ("Vervaldatum", "Due date"),
    "dossier.total": ("Bedrag", "Amount"),
    "dossier.open": ("Openstaand", "Open"),
    "dossier.pauses": ("Pauzes", "Pauses"),
    "dossier.no_pauses": ("Geen pauzes.", "No pauses."),
    "dossier.pause.kind.hold": ("aangehouden", "hold"),
    "dossier.pause.kind.dispute": ("betwisting", "dispute"),
    "dossier.pause.kind.promise": ("betalingsbelofte", "promise to pay"),
    "dossier.pause.kind.payment_plan": ("betalingsregeling", "payment plan"),
    "dossier.pause.line": (
        "{kind} op {target} door {author}: {reason}",
        "{kind} on {target} by {author}: {reason}",
    ),
    "dossier.pause.until": ("tot {day}", "until {day}"),
    "dossier.pause.all": ("alle facturen", "all invoices"),
    "dossier.pause.instance": ("de hele administratie", "the whole administration"),
    "dossier.resume": ("Beëindigen", "End"),
    "dossier.resume_reason": ("Reden van beëindigen", "Reason for ending"),
    "dossier.new_pause": ("Pauze vastleggen", "Record a pause"),
    "dossier.kind": ("Soort pauze", "Kind of pause"),
    "dossier.invoice": ("Voor", "For"),
    "dossier.until": (
        "Tot en met (aanhouden) of beloofde datum (belofte)",
        "Until (hold) or promised date (promise)",
    ),
    "dossier.reason": ("Reden", "Reason"),
    "dossier.instalments": ("Termijnen (betalingsregeling)", "Instalments (payment plan)"),
    "dossier.instalment_date": ("Datum termijn {n}", "Date of instalment {n}"),
    "dossier.instalment_amount": ("Bedrag termijn {n}", "Amount of instalment {n}"),
    "dossier.submit": ("Pauze vastleggen", "Record pause"),
    "dossier.started": ("Pauze {id} vastgelegd.", "Pause {id} recorded."),
    "dossier.ended": ("Pauze {id} beëindigd.", "Pause {id} ended."),
    "dossier.refused": ("Niet vastgelegd: {reason}", "Not recorded: {reason}"),
    "dossier.error.form": (
        "Het formulier is niet volledig of niet juist ingevuld.",
        "The form is incomplete or not filled in correctly.",
    ),
    "dossier.documents": ("Verstuurde documenten", "Documents sent"),
    "dossier.no_documents": ("Nog niets verstuurd.", "Nothing sent yet."),
    "dossier.sent_on": ("verstuurd {day}", "sent {day}"),
    "dossier.view": ("Bekijken", "View"),
    "dossier.pdf": ("PDF", "PDF"),
    "dossier.timeline": ("Tijdlijn", "Timeline"),
    "dossier.when": ("Wanneer", "When"),
    "dossier.what": ("Wat", "What"),
}
