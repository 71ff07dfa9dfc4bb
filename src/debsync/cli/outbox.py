"""debsync approve, reject, preview and outbox: the actions a person decides on."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    ActionId,
    AuthorOption,
    JsonOption,
    app,
    decide,
    fail,
    load,
    now,
    open_store_or_exit,
    out,
    print_json,
    rows_json,
    short,
    who,
)
from debsync.clock import local_date

outbox_app = typer.Typer(help="Review the outbox: actions in doubt, dead or waiting.")
app.add_typer(outbox_app, name="outbox")


@app.command()
def approve(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """Approve an action that waits for approval (a handoff, say); it is sent by `act`."""
    from debsync.outbox import review

    _, config = load(ctx)
    row = decide(config, lambda s: review.approve(s, action_id, who(author), now()))
    out.print(f"action {short(row.key)} ({row.step} by {row.channel}) approved")


@app.command()
def reject(
    ctx: typer.Context,
    action_id: ActionId,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the dossier.")],
    author: AuthorOption = None,
) -> None:
    """Reject an action that waits for approval; its invoices are not planned for that step
    again until the action is approved after all."""
    from debsync.outbox import review

    _, config = load(ctx)
    row = decide(
        config,
        lambda s: review.reject(s, action_id, who(author), reason, now()),
    )
    out.print(f"action {short(row.key)} ({row.step} by {row.channel}) rejected")


@app.command()
def preview(ctx: typer.Context, action_id: ActionId) -> None:
    """Show the message an action sends (or sent), rendered with today's figures."""
    from debsync.outbox.executor import Dispatcher
    from debsync.outbox.preview import preview as preview_action
    from debsync.outbox.table import OutboxError

    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        dispatcher = Dispatcher(config, store, plugins, clock=now)
        shown = preview_action(dispatcher, action_id, local_date(now()))
    except OutboxError as exc:  # an unknown or ambiguous id: usage
        fail(str(exc))
    finally:
        store.dispose()
    row = shown.row
    out.print(
        f"action {row.key}: {row.step} by {row.channel} to {row.instance}/{row.debtor_id}, "
        f"{row.state}",
        highlight=False,
    )
    if shown.stored:
        out.print(f"payload sha256 {row.payload_sha256} (as handed to the channel)")
    if shown.ending is not None:
        out.print(f"would not be sent: {shown.ending.state.value}: {shown.ending.reason}")
        return
    if shown.dropped:
        out.print(f"dropped since planned: {', '.join(shown.dropped)}")
    out.print(shown.text, highlight=False, markup=False)


def _print_rows(title: str, rows: list[Any]) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("id", "debtor", "step", "channel", "state", "attempts", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            short(r.key),
            f"{r.instance}/{r.debtor_id}",
            r.step,
            r.channel,
            r.state,
            str(r.attempts),
            r.last_error or "",
        )
    out.print(table)


def _list(ctx: typer.Context, states: list[str], title: str, as_json: bool) -> None:
    from debsync.outbox import table as queue

    _, config = load(ctx)
    store = open_store_or_exit(config)
    found = queue.rows(store, states=states)
    store.dispose()
    if as_json:
        print_json({"version": JSON_VERSION, "actions": rows_json(found)})
    else:
        _print_rows(title, found)


@outbox_app.callback(invoke_without_command=True)
def outbox_list(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only these states (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List outbox actions (all, or those in --state)."""
    if ctx.invoked_subcommand is None:
        _list(ctx, state or [], "outbox", as_json)


@outbox_app.command("review")
def outbox_review(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Actions that need a person: in doubt (did it reach the debtor?) or dead."""
    from debsync.store.schema import ActionState

    _list(ctx, [ActionState.IN_DOUBT, ActionState.DEAD], "needs review", as_json)


@outbox_app.command("confirm")
def outbox_confirm(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """An in-doubt action did reach the debtor: record it as sent."""
    from debsync.outbox import review
    from debsync.outbox.executor import receipt_rule

    _, config = load(ctx)
    rule = receipt_rule(config)
    row = decide(
        config,
        lambda s: review.confirm(s, action_id, who(author), now(), rule),
    )
    out.print(f"action {short(row.key)} recorded as sent")


@outbox_app.command("resend")
def outbox_resend(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """Send an in-doubt, dead or refused action again (after checking it did not arrive)."""
    from debsync.outbox import review

    _, config = load(ctx)
    row = decide(config, lambda s: review.resend(s, action_id, who(author), now()))
    out.print(f"action {short(row.key)} will be sent again by the next `debsync act`")


@outbox_app.command("cancel")
def outbox_cancel(
    ctx: typer.Context,
    action_id: ActionId,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the dossier.")],
    author: AuthorOption = None,
) -> None:
    """Cancel an action that has not been sent."""
    from debsync.outbox import review

    _, config = load(ctx)
    row = decide(
        config,
        lambda s: review.cancel(s, action_id, who(author), reason, now()),
    )
    out.print(f"action {short(row.key)} cancelled")
