"""Privacy over time (issue 10 item 8): ``debsync purge`` pseudonymises debtors past
retention and keeps the dossier's facts; ``debsync export`` gives a debtor everything debsync
holds; re-syncing a purged debtor restores nothing until it has an open invoice again; and
unexpected tracebacks and outbox errors are scrubbed before they are logged or stored.

The shop below sends real ``.eml`` files through the file action, so the files a purge
deletes are the ones the outbox wrote."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from debsync.actions.base import PermanentActionError
from debsync.actions.call import CallAction, CallSettings
from debsync.actions.email import FileAction, FileSettings
from debsync.cli import app
from debsync.config import (
    ActionInstance,
    Config,
    ConnectorInstance,
    CreditorSettings,
    PrivacySettings,
)
from debsync.connectors.base import Page, Reject
from debsync.facts import PauseKind
from debsync.model import Debtor, Invoice
from debsync.outbox.calls import Outcome, complete, open_calls
from debsync.outbox.executor import Dispatcher
from debsync.outbox.preview import PURGED_TEXT, preview
from debsync.pauses import end_pause, start_pause
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.policy import Policy, Step
from debsync.privacy import PURGED, export_debtor, pseudonym, purge
from debsync.store import Store, open_store
from debsync.store.schema import (
    PURGED_PAYLOAD,
    ActionState,
    EventKind,
    debtors,
    events,
    invoices,
    metadata,
)
from debsync.store.schema import outbox as outbox_table
from debsync.sync import SyncEngine

from books import Book
from conftest import FrozenClock
from fakes import FakeConnector, FakeSettings, RecordingAction, invoice

NAME = "Johanna Kwast-Verhoeven"
EMAIL = "johanna.kwast@voorbeeld.nl"
PHONE = "06-23456789"
STORED_PHONE = "623456789"  # the digits of +31623456789, however it is written
IBAN = "NL20INGB0001234567"
STREET = "Lindengracht 214"
PLANTED = (NAME, "Kwast", EMAIL, STORED_PHONE, IBAN, STREET, "1015 KL")

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)  # the day after the due date
RETENTION = PrivacySettings(retention_days=400)
ONE_STEP = Policy(
    name="default", steps=(Step(name="reminder", channels=("email",), days_after_due=1),)
)
CALLING = Policy(name="calling", steps=(Step(name="call", channels=("call",), days_after_due=1),))
APPROVED = Policy(
    name="approval",
    steps=(Step(name="reminder", channels=("email",), days_after_due=1, requires_approval=True),),
)


def people() -> tuple[Debtor, ...]:
    """D1 is the one purged; D2 closes later (within retention); D3 stays open; D4 has an
    action awaiting approval; D5 a call task without an outcome."""
    planted = Debtor.model_validate(
        {
            "external_id": "D1",
            "name": NAME,
            "kind": "consumer",
            "emails": [EMAIL],
            "phones": [PHONE],
            "iban": IBAN,
            "address": {"lines": [STREET], "postcode": "1015kl", "city": "Amsterdam"},
        }
    )
    others = (
        Debtor.model_validate(
            {"external_id": ext, "name": f"Klant {ext} B.V.", "emails": [f"{ext}@klant.nl"]}
        )
        for ext in ("D2", "D3", "D4")
    )
    called = Debtor.model_validate(
        {"external_id": "D5", "name": "Bel B.V.", "phones": ["0301234567"]}
    )
    return (planted, *others, called)


class Shop:
    """One synced administration whose reminders go out as .eml files."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.base = tmp_path
        self.clock = FrozenClock(START)
        self.config = Config(
            path=tmp_path / "connectors.toml",
            store_url="",
            creditor=CreditorSettings(
                name="Voorbeeld B.V.", iban="NL91ABNA0417164300", email="debiteuren@shop.nl"
            ),
            policies={"default": ONE_STEP, "approval": APPROVED, "calling": CALLING},
            connectors={
                "books": ConnectorInstance(
                    "books",
                    "fake",
                    FakeConnector,
                    FakeSettings(),
                    debtor_policies={"D4": "approval", "D5": "calling"},
                )
            },
            actions={
                "mail": ActionInstance(
                    "mail", "file", FileAction, FileSettings(directory=tmp_path / "outbox")
                ),
                "calls": ActionInstance("calls", "call", CallAction, CallSettings()),
            },
        )
        self.debtors = people()

    def sync(self, *open_invoices: Invoice, rejects: tuple[Reject, ...] = ()) -> None:
        page = Page(
            debtors=list(self.debtors),
            invoices=list(open_invoices),
            rejects=list(rejects),
            snapshot_complete=True,
        )
        result = asyncio.run(
            SyncEngine(self.store, clock=self.clock).run(
                self.config.connectors["books"], FakeConnector([page]), allow_mass_close=True
            )
        )
        assert result.ok, result.error

    def act(self) -> None:
        dispatcher = Dispatcher(
            self.config, self.store, Plugins(entry_points=False), clock=self.clock
        )
        report = asyncio.run(dispatcher.act())
        assert report.ok, report

    def purge(self, *, dry_run: bool = False, days: int = 0) -> Any:
        now = self.clock() + timedelta(days=days)
        return purge(self.store, RETENTION, now=now, base=self.base, dry_run=dry_run)

    def eml(self, debtor_id: str) -> Path:
        (row,) = [r for r in self.actions() if r.debtor_id == debtor_id]
        return Path(row.receipt["details"]["path"])

    def actions(self) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id)))

    def debtor(self, ext: str) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(debtors).where(debtors.c.external_id == ext)).one()

    def events(self, kind: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(events).where(events.c.kind == kind)))

    def dump(self) -> str:
        """Every row of every table as text: what a purge must leave without the planted data."""
        with self.store.engine.connect() as conn:
            return "\n".join(
                f"{table.name}: {list(row)!r} {json.dumps(row._asdict(), default=str)}"
                for table in metadata.sorted_tables
                for row in conn.execute(sa.select(table))
            )


