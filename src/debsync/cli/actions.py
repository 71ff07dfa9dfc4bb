"""Commands that carry out the plan: act, run, approvals, previews, the outbox, letters, calls,
and the debtor's dossier."""

from __future__ import annotations

import asyncio
import getpass
import signal
import threading
from datetime import date
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table

from debsync import inbound
from debsync.cli.books import run_sync
from debsync.cli.common import (
    EXIT_FAILED,
    JSON_VERSION,
    app,
    err,
    fail,
    load,
    open_store_or_exit,
    out,
    parse_date,
    print_json,
)
from debsync.clock import local_date, system_clock
from debsync.config import Config
from debsync.dossier import DossierError, load_dossier
from debsync.outbox import review
from debsync.outbox import table as queue
from debsync.outbox.calls import Outcome, complete, open_calls
from debsync.outbox.context import load_facts
from debsync.outbox.executor import ActReport, Dispatcher, Ending, receipt_rule
from debsync.outbox.table import OutboxError
from debsync.planning import plan_from_store
from debsync.store import Store
from debsync.store.schema import OPEN_STATES, ActionState
from debsync.store.schema import outbox as outbox_table

outbox_app = typer.Typer(help="Review the outbox: actions in doubt, dead or waiting.")
letters_app = typer.Typer(help="Printed letters waiting to be posted.")
calls_app = typer.Typer(help="Call tasks: who to phone today, and what came of it.")
app.add_typer(outbox_app, name="outbox")
app.add_typer(letters_app, name="letters")
app.add_typer(calls_app, name="calls")

ActionId = Annotated[str, typer.Argument(metavar="ACTION_ID", help="The action id (or 6+ chars).")]
AuthorOption = Annotated[
    str | None, typer.Option("--by", help="Who decided [default: the current user].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _author(author: str | None) -> str:
    return author or getpass.getuser()


def _short(key: str) -> str:
    return key[:12]


# -- act and run -------------------------------------------------------------------------


@app.command()
def act(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be queued and sent; change nothing.")
    ] = False,
) -> None:
    """Plan today's steps, queue them, and send every action that is due."""
    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        if dry_run:
            _dry_run(config, store)
            return
        report = asyncio.run(Dispatcher(config, store, plugins, clock=system_clock).act())
    finally:
        store.dispose()
    _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _dry_run(config: Config, store: Store) -> None:
    now = system_clock()
    result = plan_from_store(config, store, now)
    keys = [a.key for a in result.actions]
    with store.engine.connect() as conn:
        existing = set(
            conn.execute(
                sa.select(outbox_table.c.key).where(outbox_table.c.key.in_(keys))
            ).scalars()
        )
        due = conn.execute(
            sa.select(sa.func.count()).where(queue.claimable(now, list(config.routes())))
        ).scalar_one()
    table = Table(title="would queue", title_justify="left")
    for column in ("action", "debtor", "step", "channel", "invoices", "approval"):
        table.add_column(column)
    for a in result.actions:
        if a.key in existing:
            continue
        table.add_row(
            _short(a.key),
            f"{a.instance}/{a.debtor_id}",
            a.step,
            a.channel,
            ", ".join(line.number for line in a.lines),
            "yes" if a.requires_approval else "",
        )
    out.print(table)
    out.print(f"already queued: {len(existing)}; due to send now (before queueing): {due}")
    unrouted = sorted({a.channel for a in result.actions} - {c for _, c in config.routes()})
    for channel in unrouted:
        err.print(
            f"[yellow]warning:[/] no [actions] instance carries channel {channel!r}; "
            "those actions wait in the outbox",
            highlight=False,
        )


def _print_report(report: ActReport) -> None:
    outcomes = ", ".join(f"{n} {state}" for state, n in sorted(report.outcomes.items()))
    out.print(
        f"{report.today}: {report.planned} action(s) planned, {report.enqueued} newly queued"
        + (f", {report.revived} revived" if report.revived else "")
        + (f"; {outcomes}" if outcomes else "; nothing was due to send")
    )
    for name, error in report.unavailable.items():
        err.print(f"[red]action {name} unavailable:[/] {escape(error)}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit.")] = False,
    interval: Annotated[
        int, typer.Option("--interval", min=1, help="Minutes between cycles.")
    ] = 15,
) -> None:
    """Sync every connector, plan, and act; with --once one cycle, else until stopped."""
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    failed = False
    while True:
        plugins, config = load(ctx)
        store = open_store_or_exit(config)
        try:
            synced = run_sync(config, store, list(config.connectors), plugins)
            dispatcher = Dispatcher(config, store, plugins, clock=system_clock)
            report = asyncio.run(dispatcher.act())
            heard = asyncio.run(inbound.poll(store, _actions(config, dispatcher)))
        finally:
            store.dispose()
        _print_report(report)
        if heard.new:
            out.print(f"{heard.new} status report(s) from providers filed in the dossiers")
        failed = not (report.ok and all(r.ok for r in synced))
        if once or stop.wait(interval * 60):
            break
    if failed and once:
        raise typer.Exit(EXIT_FAILED)


