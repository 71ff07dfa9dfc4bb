"""Privacy over time: the personal data of debtors past retention pseudonymised
(``debsync purge``), and everything debsync holds about one debtor (``debsync export``).

Debsync keeps a working copy for follow-up, not the books: those stay in the bookkeeping
program, which carries the fiscal duty to keep them. Once a debtor has had nothing open for
``[privacy] retention_days``, its name becomes a stable pseudonym and whatever reaches or
describes the person goes (addresses, phones, e-mail, IBAN, KvK and VAT numbers, rendered
messages, free-text notes and reasons, the files written for it). The audit trail keeps its
facts: ids, amounts, dates, steps, states and the SHA-256 of everything that was sent.
See docs/privacy.md for what is kept and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from debsync.clock import local_date
from debsync.config import PrivacySettings
from debsync.errors import DebsyncError, scrub
from debsync.facts import Pause
from debsync.model import from_minor
from debsync.outbox.calls import open_calls
from debsync.pauses import ENDED, STARTED, load_active
from debsync.store import Store
from debsync.store.locks import sync_lock
from debsync.store.schema import (
    OPEN_STATES,
    PURGED_PAYLOAD,
    ActionState,
    EventKind,
    debtors,
    events,
    invoices,
    outbox,
    payments,
    received_events,
    sync_rejects,
)

EXPORT_VERSION = 1
PURGED = "[purged]"
"""What replaces a free text, so a reader sees that there was one."""
"""What replaces a rendered payload; its ``payload_sha256`` stays as proof of content."""

_FREE_TEXT = ("reason", "note", "error")
"""Event keys a person or a provider writes freely: pause and cancel reasons, call notes,
send errors (``pauses``, ``outbox.calls``, ``outbox.review``, ``outbox.executor``)."""
_SYNC_FACTS = ("debtor.", "invoice.", "payment.")
"""Event kinds the sync writes, whose texts are debsync's own fixed ones."""
_RECEIPT_FACTS = frozenset(
    {
        "message_id",
        "path",
        "status",
        "http_status",
        "duplicate",
        "agency_status",
        "segments",
        "encoding",
        "reference",
        "provider",
        "queue",
        "refused",
    }
)
"""Receipt details that are facts about the delivery, not about the person (recipients,
server replies and assignees go)."""


class PrivacyError(DebsyncError):
    """A purge or an export cannot be done as asked (purging disabled, an unknown debtor)."""


@dataclass
class DebtorPurge:
    """What purging one debtor changed (or, in a dry run, would change)."""

    instance: str
    debtor_id: str
    last_activity: datetime
    invoices: int = 0
    events: int = 0
    actions: int = 0
    rejects: int = 0
    files: list[Path] = field(default_factory=list)
    error: str | None = None


@dataclass
class PurgeReport:
    """One ``debsync purge``: the debtors purged, and the instances a sync kept busy."""

    dry_run: bool
    cutoff: datetime
    retention_days: int
    purged: list[DebtorPurge] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.error is None for p in self.purged)


def pseudonym(instance: str, debtor_id: str) -> str:
    """A stable stand-in for the name: the same debtor always gets the same one."""
    digest = hashlib.blake2b(f"{instance}\0{debtor_id}".encode(), digest_size=4).hexdigest()
    return f"debiteur {digest}"


def purge(
    store: Store,
    settings: PrivacySettings,
    *,
    now: datetime,
    base: Path,
    dry_run: bool = False,
) -> PurgeReport:
    """Pseudonymise every debtor past retention, one transaction per debtor, each instance
    under its sync lock (a sync under way skips the instance: the next purge takes it).

    :param base: the directory relative file paths in receipts are relative to (that of
        ``connectors.toml``).
    """
    if not settings.purge:
        raise PrivacyError("purging is disabled: [privacy] purge = false")
    cutoff = now - timedelta(days=settings.retention_days)
    report = PurgeReport(dry_run=dry_run, cutoff=cutoff, retention_days=settings.retention_days)
    with store.engine.connect() as conn:
        instances = sorted(conn.execute(sa.select(debtors.c.instance).distinct()).scalars())
    for instance in instances:
        with sync_lock(store.engine, instance) as held:
            if not held:
                report.busy.append(instance)
                continue
            calling = {t.debtor_id for t in open_calls(store, contacts=0) if t.instance == instance}
            with store.engine.connect() as conn:
                due = _due(conn, instance, cutoff, local_date(now), calling)
            for debtor_id, last_activity in due:
                done = DebtorPurge(instance, debtor_id, last_activity)
                try:
                    with store.engine.begin() as conn:
                        if conn.dialect.name == "sqlite":  # freed bytes zeroed, not left behind
                            conn.exec_driver_sql("PRAGMA secure_delete = ON")
                        _purge_one(conn, done, settings, now, base, apply=not dry_run)
                except OSError as exc:  # a file that cannot be deleted: nothing changed
                    done.error = f"cannot delete a file: {exc.strerror or exc}"
                except sa.exc.DBAPIError as exc:  # e.g. a user that does not own the tables
                    first = "".join(scrub(str(exc.orig or exc)).splitlines()[:1])
                    done.error = f"the store refused: {first}"
                report.purged.append(done)
    if report.purged and not dry_run and store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:  # the old pages in the WAL file go too
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return report


