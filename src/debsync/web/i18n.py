"""The console's texts in Dutch and English: one catalogue, Dutch first.

Page modules add their own texts with a ``messages`` mapping (see
:mod:`debsync.web.pages`); a key given twice is a programming error, found at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping

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
