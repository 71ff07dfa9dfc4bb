"""Invoice PDFs for actions that attach them, asked of the connector that synced the invoice:
actions never talk to connectors, so the outbox fetches on their behalf."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from debsync.clock import Clock
from debsync.config import Config
from debsync.connectors.base import Connector
from debsync.model import Invoice, Money, from_minor
from debsync.store import Store
from debsync.store.schema import invoices
from debsync.sync import build_connector

log = logging.getLogger("debsync.outbox")


class Documents:
    """The invoice PDFs of one configuration's connectors, each connector built once."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._connectors: dict[str, Connector[Any]] = {}

    async def fetch(self, instance: str, invoice_id: str) -> bytes | None:
        """The PDF of one invoice, or ``None`` when its connector has none to give."""
        configured = self.config.connectors.get(instance)
        if configured is None or "documents" not in configured.cls.capabilities:
            return None
        connector = self._connectors.get(instance)
        if connector is None:
            connector = self._connectors[instance] = build_connector(
                configured, self.config, self.clock, self.store
            )
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(invoices).where(
                    invoices.c.instance == instance, invoices.c.external_id == invoice_id
                )
            ).first()
        if row is None or not row.has_document:
            return None
        try:
            return await connector.fetch_document(_invoice_model(row))
        except Exception:  # a missing attachment must not stop the message
            log.warning("invoice %s: the connector could not supply its document", invoice_id)
            return None


def _invoice_model(row: Row[Any]) -> Invoice:
    return Invoice(
        external_id=row.external_id,
        number=row.number,
        debtor_id=row.debtor_id,
        issue_date=row.issue_date,
        due_date=row.due_date,
        total=Money(amount=from_minor(row.total_minor, row.currency), currency=row.currency),
        open_amount=Money(amount=from_minor(row.open_minor, row.currency), currency=row.currency),
        payment_reference=row.payment_reference,
        payment_url=row.payment_url,
        direct_debit=row.direct_debit,
        direct_debit_failed=row.direct_debit_failed,
        reminded_by_source=row.reminded_by_source,
        has_document=row.has_document,
    )
