"""Who is signed in: local users with argon2 password hashes, session cookies, login
throttling, the role guard and the CSRF check.

The session cookie holds a random token; the store keeps only its SHA-256 with the
session's CSRF token and expiry, so a copy of the database logs nobody in. Every POST needs
that CSRF token (form field ``csrf`` or header ``X-CSRF-Token``), else 403; the login form,
which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import re
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from debsync.errors import DebsyncError
from debsync.store import Store
from debsync.store.schema import users, web_sessions
from debsync.web.context import console, render
from debsync.web.roles import Role, allows, role_problem

SESSION_COOKIE = "debsync_session"
LOGIN_CSRF_COOKIE = "debsync_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FAILURES = 5
"""Failed logins in a row after which a user name is locked for :data:`LOCK_TIME`."""
LOCK_TIME = timedelta(minutes=5)
IP_FAILURES = 20
"""Failed logins from one address within :data:`IP_WINDOW` after which it must wait."""
IP_WINDOW = timedelta(minutes=10)
MIN_PASSWORD = 10
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_hasher = PasswordHasher()
_dummies: dict[PasswordHasher, str] = {}


class UserError(DebsyncError):
    """A user cannot be added or changed as asked (taken name, short password, bad role)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


# -- users ------------------------------------------------------------------------------------


def add_user(store: Store, name: str, password: str, role: str, now: datetime) -> User:
    if not NAME.fullmatch(name):
        raise UserError(f"user name {name!r}: letters, digits and . _ @ - only, at most 64")
    if problem := role_problem(role):
        raise UserError(problem)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    with store.engine.begin() as conn:
        if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
            raise UserError(f"user {name!r} exists already")
        conn.execute(
            sa.insert(users).values(
                name=name,
                password_hash=_hasher.hash(password),
                role=role,
                created_at=now,
                failed_logins=0,
            )
        )
    return User(name, role, now)


def list_users(store: Store) -> list[User]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
    return [User(r.name, r.role, r.created_at, r.disabled_at, r.locked_until) for r in rows]


def disable_user(store: Store, name: str, now: datetime) -> None:
    """Disable a user and end their sessions at once."""
    with store.engine.begin() as conn:
        done = conn.execute(
            sa.update(users)
            .where(users.c.name == name, users.c.disabled_at.is_(None))
            .values(disabled_at=now)
        ).rowcount
        if not done:
            raise UserError(f"no enabled user {name!r}")
        conn.execute(sa.delete(web_sessions).where(web_sessions.c.user == name))


def authenticate(store: Store, name: str, password: str, now: datetime) -> User | None:
    """The user when the password is right and the name is neither disabled nor locked.
    :data:`MAX_FAILURES` wrong passwords in a row lock the name for :data:`LOCK_TIME`. An
    unknown name costs the same hash as a known one, so timing tells nothing."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None or row.disabled_at is not None:
            _verify(_dummy(), password)
            return None
        if row.locked_until is not None and row.locked_until > now:
            return None
        if not _verify(row.password_hash, password):
            failures = row.failed_logins + 1
            locked = now + LOCK_TIME if failures >= MAX_FAILURES else None
            conn.execute(
                sa.update(users)
                .where(users.c.name == name)
                .values(failed_logins=0 if locked else failures, locked_until=locked)
            )
            return None
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(sa.update(users).where(users.c.name == name).values(**values))
    return User(row.name, row.role, row.created_at)


def _dummy() -> str:
    """A hash of nobody's password with the hasher's own cost, made once."""
    if _hasher not in _dummies:
        _dummies[_hasher] = _hasher.hash(secrets.token_urlsafe(16))
    return _dummies[_hasher]


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


class AddressLimiter:
    """Failed logins per client address, in memory: one address guessing many names is
    slowed down too. Lost on restart, which the per-name lock is not."""

    def __init__(self, failures: int = IP_FAILURES, window: timedelta = IP_WINDOW) -> None:
        self._failures, self._window = failures, window
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self._seen.setdefault(address, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def blocked(self, address: str, now: datetime) -> bool:
        with self._lock:
            return len(self._recent(address, now)) >= self._failures

    def failed(self, address: str, now: datetime) -> None:
        with self._lock:
            self._recent(address, now).append(now)


# -- sessions ---------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(store: Store, user: User, now: datetime, lifetime: timedelta) -> str:
    """A new session for ``user``; returns the cookie's token. Expired sessions go."""
    token = secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(web_sessions).where(web_sessions.c.expires_at <= now))
        conn.execute(
            sa.insert(web_sessions).values(
                token_sha256=_digest(token),
                user=user.name,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


def find_session(store: Store, token: str, now: datetime) -> Session | None:
    """The live session of an enabled user for a cookie's token."""
    query = (
        sa.select(web_sessions.c.csrf, web_sessions.c.expires_at, users)
        .join(users, users.c.name == web_sessions.c.user)
        .where(
            web_sessions.c.token_sha256 == _digest(token),
            web_sessions.c.expires_at > now,
            users.c.disabled_at.is_(None),
        )
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return Session(User(row.name, row.role, row.created_at), row.csrf, row.expires_at)


def end_session(store: Store, token: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(web_sessions).where(web_sessions.c.token_sha256 == _digest(token)))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax, Secure when the request came over https, scoped to the
    console's mount path."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=request.scope.get("root_path") or "/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


# -- the guard --------------------------------------------------------------------------------

Endpoint = Callable[[Request], Awaitable[Response] | Response]


def same(given: str | None, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), expected)


async def posted_token(request: Request) -> str | None:
    """The CSRF token a POST carries: the ``X-CSRF-Token`` header (htmx sends it from the
    layout's ``hx-headers``) or the form's ``csrf`` field. The parsed form is kept on
    ``request.state.form`` for the handler."""
    request.state.form = await request.form()
    header = request.headers.get(CSRF_HEADER)
    field = request.state.form.get(CSRF_FIELD)
    return header or (field if isinstance(field, str) else None)


def forbidden(request: Request, reason: str = "error.403") -> Response:
    return render(request, "error.html", {"message": reason}, status_code=403)


def require(role: Role) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """Guard a page handler: a signed-in user of at least ``role``, and on POST a valid CSRF
    token; else 403 (a GET without a session is sent to the login page). The handler finds
    the user on ``request.state.user`` and the session's CSRF token on ``request.state.csrf``;
    a plain ``def`` handler runs in the thread pool (the store is synchronous)."""

    def decorate(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        asynchronous = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            parts = console(request)
            token = request.cookies.get(SESSION_COOKIE)
            session = None
            if token:
                session = await run_in_threadpool(find_session, parts.store, token, parts.clock())
            if session is None:
                if request.method in ("GET", "HEAD"):
                    login = request.url_for("login").include_query_params(next=request.url.path)
                    return RedirectResponse(str(login), status_code=303)
                return forbidden(request)
            request.state.user, request.state.csrf = session.user, session.csrf
            if request.method == "POST" and not same(await posted_token(request), session.csrf):
                return forbidden(request, "error.403.csrf")
            if not allows(session.user.role, role):
                return forbidden(request)
            if asynchronous:
                result = await endpoint(request)  # type: ignore[misc]
            else:
                result = await run_in_threadpool(endpoint, request)
            assert isinstance(result, Response)
            return result

        return guarded

    return decorate
