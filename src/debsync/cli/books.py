"""Commands about the books: sync, status, plan, plugins, config check."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date, datetime, time
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from debsync.cli.common import (
    EXIT_FAILED,
    JSON_VERSION,
    app,
    config_app,
    err,
    fail,
    load,
    money,
    open_store_or_exit,
    out,
    parse_date,
    print_json,
)
from debsync.clock import AMSTERDAM, local_date, system_clock
from debsync.config import Config
from debsync.connectors.base import SyncResult
from debsync.decisions import Plan, PlannedAction, Reason, explain
from debsync.errors import DebsyncError
from debsync.law import load_rate_table
from debsync.outbox.review import OutboxStatus, outbox_status
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.store.reports import AGING_BUCKETS, InstanceStatus, instance_status
from debsync.sync import SyncEngine, build_connector

# -- sync --------------------------------------------------------------------------------


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
    plugins, config = load(ctx)
    if instance is not None and instance not in config.connectors:
        known = ", ".join(config.connectors) or "(none configured)"
        fail(f"no connector instance {instance!r} in {config.path}; configured: {known}")
    names = [instance] if instance else list(config.connectors)
    store = open_store_or_exit(config)
    try:
        results = run_sync(config, store, names, plugins, allow_mass_close=allow_mass_close)
    finally:
        store.dispose()
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_FAILED)


def run_sync(
    config: Config,
    store: Store,
    names: list[str],
    plugins: Plugins,
    *,
    allow_mass_close: bool = False,
) -> list[SyncResult]:
    """Sync the named instances one after another with a progress line; print the summary."""
    engine = SyncEngine(store, clock=system_clock, plugins=plugins)
    results: list[SyncResult] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        for name in names:
            configured = config.connectors[name]
            task = progress.add_task(name, total=None, detail="starting")

            def show(result: SyncResult, task: Any = task) -> None:
                detail = (
                    f"{result.pages} page(s), {result.counts.invoices_seen} invoices, "
                    f"{result.counts.rejects} rejected"
                )
                progress.update(task, detail=detail)

            connector = build_connector(configured, config, system_clock)
            results.append(
                asyncio.run(
                    engine.run(
                        configured, connector, allow_mass_close=allow_mass_close, progress=show
                    )
                )
            )
            progress.remove_task(task)
    _print_sync_table(results)
    return results


def _print_sync_table(results: list[SyncResult]) -> None:
    table = Table(title="sync", title_justify="left")
    for column in ("instance", "result", "pages", "seen", "new", "changed", "paid", "closed"):
        table.add_column(column, justify="left" if column in ("instance", "result") else "right")
    table.add_column("rejected", justify="right")
    for r in results:
        c = r.counts
        table.add_row(
            r.instance,
            "[green]ok[/]" if r.ok else "[red]failed[/]",
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
        if r.error:
            err.print(f"[red]{escape(r.instance)}:[/] {escape(r.error)}", highlight=False)
        if r.rejects:
            err.print(
                f"[yellow]{r.instance}:[/] {len(r.rejects)} record(s) rejected or repaired; "
                "see `debsync status`",
                highlight=False,
            )


# -- status ------------------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Age invoices as of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Open and overdue amounts, aging, last sync and rejected records per instance."""
    plugins, config = load(ctx)
    today = parse_date(at, "--at") if at else local_date(system_clock())
    store = open_store_or_exit(config)
    rows = instance_status(store, {n: c.type_name for n, c in config.connectors.items()}, today)
    actions = outbox_status(store, config.routes().keys())
    store.dispose()
    warnings = _law_warnings(config, today)
    warnings += [
        f"{n} action(s) on channel {channel!r} wait: no [actions] instance carries it"
        for channel, n in sorted(actions.unrouted.items())
    ]
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "today": today.isoformat(),
                "instances": [_status_json(s) for s in rows],
                "outbox": {
                    "counts": actions.counts,
                    "needs_review": [asdict(r) for r in actions.review],
                    "unrouted": actions.unrouted,
                },
                "broken_plugins": [{"name": i.name, "error": i.error} for i in plugins.broken()],
                "warnings": warnings,
            }
        )
    else:
        _print_status(rows, today)
        _print_outbox(actions)
        for warning in warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if actions.review or any(s.last_error for s in rows if s.instance in config.connectors):
        raise typer.Exit(EXIT_FAILED)


