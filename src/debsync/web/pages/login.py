"""Signing in and out, and the language switch."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from debsync.model import Language
from debsync.web.auth import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AddressLimiter,
    authenticate,
    end_session,
    forbidden,
    require,
    same,
    set_cookie,
    start_session,
)
from debsync.web.context import LANGUAGE_COOKIE, console, render
from debsync.web.roles import Role

YEAR = 365 * 24 * 3600


def _local(target: str | None, request: Request) -> str:
    """Where to go after signing in or switching language: a path on this console only, so
    the login page is no open redirect."""
    home = str(request.url_for("dashboard").path)
    if not target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return home
    return target


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "error": error, "next": request.query_params.get("next", "")},
        status_code=status_code,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    """A double-submit check stands in for the session's CSRF token; a name or address with
    too many failures is refused before its password is even checked."""
    form = await request.form()
    if not same(str(form.get(CSRF_FIELD, "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return forbidden(request, "error.403.csrf")
    parts = console(request)
    limiter: AddressLimiter = request.app.state.login_limiter
    address = request.client.host if request.client else "unknown"
    now = parts.clock()
    if limiter.blocked(address, now):
        return _login_page(request, "login.throttled", status_code=429)
    user = await run_in_threadpool(
        authenticate, parts.store, str(form.get("name", "")), str(form.get("password", "")), now
    )
    if user is None:
        limiter.failed(address, now)
        return _login_page(request, "login.failed", status_code=401)
    lifetime = parts.config.web.session_lifetime
    token = await run_in_threadpool(start_session, parts.store, user, now, lifetime)
    response = RedirectResponse(_local(str(form.get("next", "")), request), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, int(lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=request.scope.get("root_path") or "/")
    return response


@require(Role.VIEWER)
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(end_session, console(request).store, token)
    response = RedirectResponse(str(request.url_for("login")), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path") or "/")
    return response


async def switch_language(request: Request) -> Response:
    """A preference, not a change to the books: a link, kept in a cookie for a year."""
    chosen = request.path_params["language"]
    response = RedirectResponse(_local(request.query_params.get("next"), request), 303)
    if chosen in (Language.NL.value, Language.EN.value):
        set_cookie(request, response, LANGUAGE_COOKIE, chosen, YEAR)
    return response


routes = [
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login, methods=["POST"], name="login_post"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/language/{language}", switch_language, methods=["GET"], name="language"),
]
