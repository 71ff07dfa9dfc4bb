"""debsync users add, list, disable: the web console's local users."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import EXIT_FAILED, app, fail, load, now, open_store_or_exit, out
from debsync.web.roles import Role, role_problem

users_app = typer.Typer(help="The web console's users.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _password() -> str:
    """From standard input when it is not a terminal (a script, a password manager's pipe),
    else asked twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        fail("the two passwords differ")
    return first


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    role: Annotated[
        str, typer.Option("--role", help=f"One of {', '.join(Role)}.", show_default=False)
    ],
) -> None:
    """Add a user; the password comes from standard input, or is asked twice."""
    from debsync.web.auth import UserError, add_user

    _, config = load(ctx)
    if problem := role_problem(role):
        fail(problem)  # before asking for a password in vain
    password = _password()
    store = open_store_or_exit(config)
    try:
        add_user(store, name, password, role, now())
    except UserError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    out.print(f"added user {escape(name)} ({role})")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Users, their roles, and whether they are disabled or locked."""
    from debsync import formatting
    from debsync.clock import AMSTERDAM
    from debsync.web.auth import list_users

    _, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        found = list_users(store)
    finally:
        store.dispose()
    if not found:
        out.print("No users yet: add one with `debsync users add NAME --role admin`.")
        return
    table = Table(title="users", title_justify="left")
    for column in ("name", "role", "created (Amsterdam)", "state"):
        table.add_column(column)
    moment = now()
    for user in found:
        state = "disabled" if user.disabled_at else "active"
        if user.disabled_at is None and user.locked_until and user.locked_until > moment:
            state = "locked"
        created = formatting.moment(user.created_at.astimezone(AMSTERDAM))
        table.add_row(escape(user.name), user.role, created, state)
    out.print(table)


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Disable a user and end their sessions."""
    from debsync.web.auth import UserError, disable_user

    _, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        disable_user(store, name, now())
    except UserError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()
    out.print(f"disabled user {escape(name)}; their sessions have ended")
