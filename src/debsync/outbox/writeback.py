"""Write-back: each sent step noted on its invoices in the bookkeeping program.

For connector instances with the ``"notes"`` capability whose settings say ``write_back =
true``, every ``step.sent`` of the last :data:`WINDOW_DAYS` days gets one note per invoice
(:meth:`~debsync.connectors.base.Connector.record_note`, Dutch text naming the step, channel
and date); a handoff step first asks the connector to mark the invoice
(:meth:`~debsync.connectors.base.Connector.record_handoff`). Done is an event ``note.recorded``
with the action's key, so a note is never written twice by debsync; a failure is an event
``note.failed`` with the scrubbed error, and is tried again on a later run. Write-back runs
after sending and never touches the outbox: a failed note cannot fail or repeat a send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from debsync.clock import Clock
from debsync.config import Config
from debsync.connectors.base import Connector
from debsync.errors import scrub
from debsync.formatting import long_date
from debsync.outbox.documents import _invoice_model
from debsync.store import Store
from debsync.store.schema import EventKind, events, invoices
from debsync.sync import build_connector

log = logging.getLogger("debsync.outbox")

WINDOW_DAYS = 14
"""How far back a sent step is still written back: long enough to outlast an outage of the
bookkeeping program, short enough that turning ``write_back`` on does not note years."""
MAX_PER_RUN = 100
"""Notes one run writes per instance at most; the rest follow on the next run (Moneybird
allows 150 calls per 5 minutes)."""

CHANNELS = {"email": "e-mail", "sms": "sms", "letter": "brief", "call": "telefoon"}
"""The channel as the note names it."""


def note_text(step: str, role: str | None, channel: str, sent_on: date) -> str:
    """The note, in Dutch (the bookkeeper reads it): what was sent, how and when."""
    how = CHANNELS.get(channel, channel)
    when = long_date(sent_on)
    if role == "handoff":
        return f'Overgedragen aan incasso via debsync: stap "{step}" per {how} op {when}.'
    return f'Herinnering verstuurd via debsync: stap "{step}" per {how} op {when}.'


def enabled(config: Config) -> list[str]:
    """The connector instances that write back."""
    return [
        name
        for name, configured in config.connectors.items()
        if "notes" in configured.cls.capabilities
        and getattr(configured.settings, "write_back", False) is True
    ]


@dataclass
class WriteBackReport:
    recorded: int = 0
    failed: int = 0


class WriteBack:
    """Writes sent steps back for one configuration and store, each connector built once."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._connectors: dict[str, Connector[Any]] = {}

    def pending(self, instance: str, now: datetime) -> list[Any]:
        """``step.sent`` events of the window without their ``note.recorded``, oldest first."""
        since = now - timedelta(days=WINDOW_DAYS)
        recent = sa.select(events).where(events.c.instance == instance, events.c.at >= since)
        with self.store.engine.connect() as conn:
            done = {
                (row.invoice_id, row.data.get("key"))
                for row in conn.execute(recent.where(events.c.kind == EventKind.NOTE_RECORDED))
            }
            sent = conn.execute(
                recent.where(events.c.kind == EventKind.STEP_SENT).order_by(events.c.id)
            ).all()
        return [row for row in sent if (row.invoice_id, row.data.get("key")) not in done]

    async def run(self) -> WriteBackReport:
        """Write back what is pending for every instance that writes back; never raises."""
        report = WriteBackReport()
        for instance in enabled(self.config):
            try:
                await self._instance(instance, report)
            except Exception:  # a bug in a connector must not stop the outbox
                log.exception("write-back %s: unexpected error", instance)
        return report

    async def _instance(self, instance: str, report: WriteBackReport) -> None:
        """One instance's pending notes, stopping at the first failure: the platform that
        refused one would most likely refuse the rest too."""
        connector = self._connectors.get(instance)
        if connector is None:
            configured = self.config.connectors[instance]
            connector = build_connector(configured, self.config, self.clock, self.store)
            self._connectors[instance] = connector
        for sent in self.pending(instance, self.clock())[:MAX_PER_RUN]:
            with self.store.engine.connect() as conn:
                row = conn.execute(
                    sa.select(invoices).where(
                        invoices.c.instance == instance,
                        invoices.c.external_id == sent.invoice_id,
                    )
                ).first()
            if row is None:
                continue
            data = sent.data
            facts = {
                "key": data.get("key"),
                "step": data.get("step"),
                "channel": data.get("channel"),
            }
            text = note_text(
                str(data.get("step")),
                data.get("role"),
                str(data.get("channel")),
                date.fromisoformat(data.get("sent_on") or sent.at.date().isoformat()),
            )
            try:
                invoice = _invoice_model(row)
                if data.get("role") == "handoff":
                    await connector.record_handoff(invoice)
                await connector.record_note(invoice, text)
            except Exception as exc:
                error = scrub(f"{type(exc).__name__}: {exc}")
                log.warning("write-back %s: invoice %s: %s", instance, sent.invoice_id, error)
                self._event(sent, EventKind.NOTE_FAILED, {**facts, "error": error})
                report.failed += 1
                return
            self._event(sent, EventKind.NOTE_RECORDED, facts)
            report.recorded += 1

    def _event(self, sent: Any, kind: EventKind, data: dict[str, Any]) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(
                sa.insert(events).values(
                    at=self.clock(),
                    instance=sent.instance,
                    debtor_id=sent.debtor_id,
                    invoice_id=sent.invoice_id,
                    kind=kind,
                    run_id=None,
                    data=data,
                )
            )
