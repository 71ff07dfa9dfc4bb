"""One action's message, previewed exactly as it goes (or went) out: the channel's text, an
e-mail's HTML body in a sandboxed frame, a letter's PDF.

The HTML body is the debtor's message, not the console's: it is served on its own address
with its own policy (``sandbox``, no scripts, nothing loaded, its inline styles allowed, framed
only by the console), and framed with an empty ``sandbox`` attribute as well.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from debsync.outbox.executor import Dispatcher
from debsync.outbox.table import OutboxError
from debsync.web.auth import require
from debsync.web.context import console, render, today
from debsync.web.pages.message_view import html_body, letter_pdf, preview
from debsync.web.pages.work_lists import WORK_MESSAGES
from debsync.web.roles import Role

MESSAGE_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
"""The policy of a debtor's HTML body: nothing runs, nothing is fetched, only the console
frames it."""


def dispatcher(request: Request) -> Dispatcher:
    """One dispatcher per console (templates and the interest table loaded once); it only
    composes here, it never sends."""
    state = request.app.state
    found: Dispatcher | None = getattr(state, "work_dispatcher", None)
    if found is None:
        parts = console(request)
        found = Dispatcher(parts.config, parts.store, parts.plugins, clock=parts.clock)
        state.work_dispatcher = found
    return found


@require(Role.VIEWER)
def message(request: Request) -> Response:
    try:
        shown = preview(dispatcher(request), request.path_params["key"], today(request))
    except OutboxError:
        raise HTTPException(404) from None
    return render(request, "work_message.html", {"shown": shown, "row": shown.row})


@require(Role.VIEWER)
def message_html(request: Request) -> Response:
    try:
        body = html_body(dispatcher(request), request.path_params["key"], today(request))
    except OutboxError:
        raise HTTPException(404) from None
    if body is None:
        raise HTTPException(404)
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": MESSAGE_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


@require(Role.VIEWER)
def message_pdf(request: Request) -> Response:
    key = request.path_params["key"]
    try:
        pdf = letter_pdf(dispatcher(request), key, today(request))
    except OutboxError:
        raise HTTPException(404) from None
    if pdf is None:
        raise HTTPException(404)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="letter-{key[:12]}.pdf"',
            "Cache-Control": "no-store",
        },
    )


routes = [
    Route("/messages/{key}", message, methods=["GET"], name="message"),
    Route("/messages/{key}/body.html", message_html, methods=["GET"], name="message_html"),
    Route("/messages/{key}/letter.pdf", message_pdf, methods=["GET"], name="message_pdf"),
]
messages = {
    **WORK_MESSAGES,
    "message.title": ("Bericht {id}", "Message {id}"),
    "message.to": ("{step} via {channel} aan {debtor}", "{step} by {channel} to {debtor}"),
    "message.stored": (
        "Precies zoals het aan het kanaal is overgedragen (SHA-256 {digest}).",
        "Exactly as it was handed to the channel (SHA-256 {digest}).",
    ),
    "message.today": (
        "Zoals het vandaag zou worden verstuurd, met de bedragen van vandaag.",
        "As it would be sent today, with today's figures.",
    ),
    "message.ending": (
        "Wordt niet verstuurd ({state}): {reason}",
        "Will not be sent ({state}): {reason}",
    ),
    "message.dropped": (
        "Sinds het inplannen vervallen: {invoices}",
        "Dropped since it was planned: {invoices}",
    ),
    "message.html": ("De e-mail zoals de debiteur hem ziet", "The e-mail as the debtor sees it"),
    "message.text": ("Tekst", "Text"),
    "message.pdf": ("Brief als PDF downloaden", "Download the letter as PDF"),
    "message.dossier": ("Naar het dossier", "To the dossier"),
}