F = {ext: invoice(ext, debtor_id=f"D{ext[1]}") for ext in ("F1", "F2", "F3", "F4")}
F["F6"] = invoice("F6", debtor_id="D5")


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Shop:
    """Reminders sent to D1-D3 (D4's awaits approval, D5 gets a call task), a dispute of D1
    with free text started and ended, a reject quoting D1's name; then the invoices of D1,
    D4 and D5 close at once, D2's 300 days later."""
    shop = Shop(store, tmp_path)
    shop.sync(*F.values(), rejects=(Reject("debtor", "D1", f"odd name {NAME!r}"),))
    shop.act()
    pause = start_pause(
        store,
        kind=PauseKind.DISPUTE,
        instance="books",
        scope="debtor",
        target="D1",
        reason=f"{NAME} belt vanaf {PHONE}: factuur klopt niet",
        author="anne",
        clock=shop.clock,
    )
    end_pause(store, pause.id, reason=f"opgelost, bevestigd aan {EMAIL}", author="anne")
    shop.clock.now += timedelta(days=1)
    shop.sync(F["F2"], F["F3"])
    shop.clock.now += timedelta(days=300)
    shop.sync(F["F3"])
    return shop


def test_only_the_debtor_past_retention_is_purged_and_nothing_personal_remains(
    shop: Shop,
) -> None:
    assert all(value in shop.dump() for value in PLANTED)
    kept_files = {d: shop.eml(d) for d in ("D2", "D3")}
    purged_file = shop.eml("D1")
    assert purged_file.exists()

    too_early = shop.purge(days=99)  # 399 days after D1's invoice closed
    assert too_early.purged == []
    report = shop.purge(days=100)

    assert [(p.instance, p.debtor_id) for p in report.purged] == [("books", "D1")]
    (done,) = report.purged
    assert (done.invoices, done.actions, done.rejects, done.files) == (1, 1, 1, [purged_file])
    dump = shop.dump()
    assert [value for value in PLANTED if value in dump] == []
    if shop.store.engine.dialect.name == "sqlite":  # not even in free pages or the WAL
        files = sorted(shop.base.glob("debsync.db*"))
        raw = b"".join(f.read_bytes() for f in files)
        assert files and [v for v in PLANTED if v.encode() in raw] == []
    assert not purged_file.exists() and all(p.exists() for p in kept_files.values())
    assert shop.debtor("D2").name == "Klant D2 B.V." and shop.debtor("D4").purged_at is None
    d1 = shop.debtor("D1")
    assert d1.name == pseudonym("books", "D1") and d1.name.startswith("debiteur ")
    assert (d1.emails, d1.phones, d1.iban, d1.address) == ([], [], None, None)
    assert d1.purged_at is not None


