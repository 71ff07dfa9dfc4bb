"""debsync letters: printed letters waiting to be posted, and their posting date."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    ActionId,
    AuthorOption,
    JsonOption,
    app,
    day,
    decide,
    load,
    now,
    open_store_or_exit,
    out,
    parse_date,
    print_json,
    rows_json,
    short,
    who,
)
from debsync.clock import local_date

letters_app = typer.Typer(help="Printed letters waiting to be posted.")
app.add_typer(letters_app, name="letters")


@letters_app.callback(invoke_without_command=True)
def letters_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Printed letters waiting to be posted."""
    if ctx.invoked_subcommand is not None:
        return
    from debsync.outbox import table as queue
    from debsync.store.schema import ActionState

    _, config = load(ctx)
    store = open_store_or_exit(config)
    found = [
        r
        for r in queue.rows(store, states=[ActionState.SENT])
        if r.channel == "letter" and not r.dispatched_on
    ]
    store.dispose()
    if as_json:
        print_json({"version": JSON_VERSION, "letters": rows_json(found)})
        return
    table = Table(title="letters to post", title_justify="left")
    for column in ("id", "debtor", "step", "file", "printed"):
        table.add_column(column)
    for r in found:
        table.add_row(
            short(r.key),
            f"{r.instance}/{r.debtor_id}",
            r.step,
            r.provider_id or "",
            day(r.updated_at.date()),
        )
    out.print(table)


@letters_app.command("posted")
def letters_posted(
    ctx: typer.Context,
    action_id: ActionId,
    on: Annotated[
        str | None,
        typer.Option("--date", help="Posting date (31-12-2026 or 2026-12-31) [default: today]."),
    ] = None,
    author: AuthorOption = None,
) -> None:
    """Record that a printed letter was posted: the step is taken, and a veertiendagenbrief's
    term counts from this date."""
    from debsync.outbox import review
    from debsync.outbox.executor import receipt_rule

    _, config = load(ctx)
    posted_on = parse_date(on, "--date") if on else local_date(now())
    rule = receipt_rule(config)
    row = decide(
        config,
        lambda s: review.mark_posted(s, action_id, posted_on, who(author), now(), rule),
    )
    received = rule(row, posted_on)
    out.print(
        f"letter {short(row.key)} posted on {day(posted_on)}"
        + (f"; presumed received {day(received)}" if received else "")
    )
