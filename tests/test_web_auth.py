"""The console's security over real HTTP: signing in, the session cookie, throttling, CSRF,
roles, signing out, security headers, no inline code, secrets kept out of the pages; and
``debsync users``."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from debsync.cli import app as cli
from debsync.config import Config
from debsync.plugins import PluginInfo, Plugins
from debsync.store import Store
from debsync.store.schema import users, web_sessions
from debsync.web.app import CSP
from debsync.web.auth import AddressLimiter, disable_user
from debsync.web.roles import Role

from conftest import FrozenClock

pytest_plugins = ["browser"]  # the web_console fixture

WRONG = "not the password at all"


@pytest.fixture
def console(sqlite_store: Store, tmp_path: Path, web_console, clock: FrozenClock):
    config = Config(
        path=tmp_path / "connectors.toml", store_url="postgresql://debsync:s3kr1t@db/debsync"
    )
    roles = {"vera": "viewer", "otto": "operator", "ada": "approver", "adam": "admin"}
    return web_console(config, sqlite_store, clock, users=roles)


def _login_token(client: httpx.Client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def log_in(client: httpx.Client, name: str, password: str, **extra: str) -> httpx.Response:
    data = {"csrf": _login_token(client), "name": name, "password": password, **extra}
    return client.post("/login", data=data)


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_signing_in_keeps_only_a_hash_of_the_cookie(console, sqlite_store: Store) -> None:
    with httpx.Client(base_url=console.url) as client:
        answer = log_in(client, "vera", console.password)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"].split(", debsync_login_csrf")[0]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Max-Age=43200" in cookie and "Secure" not in cookie  # 12 hours, plain http
        token = client.cookies["debsync_session"]
        assert client.get("/").status_code == 200
    with sqlite_store.engine.connect() as conn:
        (row,) = conn.execute(sa.select(web_sessions)).all()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_sha256, row.csrf) and row.user == "vera"


def test_over_https_the_cookies_are_secure(console) -> None:
    """Behind a TLS proxy (``X-Forwarded-Proto``, trusted from loopback): httpx keeps the
    Secure cookies to itself over plain http, so the form's is sent by hand."""
    with httpx.Client(base_url=console.url, headers={"X-Forwarded-Proto": "https"}) as client:
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = client.post(
            "/login",
            data={"csrf": token, "name": "vera", "password": console.password},
            headers={"Cookie": f"debsync_login_csrf={token}"},
        )
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"].split(", debsync_login_csrf")[0]


def test_wrong_passwords_lock_the_name(console, sqlite_store: Store, clock) -> None:
    with httpx.Client(base_url=console.url) as client:
        for _ in range(5):
            failed = log_in(client, "otto", WRONG)
            assert failed.status_code == 401
            assert "De gebruikersnaam of het wachtwoord klopt niet." in failed.text
        assert log_in(client, "otto", console.password).status_code == 401  # locked
        with sqlite_store.engine.connect() as conn:
            locked = conn.execute(sa.select(users.c.locked_until).where(users.c.name == "otto"))
            assert locked.scalar_one() == clock.now + timedelta(minutes=5)
        assert log_in(client, "ada", console.password).status_code == 303  # others carry on
        clock.now += timedelta(minutes=5, seconds=1)
        assert log_in(client, "otto", console.password).status_code == 303


def test_one_address_guessing_names_is_made_to_wait(console) -> None:
    console.app.state.login_limiter = AddressLimiter(failures=3)
    with httpx.Client(base_url=console.url) as client:
        for name in ("vera", "otto", "nobody"):
            assert log_in(client, name, WRONG).status_code == 401
        refused = log_in(client, "ada", console.password)
    assert refused.status_code == 429 and "Te veel mislukte pogingen" in refused.text


def test_every_post_needs_the_csrf_token(console) -> None:
    with httpx.Client(base_url=console.url) as client:
        login = client.post("/login", data={"name": "vera", "password": console.password})
        assert login.status_code == 403  # no double-submit token
        log_in(client, "vera", console.password)
        token = _csrf(client.get("/"))
        assert client.post("/logout").status_code == 403
        assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert "Het formulier is verlopen" in client.post("/logout").text
        assert client.get("/").status_code == 200  # still signed in
        out = client.post("/logout", headers={"X-CSRF-Token": token})
        assert out.status_code == 303


def _guarded(role: Role) -> Route:
    def handler(request: Request) -> Response:
        return PlainTextResponse(f"done by {request.state.user.name}")

    return Route(f"/try/{role}", require_role(role)(handler), methods=["GET", "POST"])


def require_role(role: Role):
    from debsync.web.auth import require

    return require(role)


def test_roles_rank_viewer_operator_approver_admin(console) -> None:
    console.app.router.routes.extend(_guarded(role) for role in Role)
    allowed = {}
    for name in ("vera", "otto", "ada", "adam"):
        with httpx.Client(base_url=console.url) as client:
            log_in(client, name, console.password)
            token = _csrf(client.get("/"))
            allowed[name] = [
                role.value
                for role in Role
                if client.post(f"/try/{role}", data={"csrf": token}).status_code == 200
            ]
            denied = client.post(f"/try/{Role.ADMIN}", data={"csrf": token})
            if name != "adam":
                assert denied.status_code == 403 and "geen toestemming" in denied.text
    assert allowed == {
        "vera": ["viewer"],
        "otto": ["viewer", "operator"],
        "ada": ["viewer", "operator", "approver"],
        "adam": ["viewer", "operator", "approver", "admin"],
    }