def _due(
    conn: Connection, instance: str, cutoff: datetime, today: date, calling: set[str]
) -> list[Any]:
    """(debtor id, last activity) of the debtors past retention: not purged, no open
    invoice, no action in flight, no call task without an outcome (``calling``), no pause
    in force, last invoice closed before ``cutoff`` (a debtor without invoices: created
    before it)."""
    closed = sa.func.max(invoices.c.closed_at)
    open_count = sa.func.sum(sa.case((invoices.c.state == "open", 1), else_=0))
    per_debtor = {
        r.debtor_id: (r.closed, r.open)
        for r in conn.execute(
            sa.select(invoices.c.debtor_id, closed.label("closed"), open_count.label("open"))
            .where(invoices.c.instance == instance)
            .group_by(invoices.c.debtor_id)
        )
    }
    in_flight = calling | set(
        conn.execute(
            sa.select(outbox.c.debtor_id)
            .distinct()
            .where(
                outbox.c.instance == instance,
                sa.or_(
                    outbox.c.state.in_([str(s) for s in OPEN_STATES]),
                    # accepted but not yet dispatched: a letter waiting to be posted
                    sa.and_(outbox.c.state == ActionState.SENT, outbox.c.dispatched_on.is_(None)),
                ),
            )
        ).scalars()
    )
    paused = _paused(conn, instance, load_active(conn), today)
    due = []
    for debtor_id, created_at in conn.execute(
        sa.select(debtors.c.external_id, debtors.c.created_at)
        .where(debtors.c.instance == instance, debtors.c.purged_at.is_(None))
        .order_by(debtors.c.external_id)
    ):
        last, open_ = per_debtor.get(debtor_id, (None, 0))
        last = last or created_at
        if open_ or debtor_id in in_flight or debtor_id in paused or last > cutoff:
            continue
        due.append((debtor_id, last))
    return due


def _paused(conn: Connection, instance: str, active: Iterable[Pause], today: date) -> set[str]:
    """Debtors with a pause in force: a dispute until it is ended, a promise or hold until
    its date, a payment plan until its last instalment."""
    holding = [
        p
        for p in active
        if p.instance == instance
        and (max((i.due_on for i in p.instalments), default=p.until) or today) >= today
    ]
    found = {p.target for p in holding if p.scope == "debtor"}
    targets = [p.target for p in holding if p.scope == "invoice"]
    if targets:
        found.update(
            conn.execute(
                sa.select(invoices.c.debtor_id).where(
                    invoices.c.instance == instance, invoices.c.external_id.in_(targets)
                )
            ).scalars()
        )
    return found