def test_the_audit_trail_keeps_its_facts(shop: Shop) -> None:
    before = next(r for r in shop.actions() if r.debtor_id == "D1")
    steps_before = [e.data for e in shop.events(EventKind.STEP_SENT) if e.debtor_id == "D1"]
    shop.purge(days=100)

    after = next(r for r in shop.actions() if r.debtor_id == "D1")
    assert after.payload == PURGED_PAYLOAD and after.payload_sha256 == before.payload_sha256
    assert after.state == ActionState.SENT and after.dispatched_on == before.dispatched_on
    assert after.receipt["content_sha256"] == before.receipt["content_sha256"]
    assert after.receipt["details"] == {
        k: v for k, v in before.receipt["details"].items() if k in ("message_id", "path")
    }
    assert [e.data for e in shop.events(EventKind.STEP_SENT) if e.debtor_id == "D1"] == (
        steps_before
    )
    with shop.store.engine.connect() as conn:
        f1 = conn.execute(sa.select(invoices).where(invoices.c.external_id == "F1")).one()
    assert (f1.total_minor, f1.due_date, f1.state) == (12100, date(2026, 10, 1), "closed")
    closed = [e for e in shop.events(EventKind.INVOICE_CLOSED) if e.invoice_id == "F1"]
    assert closed[0].data["paid"] == "121.00"
    (started,) = shop.events(EventKind.PAUSE_STARTED)
    assert started.data["reason"] == PURGED and started.data["kind"] == "dispute"
    (purged,) = shop.events(EventKind.DEBTOR_PURGED)
    assert purged.debtor_id == "D1" and purged.data == {
        "invoices": 1,
        "events": 2,  # the free texts: the dispute's reasons when it started and ended
        "actions": 1,
        "rejects": 1,
        "files": 1,
        "retention_days": 400,
    }


def test_the_preview_of_a_purged_message_says_so(shop: Shop) -> None:
    key = next(r.key for r in shop.actions() if r.debtor_id == "D1")
    shop.purge(days=100)
    dispatcher = Dispatcher(shop.config, shop.store, Plugins(entry_points=False), clock=shop.clock)

    shown = preview(dispatcher, key[:12], START.date())

    assert shown.stored and shown.text == PURGED_TEXT


def test_a_dry_run_reports_exactly_what_a_purge_then_does_and_changes_nothing(
    shop: Shop,
) -> None:
    before = shop.dump()
    dry = shop.purge(days=100, dry_run=True)
    assert shop.dump() == before and shop.eml("D1").exists()

    real = shop.purge(days=100)
    assert dry.dry_run and not real.dry_run
    assert dry.purged == real.purged


def test_purging_twice_changes_nothing_the_second_time(shop: Shop) -> None:
    shop.purge(days=100)
    once = shop.dump()
    assert shop.purge(days=100).purged == []
    assert shop.dump() == once


def test_an_open_invoice_an_action_in_flight_or_a_pause_keep_the_data(shop: Shop) -> None:
    start_pause(
        shop.store,
        kind=PauseKind.HOLD,
        instance="books",
        scope="debtor",
        target="D2",
        reason="kwijtschelding in behandeling",
        author="anne",
        until=date(2029, 1, 1),
        clock=shop.clock,
    )
    report = shop.purge(days=500)  # all closed over 400 days ago, but:
    # D3's invoice is open, D4's reminder awaits approval, D2 is on hold until 2029, and
    # D5's call task has no outcome yet
    assert [p.debtor_id for p in report.purged] == ["D1"]
    (task,) = open_calls(shop.store)
    complete(shop.store, task.key, Outcome.NO_ANSWER, author="anne", clock=shop.clock)
    assert [p.debtor_id for p in shop.purge(days=500).purged] == ["D5"]


def test_resyncing_a_purged_debtor_restores_nothing_until_it_has_an_open_invoice(
    shop: Shop,
) -> None:
    shop.purge(days=100)
    shop.clock.now += timedelta(days=100)
    changed = shop.debtors[0].model_copy(update={"emails": ("nieuw@voorbeeld.nl",)})
    shop.debtors = (changed, *shop.debtors[1:])
    # the source still sends the closed debtor, changed, and rejects its odd name again
    shop.sync(F["F3"], rejects=(Reject("debtor", "D1", f"odd name {NAME!r}"),))
    assert shop.debtor("D1").purged_at is not None
    assert [v for v in ("nieuw@voorbeeld.nl", NAME) if v in shop.dump()] == []
    assert [e for e in shop.events(EventKind.DEBTOR_CHANGED) if e.debtor_id == "D1"] == []

    shop.sync(F["F3"], invoice("F5", debtor_id="D1"))  # a new invoice: live again
    d1 = shop.debtor("D1")
    assert d1.purged_at is None and d1.name == NAME and d1.emails == ["nieuw@voorbeeld.nl"]
    shop.act()
    first, second = [r for r in shop.actions() if r.debtor_id == "D1"]
    assert first.payload == PURGED_PAYLOAD and second.state == ActionState.SENT
    sent = Path(second.receipt["details"]["path"]).read_text(encoding="utf-8")
    assert "nieuw@voorbeeld.nl" in sent and "Kwast" in sent