def _actions(config: Config, dispatcher: Dispatcher) -> dict[str, Any]:
    return {name: dispatcher.action(configured) for name, configured in config.actions.items()}


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
) -> None:
    """Receive providers' status callbacks (SMS delivery reports, agency case events) at
    POST /inbound/<action instance>, and answer GET /healthz."""
    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    dispatcher = Dispatcher(config, store, plugins, clock=system_clock)
    base = public_url or f"http://{host}:{port}"
    server = inbound.InboundServer((host, port), store, _actions(config, dispatcher), base)
    out.print(f"listening on {host}:{port}; providers call {base}/inbound/<action instance>")
    for name in config.actions:
        out.print(f"  {base}/inbound/{name}", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.dispose()


# -- approvals and previews ----------------------------------------------------------------


@app.command()
def approve(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """Approve an action that waits for approval (a handoff, say); it is sent by `act`."""
    _, config = load(ctx)
    row = _decide(config, lambda s: review.approve(s, action_id, _author(author), system_clock()))
    out.print(f"action {_short(row.key)} ({row.step} by {row.channel}) approved")


@app.command()
def reject(
    ctx: typer.Context,
    action_id: ActionId,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the dossier.")],
    author: AuthorOption = None,
) -> None:
    """Reject an action that waits for approval; its invoices are not planned for that step
    again until the action is approved after all."""
    _, config = load(ctx)
    row = _decide(
        config, lambda s: review.reject(s, action_id, _author(author), reason, system_clock())
    )
    out.print(f"action {_short(row.key)} ({row.step} by {row.channel}) rejected")


def _decide(config: Config, decision: Any) -> Any:
    store = open_store_or_exit(config)
    try:
        return decision(store)
    except OutboxError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()


@app.command()
def preview(ctx: typer.Context, action_id: ActionId) -> None:
    """Show the message an action sends (or sent), rendered with today's figures."""
    plugins, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        row = queue.find(store, action_id)
        configured = config.action_for(row.instance, row.channel)
        if configured is None:
            fail(f"no [actions] instance carries channel {row.channel!r}", EXIT_FAILED)
        dispatcher = Dispatcher(config, store, plugins, clock=system_clock)
        action = dispatcher.action(configured)
        out.print(
            f"action {row.key}: {row.step} by {row.channel} to {row.instance}/{row.debtor_id}, "
            f"{row.state}",
            highlight=False,
        )
        if row.payload is not None and row.state not in OPEN_STATES:
            out.print(f"payload sha256 {row.payload_sha256} (as handed to the channel)")
            out.print(action.preview(row.payload), highlight=False, markup=False)
            return
        with store.engine.connect() as conn:
            facts = load_facts(conn, [row])
        composed = dispatcher.compose(action, row, facts, local_date(system_clock()))
        if isinstance(composed, Ending):
            out.print(f"would not be sent: {composed.state.value}: {composed.reason}")
            return
        if composed.dropped:
            out.print(f"dropped since planned: {', '.join(sorted(composed.dropped))}")
        out.print(action.preview(composed.payload), highlight=False, markup=False)
    except OutboxError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()


# -- the outbox ----------------------------------------------------------------------------


def _rows_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.key,
            "instance": r.instance,
            "debtor": r.debtor_id,
            "step": r.step,
            "channel": r.channel,
            "state": r.state,
            "invoices": r.invoice_ids,
            "attempts": r.attempts,
            "planned_on": r.planned_on.isoformat(),
            "dispatched_on": r.dispatched_on.isoformat() if r.dispatched_on else None,
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
            "provider_id": r.provider_id,
            "error": r.last_error,
        }
        for r in rows
    ]