def _print_outbox(actions: OutboxStatus) -> None:
    if not actions.counts:
        return
    out.print("outbox: " + ", ".join(f"{n} {state}" for state, n in sorted(actions.counts.items())))
    for r in actions.review:
        out.print(
            f"  [red]{r.state}[/] {r.key[:12]} {r.step} by {r.channel} to "
            f"{escape(r.instance)}/{escape(r.debtor_id)}: {escape(r.error or 'outcome unknown')}",
            highlight=False,
        )
    if actions.review:
        out.print("  see `debsync outbox review`")


RATE_TABLE_WARNING_DAYS = 30


def _law_warnings(config: Config, today: date) -> list[str]:
    """Say so a month before the interest table runs out, and every day after."""
    try:
        last = load_rate_table(config.law.interest_rates).last_known()
    except DebsyncError as exc:
        return [f"statutory interest table cannot be read: {exc}"]
    if (last - today).days > RATE_TABLE_WARNING_DAYS:
        return []
    return [
        f"the statutory interest table ends on {last.isoformat()}; add the next half-year's "
        "rates ([law] interest_rates, see docs/law.md) or upgrade debsync, otherwise "
        "messages go out without interest"
    ]


def _status_json(s: InstanceStatus) -> dict[str, Any]:
    return {
        "instance": s.instance,
        "type": s.type,
        "open_invoices": s.open_invoices,
        "currencies": {
            code: {
                "open_invoices": t.open_invoices,
                "open_amount": t.open_amount,
                "overdue_amount": t.overdue_amount,
                "aging": t.aging,
                "aging_counts": t.aging_counts,
            }
            for code, t in s.totals.items()
        },
        "last_sync": s.last_sync.isoformat() if s.last_sync else None,
        "last_attempt": s.last_attempt.isoformat() if s.last_attempt else None,
        "last_run_status": s.last_run_status,
        "last_error": s.last_error,
        "rejects": [asdict(r) for r in s.rejects],
    }


def _print_status(rows: list[InstanceStatus], today: date) -> None:
    """Per instance a summary line and, per currency, the aging table (fits 80 columns)."""
    if not rows:
        out.print("No connector instances configured or synced yet.")
        return
    for s in rows:
        last = s.last_sync.strftime("%Y-%m-%d %H:%M UTC") if s.last_sync else "never"
        out.print(
            f"[bold]{escape(s.instance)}[/] ({escape(s.type or 'not configured')}): "
            f"{s.open_invoices} open invoice(s); last successful sync {last}"
        )
        for currency, t in s.totals.items():
            out.print(
                f"  {currency}: {t.open_invoices} invoice(s), {money(t.open_amount, currency)} "
                f"open, {money(t.overdue_amount, currency)} overdue"
            )
            table = Table(title=f"aging as of {today.isoformat()}", title_justify="left")
            table.add_column("days past due")
            table.add_column("invoices", justify="right")
            table.add_column("amount", justify="right")
            for bucket in AGING_BUCKETS:
                label = "not yet due" if bucket == "not_due" else bucket
                table.add_row(label, str(t.aging_counts[bucket]), money(t.aging[bucket], currency))
            out.print(table)
        if s.last_error:
            err.print(f"[red]last sync failed:[/] {escape(s.last_error)}", highlight=False)
        if s.rejects:
            out.print(
                f"[yellow]{len(s.rejects)} rejected or repaired record(s) in the last sync:[/]"
            )
            for r in s.rejects:
                tag = "repaired" if r.dropped else "rejected"
                out.print(f"  {tag} {r.kind} {r.ref}: {r.reason}", highlight=False, markup=False)


# -- plugins -----------------------------------------------------------------------------


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Include built-in plugins.")] = False,
) -> None:
    """Installed plugins, what they register, and any that are broken."""
    infos = [i for i in Plugins().infos.values() if show_all or not i.builtin]
    if as_json:
        print_json({"version": JSON_VERSION, "plugins": [asdict(i) for i in infos]})
        return
    if not infos:
        out.print("No third-party plugins installed (use --all to include built-ins).")
        return
    table = Table(title="plugins", title_justify="left")
    for column in ("name", "version", "status", "connectors", "actions"):
        table.add_column(column)
    for i in infos:
        colour = {"loaded": "green", "broken": "red", "disabled": "yellow"}[i.status]
        table.add_row(
            i.name + (" (built-in)" if i.builtin else ""),
            i.version or "-",
            f"[{colour}]{i.status}[/]",
            ", ".join(i.connectors) or "-",
            ", ".join(i.actions) or "-",
        )
    out.print(table)
    for i in infos:
        if i.error:
            err.print(f"[red]{escape(i.name)}:[/] {escape(i.error)}", highlight=False)