def test_signing_out_ends_the_session(console, sqlite_store: Store) -> None:
    with httpx.Client(base_url=console.url) as client:
        log_in(client, "vera", console.password)
        token = client.cookies["debsync_session"]
        client.post("/logout", data={"csrf": _csrf(client.get("/"))})
    with httpx.Client(base_url=console.url, cookies={"debsync_session": token}) as replay:
        again = replay.get("/")
    assert again.status_code == 303 and again.headers["location"].endswith("/login?next=%2F")
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(web_sessions)).scalar() == 0


def test_a_disabled_user_is_out_at_once(console, sqlite_store: Store, clock) -> None:
    with httpx.Client(base_url=console.url) as client:
        log_in(client, "otto", console.password)
        disable_user(sqlite_store, "otto", clock.now)
        assert client.get("/").status_code == 303
        assert log_in(client, "otto", console.password).status_code == 401


def test_after_signing_in_back_where_one_was_but_never_elsewhere(console) -> None:
    with httpx.Client(base_url=console.url) as client:
        assert client.get("/settings").headers["location"].endswith("/login?next=%2Fsettings")
        assert log_in(client, "vera", console.password, next="/settings").headers["location"] == (
            "/settings"
        )
    with httpx.Client(base_url=console.url) as client:
        away = log_in(client, "vera", console.password, next="//evil.example/")
        assert away.headers["location"] == "/"
        assert client.get("/language/en?next=https://evil.example/").headers["location"] == "/"


def test_the_language_switch(console) -> None:
    with httpx.Client(base_url=console.url) as client:
        log_in(client, "vera", console.password)
        assert "Instellingen" in client.get("/settings").text
        switched = client.get("/language/en", params={"next": "/settings"})
        assert switched.headers["location"] == "/settings"
        page = client.get("/settings")
    assert '<html lang="en">' in page.text and "Settings" in page.text


def test_security_headers_on_everything(console) -> None:
    with httpx.Client(base_url=console.url) as client:
        answers = [client.get(p) for p in ("/login", "/static/console.css", "/nowhere")]
        log_in(client, "vera", console.password)
        answers += [client.get("/"), client.post("/logout")]
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 403]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP


class InlineCode(HTMLParser):
    """What a CSP without 'unsafe-inline' would block: script bodies, style elements and
    attributes, event handler attributes, javascript: links."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.found.append("<script> without src")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("an inline script body")


def test_no_page_has_inline_code(console) -> None:
    pages = {}
    with httpx.Client(base_url=console.url) as client:
        pages["/login"] = client.get("/login")
        log_in(client, "adam", console.password)
        for path in ("/", "/settings", "/plugins", "/nowhere"):
            pages[path] = client.get(path)
        pages["403"] = client.post("/logout")
    for path, page in pages.items():
        assert "<html" in page.text, path
        parser = InlineCode()
        parser.feed(page.text)
        assert parser.found == [], path


def test_settings_show_no_secrets_and_plugins_show_broken_ones(
    sqlite_store: Store, tmp_path: Path, web_console, clock
) -> None:
    plugins = Plugins(entry_points=False)
    plugins.infos["acme-books"] = PluginInfo(
        "acme-books", builtin=False, status="broken", error="ImportError: no module named acme"
    )
    config = Config(path=tmp_path / "c.toml", store_url="postgresql://debsync:s3kr1t@db/x")
    served = web_console(config, sqlite_store, clock, users={"vera": "viewer"}, plugins=plugins)
    with httpx.Client(base_url=served.url) as client:
        log_in(client, "vera", served.password)
        settings, listed, home = (client.get(p).text for p in ("/settings", "/plugins", "/"))
    assert "s3kr1t" not in settings and "postgresql://debsync:***@db/x" in settings
    assert '<span class="badge broken">defect</span>' in listed
    assert "ImportError: no module named acme" in listed
    assert "Plug-in acme-books is defect en wordt overgeslagen." in home


def test_users_command(tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n', encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(config), "users"]
    password = "lang genoeg ww\n"
    added = runner.invoke(cli, [*base, "add", "anna", "--role", "approver"], input=password)
    assert added.exit_code == 0, added.output
    assert "added user anna (approver)" in added.output
    short = runner.invoke(cli, [*base, "add", "bob", "--role", "viewer"], input="kort\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    bad_role = runner.invoke(cli, [*base, "add", "bob", "--role", "boss"], input=password)
    assert bad_role.exit_code == 2 and "one of viewer, operator, approver, admin" in bad_role.output
    twice = runner.invoke(cli, [*base, "add", "anna", "--role", "admin"], input=password)
    assert twice.exit_code == 2 and "exists already" in twice.output
    assert runner.invoke(cli, [*base, "disable", "anna"]).exit_code == 0
    listed = runner.invoke(cli, [*base, "list"])
    assert re.search(r"anna\s*│\s*approver\s*│.*│\s*disabled", listed.output), listed.output