def test_a_debtor_whose_record_came_before_its_new_invoice_is_written_at_the_next_sync(
    shop: Shop,
) -> None:
    shop.purge(days=100)

    def sync() -> None:
        pages = [
            Page(debtors=list(shop.debtors), invoices=[F["F3"]]),
            Page(invoices=[invoice("F5", debtor_id="D1")], snapshot_complete=True),
        ]
        connector = FakeConnector(pages)
        result = asyncio.run(
            SyncEngine(shop.store, clock=shop.clock).run(
                shop.config.connectors["books"], connector, allow_mass_close=True
            )
        )
        assert result.ok, result.error

    sync()  # live again, but its record was dropped on the page before
    d1 = shop.debtor("D1")
    assert d1.purged_at is None and d1.name == pseudonym("books", "D1")
    sync()
    d1 = shop.debtor("D1")
    assert (d1.name, d1.emails, d1.iban) == (NAME, [EMAIL], IBAN)


def test_export_holds_everything_as_json(shop: Shop) -> None:
    found = export_debtor(shop.store, "books", "D1", shop.clock())
    text = json.dumps(found)  # plain JSON values only: no default needed
    assert json.loads(text) == found and found["version"] == 1
    assert all(value in text for value in PLANTED)
    assert found["debtor"]["name"] == NAME and found["debtor"]["iban"] == IBAN
    assert [i["external_id"] for i in found["invoices"]] == ["F1"]
    assert found["invoices"][0]["total"] == "121.00"
    assert [p["amount"] for p in found["payments"]] == ["121.00"]  # derived at the close
    (action,) = found["actions"]
    assert action["payload"]["to"] and action["payload_sha256"]
    (pause,) = found["pauses"]
    assert pause["kind"] == "dispute" and pause["ended"] is True
    assert [r["ref"] for r in found["rejects"]] == ["D1"]
    kinds = {e["kind"] for e in found["events"]}
    assert {"debtor.created", "invoice.opened", "invoice.closed", "step.sent"} <= kinds


def test_a_file_that_cannot_be_deleted_rolls_the_debtor_back(shop: Shop) -> None:
    eml = shop.eml("D1")
    eml.unlink()
    eml.mkdir()  # unlink() refuses a directory, whoever runs the test
    before = shop.dump()
    (failed,) = shop.purge(days=100).purged
    assert failed.error is not None and "cannot delete" in failed.error
    assert shop.dump() == before


def test_a_debtor_the_store_refuses_is_reported_and_left_unchanged(shop: Shop) -> None:
    refusal = "debtors are read-only today"
    with shop.store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{refusal}'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON debtors "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE UPDATE ON debtors BEGIN "
                f"SELECT RAISE(ABORT, '{refusal}'); END"
            )
    before = shop.dump()
    (failed,) = shop.purge(days=100).purged
    assert failed.error is not None and refusal in failed.error
    assert shop.dump() == before and shop.eml("D1").exists()


# -- scrubbing ------------------------------------------------------------------------------


class _Exploding(FakeConnector):
    """A connector with a bug whose message quotes a record."""

    async def fetch(self, cursor: Any) -> AsyncIterator[Page]:
        raise RuntimeError(f"cannot parse row for {EMAIL}, {IBAN}, {PHONE}")
        yield Page()  # pragma: no cover: makes this an async generator


def test_an_unexpected_sync_error_is_logged_and_stored_scrubbed(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="debsync")
    result = asyncio.run(
        SyncEngine(sqlite_store).run(
            ConnectorInstance("books", "fake", FakeConnector, FakeSettings()), _Exploding([])
        )
    )
    assert not result.ok and "Traceback" in caplog.text and "RuntimeError" in caplog.text
    planted = (EMAIL, IBAN, PHONE)
    assert [v for v in planted if v in caplog.text or v in (result.error or "")] == []
    assert "[e-mail]" in caplog.text


