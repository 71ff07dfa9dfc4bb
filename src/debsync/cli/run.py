"""debsync act, run and serve: carry out the plan once, as a daemon, or hear providers."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import (
    EXIT_FAILED,
    app,
    day,
    err,
    fail,
    load,
    now,
    open_store_or_exit,
    out,
    short,
)
from debsync.cli.sync import SyncLine, print_sync_table

log = logging.getLogger("debsync.daemon")

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine

    from starlette.applications import Starlette

    from debsync.actions.base import Action
    from debsync.config import Config
    from debsync.connectors.base import SyncResult
    from debsync.outbox.executor import ActReport
    from debsync.plugins import Plugins
    from debsync.server import ServerState
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
    once: Annotated[
        bool, typer.Option("--once", help="One cycle of everything, whatever the windows.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Instances this worker syncs at once.")
    ] = 4,
    host: Annotated[
        str | None,
        typer.Option("--host", help="HTTP server interface [default: [http] host, 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="HTTP server port, 0 for any free one [default: 8710]."),
    ] = None,
) -> None:
    """Sync, plan and act until SIGTERM: each instance on its own schedule ([daemon]
    sync_every), sending only inside the send windows, with the HTTP server (health,
    metrics, webhooks, web console) alongside; with --once one cycle, then exit."""
    import asyncio

    from debsync import daemon
    from debsync.config import load_config
    from debsync.server import ServerState
    from debsync.server import serve as run_server

    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    if once:
        try:
            cycle = asyncio.run(
                daemon.cycle(config, store, plugins, clock=now, progress=SyncLine())
            )
        finally:
            store.dispose()
        print_sync_table(cycle.synced)
        _print_report(cycle.acted)
        if cycle.heard.new:
            out.print(f"{cycle.heard.new} status report(s) from providers filed in the dossiers")
        if not cycle.ok:
            raise typer.Exit(EXIT_FAILED)
        return
    path = ctx.find_root().obj.config
    state = ServerState()

    def synced(result: SyncResult) -> None:
        print_sync_table([result])
        if result.ok:
            state.backoff.pop(result.instance, None)
        else:
            state.backoff[result.instance] = "failed"

    worker = daemon.Daemon(
        config,
        store,
        plugins,
        reload=lambda: load_config(path, plugins),
        clock=now,
        concurrency=concurrency,
        on_sync=synced,
        on_act=_print_report,
    )
    bind_host = host if host is not None else config.http.host
    bind_port = port if port is not None else config.http.port
    base = config.http.public_url or f"http://{bind_host}:{bind_port}"
    http = http_app(config, store, plugins, state, base)

    def listening(bound: int) -> None:
        out.print(f"HTTP server on http://{bind_host}:{bound}/", highlight=False)
        log.info("HTTP server listening on %s:%d", bind_host, bound)

    def server(stop: asyncio.Event) -> Coroutine[Any, Any, None]:
        return run_server(
            http, bind_host, bind_port, stop=stop, listening=listening, beside=warming(http)
        )

    try:
        with daemon.exclusive(store):
            asyncio.run(worker.run(extra=[server]))
    except daemon.DaemonRunning as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()


def http_app(
    config: Config,
    store: Store,
    plugins: Plugins,
    state: ServerState,
    base: str,
    actions: dict[str, Action[Any]] | None = None,
) -> Starlette:
    """The one HTTP server's app (``run`` and ``serve``): health, metrics, callbacks and
    webhooks, with the web console mounted at ``/`` unless ``[web] enabled = false`` (kept as
    ``state.web_console``, for :func:`warming`)."""
    from starlette.routing import Mount

    from debsync.server import build_app
    from debsync.web.app import build_web_app

    console = build_web_app(config, store, plugins, clock=now) if config.web.enabled else None
    server = build_app(
        config,
        store,
        plugins,
        clock=now,
        state=state,
        actions=actions,
        public_url=base.rstrip("/"),
        mounts=[Mount("/", app=console)] if console is not None else [],
    )
    server.state.web_console = console
    return server


def warming(http: Starlette) -> list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]]:
    """What runs beside the server until it stops: the console's plan kept up to date."""
    from debsync.web.warmup import keep_warm

    console: Starlette | None = http.state.web_console
    return [] if console is None else [functools.partial(keep_warm, console)]


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface to listen on [default: [http] host, 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port to listen on [default: [http] port, 8710]."),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The base URL providers call, as they sign it (behind a reverse proxy) "
            "[default: [http] public_url, else http://HOST:PORT].",
        ),
    ] = None,
    print_urls: Annotated[
        bool,
        typer.Option(
            "--print-urls",
            help="Print each action instance's callback URL, URL secret included, and each "
            "webhook-capable connector's webhook URL, to enter at the provider; then exit.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP endpoints without the daemon's loop: providers' status callbacks
    (POST /inbound/<action instance>), sources' webhooks (POST /webhooks/<connector
    instance>), GET /healthz, /readyz and /metrics, and the web console at /."""
    import asyncio
    import signal

    from debsync import inbound
    from debsync.outbox.executor import Dispatcher
    from debsync.server import ServerState
    from debsync.server import serve as run_server

    plugins, config = load(ctx)
    host = host if host is not None else config.http.host
    port = port if port is not None else config.http.port
    base = (public_url or config.http.public_url or f"http://{host}:{port}").rstrip("/")
    store = open_store_or_exit(config)
    actions = Dispatcher(config, store, plugins, clock=now).actions()
    hooks = [n for n, c in config.connectors.items() if "webhooks" in c.cls.capabilities]
    if print_urls:
        for name, action in actions.items():
            out.print(f"{name}\t{base}{inbound.callback_path(name, action)}", highlight=False)
        for name in hooks:
            out.print(f"{name}\t{base}/webhooks/{name}", highlight=False)
        store.dispose()
        return
    app = http_app(config, store, plugins, ServerState(), base, actions)

    def listening(bound: int) -> None:
        out.print(f"listening on {host}:{bound}; providers call {base}", highlight=False)
        for name, action in actions.items():  # a URL secret is for the provider's portal only
            path = inbound.loggable_path(inbound.callback_path(name, action))
            out.print(f"  {base}{path}", highlight=False)
        for name in hooks:
            out.print(f"  {base}/webhooks/{name}", highlight=False)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_server(app, host, port, stop=stop, listening=listening, beside=warming(app))

    try:
        asyncio.run(main())
    except OSError as exc:
        err.print(f"[red]cannot listen on {host}:{port}:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        store.dispose()
