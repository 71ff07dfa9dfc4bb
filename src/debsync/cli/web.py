"""debsync web: the web console served alone (the daemon's server mounts the same app)."""

from __future__ import annotations

from typing import Annotated

import typer

from debsync.cli.common import app, load, now, open_store_or_exit, out, plugins_of


@app.command()
def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on ([http] host).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port ([http] port).")] = None,
) -> None:
    """Serve the web console (dashboard, plan, outbox, calls, dossiers) until interrupted."""
    import uvicorn

    from debsync.web.app import build_web_app

    _, config = load(ctx)
    store = open_store_or_exit(config)
    bind_host, bind_port = host or config.http.host, port or config.http.port
    console = build_web_app(config, store, plugins_of(ctx), clock=now)
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    out.print(f"debsync web console on http://{shown}:{bind_port}/ (Ctrl+C stops it)")
    try:
        uvicorn.run(console, host=bind_host, port=bind_port, log_level="warning")
    finally:
        store.dispose()
