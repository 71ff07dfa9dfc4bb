"""debsync config check: validate connectors.toml and report every problem at once."""

from __future__ import annotations

import typer

from debsync.cli.common import EXIT_FAILED, config_app, fail, load, out
from debsync.errors import ConfigError


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration, resolve its secrets, check that the files it names exist,
    and report every problem at once."""
    import sqlalchemy as sa

    from debsync.config import missing_files

    plugins, config = load(ctx)
    missing = missing_files(config)
    if missing:
        fail(str(ConfigError(missing)))
    safe_url = sa.make_url(config.store_url).render_as_string(hide_password=True)
    out.print(f"[green]ok[/] {config.path}")
    out.print(f"  store: {safe_url}")
    if config.creditor:
        out.print(f"  creditor: {config.creditor.name}")
    for name, c in config.connectors.items():
        out.print(f"  connector {name}: type {c.type_name}")
    for name, a in config.actions.items():
        out.print(f"  action {name}: type {a.type_name}")
    if plugins.broken():
        raise typer.Exit(EXIT_FAILED)
