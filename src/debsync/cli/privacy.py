"""debsync purge and debsync export: personal data past retention, and a data subject's copy
of everything debsync holds about them (see docs/privacy.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from debsync.cli.common import (
    EXIT_FAILED,
    JSON_VERSION,
    JsonOption,
    app,
    err,
    fail,
    instance_or_only,
    load,
    now,
    open_store_or_exit,
    out,
    print_json,
)

if TYPE_CHECKING:
    from debsync.privacy import PurgeReport


@app.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be purged; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Pseudonymise the personal data of debtors past [privacy] retention_days."""
    from debsync.privacy import PrivacyError
    from debsync.privacy import purge as purge_store

    _, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        report = purge_store(
            store, config.privacy, now=now(), base=config.directory, dry_run=dry_run
        )
    except PrivacyError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    if as_json:
        print_json(_report_json(report))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _report_json(report: PurgeReport) -> dict[str, object]:
    return {
        "version": JSON_VERSION,
        "dry_run": report.dry_run,
        "retention_days": report.retention_days,
        "cutoff": report.cutoff.isoformat(),
        "busy": report.busy,
        "debtors": [
            {
                "instance": p.instance,
                "debtor": p.debtor_id,
                "last_activity": p.last_activity.isoformat(),
                "invoices": p.invoices,
                "events": p.events,
                "actions": p.actions,
                "rejects": p.rejects,
                "files": [str(f) for f in p.files],
                "error": p.error,
            }
            for p in report.purged
        ],
    }


def _print_report(report: PurgeReport) -> None:
    verb = "would purge" if report.dry_run else "purged"
    done = [p for p in report.purged if p.error is None]
    out.print(
        f"{verb} {len(done)} debtor(s) whose last invoice closed before "
        f"{report.cutoff:%Y-%m-%d} ({report.retention_days} days of retention)",
        highlight=False,
    )
    for p in done:
        out.print(
            f"  {escape(p.instance)}/{escape(p.debtor_id)}: last activity "
            f"{p.last_activity:%Y-%m-%d}; {p.invoices} invoice(s), {p.events} event(s) and "
            f"{p.actions} action(s) cleaned, {len(p.files)} file(s) deleted",
            highlight=False,
        )
    for p in report.purged:
        if p.error is not None:
            err.print(
                f"[red]not purged:[/] {escape(p.instance)}/{escape(p.debtor_id)}: "
                f"{escape(p.error)}",
                highlight=False,
            )
    for instance in report.busy:
        err.print(
            f"[yellow]skipped:[/] {escape(instance)} is being synced; the next purge takes it",
            highlight=False,
        )


@app.command()
def export(
    ctx: typer.Context,
    debtor: Annotated[str, typer.Argument(metavar="DEBTOR", help="The debtor's id.")],
    instance: Annotated[
        str | None, typer.Option("--instance", help="Connector instance (if several).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE (mode 0600) instead of stdout."),
    ] = None,
) -> None:
    """Everything debsync holds about one debtor, as JSON (a data subject's request)."""
    from debsync.actions.files import write_atomically
    from debsync.privacy import PrivacyError, export_debtor

    _, config = load(ctx)
    instance = instance_or_only(config, instance)
    store = open_store_or_exit(config)
    try:
        found = export_debtor(store, instance, debtor, now())
    except PrivacyError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()
    if output is None:
        print_json(found)
        return
    text = json.dumps(found, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(output, text.encode(), mode=0o600)  # it is all personal data
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_FAILED)
    err.print(f"written to {escape(str(output))}", highlight=False)
