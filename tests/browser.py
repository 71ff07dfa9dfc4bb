"""The web console over real HTTP, and a real browser to drive it.

:func:`serving` runs a console app with uvicorn on a free loopback port in a thread;
:func:`web_console` is a fixture that does that for a test's config and store and stops it
afterwards. :func:`browser_page` gives a Playwright page in Debian's Chromium
(``/usr/bin/chromium``; browsers are never downloaded) and fails the test when the page
logged a console error, which is how a CSP violation shows. A test module loads the fixtures
with ``pytest_plugins = ["browser"]``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher

from debsync.clock import Clock
from debsync.config import Config
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.web import auth
from debsync.web.app import build_web_app

CHROMIUM = Path("/usr/bin/chromium")
STARTUP = 10.0  # seconds the server may take to listen
PASSWORD = "correct horse battery staple"
"""Every test user's password."""


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served on 127.0.0.1 by uvicorn in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console's server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


class Served:
    """A console being served: its base URL, and signing in as one of its users."""

    password = PASSWORD

    def __init__(self, url: str, app: Any) -> None:
        self.url, self.app = url, app

    def log_in(self, page: Any, name: str, password: str = PASSWORD) -> None:
        """Sign in through the login form, as a person would, and land on the dashboard."""
        page.goto(f"{self.url}/login")
        page.get_by_label("Gebruikersnaam").fill(name)
        page.get_by_label("Wachtwoord").fill(password)
        page.get_by_role("button", name="Inloggen").click()
        page.wait_for_url(f"{self.url}/")


Serve = Callable[..., Served]


@pytest.fixture
def web_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``web_console(config, store, clock, users={"anna": "admin"})``: the console over that
    store on a free port, with those users (password :data:`PASSWORD`). Passwords are hashed
    with argon2 at its lowest cost: the real cost is for attackers, not for the suite."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    with _Servers() as servers:
        yield servers.start


class _Servers:
    def __init__(self) -> None:
        self._running: list[Any] = []

    def start(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        users: dict[str, str] | None = None,
        plugins: Plugins | None = None,
    ) -> Served:
        for name, role in (users or {}).items():
            auth.add_user(store, name, PASSWORD, role, clock())
        app = build_web_app(config, store, plugins or Plugins(entry_points=False), clock=clock)
        served = serving(app)
        url = served.__enter__()
        self._running.append(served)
        return Served(url, app)

    def __enter__(self) -> _Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        for served in reversed(self._running):
            served.__exit__(None, None, None)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A fresh Playwright page in Chromium (a laptop-sized window, Dutch locale); a console
    error on it (a CSP violation, a failed script) fails the test."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context(locale="nl-NL", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        browser.close()
    assert errors == [], errors
