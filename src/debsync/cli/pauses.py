"""Commands that pause and resume the ladder: disputes, promises, payment plans, holds."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from debsync.cli.common import (
    JSON_VERSION,
    AuthorOption,
    app,
    day,
    fail,
    instance_or_only,
    load,
    now,
    open_store_or_exit,
    out,
    parse_amount,
    parse_date,
    print_json,
)
from debsync.clock import local_date

if TYPE_CHECKING:
    from debsync.config import Config
    from debsync.facts import PauseScope
    from debsync.store import Store

# -- pauses ------------------------------------------------------------------------------

InvoiceOption = Annotated[
    str | None, typer.Option("--invoice", metavar="NUMBER", help="Pause one invoice.")
]
DebtorOption = Annotated[
    str | None, typer.Option("--debtor", metavar="ID", help="Pause all of a debtor's invoices.")
]
InstanceOption = Annotated[
    str | None,
    typer.Option("--instance", help="Connector instance (needed when ids are ambiguous)."),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; kept in the dossier.")]


def _scope(
    config: Config,
    store: Store,
    invoice: str | None,
    debtor: str | None,
    instance: str | None,
    whole_instance: bool | None,
) -> tuple[str, PauseScope, str]:
    """Resolve --invoice / --debtor / --all (``whole_instance`` None: --all not offered)."""
    from debsync.pauses import PauseError, find_invoice

    chosen = [x for x in (invoice, debtor) if x] + (["all"] if whole_instance else [])
    if len(chosen) != 1:
        extra = ", or --all" if whole_instance is not None else ""
        fail(f"name exactly one of --invoice NUMBER or --debtor ID{extra}")
    if instance is not None and instance not in config.connectors:
        fail(f"no connector instance {instance!r}; configured: {', '.join(config.connectors)}")
    if invoice:
        try:
            inst, ext = find_invoice(store, instance, invoice)
        except PauseError as exc:
            fail(str(exc))
        return inst, "invoice", ext
    instance = instance_or_only(config, instance)
    if debtor:
        return instance, "debtor", debtor
    return instance, "instance", instance


def _record_pause(ctx: typer.Context, **kwargs: Any) -> None:
    from debsync.pauses import PauseError, start_pause

    _, config = load(ctx)
    store = open_store_or_exit(config)
    instance, scope, target = _scope(
        config,
        store,
        kwargs.pop("invoice"),
        kwargs.pop("debtor"),
        kwargs.pop("instance"),
        kwargs.pop("whole_instance", None),
    )
    try:
        pause = start_pause(
            store,
            instance=instance,
            scope=scope,
            target=target,
            author=kwargs.pop("author") or getpass.getuser(),
            clock=now,
            **kwargs,
        )
    except PauseError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    out.print(f"pause {pause.id}: {pause.kind.value} on {scope} {target} ({instance})")


@app.command()
def pause(
    ctx: typer.Context,
    until: Annotated[
        str, typer.Option("--until", help="Last day of the hold (31-12-2026 or 2026-12-31).")
    ],
    reason: ReasonOption,
    invoice: InvoiceOption = None,
    debtor: DebtorOption = None,
    whole: Annotated[bool, typer.Option("--all", help="Hold a whole instance.")] = False,
    instance: InstanceOption = None,
    author: AuthorOption = None,
) -> None:
    """Hold the ladder for an invoice, a debtor or a whole instance until a date."""
    from debsync.facts import PauseKind

    last_day = parse_date(until, "--until")
    if last_day < local_date(now()):
        fail(f"--until {day(last_day)} has passed: a hold ends today or later")
    _record_pause(
        ctx,
        kind=PauseKind.HOLD,
        until=last_day,
        reason=reason,
        invoice=invoice,
        debtor=debtor,
        instance=instance,
        author=author,
        whole_instance=whole,
    )


@app.command()
def dispute(
    ctx: typer.Context,
    reason: ReasonOption,
    invoice: InvoiceOption = None,
    debtor: DebtorOption = None,
    instance: InstanceOption = None,
    author: AuthorOption = None,
) -> None:
    """Record a dispute: the ladder stops until `debsync resume`."""
    from debsync.facts import PauseKind

    _record_pause(
        ctx,
        kind=PauseKind.DISPUTE,
        reason=reason,
        invoice=invoice,
        debtor=debtor,
        instance=instance,
        author=author,
    )


@app.command()
def promise(
    ctx: typer.Context,
    on: Annotated[
        str, typer.Option("--date", help="Promised payment date (31-12-2026 or 2026-12-31).")
    ],
    reason: Annotated[str, typer.Option("--reason")] = "promise to pay",
    invoice: InvoiceOption = None,
    debtor: DebtorOption = None,
    instance: InstanceOption = None,
    author: AuthorOption = None,
) -> None:
    """Record a promise to pay: paused until that date plus grace; a broken one resumes."""
    from debsync.facts import PauseKind

    _record_pause(
        ctx,
        kind=PauseKind.PROMISE,
        until=parse_date(on, "--date"),
        reason=reason,
        invoice=invoice,
        debtor=debtor,
        instance=instance,
        author=author,
    )


@app.command("plan-payments")
def plan_payments(
    ctx: typer.Context,
    instalments: Annotated[
        list[str],
        typer.Option(
            "--instalment",
            metavar="DATE=AMOUNT",
            help="One instalment, e.g. 01-12-2026=150,00 or 2026-12-01=150.00; repeat.",
        ),
    ],
    reason: Annotated[str, typer.Option("--reason")] = "payment plan",
    invoice: InvoiceOption = None,
    debtor: DebtorOption = None,
    instance: InstanceOption = None,
    author: AuthorOption = None,
) -> None:
    """Agree a payment plan: paused while instalments arrive; a missed one resumes."""
    from debsync.facts import Instalment, PauseKind
    from debsync.model import from_minor, to_minor

    parsed = []
    for text in instalments:
        due, sep, amount = text.partition("=")
        if not sep:
            fail(f"--instalment expects DATE=AMOUNT such as 01-12-2026=150,00, got {text!r}")
        value = parse_amount(amount, "--instalment")
        minor = to_minor(value, "EUR")
        if value <= 0 or from_minor(minor, "EUR") != value:
            fail(f"--instalment {text!r}: an instalment is a positive amount in euros and cents")
        parsed.append(Instalment(parse_date(due, "--instalment"), minor))
    _record_pause(
        ctx,
        kind=PauseKind.PAYMENT_PLAN,
        instalments=sorted(parsed),
        reason=reason,
        invoice=invoice,
        debtor=debtor,
        instance=instance,
        author=author,
    )


@app.command()
def resume(
    ctx: typer.Context,
    pause_id: Annotated[str, typer.Argument(metavar="PAUSE_ID")],
    reason: ReasonOption,
    author: AuthorOption = None,
) -> None:
    """End a pause (a dispute resolved, a hold lifted, a plan cancelled)."""
    from debsync.pauses import PauseError, end_pause

    _, config = load(ctx)
    store = open_store_or_exit(config)
    try:
        ended = end_pause(
            store, pause_id, reason=reason, author=author or getpass.getuser(), clock=now
        )
    except PauseError as exc:
        fail(str(exc))
    finally:
        store.dispose()
    out.print(f"pause {ended.id} ended: the ladder resumes for {ended.scope} {ended.target}")


@app.command()
def pauses(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Active pauses."""
    from debsync.pauses import active_pauses

    _, config = load(ctx)
    store = open_store_or_exit(config)
    found = active_pauses(store)
    store.dispose()
    rows = [
        {
            "id": p.id,
            "kind": p.kind.value,
            "instance": p.instance,
            "scope": p.scope,
            "target": p.target,
            "until": p.until.isoformat() if p.until else None,
            "reason": p.reason,
            "author": p.author,
            "since": p.created_at.isoformat(),
        }
        for p in found
    ]
    if as_json:
        print_json({"version": JSON_VERSION, "pauses": rows})
        return
    table = Table(title="active pauses", title_justify="left")
    for column in ("id", "kind", "instance", "scope", "target", "until", "by", "reason"):
        table.add_column(column)
    for p, r in zip(found, rows, strict=True):
        table.add_row(
            r["id"],
            r["kind"],
            r["instance"],
            r["scope"],
            r["target"],
            day(p.until) if p.until else "-",
            r["author"],
            r["reason"],
        )
    out.print(table)
