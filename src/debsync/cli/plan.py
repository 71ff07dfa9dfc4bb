"""debsync plan: today's (or another day's) step for every open invoice, and why."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    app,
    day,
    err,
    fail,
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

if TYPE_CHECKING:
    from debsync.decisions import Plan, PlannedAction


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="Plan as of this date (31-12-2026 or 2026-12-31).")
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
    from debsync.cli.status import window_line
    from debsync.daemon import next_window
    from debsync.decisions import needs_contact, needs_contact_lines
    from debsync.eligibility import held, held_lines
    from debsync.planning import plan_from_store
    from debsync.store.reports import unknown_kind_lines, unknown_kinds

    _, config = load(ctx)
    moment = now()
    check_freshness = True
    if at:
        day = parse_date(at, "--at")
        check_freshness = day <= local_date(moment)
        moment = datetime.combine(day, time(9, 0), tzinfo=AMSTERDAM)
    store = open_store_or_exit(config)
    result = plan_from_store(config, store, moment, check_freshness=check_freshness)
    unknown = unknown_kinds(store)
    store.dispose()
    if explain_number:
        lines = result.explain(explain_number)
        if not lines:
            fail(f"no open invoice numbered {explain_number!r}")
        for line in lines:
            out.print(line, highlight=False, markup=False)
        for action in result.actions:
            if any(line.number == explain_number for line in action.lines):
                out.print(_action_summary(action), highlight=False, markup=False)
        return
    if as_json:
        print_json(
            _plan_json(result)
            | {"unknown_kind": unknown, "needs_contact": needs_contact(result)}
            | {"send_window": {"next_open": next_window(config, now()).isoformat()}}
            | held(result)
        )
        return
    _print_plan(result)
    out.print(window_line(next_window(config, now()), now()), highlight=False)
    for line in [*needs_contact_lines(result), *held_lines(result)]:
        out.print(line, highlight=False, markup=False)
    for line in unknown_kind_lines(unknown):
        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)


def _action_summary(a: PlannedAction) -> str:
    numbers = ", ".join(line.number for line in a.lines)
    return (
        f"action {a.key}: {a.step} by {a.channel} to debtor {a.debtor_id} for {numbers}: "
        f"{a.explanation}"
    )


def _plan_json(result: Plan) -> dict[str, Any]:
    from debsync.decisions import Reason, explain

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
                        "step": line.step or a.step,
                    }
                    for line in a.lines
                ],
                "credits": [
                    {"id": c.invoice_id, "number": c.number, "open": c.principal} for c in a.credits
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
    table = Table(title=f"plan for {day(result.today)}", title_justify="left")
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
        amount = column in ("principal", "interest", "costs")
        # an amount or a date is never broken over two lines; names and numbers fold instead
        table.add_column(
            column, justify="right" if amount else "left", no_wrap=amount or column == "deadline"
        )
    for a in result.actions:
        table.add_row(
            f"{a.instance}/{a.debtor_id}",
            a.step + (" (approval)" if a.requires_approval else ""),
            a.channel,
            _numbers(a),
            money(a.principal, a.currency),
            money(a.interest, a.currency) if a.interest is not None else "-",
            _costs(a),
            day(a.deadline),
        )
    out.print(table)
    counts: dict[str, int] = {}
    for d in result.decisions:
        counts[d.reason.value] = counts.get(d.reason.value, 0) + 1
    out.print("invoices: " + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())))
    warn(result.warnings)


def _numbers(a: PlannedAction) -> str:
    """The invoices, each lower-stage one with its own step; the credit notes offset."""
    named = [
        line.number + (f" ({line.step})" if line.step and line.step != a.step else "")
        for line in a.lines
    ]
    return ", ".join(named + [f"credit {c.number}" for c in a.credits])


def _costs(a: PlannedAction) -> str:
    """The costs a step claims, or those it announces (a veertiendagenbrief names the costs
    that follow if the debtor does not pay in its term)."""
    if a.costs is not None:
        return money(a.costs, a.currency)
    if a.announced_costs is not None:
        return f"announced {money(a.announced_costs, a.currency)}"
    return "-"
