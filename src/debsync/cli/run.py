"""debsync act, run and serve: carry out the plan once, as a daemon, or hear providers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import (
    EXIT_FAILED,
    app,
    day,
    err,
    load,
    now,
    open_store_or_exit,
    out,
    plugins_of,
    short,
)
from debsync.cli.sync import SyncLine, print_sync_table

if TYPE_CHECKING:
    from debsync.config import Config
    from debsync.daemon import CycleReport
    from debsync.outbox.executor import ActReport
    from debsync.store import Store


@app.command()
def act(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be queued and sent; change nothing.")
    ] = False,
) -> None:
    """Plan today's steps, queue them, and send every action that is due."""
    import asyncio

    from debsync.outbox.executor import Dispatcher

    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        if dry_run:
            _dry_run(config, store)
            return
        report = asyncio.run(Dispatcher(config, store, plugins, clock=now).act())
    finally:
        store.dispose()
    _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _dry_run(config: Config, store: Store) -> None:
    from debsync.outbox.preview import dry_run

    would = dry_run(config, store, now())
    table = Table(title="would queue", title_justify="left")
    for column in ("action", "debtor", "step", "channel", "invoices", "approval"):
        table.add_column(column)
    for a in would.would_queue:
        table.add_row(
            short(a.key),
            f"{a.instance}/{a.debtor_id}",
            a.step,
            a.channel,
            ", ".join(line.number for line in a.lines),
            "yes" if a.requires_approval else "",
        )
    out.print(table)
    out.print(
        f"already queued: {would.already_queued}; due to send now (before queueing): {would.due}"
    )
    for channel in would.unrouted:
        err.print(
            f"[yellow]warning:[/] no [actions] instance carries channel {channel!r}; "
            "those actions wait in the outbox",
            highlight=False,
        )


def _print_report(report: ActReport) -> None:
    outcomes = ", ".join(f"{n} {state}" for state, n in sorted(report.outcomes.items()))
    out.print(
        f"{day(report.today)}: {report.planned} action(s) planned, {report.enqueued} newly queued"
        + (f", {report.revived} revived" if report.revived else "")
        + (f"; {outcomes}" if outcomes else "; nothing was due to send")
    )
    for name, error in report.unavailable.items():
        err.print(f"[red]action {name} unavailable:[/] {escape(error)}", highlight=False)
    # report.warnings were logged before anything was sent (Dispatcher.act): not again


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit.")] = False,
    interval: Annotated[
        int, typer.Option("--interval", min=1, help="Minutes between cycles.")
    ] = 15,
) -> None:
    """Sync every connector, plan, and act; with --once one cycle, else until stopped."""
    from debsync import daemon

    plugins = plugins_of(ctx)

    def load_cycle() -> tuple[Config, Store]:
        _, config = load(ctx)
        return config, open_store_or_exit(config)

    def report(cycle: CycleReport) -> None:
        print_sync_table(cycle.synced)
        _print_report(cycle.acted)
        if cycle.heard.new:
            out.print(f"{cycle.heard.new} status report(s) from providers filed in the dossiers")

    ok = daemon.run(
        load_cycle,
        plugins,
        once=once,
        interval=timedelta(minutes=interval),
        on_cycle=report,
        progress=SyncLine,
        clock=now,
    )
    if not ok and once:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8710,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The base URL providers call, as they sign it (behind a reverse proxy) "
            "[default: http://HOST:PORT].",
        ),
    ] = None,
    print_urls: Annotated[
        bool,
        typer.Option(
            "--print-urls",
            help="Print each instance's callback URL, URL secret included, to enter at the "
            "provider; then exit.",
        ),
    ] = False,
) -> None:
    """Receive providers' status callbacks (SMS delivery reports, agency case events) at
    POST /inbound/<action instance>, and answer GET /healthz."""
    from debsync import inbound
    from debsync.outbox.executor import Dispatcher

    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    dispatcher = Dispatcher(config, store, plugins, clock=now)
    base = public_url or f"http://{host}:{port}"
    actions = dispatcher.actions()
    if print_urls:
        for name, action in actions.items():
            out.print(f"{name}\t{base}{inbound.callback_path(name, action)}", highlight=False)
        store.dispose()
        return
    server = inbound.InboundServer((host, port), store, actions, base, now)
    out.print(f"listening on {host}:{port}; providers call {base}/inbound/<action instance>")
    for name, action in actions.items():  # a URL secret is for the provider's portal only
        out.print(f"  {base}{inbound.loggable_path(inbound.callback_path(name, action))}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.dispose()
