"""The console as one Starlette app: the daemon's HTTP server mounts it, ``debsync web``
serves it alone.

Every response carries the security headers: a CSP that allows only the console's own
scripts and styles (no inline ones anywhere), no framing, no sniffing, same-origin referrers.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debsync.clock import Clock
from debsync.config import Config
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.web import i18n
from debsync.web.auth import AddressLimiter
from debsync.web.context import STATIC, Console, NavItem, render
from debsync.web.figures import FiguresCache
from debsync.web.pages import page_modules
from debsync.web.pages.plan_cache import PlanCache

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response, static files and errors too; a
    response that sets one of them itself (the e-mail preview's stricter, frameable policy)
    keeps its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                own = {name.lower() for name, _ in headers}
                message["headers"] = [
                    *headers,
                    *(header for header in SECURITY_HEADERS if header[0] not in own),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "error.404" if status == 404 else "error.403"
    return render(request, "error.html", {"message": message}, status_code=status)


def build_web_app(config: Config, store: Store, plugins: Plugins, *, clock: Clock) -> Starlette:
    """The console over an open store; routes from every module in :mod:`debsync.web.pages`."""
    routes: list[BaseRoute] = []
    nav: list[NavItem] = []
    for module in page_modules():
        routes += module.routes
        nav += getattr(module, "nav", [])
        i18n.register(getattr(module, "messages", {}))
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes, exception_handlers={404: _error, 405: _error})
    app.state.console = Console(config, store, plugins, clock, nav)
    app.state.login_limiter = AddressLimiter()
    app.state.dashboard_figures = FiguresCache()
    app.state.work_plan_cache = PlanCache()
    app.add_middleware(SecurityHeaders)
    return app
