"""debsync calls: who to phone today, and what came of it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table

from debsync.call_outcomes import Outcome
from debsync.cli.common import (
    JSON_VERSION,
    AuthorOption,
    JsonOption,
    app,
    day,
    decide,
    fail,
    load,
    money,
    now,
    open_store_or_exit,
    out,
    parse_date,
    print_json,
    short,
    who,
)

calls_app = typer.Typer(help="Call tasks: who to phone today, and what came of it.")
app.add_typer(calls_app, name="calls")


@calls_app.callback(invoke_without_command=True)
def calls_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Open call tasks: debtor, phone, open invoices, total and last contacts."""
    if ctx.invoked_subcommand is not None:
        return
    from debsync import formatting
    from debsync.outbox.calls import open_calls

    _, config = load(ctx)
    store = open_store_or_exit(config)
    tasks = open_calls(store)
    store.dispose()
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "calls": [
                    {
                        "id": t.key,
                        "instance": t.instance,
                        "debtor": t.debtor_id,
                        "step": t.step,
                        "filed_on": t.filed_on.isoformat(),
                        **t.payload,
                        "last_contacts": [
                            {"date": d, "step": s, "channel": c} for d, s, c in t.last_contacts
                        ],
                    }
                    for t in tasks
                ],
            }
        )
        return
    table = Table(title="calls", title_justify="left")
    for column in ("id", "debtor", "phone", "invoices", "total", "last contacts"):
        table.add_column(column)
    for t in tasks:
        p = t.payload
        table.add_row(
            short(t.key),
            f"{p.get('debtor_name', '')} ({t.debtor_id})",
            ", ".join(formatting.phone(n) for n in p.get("phones", [])),
            ", ".join(i["number"] for i in p.get("invoices", [])),
            money(Decimal(p["total"]), p["currency"]) if "total" in p else "",
            "; ".join(f"{day(date.fromisoformat(d))} {s} ({c})" for d, s, c in t.last_contacts),
        )
    out.print(table)


@calls_app.command("done")
def calls_done(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(metavar="TASK", help="The call task id (or 6+ chars).")],
    outcome: Annotated[Outcome, typer.Option("--outcome", help="What came of the call.")],
    promise_date: Annotated[
        str | None,
        typer.Option("--promise-date", help="Promised payment date (31-12-2026 or 2026-12-31)."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Kept in the dossier.")] = None,
    author: AuthorOption = None,
) -> None:
    """Record a call's outcome; a promise pauses until its date, a dispute until resolved."""
    from debsync.outbox.calls import complete

    if outcome is Outcome.PROMISED and not promise_date:
        fail("--outcome promised needs --promise-date")
    _, config = load(ctx)
    promised: date | None = parse_date(promise_date, "--promise-date") if promise_date else None
    pauses = decide(
        config,
        lambda s: complete(
            s,
            task,
            outcome,
            author=who(author),
            promise_date=promised,
            note=note,
            clock=now,
        ),
    )
    out.print(
        f"call {task} recorded: {outcome.value}"
        + (f"; {len(pauses)} invoice(s) paused" if pauses else "")
    )