def _print_rows(title: str, rows: list[Any]) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("id", "debtor", "step", "channel", "state", "attempts", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            _short(r.key),
            f"{r.instance}/{r.debtor_id}",
            r.step,
            r.channel,
            r.state,
            str(r.attempts),
            r.last_error or "",
        )
    out.print(table)


def _list(ctx: typer.Context, states: list[str], title: str, as_json: bool) -> None:
    _, config = load(ctx)
    store = open_store_or_exit(config)
    found = queue.rows(store, states=states)
    store.dispose()
    if as_json:
        print_json({"version": JSON_VERSION, "actions": _rows_json(found)})
    else:
        _print_rows(title, found)


@outbox_app.callback(invoke_without_command=True)
def outbox_list(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only these states (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List outbox actions (all, or those in --state)."""
    if ctx.invoked_subcommand is None:
        _list(ctx, state or [], "outbox", as_json)


@outbox_app.command("review")
def outbox_review(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Actions that need a person: in doubt (did it reach the debtor?) or dead."""
    _list(ctx, [ActionState.IN_DOUBT, ActionState.DEAD], "needs review", as_json)


@outbox_app.command("confirm")
def outbox_confirm(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """An in-doubt action did reach the debtor: record it as sent."""
    _, config = load(ctx)
    rule = receipt_rule(config)
    row = _decide(
        config,
        lambda s: review.confirm(s, action_id, _author(author), system_clock(), rule),
    )
    out.print(f"action {_short(row.key)} recorded as sent")


@outbox_app.command("resend")
def outbox_resend(ctx: typer.Context, action_id: ActionId, author: AuthorOption = None) -> None:
    """Send an in-doubt, dead or refused action again (after checking it did not arrive)."""
    _, config = load(ctx)
    row = _decide(config, lambda s: review.resend(s, action_id, _author(author), system_clock()))
    out.print(f"action {_short(row.key)} will be sent again by the next `debsync act`")


@outbox_app.command("cancel")
def outbox_cancel(
    ctx: typer.Context,
    action_id: ActionId,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the dossier.")],
    author: AuthorOption = None,
) -> None:
    """Cancel an action that has not been sent."""
    _, config = load(ctx)
    row = _decide(
        config, lambda s: review.cancel(s, action_id, _author(author), reason, system_clock())
    )
    out.print(f"action {_short(row.key)} cancelled")


# -- letters -------------------------------------------------------------------------------


@letters_app.callback(invoke_without_command=True)
def letters_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Printed letters waiting to be posted."""
    if ctx.invoked_subcommand is not None:
        return
    _, config = load(ctx)
    store = open_store_or_exit(config)
    found = [
        r
        for r in queue.rows(store, states=[ActionState.SENT])
        if r.channel == "letter" and not r.dispatched_on
    ]
    store.dispose()
    if as_json:
        print_json({"version": JSON_VERSION, "letters": _rows_json(found)})
        return
    table = Table(title="letters to post", title_justify="left")
    for column in ("id", "debtor", "step", "file", "printed"):
        table.add_column(column)
    for r in found:
        table.add_row(
            _short(r.key),
            f"{r.instance}/{r.debtor_id}",
            r.step,
            r.provider_id or "",
            r.updated_at.date().isoformat(),
        )
    out.print(table)


@letters_app.command("posted")
def letters_posted(
    ctx: typer.Context,
    action_id: ActionId,
    on: Annotated[
        str | None, typer.Option("--date", help="Posting date (YYYY-MM-DD) [default: today].")
    ] = None,
    author: AuthorOption = None,
) -> None:
    """Record that a printed letter was posted: the step is taken, and a veertiendagenbrief's
    term counts from this date."""
    _, config = load(ctx)
    posted_on = parse_date(on, "--date") if on else local_date(system_clock())
    rule = receipt_rule(config)
    row = _decide(
        config,
        lambda s: review.mark_posted(
            s, action_id, posted_on, _author(author), system_clock(), rule
        ),
    )
    received = rule(row, posted_on)
    out.print(
        f"letter {_short(row.key)} posted on {posted_on}"
        + (f"; presumed received {received}" if received else "")
    )


# -- calls ---------------------------------------------------------------------------------


@calls_app.callback(invoke_without_command=True)
def calls_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Open call tasks: debtor, phone, open invoices, total and last contacts."""
    if ctx.invoked_subcommand is not None:
        return
    _, config = load(ctx)
    store = open_store_or_exit(config)
    tasks = open_calls(store)
    store.dispose()
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "calls": [
                    {
                        "id": t.key,
                        "instance": t.instance,
                        "debtor": t.debtor_id,
                        "step": t.step,
                        "filed_on": t.filed_on.isoformat(),
                        **t.payload,
                        "last_contacts": [
                            {"date": d, "step": s, "channel": c} for d, s, c in t.last_contacts
                        ],
                    }
                    for t in tasks
                ],
            }
        )
        return
    table = Table(title="calls", title_justify="left")
    for column in ("id", "debtor", "phone", "invoices", "total", "last contacts"):
        table.add_column(column)
    for t in tasks:
        p = t.payload
        table.add_row(
            _short(t.key),
            f"{p.get('debtor_name', '')} ({t.debtor_id})",
            ", ".join(p.get("phones", [])),
            ", ".join(i["number"] for i in p.get("invoices", [])),
            f"{p.get('currency', '')} {p.get('total', '')}",
            "; ".join(f"{d} {s} ({c})" for d, s, c in t.last_contacts),
        )
    out.print(table)


@calls_app.command("done")
def calls_done(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(metavar="TASK", help="The call task id (or 6+ chars).")],
    outcome: Annotated[Outcome, typer.Option("--outcome", help="What came of the call.")],
    promise_date: Annotated[
        str | None, typer.Option("--promise-date", help="Promised payment date (YYYY-MM-DD).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Kept in the dossier.")] = None,
    author: AuthorOption = None,
) -> None:
    """Record a call's outcome; a promise pauses until its date, a dispute until resolved."""
    _, config = load(ctx)
    promised: date | None = parse_date(promise_date, "--promise-date") if promise_date else None
    pauses = _decide(
        config,
        lambda s: complete(
            s,
            task,
            outcome,
            author=_author(author),
            promise_date=promised,
            note=note,
            clock=system_clock,
        ),
    )
    out.print(
        f"call {task} recorded: {outcome.value}"
        + (f"; {len(pauses)} invoice(s) paused" if pauses else "")
    )


