"""The outbox page: what was sent, what failed, what is in doubt; and a person's checks on
them: an in-doubt action did arrive (``review.confirm``) or did not and goes again
(``review.resend``), as ``debsync outbox confirm`` and ``resend`` record them."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debsync.outbox import review
from debsync.outbox.executor import receipt_rule
from debsync.outbox.table import OutboxError
from debsync.store.schema import ActionState, CancelCode, debtors, outbox
from debsync.web.auth import require
from debsync.web.context import NavItem, console, render
from debsync.web.listing import ListSpec, equals
from debsync.web.pages.plan_items import Outcome
from debsync.web.pages.work_lists import WORK_MESSAGES, matching
from debsync.web.roles import Role, allows

SPEC = ListSpec(
    sorts={
        "updated": outbox.c.updated_at,
        "debtor": debtors.c.name,
        "step": outbox.c.step,
        "channel": outbox.c.channel,
        "state": outbox.c.state,
        "attempts": outbox.c.attempts,
    },
    default_sort="updated",
    default_descending=True,
    filters={"state": equals(outbox.c.state), "channel": equals(outbox.c.channel)},
    tiebreak=(outbox.c.id.desc(),),
)
RESENDABLE = (ActionState.IN_DOUBT, ActionState.DEAD, ActionState.FAILED)


def resendable(state: str, cancel_code: str | None) -> bool:
    """What ``review.resend`` accepts: in doubt, dead, failed, or refused by the channel."""
    return state in RESENDABLE or (
        state == ActionState.CANCELLED and cancel_code == CancelCode.REFUSED
    )


def _page(request: Request, outcome: object = None, status_code: int = 200) -> Response:
    parts = console(request)
    listing = SPEC.read(request)
    query = sa.select(
        outbox.c.key,
        outbox.c.instance,
        outbox.c.debtor_id,
        debtors.c.name.label("debtor_name"),
        outbox.c.step,
        outbox.c.channel,
        outbox.c.state,
        outbox.c.cancel_code,
        outbox.c.attempts,
        outbox.c.last_error,
        outbox.c.dispatched_on,
        outbox.c.updated_at,
        outbox.c.payload_sha256,
    ).select_from(
        outbox.outerjoin(
            debtors,
            sa.and_(
                debtors.c.instance == outbox.c.instance,
                debtors.c.external_id == outbox.c.debtor_id,
            ),
        )
    )
    if listing.query:
        query = query.where(
            sa.tuple_(outbox.c.instance, outbox.c.debtor_id).in_(matching(listing.query))
        )
    with parts.store.engine.connect() as conn:
        page = listing.fetch(conn, query)
        channels = sorted(conn.execute(sa.select(outbox.c.channel).distinct()).scalars())
    return render(
        request,
        "work_outbox.html",
        {
            "page": page,
            "channels": channels,
            "states": [s.value for s in ActionState],
            "resendable": resendable,
            "can_decide": allows(request.state.user.role, Role.APPROVER),
            "outcome": outcome,
        },
        status_code=status_code,
    )


@require(Role.VIEWER)
def outbox_page(request: Request) -> Response:
    return _page(request)


def _decide(request: Request, verb: str) -> Response:
    parts = console(request)
    key = request.path_params["key"]
    author, now = request.state.user.name, parts.clock()
    done = Outcome(done=[], refused={})
    try:
        if verb == "confirm":
            review.confirm(parts.store, key, author, now, receipt_rule(parts.config))
        else:
            review.resend(parts.store, key, author, now)
    except OutboxError as exc:
        done.refused[key] = str(exc)
    else:
        done.done.append(key)
    return _page(request, {"decision": verb, "done": done})


@require(Role.APPROVER)
def outbox_confirm(request: Request) -> Response:
    """The person checked: the in-doubt message did reach the debtor."""
    return _decide(request, "confirm")


@require(Role.APPROVER)
def outbox_resend(request: Request) -> Response:
    """The person checked: it did not arrive (or a failed one should go again)."""
    return _decide(request, "resend")


routes = [
    Route("/outbox", outbox_page, methods=["GET"], name="outbox"),
    Route("/outbox/{key}/confirm", outbox_confirm, methods=["POST"], name="outbox_confirm"),
    Route("/outbox/{key}/resend", outbox_resend, methods=["POST"], name="outbox_resend"),
]
nav = [NavItem("outbox", "nav.outbox")]
messages = {
    **WORK_MESSAGES,
    "nav.outbox": ("Verzonden", "Outbox"),
    "outbox.title": ("Verzonden berichten", "Outbox"),
    "outbox.intro": (
        "Wat is verstuurd, wat mislukte en waarvan onzeker is of het aankwam. Controleer een "
        "onzeker bericht bij de ontvanger of de provider voordat u het bevestigt of opnieuw "
        "verstuurt.",
        "What was sent, what failed and what may not have arrived. Check an in-doubt message "
        "with the recipient or the provider before you confirm or resend it.",
    ),
    "outbox.updated": ("Bijgewerkt", "Updated"),
    "outbox.dispatched": ("Verstuurd op", "Sent on"),
    "outbox.attempts": ("Pogingen", "Attempts"),
    "outbox.error": ("Fout", "Error"),
    "outbox.actions": ("Handelingen", "Actions"),
    "outbox.confirm": ("Is aangekomen", "Did arrive"),
    "outbox.resend": ("Opnieuw versturen", "Send again"),
    "outbox.view": ("Bekijken", "View"),
}
