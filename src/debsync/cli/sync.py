"""debsync sync: fetch open items from the configured sources, with a progress line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from debsync.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    app,
    err,
    fail,
    load,
    now,
    open_store_or_exit,
    out,
)

if TYPE_CHECKING:
    from debsync.connectors.base import SyncResult


@app.command()
def sync(
    ctx: typer.Context,
    instance: Annotated[
        str | None, typer.Argument(help="Connector instance to sync [default: all].")
    ] = None,
    allow_mass_close: Annotated[
        bool,
        typer.Option(
            "--allow-mass-close",
            help="Let a snapshot close more than half of the open invoices at once.",
        ),
    ] = False,
) -> None:
    """Fetch open invoices, debtors and payments from the configured sources."""
    import asyncio

    from debsync.sync.engine import sync_instances

    plugins, config = load(ctx)
    if instance is not None and instance not in config.connectors:
        known = ", ".join(config.connectors) or "(none configured)"
        fail(f"no connector instance {instance!r} in {config.path}; configured: {known}")
    names = [instance] if instance else list(config.connectors)
    store = open_store_or_exit(config)
    line = SyncLine()
    try:
        results = asyncio.run(
            sync_instances(
                config,
                store,
                names,
                plugins,
                clock=now,
                allow_mass_close=allow_mass_close,
                progress=line,
            )
        )
    except KeyboardInterrupt:
        line.stop()
        err.print(
            "[yellow]interrupted:[/] the sync stopped at a page boundary; the pages written "
            "so far are kept, nothing was closed, and the run is recorded as interrupted",
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        store.dispose()
    print_sync_table(results)
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_FAILED)


class SyncLine:
    """A transient progress line on standard error for the instance being synced."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def started(self, instance: str) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(instance, total=None, detail="starting")

    def page(self, result: SyncResult) -> None:
        if self.progress is not None and self.task is not None:
            detail = (
                f"{result.pages} page(s), {result.counts.invoices_seen} invoices, "
                f"{result.counts.rejects} rejected"
            )
            self.progress.update(self.task, detail=detail)

    def finished(self, result: SyncResult) -> None:
        self.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress = self.task = None


def _outcome(result: SyncResult) -> str:
    from debsync.sync.engine import AlreadySyncing

    if isinstance(result, AlreadySyncing):
        return "[yellow]already syncing[/]"
    return "[green]ok[/]" if result.ok else "[red]failed[/]"


def print_sync_table(results: list[SyncResult]) -> None:
    from debsync.sync.engine import AlreadySyncing

    table = Table(title="sync", title_justify="left")
    for column in ("instance", "result", "pages", "seen", "new", "changed", "paid", "closed"):
        table.add_column(column, justify="left" if column in ("instance", "result") else "right")
    table.add_column("rejected", justify="right")
    for r in results:
        c = r.counts
        table.add_row(
            r.instance,
            _outcome(r),
            str(r.pages),
            str(c.invoices_seen),
            str(c.invoices_new),
            str(c.invoices_changed + c.invoices_reopened),
            str(c.partial_payments),
            str(c.invoices_closed),
            str(c.rejects),
        )
    out.print(table)
    for r in results:
        if isinstance(r, AlreadySyncing):
            err.print(
                f"[yellow]{escape(r.instance)}:[/] already syncing in another process; "
                "this sync did nothing",
                highlight=False,
            )
        if r.error:
            err.print(f"[red]{escape(r.instance)}:[/] {escape(r.error)}", highlight=False)
        if r.rejects:
            err.print(
                f"[yellow]{r.instance}:[/] {len(r.rejects)} record(s) rejected or repaired; "
                "see `debsync status`",
                highlight=False,
            )