# -- dossier -------------------------------------------------------------------------------


@app.command()
def dossier(
    ctx: typer.Context,
    debtor: Annotated[str, typer.Argument(metavar="DEBTOR", help="The debtor's id.")],
    instance: Annotated[
        str | None, typer.Option("--instance", help="Connector instance (if several).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A debtor's full timeline: invoices, syncs, payments, actions, pauses, calls."""
    _, config = load(ctx)
    if instance is None:
        if len(config.connectors) != 1:
            fail("several connector instances are configured; name one with --instance")
        instance = next(iter(config.connectors))
    store = open_store_or_exit(config)
    try:
        found = load_dossier(store, instance, debtor)
    except DossierError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        store.dispose()
    if as_json:
        print_json(
            {
                "version": JSON_VERSION,
                "instance": found.instance,
                "debtor": found.debtor,
                "invoices": found.invoices,
                "actions": found.actions,
                "timeline": [
                    {
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "invoice": e.invoice_id,
                        "summary": e.summary,
                        "data": e.data,
                    }
                    for e in found.entries
                ],
            }
        )
        return
    d = found.debtor
    out.print(f"[bold]{d['name']}[/] ({found.instance}/{d['external_id']}, {d['kind']})")
    table = Table(title="invoices", title_justify="left")
    for column in ("number", "due", "open", "state"):
        table.add_column(column)
    for inv in found.invoices:
        table.add_row(
            inv["number"], inv["due_date"], f"{inv['currency']} {inv['open']}", inv["state"]
        )
    out.print(table)
    timeline = Table(title="timeline", title_justify="left")
    for column in ("when (UTC)", "invoice", "what"):
        timeline.add_column(column)
    for e in found.entries:
        timeline.add_row(e.at.strftime("%Y-%m-%d %H:%M"), e.invoice_id or "", e.summary)
    out.print(timeline)
