"""The call list: today's calls with the debtor's open items and recent contacts, and the
form that records what came of a call."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync import formatting
from debsync.call_outcomes import Outcome
from debsync.errors import DebsyncError
from debsync.web.auth import require
from debsync.web.context import NavItem, console, language, render, today
from debsync.web.pages.call_items import load_calls, record_outcome
from debsync.web.pages.work_lists import WORK_MESSAGES, paged, python_spec
from debsync.web.roles import Role, allows

SPEC = python_spec(("filed", "debtor", "total"), default_sort="filed", per_page=20)
KEYS = {
    "filed": lambda c: c.filed_on,
    "debtor": lambda c: (c.debtor_name.casefold(), c.debtor_id),
    "total": lambda c: c.total or Decimal(0),
}


def _page(request: Request, result: object = None, status_code: int = 200) -> Response:
    parts = console(request)
    listing = SPEC.read(request)
    page = paged(listing, load_calls(parts.store, search=listing.query), KEYS)
    lang = language(request)
    return render(
        request,
        "work_calls.html",
        {
            "page": page,
            "phones": {c.key: [formatting.phone(n, lang) for n in c.phones] for c in page.rows},
            "outcomes": [o.value for o in Outcome],
            "day": today(request),
            "can_record": allows(request.state.user.role, Role.OPERATOR),
            "result": result,
        },
        status_code=status_code,
    )


@require(Role.VIEWER)
def calls(request: Request) -> Response:
    return _page(request)


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _amount(text: str) -> Decimal | None:
    """A number input's value (``150.00``: browsers submit it with a point in any language)."""
    return Decimal(text) if text else None


@require(Role.OPERATOR)
def call_outcome(request: Request) -> Response:
    form = request.state.form
    key = request.path_params["key"]
    try:
        outcome = Outcome(str(form.get("outcome", "")))
        promise_date = _date(str(form.get("promise_date", "")).strip())
        amount = _amount(str(form.get("promise_amount", "")).strip())
    except (ValueError, InvalidOperation):
        return _page(request, {"key": key, "error": "calls.error.form"}, 400)
    if outcome is Outcome.PROMISED and promise_date is None:
        return _page(request, {"key": key, "error": "calls.error.promise"}, 400)
    parts = console(request)
    try:
        pauses = record_outcome(
            parts.store,
            key,
            outcome,
            author=request.state.user.name,
            clock=parts.clock,
            promise_date=promise_date if outcome is Outcome.PROMISED else None,
            promise_amount=amount if outcome is Outcome.PROMISED else None,
            note=str(form.get("note", "")),
        )
    except DebsyncError as exc:
        return _page(request, {"key": key, "refused": str(exc)}, 409)
    return _page(request, {"key": key, "outcome": outcome.value, "paused": len(pauses)})


routes = [
    Route("/calls", calls, methods=["GET"], name="calls"),
    Route("/calls/{key}/outcome", call_outcome, methods=["POST"], name="call_outcome"),
]
nav = [NavItem("calls", "nav.calls")]
messages = {
    **WORK_MESSAGES,
    "nav.calls": ("Bellijst", "Call list"),
    "calls.title": ("Bellijst", "Call list"),
    "calls.intro": (
        "Wie u vandaag belt, met de openstaande facturen en de laatste contacten. Leg na elk "
        "gesprek vast wat het opleverde: een betalingsbelofte of een betwisting pauzeert de "
        "facturen.",
        "Who to call today, with the open invoices and the last contacts. Record what came "
        "of each call: a promise to pay or a dispute pauses the invoices.",
    ),
    "calls.filed": ("Klaargezet op {day}", "Filed on {day}"),
    "calls.phone": ("Telefoon", "Phone"),
    "calls.total": ("Totaal", "Total"),
    "calls.due": ("Vervaldatum", "Due date"),
    "calls.days": ("Dagen te laat", "Days overdue"),
    "calls.open": ("Openstaand", "Open"),
    "calls.script": ("Belscript", "Call script"),
    "calls.contacts": ("Laatste contacten", "Last contacts"),
    "calls.no_contacts": ("Geen eerdere contacten.", "No earlier contacts."),
    "calls.dossier": ("Dossier", "Dossier"),
    "calls.form": ("Uitkomst van het gesprek", "Outcome of the call"),
    "calls.outcome.reached": ("Bereikt", "Reached"),
    "calls.outcome.no-answer": ("Geen gehoor", "No answer"),
    "calls.outcome.promised": ("Betalingsbelofte", "Promise to pay"),
    "calls.outcome.disputed": ("Betwist", "Disputed"),
    "calls.promise_date": ("Beloofde betaaldatum", "Promised payment date"),
    "calls.promise_amount": ("Beloofd bedrag (optioneel)", "Promised amount (optional)"),
    "calls.note": ("Notitie (bij betwisting: de reden)", "Note (for a dispute: the reason)"),
    "calls.submit": ("Uitkomst vastleggen", "Record outcome"),
    "calls.recorded": (
        "Uitkomst vastgelegd: {outcome}; {paused} factuur/facturen gepauzeerd.",
        "Outcome recorded: {outcome}; {paused} invoice(s) paused.",
    ),
    "calls.error.form": (
        "Het formulier is niet volledig of niet juist ingevuld.",
        "The form is incomplete or not filled in correctly.",
    ),
    "calls.error.promise": (
        "Een betalingsbelofte vraagt om een datum.",
        "A promise to pay needs a date.",
    ),
    "calls.refused": ("Niet vastgelegd: {reason}", "Not recorded: {reason}"),
    "calls.none": ("Er staan geen gesprekken open.", "No calls are open."),
}
