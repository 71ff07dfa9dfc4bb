"""debsync workers: the daemon processes alive on this store, and what each holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import JSON_VERSION, app, load, now, open_store_or_exit, out, print_json


@app.command("workers")
def workers_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Live `debsync run` workers: host, pid, start, last heartbeat, what they hold."""
    from debsync import formatting, workers
    from debsync.clock import AMSTERDAM

    _, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        found = workers.live(store, now(), config.daemon.lease)
    finally:
        store.dispose()
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "workers": [
                    {
                        "id": w.id,
                        "host": w.host,
                        "pid": w.pid,
                        "version": w.version,
                        "started_at": w.started_at.isoformat(),
                        "heartbeat_at": w.heartbeat_at.isoformat(),
                        "syncing": w.syncing,
                        "sending": w.sending,
                        "stopping": w.stopping,
                    }
                    for w in found
                ],
            }
        )
        return
    if not found:
        out.print("No live workers: no `debsync run` is running on this store.")
        return
    table = Table(title="live workers (times: Amsterdam)", title_justify="left")
    for column in ("host", "pid", "started", "last heartbeat", "syncing", "sending", ""):
        table.add_column(column)
    for w in found:
        table.add_row(
            escape(w.host),
            str(w.pid),
            formatting.moment(w.started_at.astimezone(AMSTERDAM)),
            formatting.moment(w.heartbeat_at.astimezone(AMSTERDAM)),
            escape(", ".join(w.syncing)) or "-",
            str(w.sending),
            "stopping" if w.stopping else "",
        )
    out.print(table)
