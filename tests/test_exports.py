"""Exports as they are: the open-items exports of Exact Online, SnelStart, e-Boekhouden and
Twinfield synced and planned as a new user would, header aliases, headers settled by their
values, .xlsx workbooks and binary files that are neither."""

from __future__ import annotations

import re
import textwrap
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from debsync.config import load_config
from debsync.decisions import Reason
from debsync.errors import FatalConnectorError
from debsync.model import DebtorKind
from debsync.planning import plan_from_store
from debsync.plugins import Plugins
from debsync.store import open_store

from conftest import FrozenClock
from csv_helpers import read, sync, write

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
TODAY = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def twinfield(path: Path) -> Path:
    """A Twinfield "Openstaande posten" report saved as .xlsx: a title block, ``Debiteur``
    holding the code, real date and number cells, a total row."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Openstaande posten"
    sheet.append(["Openstaande posten debiteuren"])
    sheet.append(["Administratie 1000 - Voorbeeld Installatietechniek B.V."])
    sheet.append([])
    sheet.append(
        [
            "Debiteur",
            "Naam",
            "Factuurnummer",
            "Factuurdatum",
            "Vervaldatum",
            "Valuta",
            "Openstaand bedrag",
            "E-mail",
            "Adres",
            "Postcode",
            "Plaats",
        ]
    )
    rows = [
        (1000, "Drukkerij Van Dam B.V.", "VF2026-0311", date(2026, 9, 20), date(2026, 10, 20),
         2420.0, "boekhouding@vandam.example.nl", ""),
        (1001, "Jan Hendriks", "VF2026-0312", date(2026, 9, 27), date(2026, 10, 27),
         181.5, "jan@localhost", "Laan 3"),
        (1002, "Autobedrijf Koster", "VF2026-0313", date(2026, 10, 4), date(2026, 11, 3),
         907.5, "", ""),
    ]  # fmt: skip
    for code, name, number, issued, due, amount, mail, street in rows:
        sheet.append(
            [
                code,
                name,
                number,
                datetime.combine(issued, datetime.min.time()),
                datetime.combine(due, datetime.min.time()),
                "EUR",
                amount,
                mail,
                street,
                "3511 AB" if street else "",
                "Utrecht" if street else "",
            ]
        )
    sheet.append([None, "Totaal", None, None, None, None, 3509.0])
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("export", "channels", "no_contact"),
    [
        ("exact-online.csv", {"10001": "email", "10003": "call", "10004": "email"}, ["10002"]),
        ("snelstart.csv", {"2001": "email", "2002": "letter", "2003": "call"}, ["2004"]),
        ("e-boekhouden.csv", {"K0001": "email", "K0002": "email", "K0003": "call"}, ["K0004"]),
        ("twinfield.xlsx", {"1000": "email", "1001": "letter"}, ["1002"]),
    ],
)
def test_the_four_exports_give_reminders_not_handoffs(
    tmp_path: Path, export: str, channels: dict[str, str], no_contact: list[str]
) -> None:
    path = tmp_path / export
    if export.endswith(".xlsx"):
        twinfield(path)
    else:
        path.write_bytes((FIXTURES / export).read_bytes())
    (tmp_path / "connectors.toml").write_text(
        textwrap.dedent(
            f"""
            [store]
            url = "sqlite:///{tmp_path / "debsync.db"}"

            [connectors.books]
            type = "csv"
            path = "{export}"
            """
        ),
        encoding="utf-8",
    )
    config = load_config(tmp_path / "connectors.toml", Plugins(entry_points=False))
    store = open_store(config.store_url)
    try:
        result = sync(store, FrozenClock(TODAY), path)
        assert result.ok, result.error
        plan = plan_from_store(config, store, TODAY)
    finally:
        store.dispose()
    assert {a.debtor_id: a.channel for a in plan.actions} == channels
    assert {a.step for a in plan.actions} == {"reminder"}
    assert all(a.role != "handoff" for a in plan.actions)
    stuck = [d for d in plan.decisions if d.reason is Reason.NEEDS_CONTACT]
    assert sorted(d.debtor_id for d in stuck) == no_contact


def test_what_each_export_says_is_read(tmp_path: Path) -> None:
    exact = read(FIXTURES / "exact-online.csv")
    assert exact.rejects == []
    assert exact.invoices["26700102"].debtor_id == "10002"  # "Code" is the debtor id
    assert exact.invoices["26700102"].open_amount.amount == Decimal("48400.00")
    assert exact.debtors["10002"].name == "Bouwbedrijf 't Gooi B.V."
    assert exact.debtors["10002"].kind is DebtorKind.BUSINESS  # from "B.V." in the name
    assert exact.debtors["10004"].kind is DebtorKind.UNKNOWN

    snelstart = read(FIXTURES / "snelstart.csv")  # Windows-1252, title block, total row
    assert snelstart.rejects == []
    assert snelstart.debtors["2001"].name == "Café De Brug"
    assert snelstart.debtors["2003"].name == "Garage Özdemir"
    assert snelstart.invoices["20260456"].open_amount.amount == Decimal("1541.00")
    assert len(snelstart.invoices) == 4

    eboekhouden = read(FIXTURES / "e-boekhouden.csv")
    assert eboekhouden.rejects == []
    assert eboekhouden.debtors["K0002"].name == "P. Bakker"  # "Relatie" next to Relatiecode
    assert eboekhouden.debtors["K0002"].kind is DebtorKind.CONSUMER  # Soort P
    assert eboekhouden.debtors["K0003"].kind is DebtorKind.BUSINESS  # Soort B

    sheet = read(twinfield(tmp_path / "twinfield.xlsx"))
    assert set(sheet.invoices) == {"VF2026-0311", "VF2026-0312", "VF2026-0313"}
    assert sheet.invoices["VF2026-0312"].debtor_id == "1001"  # "Debiteur" holds the code
    assert sheet.debtors["1001"].name == "Jan Hendriks"
    assert sheet.invoices["VF2026-0312"].open_amount.amount == Decimal("181.50")
    assert sheet.invoices["VF2026-0311"].due_date == date(2026, 10, 20)
    assert [(r.kind, r.dropped) for r in sheet.rejects] == [("debtor", True)]  # jan@localhost


# -- aliases and headers settled by their values ------------------------------------------------

ROW = ["F-1", "01-10-2026", "31-10-2026", "100,00"]
TAIL = ["Factuurnummer", "Factuurdatum", "Vervaldatum", "Openstaand"]


@pytest.mark.parametrize(
    ("header", "cells", "debtor_id", "name"),
    [
        (["Code", "Naam"], ["10002", "Gooi B.V."], "10002", "Gooi B.V."),
        (["Debiteurcode", "Naam"], ["D-7", "Gooi B.V."], "D-7", "Gooi B.V."),
        (["Klantnummer", "Klant"], ["77", "Gooi B.V."], "77", "Gooi B.V."),
        (["Relatiecode", "Relatie"], ["1", "Gooi B.V."], "1", "Gooi B.V."),
        (["Debiteur", "Naam"], ["1000", "Gooi B.V."], "1000", "Gooi B.V."),  # Twinfield
        (["Naam", "Debiteur"], ["Gooi B.V.", "1000"], "1000", "Gooi B.V."),
        (["Relatie", "Klant"], ["Gooi B.V.", "K17"], "K17", "Gooi B.V."),
        (["Relatie", "Klant"], ["K17", "Gooi B.V."], "K17", "Gooi B.V."),
        (["Debiteur"], ["1000"], "1000", "1000"),  # the code is all there is
        (["Customer", "Customer name"], ["C-9", "Gooi Ltd"], "C-9", "Gooi Ltd"),
    ],
)
def test_debtor_columns(
    tmp_path: Path, header: list[str], cells: list[str], debtor_id: str, name: str
) -> None:
    rows = [header + TAIL, cells + ROW, [c.replace("1", "2") for c in cells] + ["F-2", *ROW[1:]]]
    got = read(write(tmp_path / "x.csv", rows))
    assert got.rejects == []
    assert got.invoices["F-1"].debtor_id == debtor_id
    assert got.debtors[debtor_id].name == name


def test_a_debtor_column_of_names_without_codes_says_so(tmp_path: Path) -> None:
    rows = [["Relatie", *TAIL], ["Gooi B.V.", *ROW], ["De Vries", "F-2", *ROW[1:]]]
    with pytest.raises(FatalConnectorError, match="'Relatie' holds names, not debtor codes"):
        read(write(tmp_path / "x.csv", rows))


# -- .xlsx ---------------------------------------------------------------------------------------


def workbook(path: Path, rows: Sequence[Sequence[object]], title: str = "Sheet1") -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


HEADER = ["Relatiecode", "Naam", "Vervaldatum", "Factuurnummer", "Openstaand"]


def test_a_workbook_with_a_report_layout_and_a_bad_cell(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "open.xlsx",
        [
            ["Ouderdomsanalyse debiteuren"],
            ["Peildatum", datetime(2026, 11, 25)],
            [],
            HEADER,
            ["D1", "Gooi B.V.", datetime(2026, 10, 31), "F-1", 1210.1],
            ["D1", "Gooi B.V.", "15-11-2026", "F-2", "1.234,56"],  # text cells, Dutch
            ["D2", "De Vries", "31-02-2026", "F-3", 10],  # C7: no such date
            ["D2", "De Vries", datetime(2026, 11, 1), 4711, Decimal("0.10")],
            [None, "Totaal D1 t/m D2", None, None, 2454.76],
        ],
    )
    got = read(path)
    assert {k: v.open_amount.amount for k, v in got.invoices.items()} == {
        "F-1": Decimal("1210.10"),
        "F-2": Decimal("1234.56"),
        "4711": Decimal("0.10"),  # a number cell as invoice number: no ".0"
    }
    assert got.invoices["F-1"].due_date == date(2026, 10, 31)
    assert got.invoices["F-2"].due_date == date(2026, 11, 15)
    [reject] = got.rejects
    assert reject.ref == "open.xlsx:Sheet1!7"
    assert reject.reason == "column 'Vervaldatum' (Sheet1!C7): '31-02-2026' is not a valid date"


def test_a_workbook_sheet_by_name(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["Samenvatting"])
    data = book.create_sheet("Openstaand")
    for row in [HEADER, ["D1", "Gooi B.V.", datetime(2026, 10, 31), "F-1", 50]]:
        data.append(row)
    book.save(tmp_path / "two.xlsx")
    assert set(read(tmp_path / "two.xlsx", sheet="Openstaand").invoices) == {"F-1"}
    with pytest.raises(FatalConnectorError, match="required columns not found"):
        read(tmp_path / "two.xlsx")  # the first sheet is the summary
    with pytest.raises(FatalConnectorError, match="no sheet 'Blad9'; its sheets: "):
        read(tmp_path / "two.xlsx", sheet="Blad9")


# -- binary files that are neither ---------------------------------------------------------------


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "a legacy Excel workbook (.xls)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "a gzip-compressed file"),
        (bytes(range(256)) * 4, "a binary file"),
    ],
)
def test_a_binary_file_says_what_it_looks_like(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "open-items.csv"
    path.write_bytes(content)
    with pytest.raises(FatalConnectorError, match=re.escape(f"open-items.csv is {what}")) as info:
        read(path)
    assert "save it from the program as CSV or .xlsx" in str(info.value)


@pytest.mark.parametrize(
    ("files", "what"),
    [
        (
            {"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b""},
            "an OpenDocument spreadsheet (.ods)",
        ),
        ({"word/document.xml": b"<w/>", "[Content_Types].xml": b""}, "a Word document (.docx)"),
        ({"open-items.csv": b"Factuurnummer;Openstaand\n"}, "a ZIP archive"),
    ],
)
def test_a_zip_that_is_no_workbook_says_what_it_is(
    tmp_path: Path, files: dict[str, bytes], what: str
) -> None:
    path = _zip(tmp_path / "export.xlsx", files)
    with pytest.raises(FatalConnectorError, match=re.escape(f"export.xlsx is {what}")):
        read(path)
