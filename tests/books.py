"""A store with one synced administration and a dispatcher over it, for outbox tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from debsync import outbox
from debsync.config import (
    ActionInstance,
    Config,
    ConnectorInstance,
    CreditorSettings,
    OutboxSettings,
)
from debsync.model import DebtorKind, Invoice
from debsync.outbox.executor import ActReport, Dispatcher
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.store.schema import events
from debsync.sync import SyncEngine

from conftest import FrozenClock
from fakes import FakeConnector, FakeSettings, RecordingAction, RecordingSettings, debtor, snapshot

DUE = date(2026, 10, 1)
START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)  # the day after the due date

POLICY = Policy(
    name="default",
    steps=(
        Step(name="reminder", channels=("email",), days_after_due=1),
        Step(name="aanmaning", channels=("email",), days_after_previous=7, claim_interest=True),
        Step(
            name="handoff",
            channels=("email",),
            days_after_previous=7,
            requires_approval=True,
            role="handoff",
            kinds=(DebtorKind.BUSINESS,),
        ),
    ),
)


class Book:
    """A store with one synced administration and a dispatcher over it."""

    def __init__(self, store: Store, tmp_path: Path, action: type[RecordingAction]) -> None:
        self.store = store
        self.clock = FrozenClock(START)
        self.config = Config(
            path=tmp_path / "connectors.toml",
            store_url="",
            creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
            policies={"default": POLICY},
            connectors={"books": ConnectorInstance("books", "fake", FakeConnector, FakeSettings())},
            actions={"mail": ActionInstance("mail", action.type_name, action, RecordingSettings())},
            outbox=OutboxSettings(lease_seconds=60, retry_initial_seconds=60, max_attempts=3),
        )

    def sync(self, *invoices: Invoice) -> None:
        debtors = (
            debtor(
                "D1", address={"lines": ["Kerkstraat 1"], "postcode": "1234 AB", "city": "Utrecht"}
            ),
            debtor("D2"),
        )
        connector = FakeConnector(snapshot(*invoices, debtors=debtors))
        result = asyncio.run(
            SyncEngine(self.store, clock=self.clock).run(
                self.config.connectors["books"], connector, allow_mass_close=True
            )
        )
        assert result.ok, result.error

    plugins: Plugins = Plugins(entry_points=False)

    def dispatcher(self, owner: str = "worker-1") -> Dispatcher:
        return Dispatcher(self.config, self.store, self.plugins, clock=self.clock, owner=owner)

    def act(self) -> ActReport:
        return asyncio.run(self.dispatcher().act())

    def rows(self) -> list[Any]:
        return outbox.rows(self.store)

    def events(self, kind: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(
                conn.execute(sa.select(events).where(events.c.kind == kind).order_by(events.c.id))
            )

    def advance(self, days: int) -> None:
        self.clock.now += timedelta(days=days)
        self.sync(*self.current)

    current: tuple[Invoice, ...] = ()

    def book(self, *invoices: Invoice) -> None:
        self.current = invoices
        self.sync(*invoices)
