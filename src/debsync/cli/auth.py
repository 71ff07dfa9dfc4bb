"""debsync auth: authorise an instance whose connector has an OAuth2 flow (Exact Online,
Moneybird), move a refresh token over, list what the credentials reach, or make a token key.
docs/auth.md tells the ways.

On a laptop the command prints the authorisation URL and listens on the redirect URI (a
localhost URL) for the browser to come back; on a headless server the browser's address
(``--redirect-url``) or the code in it (``--code``) is handed over instead.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from debsync.cli.common import EXIT_FAILED, app, err, fail, load, now, open_store_or_exit, out
from debsync.errors import ConnectorError

if TYPE_CHECKING:
    from debsync.connectors.base import Connector
    from debsync.connectors.oauth import OAuthFlow

LOOPBACK = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1", "::1": "::1"}
"""Redirect hosts the command can listen on, and the address it binds for each."""


@app.command()
def auth(
    ctx: typer.Context,
    instance: Annotated[
        str | None, typer.Argument(help="The connector instance to authorise.")
    ] = None,
    code: Annotated[
        str | None, typer.Option("--code", help="The code from the redirect (headless).")
    ] = None,
    redirect_url: Annotated[
        str | None,
        typer.Option("--redirect-url", help="The address the browser landed on (headless)."),
    ] = None,
    refresh_token: Annotated[
        str | None,
        typer.Option(
            "--refresh-token",
            metavar="-",
            help="Read an existing refresh token from standard input and take it over.",
        ),
    ] = None,
    list_administrations: Annotated[
        bool,
        typer.Option("--list-administrations", help="List what the credentials reach (divisions)."),
    ] = False,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, help="Seconds to wait for the browser.")
    ] = 300,
    new_key_: Annotated[
        bool, typer.Option("--new-key", help="Print a fresh [store] token_key and exit.")
    ] = False,
) -> None:
    """Authorise a connector instance (OAuth2), or print a new token key."""
    grants = [o for o in (code, redirect_url, refresh_token) if o is not None]
    if new_key_:
        if instance is not None or grants or list_administrations:
            fail("--new-key takes no instance and no other option")
        _print_new_key()
        return
    if instance is None:
        fail("name the instance to authorise (debsync auth INSTANCE), or use --new-key")
    if len(grants) > 1:
        fail("use one of --code, --redirect-url and --refresh-token")
    if refresh_token is not None and refresh_token != "-":
        fail("--refresh-token takes '-' and reads the token from standard input")
    import asyncio

    from debsync.secrets import NO_TOKEN_STORE
    from debsync.sync import build_connector

    _, config = load(ctx)
    configured = config.connectors.get(instance)
    if configured is None:
        known = ", ".join(config.connectors) or "(none configured)"
        fail(f"no connector instance {instance!r} in {config.path}; configured: {known}")
    store = open_store_or_exit(config)
    try:
        connector = build_connector(configured, config, now, store)
        oauth = connector.oauth()
        if oauth is None:
            if grants or not list_administrations:
                fail(
                    f"{instance} ({configured.type_name}) has no authorisation flow: its "
                    "credentials are in connectors.toml; --list-administrations shows what "
                    "they reach"
                )
            _print_administrations(instance, asyncio.run(_administrations(connector, None)))
            return
        if connector.context.tokens is None:
            fail(f"{instance}: {NO_TOKEN_STORE}")
        if grants or not list_administrations:
            _authorise(oauth, code, redirect_url, refresh_token is not None, timeout)
            out.print(f"{escape(instance)}: authorised; the tokens are saved.")
        _print_administrations(instance, asyncio.run(_administrations(connector, oauth)))
    except ConnectorError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()


def _print_new_key() -> None:
    from debsync.tokens import new_key

    sys.stdout.write(new_key() + "\n")
    err.print(
        "Keep this key secret and keep it safe: without it the stored tokens cannot be read. "
        'Put it in an environment variable and write [store] token_key = { env = "VAR" }, or '
        'in a file only you can read (chmod 600) and write token_key = { file = "path" }.',
        highlight=False,
    )


def _authorise(
    oauth: OAuthFlow, code: str | None, redirect_url: str | None, adopt: bool, timeout: int
) -> None:
    """Obtain and save a token pair by whichever way the options chose."""
    import asyncio

    from debsync.cli.redirect import parse_query

    if adopt:
        tty = sys.stdin.isatty()
        token = (getpass.getpass("Refresh token: ") if tty else sys.stdin.readline()).strip()
        if not token:
            fail("--refresh-token -: standard input holds no refresh token")
        asyncio.run(oauth.adopt_refresh_token(token))
        return
    if redirect_url is not None:
        code = _code_from(oauth, parse_query(urlsplit(redirect_url).query), state=None)
    if code is None:
        code = _browser_flow(oauth, timeout)
    asyncio.run(oauth.exchange_code(code))


def _browser_flow(oauth: OAuthFlow, timeout: int) -> str:
    from debsync.cli.redirect import listen, wait

    state = oauth.new_state()
    instance, redirect = oauth.instance, urlsplit(oauth.redirect_uri)
    headless = (
        f"On another machine than the browser? Copy the address the browser ends up on and "
        f"run: debsync auth {instance} --redirect-url 'ADDRESS' (or, where the page shows a "
        f"code, debsync auth {instance} --code 'CODE')"
    )
    bind = LOOPBACK.get(redirect.hostname or "")
    if redirect.scheme != "http" or bind is None:
        _print_authorize_url(oauth, state)
        out.print(
            f"The redirect URI is not a local http address, so debsync cannot catch it. {headless}"
        )
        raise typer.Exit()
    try:
        listener = listen(bind, redirect.port or 80, redirect.path or "/", state)
    except OSError as exc:
        fail(f"cannot listen on {redirect.netloc}: {exc.strerror}. {headless}", EXIT_FAILED)
    with listener:
        _print_authorize_url(oauth, state)
        out.print(f"Waiting up to {timeout} s for the browser at {redirect.geturl()}. {headless}")
        query = wait(listener, timeout)
    if query is None:
        fail(f"no answer from the browser within {timeout} s. {headless}", EXIT_FAILED)
    return _code_from(oauth, query, state=state)


def _print_authorize_url(oauth: OAuthFlow, state: str) -> None:
    out.print(f"Open this address in a browser, log in to {oauth.provider} and allow access:")
    sys.stdout.write(oauth.authorize_url(state) + "\n")  # whole, unwrapped: it is copied
    sys.stdout.flush()


def _code_from(oauth: OAuthFlow, query: dict[str, str], *, state: str | None) -> str:
    """The code of a redirect, once its state is ours (``state``, or one signed by us)."""
    if "error" in query:
        fail(
            f"{oauth.provider} did not authorise: {query['error']} "
            f"{query.get('error_description', '')}".rstrip(),
            EXIT_FAILED,
        )
    got = query.get("state", "")
    if not (got == state if state is not None else oauth.state_ok(got)):
        fail(
            "the address carries no state from this debsync, or one over an hour old: "
            f"start again with debsync auth {oauth.instance}"
        )
    code = query.get("code")
    if not code:
        fail("the address carries no code")
    return code


async def _administrations(
    connector: Connector[Any], oauth: OAuthFlow | None
) -> list[tuple[str, str]]:
    try:
        return await connector.list_administrations()
    except NotImplementedError as exc:
        if oauth is None:
            fail(str(exc))
        return await oauth.administrations()


def _print_administrations(instance: str, found: list[tuple[str, str]]) -> None:
    if not found:
        out.print(f"{escape(instance)}: the credentials reach no administration.")
        raise typer.Exit(EXIT_FAILED)
    out.print(f"{escape(instance)} reaches {len(found)} administration(s):")
    for ident, name in found:
        out.print(f"  {escape(ident)}  {escape(name)}", highlight=False)