def _without_free_text(kind: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event's data with its free texts replaced, or None when it has none."""
    if kind.startswith(_SYNC_FACTS):
        return None
    texts = {k: PURGED for k in _FREE_TEXT if isinstance(data.get(k), str) and data[k] != PURGED}
    return {**data, **texts} if texts else None


def _stripped_receipt(receipt: Mapping[str, Any]) -> dict[str, Any]:
    details = receipt.get("details") or {}
    kept = {
        k: v
        for k, v in details.items()
        if k in _RECEIPT_FACTS and isinstance(v, str | int | float | bool)
    }
    return {**receipt, "details": kept}


def _written_file(row: Any, base: Path) -> Path | None:
    """The file an action wrote (the ``.eml`` sink, the print folder), named after its key:
    a path in a receipt names nothing else debsync may delete."""
    text = ((row.receipt or {}).get("details") or {}).get("path")
    if not isinstance(text, str):
        return None
    path = Path(text)
    path = path if path.is_absolute() else base / path
    return path if path.stem == row.key and path.suffix in (".eml", ".pdf") else None


def _rejects_about(debtor_id: str, invoice_ids: list[str]) -> Any:
    """Sync rejects of the debtor's record or of its invoices: their reasons quote values."""
    return sa.or_(
        sa.and_(sync_rejects.c.kind == "debtor", sync_rejects.c.ref == debtor_id),
        sync_rejects.c.invoice_id.in_(invoice_ids),
    )


@contextmanager
def _events_rewritable(conn: Connection) -> Iterator[None]:
    """Lift the trigger that keeps ``events`` append-only (migration 0001: the dossier is
    evidence) for the purge's one rewrite, inside its transaction, and put it back as it was.
    DDL is transactional on both backends: nobody else ever sees the table unguarded (other
    writers wait for the lock), and a failure rolls the lifting back with the rest."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        yield
        conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER events_append_only")
        return
    # pysqlite begins lazily, before DML only: outside a transaction the DROP would commit
    assert getattr(conn.connection.dbapi_connection, "in_transaction", False)
    trigger = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'"
    ).scalar()
    if trigger is not None:
        conn.exec_driver_sql("DROP TRIGGER events_no_update")
    yield
    if trigger is not None:
        conn.exec_driver_sql(trigger)


def _purge_one(
    conn: Connection,
    done: DebtorPurge,
    settings: PrivacySettings,
    now: datetime,
    base: Path,
    *,
    apply: bool,
) -> None:
    """Pseudonymise one debtor inside the caller's transaction; counts into ``done``. Files
    are deleted last, so a file that cannot be deleted rolls the debtor back."""
    instance, debtor_id = done.instance, done.debtor_id
    invoice_ids = list(
        conn.execute(
            sa.select(invoices.c.external_id).where(
                invoices.c.instance == instance, invoices.c.debtor_id == debtor_id
            )
        ).scalars()
    )
    done.invoices = len(invoice_ids)
    about = sa.or_(events.c.debtor_id == debtor_id, events.c.invoice_id.in_(invoice_ids))
    event_changes = [
        {"e_id": r.id, "e_data": new}
        for r in conn.execute(
            sa.select(events.c.id, events.c.kind, events.c.data).where(
                events.c.instance == instance, about
            )
        )
        if (new := _without_free_text(r.kind, r.data)) is not None
    ]
    done.events = len(event_changes)
    action_changes = []
    for r in conn.execute(
        sa.select(outbox).where(outbox.c.instance == instance, outbox.c.debtor_id == debtor_id)
    ):
        written = _written_file(r, base)
        if settings.delete_files and written is not None and written.exists():
            done.files.append(written)
        action_changes.append(
            {
                "o_id": r.id,
                "o_payload": None if r.payload is None else PURGED_PAYLOAD,
                "o_receipt": None if r.receipt is None else _stripped_receipt(r.receipt),
                "o_error": None if r.last_error is None else PURGED,
            }
        )
    done.actions = len(action_changes)
    rejects = sa.and_(_rejects_about(debtor_id, invoice_ids), sync_rejects.c.reason != PURGED)
    done.rejects = int(
        conn.execute(
            sa.select(sa.func.count()).select_from(sync_rejects).where(rejects)
        ).scalar_one()
    )
    if not apply:
        return
    conn.execute(
        sa.update(debtors)
        .where(debtors.c.instance == instance, debtors.c.external_id == debtor_id)
        .values(
            name=pseudonym(instance, debtor_id),
            emails=[],
            phones=[],
            address=None,
            kvk=None,
            vat=None,
            iban=None,
            # hashes of the personal data go too; the engine forgets a purged debtor's
            fingerprint=bytes(16),
            raw_fingerprint=None,
            purged_at=now,
            updated_at=now,
        )
    )
    if invoice_ids:  # a payment link is personal: it opens the debtor's own payment page
        conn.execute(
            sa.update(invoices)
            .where(invoices.c.instance == instance, invoices.c.external_id.in_(invoice_ids))
            .values(payment_url=None)
        )
    if event_changes:
        with _events_rewritable(conn):
            conn.execute(
                sa.update(events)
                .where(events.c.id == sa.bindparam("e_id"))
                .values(data=sa.bindparam("e_data", type_=events.c.data.type)),
                event_changes,
            )
    if action_changes:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == sa.bindparam("o_id"))
            .values(
                payload=sa.bindparam("o_payload", type_=outbox.c.payload.type),
                receipt=sa.bindparam("o_receipt", type_=outbox.c.receipt.type),
                last_error=sa.bindparam("o_error"),
            ),
            action_changes,
        )
    if done.rejects:
        conn.execute(sa.update(sync_rejects).where(rejects).values(reason=PURGED))
    conn.execute(
        sa.insert(events).values(
            at=now,
            instance=instance,
            debtor_id=debtor_id,
            invoice_id=None,
            kind=EventKind.DEBTOR_PURGED,
            data={
                "invoices": done.invoices,
                "events": done.events,
                "actions": done.actions,
                "rejects": done.rejects,
                "files": len(done.files),
                "retention_days": settings.retention_days,
            },
        )
    )
    for path in done.files:
        path.unlink(missing_ok=True)


# -- export ---------------------------------------------------------------------------------


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as JSON values: dates ISO, minor units as decimal strings beside their
    currency; fingerprints (hashes of the record, not data) are left out."""
    found: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, bytes):
            continue
        if key.endswith("_minor") and isinstance(value, int) and "currency" in row:
            found[key.removesuffix("_minor")] = str(from_minor(value, row["currency"]))
        elif isinstance(value, date):  # datetimes too
            found[key] = value.isoformat()
        else:
            found[key] = value
    return found


