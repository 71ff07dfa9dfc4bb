"""The plan page: what will be sent today and why, and the approvals, rejections and holds on
it, one by one or in bulk (checkboxes and one form)."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync.web.auth import forbidden, require
from debsync.web.context import NavItem, console, render, today
from debsync.web.listing import Page
from debsync.web.pages.plan_cache import PlanCache
from debsync.web.pages.plan_items import NOT_QUEUED, SHOWN_STATES, Decision, decide
from debsync.web.pages.plan_items import select as select_items
from debsync.web.pages.work_lists import WORK_MESSAGES, paged, python_spec
from debsync.web.roles import Role, allows

SPEC = python_spec(
    ("debtor", "step", "channel", "principal", "deadline", "state"),
    default_sort="state",
    filters=("channel", "state"),
)
KEYS = {
    "debtor": lambda i: (i.debtor_name.casefold(), i.debtor_id),
    "step": lambda i: i.step,
    "channel": lambda i: i.channel,
    "principal": lambda i: i.principal,
    "deadline": lambda i: i.deadline,
    # waiting for a person first, then what is queued, then what the next run adds
    "state": lambda i: [*SHOWN_STATES, NOT_QUEUED].index(i.state),
}


def _cache(request: Request) -> PlanCache:
    cache: PlanCache = request.app.state.work_plan_cache  # made by build_web_app
    return cache


def _page(request: Request, outcome: object = None, status_code: int = 200) -> Response:
    parts = console(request)
    listing = SPEC.read(request)
    view = _cache(request).get(parts.config, parts.store, parts.clock())
    chosen = select_items(
        parts.store,
        view.items,
        search=listing.query,
        channel=listing.filters.get("channel", ""),
        state=listing.filters.get("state", ""),
    )
    page: Page = paged(listing, chosen, KEYS)
    role = request.state.user.role
    return render(
        request,
        "work_plan.html",
        {
            "page": page,
            "view": view,
            "day": today(request),
            "channels": sorted({i.channel for i in view.items}),
            "states": [*(s.value for s in SHOWN_STATES), NOT_QUEUED],
            "can_approve": allows(role, Role.APPROVER),
            "can_hold": allows(role, Role.OPERATOR),
            "outcome": outcome,
        },
        status_code=status_code,
    )


@require(Role.VIEWER)
def plan(request: Request) -> Response:
    return _page(request)


@require(Role.OPERATOR)
def plan_decide(request: Request) -> Response:
    """One form for all decisions: a row's own approve button names its action; otherwise
    the checked rows get the decision chosen below the table. Approving and rejecting need
    an approver, a hold an operator."""
    form = request.state.form
    one = str(form.get("approve_one", ""))
    keys = [one] if one else [str(k) for k in form.getlist("key")]
    try:
        decision = Decision.APPROVE if one else Decision(str(form.get("decision", "")))
    except ValueError:
        return _page(request, {"error": "plan.error.decision"}, 400)
    if decision is not Decision.HOLD and not allows(request.state.user.role, Role.APPROVER):
        return forbidden(request)
    reason = str(form.get("reason", "")).strip()
    until: date | None = None
    if not keys:
        return _page(request, {"error": "plan.error.none"}, 400)
    if decision is Decision.REJECT and not reason:
        return _page(request, {"error": "plan.error.reason"}, 400)
    if decision is Decision.HOLD:
        try:
            until = date.fromisoformat(str(form.get("until", "")))
        except ValueError:
            return _page(request, {"error": "plan.error.until"}, 400)
        if until < today(request) or not reason:
            return _page(request, {"error": "plan.error.hold"}, 400)
    parts = console(request)
    done = decide(
        parts.config,
        parts.store,
        keys,
        decision,
        author=request.state.user.name,
        clock=parts.clock,
        reason=reason,
        until=until,
    )
    return _page(request, {"decision": decision.value, "done": done})


routes = [
    Route("/plan", plan, methods=["GET"], name="plan"),
    Route("/plan", plan_decide, methods=["POST"], name="plan_decide"),
]
nav = [NavItem("plan", "nav.plan")]
messages = {
    **WORK_MESSAGES,
    "nav.plan": ("Plan van vandaag", "Today's plan"),
    "plan.title": ("Plan van {day}", "Plan for {day}"),
    "plan.intro": (
        "Wat vandaag wordt verstuurd en waarom. Acties die wachten op akkoord gaan pas na "
        "akkoord de deur uit.",
        "What is sent today and why. Actions waiting for approval go out only once approved.",
    ),
    "plan.unrouted": (
        "Geen actie verstuurt via {channels}; die berichten wachten.",
        "No action sends by {channels}; those messages wait.",
    ),
    "plan.select": ("Selecteer {what}", "Select {what}"),
    "plan.approve_one": ("Akkoord", "Approve"),
    "plan.why": ("Waarom", "Why"),
    "plan.decision": ("Besluit voor de geselecteerde acties", "Decision for the selected actions"),
    "plan.approve": ("Akkoord geven", "Approve"),
    "plan.reject": ("Afwijzen", "Reject"),
    "plan.hold": ("Aanhouden tot", "Hold until"),
    "plan.reason": ("Reden (voor afwijzen en aanhouden)", "Reason (for rejecting and holding)"),
    "plan.until": ("Aanhouden tot en met", "Hold until and including"),
    "plan.submit": ("Besluit vastleggen", "Record decision"),
    "plan.error.decision": ("Kies een besluit.", "Choose a decision."),
    "plan.error.none": ("Selecteer ten minste één actie.", "Select at least one action."),
    "plan.error.reason": ("Afwijzen vraagt om een reden.", "Rejecting needs a reason."),
    "plan.error.until": (
        "Aanhouden vraagt om een einddatum.",
        "Holding needs an end date.",
    ),
    "plan.error.hold": (
        "Aanhouden vraagt om een reden en een einddatum vandaag of later.",
        "Holding needs a reason and an end date today or later.",
    ),
    "plan.paused": ("gepauzeerd", "paused"),
    "plan.preview": ("Voorbeeld", "Preview"),
    "plan.no_preview": ("Voorbeeld na inplannen", "Preview once queued"),
}
