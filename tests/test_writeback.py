"""Write-back through the outbox, against the Moneybird fake: a sent step becomes one note per
invoice, written once, a failed note is retried on a later run without repeating the send, a
handoff marks the invoice dubious when configured, and nothing is written unless enabled."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import respx
import sqlalchemy as sa

from debsync.config import ActionInstance, Config, ConnectorInstance, CreditorSettings
from debsync.connectors.base import ConnectorContext
from debsync.connectors.moneybird import MoneybirdConnector, MoneybirdSettings
from debsync.model import DebtorKind
from debsync.outbox.executor import Dispatcher
from debsync.outbox.writeback import note_text
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.store import Store
from debsync.store.schema import EventKind, events
from debsync.sync import SyncEngine

from books import POLICY, START
from conftest import FrozenClock
from fake_moneybird import FakeMoneybird
from fakes import RecordingAction, RecordingSettings

API = "https://moneybird.test/api/v2"

HANDOFF = Policy(
    name="default",
    steps=(
        Step(
            name="incasso",
            channels=("email",),
            days_after_due=1,
            role="handoff",
            kinds=(DebtorKind.BUSINESS,),
        ),
    ),
)


class Office:
    """A Moneybird administration synced into a store, and an outbox that e-mails."""

    def __init__(self, fake: FakeMoneybird, store: Store, tmp_path: Path, **extra: Any) -> None:
        self.fake, self.store = fake, store
        self.clock = FrozenClock(START)
        policy = extra.pop("policy", POLICY)
        settings = MoneybirdSettings.model_validate(
            {
                "administration_id": fake.administration_id,
                "token": fake.token,
                "base_url": API,
                **extra,
            }
        )
        self.config = Config(
            path=tmp_path / "connectors.toml",
            store_url="",
            creditor=CreditorSettings(name="Voorbeeld B.V.", iban="NL91ABNA0417164300"),
            policies={"default": policy},
            connectors={"mb": ConnectorInstance("mb", "moneybird", MoneybirdConnector, settings)},
            actions={
                "mail": ActionInstance(
                    "mail", RecordingAction.type_name, RecordingAction, RecordingSettings()
                )
            },
        )
        owner = fake.add_contact(company_name="Bakkerij De Gouden Korrel B.V.", email="i@k.nl")
        for number in ("2026-0001", "2026-0002"):
            fake.add_invoice(
                owner["id"],
                number,
                total="121.00",
                invoice_date="2026-09-01",
                due_date="2026-10-01",
            )
        instance = self.config.connectors["mb"]
        made = MoneybirdConnector(
            "mb", settings, ConnectorContext("mb", tmp_path, clock=self.clock)
        )
        result = asyncio.run(SyncEngine(store, clock=self.clock).run(instance, made))
        assert result.ok, result.error
        RecordingAction.sent = []

    def act(self) -> None:
        plugins = Plugins(entry_points=False)
        dispatcher = Dispatcher(self.config, self.store, plugins, clock=self.clock)
        asyncio.run(dispatcher.act())

    def notes(self) -> dict[str, list[str]]:
        return {
            i["invoice_id"]: [n["note"] for n in i["notes"]] for i in self.fake.invoices.values()
        }

    def events(self, kind: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(events).where(events.c.kind == kind)).all())


@pytest.fixture
def fake(respx_mock: respx.MockRouter) -> FakeMoneybird:
    fake = FakeMoneybird()
    respx_mock.route(host="moneybird.test").mock(side_effect=fake)
    return fake


def test_a_sent_step_is_noted_once_on_each_of_its_invoices(
    fake: FakeMoneybird, store: Store, tmp_path: Path
) -> None:
    office = Office(fake, store, tmp_path, write_back=True)
    office.act()
    assert len(RecordingAction.sent) == 1  # one message for both invoices of the debtor
    expected = 'Herinnering verstuurd via debsync: stap "reminder" per e-mail op 2 oktober 2026.'
    assert office.notes() == {"2026-0001": [expected], "2026-0002": [expected]}
    office.act()
    office.clock.now = START.replace(hour=15)
    office.act()
    assert office.notes() == {"2026-0001": [expected], "2026-0002": [expected]}
    recorded = office.events(EventKind.NOTE_RECORDED)
    assert len(recorded) == 2
    assert {e.data["key"] for e in recorded} == {RecordingAction.sent[0][0]}


def test_a_failed_note_is_retried_later_and_the_send_is_not_repeated(
    fake: FakeMoneybird, store: Store, tmp_path: Path
) -> None:
    office = Office(fake, store, tmp_path, write_back=True)
    fake.always = 503
    office.act()
    assert len(RecordingAction.sent) == 1
    assert office.notes() == {"2026-0001": [], "2026-0002": []}
    (failed,) = office.events(EventKind.NOTE_FAILED)  # the first failure stops the run
    assert "503" in failed.data["error"] and "mb-test-token" not in failed.data["error"]
    fake.always = None
    office.act()
    assert len(RecordingAction.sent) == 1
    assert [len(n) for n in office.notes().values()] == [1, 1]
    assert len(office.events(EventKind.NOTE_RECORDED)) == 2


def test_a_handoff_marks_the_invoice_dubious_when_configured(
    fake: FakeMoneybird, sqlite_store: Store, tmp_path: Path
) -> None:
    office = Office(
        fake, sqlite_store, tmp_path, write_back=True, mark_dubious_on_handoff=True, policy=HANDOFF
    )
    office.act()
    assert len(RecordingAction.sent) == 1
    marked = {i["invoice_id"]: i.get("marked_dubious_on") for i in fake.invoices.values()}
    assert marked == {"2026-0001": "2026-10-02", "2026-0002": "2026-10-02"}
    assert office.notes()["2026-0001"] == [
        'Overgedragen aan incasso via debsync: stap "incasso" per e-mail op 2 oktober 2026.'
    ]


def test_nothing_is_written_back_unless_enabled(
    fake: FakeMoneybird, sqlite_store: Store, tmp_path: Path
) -> None:
    office = Office(fake, sqlite_store, tmp_path)
    fake.calls.clear()
    office.act()
    assert len(RecordingAction.sent) == 1
    assert fake.calls == [] and office.notes() == {"2026-0001": [], "2026-0002": []}


def test_the_note_names_step_channel_and_date_in_dutch() -> None:
    assert note_text("aanmaning", None, "letter", date(2026, 12, 2)) == (
        'Herinnering verstuurd via debsync: stap "aanmaning" per brief op 2 december 2026.'
    )