def test_outbox_errors_are_stored_and_logged_scrubbed(
    sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    RecordingAction.script.clear()
    book = Book(sqlite_store, tmp_path, RecordingAction)
    book.book(invoice("F1"))
    keys = {
        a.debtor_id: a.key for a in plan_from_store(book.config, book.store, book.clock()).actions
    }
    refusal = f"550 {EMAIL} unknown; call {PHONE} or pay to {IBAN}"
    RecordingAction.script[keys["D1"]] = [PermanentActionError(refusal)]
    caplog.set_level(logging.DEBUG, logger="debsync")
    book.act()

    (row,) = book.rows()
    assert row.state == ActionState.DEAD and row.last_error.startswith("550 [e-mail] unknown")
    (dead,) = book.events("action.dead")
    stored = f"{row.last_error} {dead.data} {caplog.text}"
    assert "[IBAN]" in stored and [v for v in (EMAIL, IBAN, PHONE) if v in stored] == []


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "connectors.toml").write_text(
        textwrap.dedent(
            """
            [creditor]
            name = "Voorbeeld B.V."
            iban = "NL91ABNA0417164300"
            email = "debiteuren@voorbeeld.nl"

            [connectors.books]
            type = "csv"
            path = "open-items.csv"

            [actions.files]
            type = "file"
            directory = "outbox"
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEBSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    return tmp_path


def _export(path: Path, *rows: tuple[str, str, str, str]) -> None:
    lines = ["Relatiecode;Naam;E-mail;Telefoon;Factuurnummer;Factuurdatum;Vervaldatum;Openstaand"]
    due = date.today() - timedelta(days=5)
    lines += [
        f"{code};{name};{mail};{PHONE};{number};{due - timedelta(days=30):%d-%m-%Y};"
        f"{due:%d-%m-%Y};121,00"
        for code, name, mail, number in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def debsync(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, result.output
    return result


def test_the_commands_purge_export_and_exit_codes(project: Path) -> None:
    csv = project / "open-items.csv"
    _export(csv, ("D1", NAME, EMAIL, "F-1"), ("D2", "Klant B.V.", "klant@b.nl", "F-2"))
    debsync("run", "--once")
    assert len(list((project / "outbox").glob("*.eml"))) == 2
    _export(csv, ("D2", "Klant B.V.", "klant@b.nl", "F-2"))
    debsync("sync")  # D1's invoice left the open set
    store = open_store(f"sqlite:///{project / 'var' / 'debsync.db'}")
    with store.engine.begin() as conn:  # a year and a half passes
        conn.execute(
            sa.update(invoices)
            .where(invoices.c.debtor_id == "D1")
            .values(closed_at=datetime.now(UTC) - timedelta(days=550))
        )
    store.dispose()

    dry = json.loads(debsync("purge", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and [d["debtor"] for d in dry["debtors"]] == ["D1"]
    assert len(list((project / "outbox").glob("*.eml"))) == 2
    (eml,) = [Path(d) for d in dry["debtors"][0]["files"]]
    content = eml.read_bytes()
    eml.unlink()
    eml.mkdir()  # a file that cannot be deleted: the debtor stays as it was, exit 1
    assert "cannot delete a file" in debsync("purge", code=1).output
    eml.rmdir()
    eml.write_bytes(content)
    shown = debsync("purge").stdout
    assert "purged 1 debtor(s)" in shown and "books/D1" in shown and NAME not in shown
    assert len(list((project / "outbox").glob("*.eml"))) == 1
    assert json.loads(debsync("purge", "--json").stdout)["debtors"] == []

    debsync("export", "D2", "-o", "d2.json")
    written = project / "d2.json"
    assert os.stat(written).st_mode & 0o777 == 0o600
    exported = json.loads(written.read_text(encoding="utf-8"))
    assert exported["version"] == 1 and exported["debtor"]["name"] == "Klant B.V."
    purged = json.loads(debsync("export", "D1").stdout)
    assert purged["debtor"]["name"].startswith("debiteur ") and EMAIL not in json.dumps(purged)
    assert "no debtor 'D9'" in debsync("export", "D9", code=1).output

    config = project / "connectors.toml"
    config.write_text(config.read_text() + "\n[privacy]\npurge = false\n", encoding="utf-8")
    assert "purging is disabled" in debsync("purge", code=2).output
    config.write_text(config.read_text() + "retention = 3\n", encoding="utf-8")
    assert "[privacy.retention]" in debsync("purge", code=2).output
