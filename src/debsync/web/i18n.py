"""The console's texts in Dutch and English: one catalogue, Dutch first.

Page modules add their own texts with a ``messages`` mapping (see
:mod:`debsync.web.pages`); a key given twice is a programming error, found at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping

from debsync import formatting
from debsync.decisions import StepReason
from debsync.model import Language

Messages = Mapping[str, tuple[str, str]]
"""key → (Dutch, English); ``{name}`` placeholders are filled by :func:`translate`."""

MESSAGES: dict[str, tuple[str, str]] = {
    "app.title": ("debsync", "debsync"),
    "app.skip": ("Naar de inhoud", "Skip to content"),
    "app.language": ("Taal", "Language"),
    "app.logged_in_as": ("Ingelogd als {name} ({role})", "Signed in as {name} ({role})"),
    "app.logout": ("Uitloggen", "Sign out"),
    "app.main_nav": ("Hoofdmenu", "Main menu"),
    "role.viewer": ("kijker", "viewer"),
    "role.operator": ("medewerker", "operator"),
    "role.approver": ("accordeerder", "approver"),
    "role.admin": ("beheerder", "admin"),
    "nav.dashboard": ("Overzicht", "Dashboard"),
    "nav.settings": ("Instellingen", "Settings"),
    "nav.plugins": ("Plug-ins", "Plugins"),
    "login.title": ("Inloggen", "Sign in"),
    "login.name": ("Gebruikersnaam", "User name"),
    "login.password": ("Wachtwoord", "Password"),
    "login.submit": ("Inloggen", "Sign in"),
    "login.failed": (
        "De gebruikersnaam of het wachtwoord klopt niet.",
        "The user name or password is not correct.",
    ),
    "login.throttled": (
        "Te veel mislukte pogingen. Probeer het over enkele minuten opnieuw.",
        "Too many failed attempts. Please try again in a few minutes.",
    ),
    "error.403": (
        "U hebt geen toestemming voor deze handeling.",
        "You are not allowed to do this.",
    ),
    "error.403.csrf": (
        "Het formulier is verlopen of ongeldig. Laad de pagina opnieuw en probeer het nogmaals.",
        "The form has expired or is not valid. Please reload the page and try again.",
    ),
    "error.404": ("Deze pagina bestaat niet.", "This page does not exist."),
    "error.title": ("Niet gelukt", "Not possible"),
    "error.back": ("Terug naar het overzicht", "Back to the dashboard"),
    "list.previous": ("Vorige", "Previous"),
    "list.next": ("Volgende", "Next"),
    "list.page": ("Pagina {page} van {pages}", "Page {page} of {pages}"),
    "list.results": ("{total} resultaten", "{total} results"),
    "list.search": ("Zoeken", "Search"),
    "list.filter": ("Filteren", "Filter"),
    "list.sort_by": ("Sorteren op {column}", "Sort by {column}"),
    "list.pages": ("Paginering", "Pagination"),
    "list.empty": ("Niets gevonden.", "Nothing found."),
    # why an action names an invoice (debsync.decisions.StepReason), see step_reason()
    "reason.day": ("{n} dag", "{n} day"),
    "reason.days": ("{n} dagen", "{n} days"),
    "reason.due": (
        "Stap '{step}' is aan de beurt: {timing}; {overdue}.",
        "Step '{step}' is due: {timing}; {overdue}.",
    ),
    "reason.after_previous": (
        "{days} nadat '{previous}' op {sent_on} is verstuurd",
        "{days} after '{previous}' was sent on {sent_on}",
    ),
    "reason.after_due": ("{days} na de vervaldatum van {due}", "{days} after the due date, {due}"),
    "reason.before_due": (
        "{days} vóór de vervaldatum van {due}",
        "{days} before the due date, {due}",
    ),
    "reason.overdue": ("{days} na de vervaldatum", "{days} past due"),
    "reason.due_today": ("de vervaldatum is vandaag", "due today"),
    "reason.not_due": ("nog {days} tot de vervaldatum", "{days} before the due date"),
    "reason.named_in": (
        "{why} Genoemd in het bericht '{step}'.",
        "{why} Named in the '{step}' message.",
    ),
    "reason.invoice": ("{number}: {why}", "{number}: {why}"),
}


def register(messages: Messages) -> None:
    """Add a page module's texts to the catalogue."""
    for key, texts in messages.items():
        if key in MESSAGES and MESSAGES[key] != texts:
            raise ValueError(f"message {key!r} is defined twice")
        MESSAGES[key] = texts


def translate(key: str, language: Language, **params: object) -> str:
    """The text for ``key`` in ``language``; an unknown key raises, so a typo fails a test."""
    dutch, english = MESSAGES[key]
    text = dutch if language is Language.NL else english
    return text.format(**params) if params else text


def step_reason(reason: StepReason, language: Language) -> str:
    """Why an action names an invoice, for a person reading ``language``: ``F-001: Stap
    'aanmaning' is aan de beurt: 14 dagen nadat 'herinnering' op 2 november 2026 is
    verstuurd; 30 dagen na de vervaldatum.`` (the English :meth:`StepReason.english` is the
    machine's wording, with ISO dates)."""
    due = formatting.long_date(reason.due_date, language)
    if reason.days_after_due is not None:
        after = reason.days_after_due
        timing = translate(
            "reason.after_due" if after >= 0 else "reason.before_due",
            language,
            days=_days(abs(after), language),
            due=due,
        )
    elif reason.previous_step is not None and reason.previous_sent_on is not None:
        timing = translate(
            "reason.after_previous",
            language,
            days=_days(reason.days_after_previous or 0, language),
            previous=reason.previous_step,
            sent_on=formatting.long_date(reason.previous_sent_on, language),
        )
    else:  # the first step, timed from the due date
        days = _days(reason.days_after_previous or 0, language)
        timing = translate("reason.after_due", language, days=days, due=due)
    overdue = reason.days_overdue
    if overdue > 0:
        late = translate("reason.overdue", language, days=_days(overdue, language))
    elif overdue < 0:
        late = translate("reason.not_due", language, days=_days(-overdue, language))
    else:
        late = translate("reason.due_today", language)
    why = translate("reason.due", language, step=reason.step, timing=timing, overdue=late)
    if reason.named_in:
        why = translate("reason.named_in", language, why=why, step=reason.named_in)
    return translate("reason.invoice", language, number=reason.number, why=why)


def _days(n: int, language: Language) -> str:
    return translate(
        "reason.day" if n == 1 else "reason.days", language, n=formatting.number(n, language)
    )
