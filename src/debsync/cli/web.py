"""debsync web: the web console served alone (the daemon's server mounts the same app),
through the daemon's own serving path, so it has the same read timeout, request deadline
and connection cap as ``debsync serve``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from debsync.cli.common import (
    EXIT_FAILED,
    app,
    err,
    load,
    now,
    open_store_or_exit,
    out,
    plugins_of,
)


@app.command()
def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on ([http] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port ([http] port; 0: any free port).")
    ] = None,
) -> None:
    """Serve the web console (dashboard, plan, outbox, calls, dossiers) until interrupted."""
    import asyncio
    import functools
    import signal

    from debsync.server import serve as run_server
    from debsync.web.app import build_web_app
    from debsync.web.warmup import keep_warm

    _, config = load(ctx)
    store = open_store_or_exit(config)
    bind_host = host if host is not None else config.http.host
    bind_port = port if port is not None else config.http.port
    console = build_web_app(config, store, plugins_of(ctx), clock=now)
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host

    def listening(bound: int) -> None:
        out.print(f"debsync web console on http://{shown}:{bound}/ (Ctrl+C stops it)")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_server(
            console,
            bind_host,
            bind_port,
            stop=stop,
            listening=listening,
            beside=[functools.partial(keep_warm, console)],
        )

    try:
        asyncio.run(main())
    except OSError as exc:
        err.print(
            f"[red]cannot listen on {bind_host}:{bind_port}:[/] {escape(str(exc))}",
            highlight=False,
        )
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        store.dispose()
