"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/`` create exactly these;
``tests/test_store.py`` checks that the two never drift apart.

The ``StrEnum`` classes are the vocabulary of the ``kind``, ``state`` and ``cancel_code``
columns, so every layer that reads the tables speaks it without importing the layers above.

Records are keyed by (connector instance, external id). Money is kept as exact integer minor
units beside its ISO currency, so no float ever touches an amount, in SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# -- the values some columns hold -------------------------------------------------------------


class EventKind(StrEnum):
    """Every ``events.kind`` debsync writes itself, in one place. Outbox transitions add
    ``action.<state>`` and provider reports ``<channel>.<status>``; those are open sets."""

    DEBTOR_CREATED = "debtor.created"
    DEBTOR_CHANGED = "debtor.changed"
    INVOICE_OPENED = "invoice.opened"
    INVOICE_CHANGED = "invoice.changed"
    INVOICE_CLOSED = "invoice.closed"
    INVOICE_REOPENED = "invoice.reopened"
    INVOICE_PARTIALLY_PAID = "invoice.partially_paid"
    PAYMENT_RECORDED = "payment.recorded"
    STEP_SENT = "step.sent"
    """A step reached the debtor for one invoice. Its data: ``{"step", "role", "sent_on",
    "received_on", "stated_costs_minor", "key"}`` (dates ISO)."""
    STEP_RECORDED_ELSEWHERE = "step.recorded_elsewhere"
    """A step the source says it took before debsync (its reminder level and date), once per
    invoice, step and date. Its data: ``{"step", "sent_on", "source"}``; ``step`` is a level
    of :mod:`debsync.prior_steps` (reminder, aanmaning, veertiendagenbrief)."""
    ACTION_REVIVED = "action.revived"
    ACTION_INVOICE_DROPPED = "action.invoice_dropped"
    LETTER_POSTED = "letter.posted"
    CALL_COMPLETED = "call.completed"
    PAUSE_STARTED = "pause.started"
    PAUSE_ENDED = "pause.ended"
    NOTE_RECORDED = "note.recorded"
    """A sent step written back to the bookkeeping program for one invoice (a note; on
    handoff perhaps a mark). Its data: ``{"key", "step", "channel"}``; once per key and invoice."""
    NOTE_FAILED = "note.failed"
    """Writing a step back failed; tried again on a later run. Its data adds ``error``."""
    DEBTOR_PURGED = "debtor.purged"
    """Personal data pseudonymised past retention (``debsync purge``). Its data: counts
    only (``{"invoices", "events", "actions", "files", "retention_days"}``), never a name."""


