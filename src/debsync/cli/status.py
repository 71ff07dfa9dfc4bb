"""debsync status: open and overdue amounts, aging, last sync, rejects, the outbox. Every
error it prints passes :func:`debsync.errors.scrub`: a store written by an older version may
hold a database error with other debtors' data in it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import (
    EXIT_FAILED,
    JSON_VERSION,
    app,
    day,
    err,
    load,
    money,
    now,
    open_store_or_exit,
    out,
    parse_date,
    print_json,
    warn,
)
from debsync.clock import AMSTERDAM, local_date
from debsync.errors import scrub

if TYPE_CHECKING:
    from debsync.outbox.review import OutboxStatus
    from debsync.store.reports import InstanceStatus, RejectRow


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Age invoices as of this date (31-12-2026 or 2026-12-31)."),
    ] = None,
) -> None:
    """Open and overdue amounts, aging, last sync and rejected records per instance."""
    from debsync import law
    from debsync.daemon import next_window
    from debsync.decisions import needs_contact, needs_contact_lines
    from debsync.eligibility import held, held_lines
    from debsync.outbox.review import outbox_status
    from debsync.planning import plan_from_store
    from debsync.store.reports import instance_status, unknown_kind_lines

    plugins, config = load(ctx)
    today = parse_date(at, "--at") if at else local_date(now())
    window = next_window(config, now())
    store = open_store_or_exit(config)
    rows = instance_status(store, {n: c.type_name for n, c in config.connectors.items()}, today)
    actions = outbox_status(store, config.routes().keys())
    noon = datetime.combine(today, time(12, 0), tzinfo=AMSTERDAM)
    contact = plan_from_store(config, store, noon, check_freshness=False)
    store.dispose()
    warnings = law.rate_table_warnings(today, config.law.interest_rates)
    warnings += unknown_kind_lines({s.instance: s.unknown_kind for s in rows if s.unknown_kind})
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
                "send_window": {"next_open": window.isoformat()},
                "broken_plugins": [{"name": i.name, "error": i.error} for i in plugins.broken()],
                "needs_contact": needs_contact(contact),
                **held(contact),
                "warnings": warnings,
            }
        )
    else:
        _print_status(rows, today)
        _print_outbox(actions)
        out.print(window_line(window, now()))
        for line in [*needs_contact_lines(contact), *held_lines(contact)]:
            out.print(line, highlight=False, markup=False)
        warn(warnings)
    if actions.review or any(s.last_error for s in rows if s.instance in config.connectors):
        raise typer.Exit(EXIT_FAILED)


def _print_outbox(actions: OutboxStatus) -> None:
    if not actions.counts:
        return
    out.print("outbox: " + ", ".join(f"{n} {state}" for state, n in sorted(actions.counts.items())))
    for r in actions.review:
        error = escape(scrub(r.error or "outcome unknown"))
        out.print(
            f"  [red]{r.state}[/] {r.key[:12]} {r.step} by {r.channel} to "
            f"{escape(r.instance)}/{escape(r.debtor_id)}: {error}",
            highlight=False,
        )
    if actions.review:
        out.print("  see `debsync outbox review`")


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
        "next_sync": s.next_sync.isoformat() if s.next_sync else None,
        "failures": s.failures,
        "last_error": scrub(s.last_error) if s.last_error else None,
        "rejects": [asdict(r) | {"reason": scrub(r.reason)} for r in s.rejects],
        "unknown_kind": s.unknown_kind,
    }


def _print_status(rows: list[InstanceStatus], today: date) -> None:
    from debsync import formatting
    from debsync.store.reports import AGING_BUCKETS

    """Per instance a summary line and, per currency, the aging table (fits 80 columns)."""
    if not rows:
        out.print("No connector instances configured or synced yet.")
        return
    for s in rows:
        last = f"{formatting.moment(s.last_sync)} UTC" if s.last_sync else "never"
        out.print(
            f"[bold]{escape(s.instance)}[/] ({escape(s.type or 'not configured')}): "
            f"{s.open_invoices} open invoice(s); last successful sync {last}"
        )
        for currency, t in s.totals.items():
            out.print(
                f"  {currency}: {t.open_invoices} invoice(s), {money(t.open_amount, currency)} "
                f"open, {money(t.overdue_amount, currency)} overdue"
            )
            table = Table(title=f"aging as of {day(today)}", title_justify="left")
            table.add_column("days past due")
            table.add_column("invoices", justify="right")
            table.add_column("amount", justify="right")
            for bucket in AGING_BUCKETS:
                label = "not yet due" if bucket == "not_due" else bucket
                table.add_row(label, str(t.aging_counts[bucket]), money(t.aging[bucket], currency))
            out.print(table)
        if s.last_error:
            err.print(f"[red]last sync failed:[/] {escape(scrub(s.last_error))}", highlight=False)
        if s.next_sync:
            backoff = f", backing off after {s.failures} failure(s) in a row" if s.failures else ""
            at = formatting.moment(s.next_sync.astimezone(AMSTERDAM))
            out.print(f"  next sync by the daemon {at} (Amsterdam){backoff}", highlight=False)
        if s.rejects:
            out.print(
                f"[yellow]{len(s.rejects)} rejected or repaired record(s) in the last sync:[/]"
            )
            for line in _reject_lines(s.rejects):
                out.print(line, highlight=False, markup=False)


def window_line(opens: datetime, at: datetime) -> str:
    """When messages may go out, as ``status`` and ``plan`` say it."""
    from debsync import formatting

    if opens <= at:
        return "send window: open now"
    return f"send window: opens {formatting.moment(opens.astimezone(AMSTERDAM))} (Amsterdam)"


REFS_SHOWN = 3
"""Records named for a problem many share; `status --json` lists them all."""


def _reject_lines(rejects: list[RejectRow]) -> list[str]:
    """One line per problem: a reason many records share is said once, with their count and
    the first few of them."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in rejects:
        tag = "repaired" if r.dropped else "rejected"
        groups.setdefault((tag, r.kind, scrub(r.reason)), []).append(r.ref)
    lines = []
    for (tag, kind, reason), refs in groups.items():
        if len(refs) == 1:
            lines.append(f"  {tag} {kind} {refs[0]}: {reason}")
            continue
        more = len(refs) - REFS_SHOWN
        shown = ", ".join(refs[:REFS_SHOWN]) + (f" and {more} more" if more > 0 else "")
        lines.append(f"  {tag} {len(refs)} × {kind} ({shown}): {reason}")
    return lines
