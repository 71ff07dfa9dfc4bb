"""What every page handler reaches through its request: the console's parts (config, store,
plugins, clock), the reader's language, and :func:`render`, which fills the shared layout's
context (user, CSRF token, navigation, formatting in the reader's language)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from debsync import formatting
from debsync.clock import AMSTERDAM, Clock
from debsync.config import Config
from debsync.model import Language
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.web.i18n import translate
from debsync.web.roles import Role, allows

LANGUAGE_COOKIE = "debsync_lang"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class NavItem:
    """A link in the layout's navigation: a route name, its label's message key, and the
    least role that sees it."""

    route: str
    label: str
    role: Role = Role.VIEWER


@dataclass
class Console:
    """The parts a page works with, kept on ``app.state.console`` by ``build_web_app``."""

    config: Config
    store: Store
    plugins: Plugins
    clock: Clock
    nav: list[NavItem] = field(default_factory=list)


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def language(request: Request) -> Language:
    """The reader's choice (a cookie set by the language switch), else ``[web] language``."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in (Language.NL.value, Language.EN.value):
        return Language(chosen)
    return Language(console(request).config.web.language)


def today(request: Request) -> date:
    """Today in Amsterdam by the console's clock."""
    return console(request).clock().astimezone(AMSTERDAM).date()


@jinja2.pass_context
def _t(context: Any, key: str, **params: object) -> str:
    return translate(key, context["lang"], **params)


@jinja2.pass_context
def _money(context: Any, amount: Decimal, currency: str = "EUR") -> str:
    return formatting.money(amount, currency, context["lang"])


@jinja2.pass_context
def _day(context: Any, value: date | None) -> str:
    return formatting.short_date(value, context["lang"]) if value else "–"


@jinja2.pass_context
def _moment(context: Any, value: datetime | None) -> str:
    """A stored UTC timestamp shown in Amsterdam time."""
    return formatting.moment(value.astimezone(AMSTERDAM), context["lang"]) if value else "–"


@jinja2.pass_context
def _number(context: Any, value: Decimal | int) -> str:
    return formatting.number(value, context["lang"])


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["t"] = _t
    env.filters.update(money=_money, day=_day, moment=_moment, number=_number)
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the shared layout. The layout reads ``user`` and ``csrf`` from
    ``request.state`` (set by :func:`debsync.web.auth.require`); a page passes its own
    figures in ``context``."""
    user = getattr(request.state, "user", None)
    nav = [
        item for item in console(request).nav if user is not None and allows(user.role, item.role)
    ]
    full = {
        "request": request,
        "lang": language(request),
        "user": user,
        "csrf": getattr(request.state, "csrf", ""),
        "nav": nav,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # pages hold debtors' data
    return response