# -- config ------------------------------------------------------------------------------


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration, resolve its secrets, and report every problem at once."""
    plugins, config = load(ctx)
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


# -- plan --------------------------------------------------------------------------------


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="Plan as of this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    explain_number: Annotated[
        str | None,
        typer.Option(
            "--explain", metavar="INVOICE_NUMBER", help="Why this invoice is or is not escalated."
        ),
    ] = None,
) -> None:
    """Which dunning step every open invoice is due for, without sending anything."""
    _, config = load(ctx)
    now = system_clock()
    check_freshness = True
    if at:
        day = parse_date(at, "--at")
        check_freshness = day <= local_date(now)
        now = datetime.combine(day, time(9, 0), tzinfo=AMSTERDAM)
    store = open_store_or_exit(config)
    result = plan_from_store(config, store, now, check_freshness=check_freshness)
    store.dispose()
    if explain_number:
        lines = result.explain(explain_number)
        if not lines:
            fail(f"no open invoice numbered {explain_number!r}", EXIT_FAILED)
        for line in lines:
            out.print(line, highlight=False, markup=False)
        for action in result.actions:
            if any(line.number == explain_number for line in action.lines):
                out.print(_action_summary(action), highlight=False, markup=False)
        return
    if as_json:
        print_json(_plan_json(result))
        return
    _print_plan(result)


def _action_summary(a: PlannedAction) -> str:
    numbers = ", ".join(line.number for line in a.lines)
    return (
        f"action {a.key}: {a.step} by {a.channel} to debtor {a.debtor_id} for {numbers}: "
        f"{a.explanation}"
    )


def _plan_json(result: Plan) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "today": result.today.isoformat(),
        "actions": [
            {
                "key": a.key,
                "instance": a.instance,
                "debtor": a.debtor_id,
                "step": a.step,
                "channel": a.channel,
                "role": a.role,
                "requires_approval": a.requires_approval,
                "language": a.language.value,
                "currency": a.currency,
                "invoices": [
                    {
                        "id": line.invoice_id,
                        "number": line.number,
                        "due_date": line.due_date.isoformat(),
                        "days_overdue": line.days_overdue,
                        "principal": line.principal,
                        "interest": line.interest,
                    }
                    for line in a.lines
                ],
                "principal": a.principal,
                "interest": a.interest,
                "costs": a.costs,
                "announced_costs": a.announced_costs,
                "total": a.total,
                "deadline": a.deadline.isoformat(),
                "notes": list(a.notes),
                "explanation": a.explanation,
            }
            for a in result.actions
        ],
        "skipped": [
            {
                "instance": d.instance,
                "invoice": d.invoice_id,
                "number": d.number,
                "debtor": d.debtor_id,
                "reason": d.reason.value,
                "current_step": d.current_step,
                "next_step": d.next_step,
                "next_on": d.next_on.isoformat() if d.next_on else None,
                "explanation": explain(d),
            }
            for d in result.decisions
            if d.reason not in (Reason.PLANNED, Reason.AWAITING_APPROVAL)
        ],
        "warnings": result.warnings,
    }


def _print_plan(result: Plan) -> None:
    table = Table(title=f"plan for {result.today.isoformat()}", title_justify="left")
    for column in (
        "debtor",
        "step",
        "channel",
        "invoices",
        "principal",
        "interest",
        "costs",
        "deadline",
    ):
        table.add_column(
            column, justify="right" if column in ("principal", "interest", "costs") else "left"
        )
    for a in result.actions:
        table.add_row(
            f"{a.instance}/{a.debtor_id}",
            a.step + (" (approval)" if a.requires_approval else ""),
            a.channel,
            ", ".join(line.number for line in a.lines),
            money(a.principal, a.currency),
            money(a.interest, a.currency) if a.interest is not None else "-",
            money(a.costs, a.currency) if a.costs is not None else "-",
            a.deadline.isoformat(),
        )
    out.print(table)
    counts: dict[str, int] = {}
    for d in result.decisions:
        counts[d.reason.value] = counts.get(d.reason.value, 0) + 1
    out.print("invoices: " + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())))
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