def export_debtor(store: Store, instance: str, debtor_id: str, now: datetime) -> dict[str, Any]:
    """Everything debsync holds about one debtor (a data subject's request), as JSON values:
    the record, invoices, payments, the dossier's events, every action with its payload and
    receipt, pauses (promises, payment plans, disputes, holds), sync rejects and provider
    reports."""
    with store.engine.connect() as conn:
        debtor = (
            conn.execute(
                sa.select(debtors).where(
                    debtors.c.instance == instance, debtors.c.external_id == debtor_id
                )
            )
            .mappings()
            .first()
        )
        if debtor is None:
            raise PrivacyError(f"no debtor {debtor_id!r} in instance {instance!r}")

        def rows(query: Any) -> list[dict[str, Any]]:
            return [_plain(r) for r in conn.execute(query).mappings()]

        invoice_rows = rows(
            sa.select(invoices)
            .where(invoices.c.instance == instance, invoices.c.debtor_id == debtor_id)
            .order_by(invoices.c.issue_date, invoices.c.external_id)
        )
        ids = [i["external_id"] for i in invoice_rows]
        event_rows = rows(
            sa.select(events)
            .where(
                events.c.instance == instance,
                sa.or_(events.c.debtor_id == debtor_id, events.c.invoice_id.in_(ids)),
            )
            .order_by(events.c.id)
        )
        actions = rows(
            sa.select(outbox)
            .where(outbox.c.instance == instance, outbox.c.debtor_id == debtor_id)
            .order_by(outbox.c.id)
        )
        refers = _rejects_about(debtor_id, ids)
        found = {
            "payments": rows(
                sa.select(payments)
                .where(payments.c.instance == instance, payments.c.invoice_id.in_(ids))
                .order_by(payments.c.id)
            ),
            "rejects": rows(sa.select(sync_rejects).where(refers).order_by(sync_rejects.c.id)),
            "reports": rows(
                sa.select(received_events)
                .where(received_events.c.outbox_key.in_([a["key"] for a in actions]))
                .order_by(received_events.c.id)
            ),
        }
    ended = {e["data"].get("id") for e in event_rows if e["kind"] == ENDED}
    pauses = [
        {**e["data"], "started_at": e["at"], "ended": e["data"].get("id") in ended}
        for e in event_rows
        if e["kind"] == STARTED
    ]
    return {
        "version": EXPORT_VERSION,
        "exported_at": now.isoformat(),
        "instance": instance,
        "debtor": _plain(debtor),
        "invoices": invoice_rows,
        "actions": actions,
        "pauses": pauses,
        "events": event_rows,
        **found,
    }
