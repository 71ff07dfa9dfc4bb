"""Personal data in errors (issue 10 item 4): every stored or printed error passes
``debsync.errors.scrub``. The example export's debtors (names, e-mail addresses, IBANs, phone
numbers) are synced with the bad cells of item 3 added, and looked for in the log at DEBUG,
the store's error columns and ``debsync status``."""

from __future__ import annotations

import asyncio
import csv
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from debsync.cli import app
from debsync.errors import scrub
from debsync.store import Store
from debsync.store.schema import connector_state, sync_rejects, sync_runs
from debsync.sync import SyncEngine

from fakes import INSTANCE, FakeConnector

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "open-items.csv"
PERSONAL = ("Naam", "E-mail", "Telefoon", "IBAN", "Adres")


def personal_data() -> set[str]:
    """Every name, address, phone number, e-mail address and IBAN of the example export."""
    with EXAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    found = {row[column].strip() for row in rows for column in PERSONAL}
    found |= {row["IBAN"].replace(" ", "") for row in rows}
    return {value for value in found if len(value) > 5}


def hostile_rows(header: list[str], template: list[str]) -> list[list[str]]:
    """Item 3's bad cells, each in a copy of a real debtor's row."""
    at = {name: i for i, name in enumerate(header)}
    cases = [
        {"Factuurdatum": "31-12-9999", "Vervaldatum": ""},
        {"Openstaand": "12,00)"},
        {"Openstaand": "(12,00)-"},
        {"Naam": template[at["Naam"]] + "\x00"},
        {"Factuurnummer": "9" * 300},
        {"Adres": "x" * 1_000_000},
        {"Openstaand": "0,001"},
        {"Factuurnummer": "Total-7", "Openstaand": "12,00)"},
    ]
    rows = []
    for n, case in enumerate(cases):
        row = list(template)
        row[at["Factuurnummer"]] = f"2099-{n:04d}"
        for column, value in case.items():
            row[at[column]] = value
        rows.append(row)
    return rows


def project(tmp_path: Path, store: Store) -> Path:
    with EXAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    rows += hostile_rows(rows[0], rows[1])
    with (tmp_path / "open-items.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    url = store.engine.url.render_as_string(hide_password=False)
    (tmp_path / "connectors.toml").write_text(
        textwrap.dedent(
            f"""
            [store]
            url = "{url}"

            [creditor]
            name = "Voorbeeld Installatietechniek B.V."
            iban = "NL91ABNA0417164300"

            [connectors.books]
            type = "csv"
            path = "open-items.csv"
            """
        ),
        encoding="utf-8",
    )
    return tmp_path / "connectors.toml"


def stored_errors(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        texts = list(conn.execute(sa.select(sync_runs.c.error)).scalars())
        texts += conn.execute(sa.select(connector_state.c.last_error)).scalars()
        texts += conn.execute(sa.select(sync_rejects.c.reason, sync_rejects.c.ref)).scalars()
    return [t for t in texts if t]


def leaks(texts: list[str]) -> set[str]:
    data = personal_data()
    return {value for value in data for text in texts if value in text}


def test_the_example_with_bad_cells_leaks_no_personal_data(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = project(tmp_path, store)
    monkeypatch.delenv("DEBSYNC_DATABASE_URL", raising=False)
    caplog.set_level(logging.DEBUG)

    synced = CliRunner().invoke(app, ["--config", str(config), "sync"])
    status = CliRunner().invoke(app, ["--config", str(config), "status"])
    as_json = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])

    assert synced.exit_code == 0, synced.output
    assert "rejected row open-items.csv:" in status.output  # the rejects are shown
    texts = [caplog.text, synced.output, status.output, as_json.output, *stored_errors(store)]
    assert leaks(texts) == set()


class Leaking(FakeConnector):
    """A connector whose store query failed with SQLAlchemy's statement and parameters in the
    message, as an engine without ``hide_parameters`` words it."""

    def __init__(self, error: Exception) -> None:
        super().__init__([])
        self.error = error

    async def fetch(self, cursor: Any) -> Any:
        raise self.error
        yield  # pragma: no cover - makes this an async generator


def database_error() -> sa.exc.DBAPIError:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE d (id TEXT PRIMARY KEY, name TEXT, iban TEXT)")
        row = {"id": "10239", "name": "M. Jansen-Bakker", "iban": "NL46TRIO0440921879"}
        insert = sa.text("INSERT INTO d VALUES (:id, :name, :iban)")
        conn.execute(insert, row)
        with pytest.raises(sa.exc.DBAPIError, match="Jansen-Bakker") as failed:
            conn.execute(insert, [row, {**row, "name": "m.jansen@example.nl"}])
    return failed.value  # what would be stored without scrubbing


def test_a_failed_sync_stores_and_logs_its_error_scrubbed(
    store: Store, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = asyncio.run(SyncEngine(store, clock=clock).run(INSTANCE, Leaking(database_error())))

    assert not result.ok and result.error is not None
    assert "UNIQUE constraint failed" in result.error
    stored = stored_errors(store)
    assert len(stored) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for text in (result.error, *stored, *warnings):
        assert "Jansen" not in text and "NL46" not in text and "@" not in text, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '(psycopg.errors.NotNullViolation) null value in column "name"\n'
            "DETAIL:  Failing row contains (books, 10239, M. Jansen-Bakker).\n"
            "[SQL: INSERT INTO debtors (name) VALUES (%(name)s)]\n"
            "[parameters: {'name': 'M. Jansen-Bakker'}]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
            '(psycopg.errors.NotNullViolation) null value in column "name"',
        ),
        ("mail m.jansen@example.nl now", "mail [e-mail] now"),
        ("IBAN NL46 TRIO 4409 2187 94 and NL46TRIO0440921879", "IBAN [IBAN] and [IBAN]"),
        ("call 06-33868537 or +31 30 211 7713", "call [phone] or [phone]"),
        (
            "invoice 2026-0001 of 2026-11-22: 1234567.89 EUR, debtor 10239",
            "invoice 2026-0001 of 2026-11-22: 1234567.89 EUR, debtor 10239",
        ),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected
