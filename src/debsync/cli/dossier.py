"""debsync dossier: a debtor's full timeline."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    JsonOption,
    app,
    day,
    fail,
    instance_or_only,
    load,
    money,
    open_store_or_exit,
    out,
    print_json,
)


@app.command()
def dossier(
    ctx: typer.Context,
    debtor: Annotated[str, typer.Argument(metavar="DEBTOR", help="The debtor's id.")],
    instance: Annotated[
        str | None, typer.Option("--instance", help="Connector instance (if several).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A debtor's full timeline: invoices, syncs, payments, actions, pauses, calls."""
    from debsync import formatting
    from debsync.dossier import DossierError, load_dossier

    _, config = load(ctx)
    instance = instance_or_only(config, instance)
    store = open_store_or_exit(config)
    try:
        found = load_dossier(store, instance, debtor)
    except DossierError as exc:  # an unknown debtor: usage
        fail(str(exc))
    finally:
        store.dispose()
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "instance": found.instance,
                "debtor": found.debtor,
                "invoices": found.invoices,
                "actions": found.actions,
                "timeline": [
                    {
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "invoice": e.invoice_id,
                        "summary": e.summary,
                        "data": e.data,
                    }
                    for e in found.entries
                ],
            }
        )
        return
    d = found.debtor
    out.print(f"[bold]{d['name']}[/] ({found.instance}/{d['external_id']}, {d['kind']})")
    table = Table(title="invoices", title_justify="left")
    for column in ("number", "due", "open", "state"):
        table.add_column(column)
    for inv in found.invoices:
        table.add_row(
            inv["number"],
            day(date.fromisoformat(inv["due_date"])),
            money(Decimal(inv["open"]), inv["currency"]),
            inv["state"],
        )
    out.print(table)
    timeline = Table(title="timeline", title_justify="left")
    for column in ("when (UTC)", "invoice", "what"):
        timeline.add_column(column)
    for e in found.entries:
        timeline.add_row(formatting.moment(e.at), e.invoice_id or "", e.summary)
    out.print(timeline)