class ActionState(StrEnum):
    """The states of an outbox row; the transitions are ``debsync.outbox``'s."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    IN_DOUBT = "in_doubt"


OPEN_STATES = (
    ActionState.PLANNED,
    ActionState.AWAITING_APPROVAL,
    ActionState.APPROVED,
    ActionState.SENDING,
    ActionState.FAILED,
    ActionState.IN_DOUBT,
)


PURGED_PAYLOAD: dict[str, Any] = {"purged": True}
"""What ``outbox.payload`` holds once ``debsync purge`` removed the message (its hash stays)."""


class CancelCode(StrEnum):
    """Why an action was cancelled. The first four clear up by themselves (a reopened
    invoice, an ended pause): planning the same action again revives it. The others were a
    person's decision or a refused precondition, and keep the invoices from being planned
    again for that step until a person retries or approves."""

    PAID = "paid"
    PAUSED = "paused"
    BELOW_THRESHOLD = "below_threshold"
    VETOED = "vetoed"
    REJECTED = "rejected"
    REFUSED = "refused"
    MANUAL = "manual"


REVIVABLE = frozenset(
    {CancelCode.PAID, CancelCode.PAUSED, CancelCode.BELOW_THRESHOLD, CancelCode.VETOED}
)
BLOCKING_CANCELS = tuple(code.value for code in CancelCode if code not in REVIVABLE)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

connector_state = Table(
    "connector_state",
    metadata,
    Column("instance", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("cursor", JSON, nullable=True),
    Column("snapshot_started_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_run_id", Id, nullable=True),
    # The daemon's schedule, shared by all workers: when this instance is next due, how
    # many syncs in a row failed (its backoff), and when its plan was last queued.
    Column("next_sync_at", UTCDateTime, nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("planned_at", UTCDateTime, nullable=True),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("instance", String(64), nullable=False, index=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # running | ok | failed | interrupted
    Column("snapshot", Boolean, nullable=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("counts", JSON, nullable=False),
    Column("error", Text, nullable=True),
)

sync_rejects = Table(
    "sync_rejects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("sync_runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("invoice_id", String(255), nullable=True),
    Column("dropped", Boolean, nullable=False),
    Index(None, "run_id"),
)

debtors = Table(
    "debtors",
    metadata,
    Column("instance", String(64), primary_key=True),
    Column("external_id", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("emails", JSON, nullable=False),
    Column("phones", JSON, nullable=False),
    Column("language", String(2), nullable=False),
    Column("address", JSON, nullable=True),
    Column("kvk", String(16), nullable=True),
    Column("vat", String(32), nullable=True),
    Column("iban", String(34), nullable=True),
    Column("fingerprint", LargeBinary(16), nullable=False),
    Column("raw_fingerprint", LargeBinary(16), nullable=True),  # connectors.base.Previous
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("purged_at", UTCDateTime, nullable=True),  # personal data pseudonymised (privacy)
)

invoices = Table(
    "invoices",
    metadata,
    Column("instance", String(64), primary_key=True),
    Column("external_id", String(255), primary_key=True),
    Column("number", String(255), nullable=False),
    Column("debtor_id", String(255), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("open_minor", BigInteger, nullable=False),
    Column("payment_reference", String(255), nullable=True),
    Column("payment_url", Text, nullable=True),
    Column("direct_debit", Boolean, nullable=False),  # a collection is under way
    # The collection failed (a storno): dunned as usual, and the message says so.
    Column("direct_debit_failed", Boolean, nullable=False, server_default=false()),
    # The bookkeeping program's own reminder workflow handles it (Moneybird native_reminders).
    Column("reminded_by_source", Boolean, nullable=False, server_default=false()),
    Column("has_document", Boolean, nullable=False),
    Column("state", String(8), nullable=False),  # open | closed
    Column("closed_at", UTCDateTime, nullable=True),
    Column("fingerprint", LargeBinary(16), nullable=False),
    Column("raw_fingerprint", LargeBinary(16), nullable=True),  # connectors.base.Previous
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "instance", "state", "due_date"),
    Index(None, "instance", "debtor_id"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("instance", String(64), nullable=False),
    # NULL for payments debsync derived from a lower open amount or a closed invoice.
    Column("external_id", String(255), nullable=True),
    Column("invoice_id", String(255), nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),  # connector | derived
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("instance", "external_id"),
    Index(None, "instance", "invoice_id"),
)

PAUSE_EVENTS = text(f"kind IN ('{EventKind.PAUSE_STARTED.value}', '{EventKind.PAUSE_ENDED.value}')")
"""The pause events, as the partial index and its readers both spell it (SQLite uses a partial
index only for a query whose own condition is the same text)."""

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("instance", String(64), nullable=False),
    Column("debtor_id", String(255), nullable=True),
    Column("invoice_id", String(255), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("run_id", Id, nullable=True),
    Column("data", JSON, nullable=False),
    Index(None, "instance", "debtor_id"),
    Index(None, "instance", "invoice_id"),
    # The pauses are read from their events on every plan and send; a partial index holds
    # only those few rows, so no other event pays for it.
    Index(
        "ix_events_pauses",
        "id",
        sqlite_where=PAUSE_EVENTS,
        postgresql_where=PAUSE_EVENTS,
    ),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # What the action is about, hashed (decisions.idempotency_key): planning twice enqueues once.
    Column("key", String(64), nullable=False, unique=True),
    Column("instance", String(64), nullable=False),
    Column("debtor_id", String(255), nullable=False),
    Column("step", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("role", String(16), nullable=True),
    Column("legal_copy", Boolean, nullable=False),
    Column("requires_approval", Boolean, nullable=False),
    # planned | awaiting_approval | approved | sending | sent | failed | dead | cancelled
    # | in_doubt (ActionState above)
    Column("state", String(24), nullable=False),
    Column("invoice_ids", JSON, nullable=False),
    Column("plan", JSON, nullable=False),  # the scheduler's figures when it was planned
    Column("planned_on", Date, nullable=False),
    Column("action", String(64), nullable=True),  # [actions] instance of the last attempt
    Column("idempotent", Boolean, nullable=True),  # that action's declaration
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("payload", JSON, nullable=True),  # exactly what was handed to the channel
    Column("payload_sha256", String(64), nullable=True),
    Column("receipt", JSON, nullable=True),
    Column("provider_id", String(255), nullable=True),
    Column("dispatched_on", Date, nullable=True),  # the day it left (a letter: posted)
    Column("cancel_code", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "state", "next_attempt_at"),
    Index(None, "state", "id"),  # each state's rows oldest first, for claims
    Index(None, "instance", "debtor_id"),
)

received_events = Table(
    "received_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Status reports arrive at least once (agency webhooks, SMS delivery reports): the unique
    # (source, event id) makes recording one twice a no-op.
    Column("source", String(64), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("outbox_key", String(64), nullable=True),
    Column("status", String(64), nullable=True),
    Column("final", Boolean, nullable=False),  # nothing more will come: polling stops
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "event_id"),
    Index(None, "outbox_key"),
)

tokens = Table(
    "tokens",
    metadata,
    # OAuth tokens of connectors whose refresh tokens rotate, encrypted with Fernet; the
    # generation is bumped on every write so a writer can tell it lost a race.
    Column("instance", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    # Every running daemon process, on any machine; a worker whose heartbeat is older than its
    # lease is dead, and what it held (its advisory locks and outbox leases) is free again.
    Column("id", String(128), primary_key=True),  # host:pid:random
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("holding", JSON, nullable=False),  # {"syncing": [...], "sending": n}
    Column("stopping", Boolean, nullable=False),
)

users = Table(
    "users",
    metadata,
    # Web console users: an argon2 hash, never the password; failed logins throttle the name.
    Column("name", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | approver | admin
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # The cookie holds a random token; the store keeps only its SHA-256, so a copy of the
    # database logs nobody in.
    Column("token_sha256", String(64), primary_key=True),
    Column("user", String(64), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index(None, "user"),
)
