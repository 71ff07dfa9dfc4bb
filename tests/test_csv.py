"""The built-in csv connector: dialects, layouts, bad rows, and syncing through the engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from debsync.config import load_config
from debsync.connectors.base import Page, Previous
from debsync.connectors.csv import ALIASES, CsvConnector, CsvSettings, Values, normalise_header
from debsync.errors import ConfigError, FatalConnectorError
from debsync.model import DebtorKind, Language
from debsync.plugins import Plugins
from debsync.store import Store
from debsync.store.schema import events, invoices, payments

from csv_helpers import connector, read, sync, write

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "open-items.csv"

# -- dialects ------------------------------------------------------------------------------

# The same three invoices in every dialect: a plain one, a credit note, a partly paid one.
EXPECTED = {
    "2026-0001": ("10001", date(2026, 10, 1), date(2026, 10, 31), "1234.56", "1234.56"),
    "2026-0002": ("10002", date(2026, 11, 1), date(2026, 11, 15), "-121.00", "-121.00"),
    "2026-0003": ("10001", date(2026, 9, 5), date(2026, 10, 5), "605.00", "300.50"),
}
NAMES = {"10001": "Bakkerij Ëlan B.V.", "10002": "Jansen, De Vries; Zn V.O.F."}
DUTCH = ["Relatiecode", "Naam", "Factuurnummer", "Factuurdatum", "Vervaldatum", "Bedrag"]


def read_with(conn: CsvConnector) -> list[Page]:
    async def collect() -> list[Page]:
        return [page async for page in conn.fetch(None)]

    return asyncio.run(collect())


def cells(line: str) -> list[str]:
    """A row written as ``a|b|c``: readable, and free to hold ``;`` and ``,`` in values."""
    return line.split("|")


def rows(header: list[str], dates: list[str], amounts: list[str]) -> list[list[str]]:
    """Header plus the three invoices; dates and amounts as (issue, due) and (total, open)."""
    out = [header]
    for n, (number, (debtor, *_)) in enumerate(EXPECTED.items()):
        out.append([debtor, NAMES[debtor], number, *dates[2 * n : 2 * n + 2]])
        out[-1] += amounts[2 * n : 2 * n + 2]
    return out


DMY = ["01-10-2026", "31-10-2026", "01-11-2026", "15-11-2026", "05-09-2026", "05-10-2026"]
ISO = ["2026-10-01", "2026-10-31", "2026-11-01", "2026-11-15", "2026-09-05", "2026-10-05"]
NL_AMOUNTS = ["1.234,56", "1.234,56", "-121,00", "-121,00", "605,00", "300,50"]
DOT_AMOUNTS = ["1234.56", "1234.56", "-121.00", "-121.00", "605.00", "300.50"]

DIALECTS: dict[str, tuple[list[list[str]], dict[str, Any]]] = {
    "dutch-semicolon-bom-crlf": (
        rows([*DUTCH, "Openstaand"], DMY, NL_AMOUNTS),
        {},
    ),
    "english-comma-lf-iso-dates": (
        rows(
            cells(
                "Customer ID|Customer name|Invoice number|Invoice date|Due date|Amount|Outstanding"
            ),
            ISO,
            ["1,234.56", "1,234.56", "-121.00", "-121.00", "605.00", "300.50"],
        ),
        {"delimiter": ",", "encoding": "utf-8", "newline": "\n"},
    ),
    "tab-cp1252-euro-signs-short-dates": (
        rows(
            cells("Debiteurnummer|Bedrijfsnaam|Factuurnr.|Datum|Vervalt|Factuurbedrag|Saldo"),
            ["1-10-2026", "31-10-2026", "1-11-2026", "15-11-2026", "5-9-2026", "5-10-2026"],
            ["€ 1.234,56", "€ 1.234,56", "€ -121,00", "€ -121,00", "€ 605,00", "€ 300,50"],
        ),
        {"delimiter": "\t", "encoding": "cp1252"},
    ),
    "slashes-trailing-minus-no-thousands": (
        rows(
            cells("Klantnummer|Naam|Boekstuk|Boekdatum|Vervaldatum|Bedrag incl. btw|Restant"),
            [d.replace("-", "/") for d in DMY],
            ["1234,56", "1234,56", "121,00-", "121,00-", "605,00", "300,50"],
        ),
        {"encoding": "utf-8"},
    ),
    "dot-decimals-despite-semicolons": (
        rows([*DUTCH, "Openstaand"], ISO, DOT_AMOUNTS),
        {"encoding": "utf-8"},
    ),
    "excel-unicode-text-utf16-tab": (
        rows([*DUTCH, "Open bedrag"], DMY, NL_AMOUNTS),
        {"delimiter": "\t", "encoding": "utf-16"},
    ),
    "messy-header-spelling-pipes": (
        rows(
            cells(
                "  RELATIE-CODE |naam|Factuur nummer|FACTUURDATUM|Verval datum|bedrag|Open Bedrag:"
            ),
            DMY,
            NL_AMOUNTS,
        ),
        {"delimiter": "|", "encoding": "utf-8"},
    ),
}


@pytest.mark.parametrize("case", DIALECTS)
def test_every_dialect_reads_the_same_invoices(tmp_path: Path, case: str) -> None:
    data, fmt = DIALECTS[case]
    result = read(write(tmp_path / "export.csv", data, **fmt))

    assert result.rejects == []
    found = {
        number: (
            i.debtor_id,
            i.issue_date,
            i.due_date,
            *map(str, (i.total.amount, i.open_amount.amount)),
        )
        for number, i in result.invoices.items()
    }
    assert found == EXPECTED
    assert {d: debtor.name for d, debtor in result.debtors.items()} == NAMES
    assert {i.currency for i in result.invoices.values()} == {"EUR"}
    assert result.pages[-1].snapshot_complete and len(result.pages) == 1


def test_afas_export_prefers_factuurnr_over_boekstuk_and_derives_the_issue_date(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "afas.csv",
        [
            cells(
                "Factuurnr.|Naam|Deb.nr.|Omschrijving factuur|Boekstuk|Vervalt|Factuur|Saldo|"
                "Factuurreferentie|Aanmaningen|Vervaldagen"
            ),
            cells(
                "F-881|Bakkerij Ëlan B.V.|10001|Brood|80001|31-10-2026|1.210,00|605,00|PO 12|1|23"
            ),
        ],
        delimiter=",",
    )

    invoice = read(path, default_payment_term_days=14).invoices["F-881"]

    assert invoice.number == "F-881" and invoice.debtor_id == "10001"
    assert invoice.issue_date == date(2026, 10, 17) and invoice.due_date == date(2026, 10, 31)
    assert invoice.total.amount == Decimal("1210.00")
    assert invoice.open_amount.amount == Decimal("605.00")


def test_without_a_due_date_column_the_payment_term_applies(tmp_path: Path) -> None:
    path = write(
        tmp_path / "export.csv",
        [
            cells("Relatiecode|Factuurnummer|Factuurdatum|Openstaand"),
            cells("10001|F1|01-10-2026|100,00"),
        ],
    )

    invoice = read(path).invoices["F1"]

    assert invoice.due_date == date(2026, 10, 31)  # 30 days: art. 6:119a BW
    assert invoice.total == invoice.open_amount  # no total column: total is the open amount


# -- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "style", "expected"),
    [
        ("1.234,56", ",", "1234.56"),
        ("-121,00", ",", "-121.00"),
        ("€ 605,00", ",", "605.00"),
        ("€\u00a01.605,00", ",", "1605.00"),
        ("EUR 1.000", ",", "1000"),
        ("121,00-", ",", "-121.00"),
        ("(50,00)", ",", "-50.00"),
        ("+7,5", ",", "7.5"),
        ("1.234.567,8", ",", "1234567.8"),
        ("12.50", ",", "12.50"),  # unambiguous dot decimal in a comma column
        ("1.234", ",", "1234"),  # ambiguous: the column's style decides
        ("1.234", ".", "1.234"),
        ("1,234", ".", "1234"),
        ("1,234.56", ".", "1234.56"),
        ("-1234.5", ".", "-1234.5"),
        ("42", ".", "42"),
    ],
)
def test_amounts(text: str, style: str, expected: str) -> None:
    values = Values(day_first=True, decimal={"open_amount": style}, strict=False)
    assert values.amount(text, "open_amount") == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "strict", "reason"),
    [
        ("12,34,5", False, "'12,34,5' is not an amount"),
        ("1.23.4", False, "'1.23.4' is not an amount"),
        ("veel", False, "the value is not an amount"),
        ("12.50", True, "'12.50' is not an amount with a decimal comma"),
        ("1.000.000.000.000,00", False, "the amount is implausibly large"),
    ],
)
def test_bad_amounts_are_explained(text: str, strict: bool, reason: str) -> None:
    values = Values(day_first=True, decimal={"total": ","}, strict=strict)
    assert values.amount(text, "total") == reason


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("31-01-2026", True, date(2026, 1, 31)),
        ("1-2-2026", True, date(2026, 2, 1)),
        ("31/01/2026", True, date(2026, 1, 31)),
        ("31.01.2026", True, date(2026, 1, 31)),
        ("2026-01-31", True, date(2026, 1, 31)),
        ("2026-01-31T00:00:00", True, date(2026, 1, 31)),
        ("31-01-2026 0:00", True, date(2026, 1, 31)),
        ("01/31/2026", False, date(2026, 1, 31)),
        ("2026-01-31", False, date(2026, 1, 31)),  # ISO whatever the order
        ("31-02-2026", True, "'31-02-2026' is not a valid date"),
        ("2026-13-01", True, "'2026-13-01' is not a valid date"),
        ("31-01-26", True, "'31-01-26' is not a date (expected dd-mm-yyyy or yyyy-mm-dd)"),
        ("Jan Jansen", True, "the value is not a date (expected dd-mm-yyyy or yyyy-mm-dd)"),
    ],
)
def test_dates(text: str, day_first: bool, expected: date | str) -> None:
    assert Values(day_first=day_first, decimal={}, strict=False).day(text) == expected


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        (["1.234", "12,50"], ["1234", "12.50"]),  # decimal comma column: the dot groups
        (["1,234", "12.50"], ["1234", "12.50"]),  # decimal point column: the comma groups
        (["1.234", "2.000"], ["1234", "2000"]),  # no evidence: Dutch
    ],
)
def test_ambiguous_amounts_follow_their_column(
    tmp_path: Path, amounts: list[str], expected: list[str]
) -> None:
    data = [["Relatiecode", "Factuurnummer", "Vervaldatum", "Openstaand"]]
    data += [["1", f"F{n}", "01-10-2026", a] for n, a in enumerate(amounts)]

    found = read(write(tmp_path / "x.csv", data)).invoices

    assert [str(found[f"F{n}"].open_amount.amount) for n in range(len(amounts))] == [
        str(Decimal(e).quantize(Decimal("0.01"))) for e in expected
    ]


def test_month_first_dates_are_recognised_from_the_file(tmp_path: Path) -> None:
    data = [["Customer ID", "Invoice number", "Invoice date", "Due date", "Balance"]]
    data += [["1", "F1", "10/02/2026", "11/23/2026", "10.00"]]

    invoice = read(write(tmp_path / "us.csv", data, delimiter=",")).invoices["F1"]

    assert (invoice.issue_date, invoice.due_date) == (date(2026, 10, 2), date(2026, 11, 23))


# -- debtors ---------------------------------------------------------------------------------

KIND_AND_LANGUAGE = [
    # Soort, KvK, BTW, Taal → kind, language
    ("B", "", "", "NL", DebtorKind.BUSINESS, Language.NL),
    ("Zakelijk", "", "", "Nederlands", DebtorKind.BUSINESS, Language.NL),
    ("business", "", "", "nl-NL", DebtorKind.BUSINESS, Language.NL),
    ("P", "12345678", "", "en", DebtorKind.CONSUMER, Language.EN),
    ("Particulier", "", "", "Engels", DebtorKind.CONSUMER, Language.EN),
    ("consumer", "", "", "English", DebtorKind.CONSUMER, Language.EN),
    ("", "12345678", "", "", DebtorKind.BUSINESS, Language.NL),
    ("", "", "NL123456789B01", "Duits", DebtorKind.BUSINESS, Language.EN),
    ("Factuur", "", "", "", DebtorKind.UNKNOWN, Language.NL),  # e-Boekhouden's Soort
    ("", "", "", "", DebtorKind.UNKNOWN, Language.NL),
]


def test_kind_and_language(tmp_path: Path) -> None:
    data = [["Relatiecode", "Soort", "KvK-nummer", "BTW-nummer", "Taal", "Factuurnummer"]]
    data[0] += ["Vervaldatum", "Openstaand"]
    for n, (soort, kvk, vat, taal, *_) in enumerate(KIND_AND_LANGUAGE):
        data.append([f"D{n}", soort, kvk, vat, taal, f"F{n}", "01-10-2026", "10,00"])

    debtors = read(write(tmp_path / "x.csv", data)).debtors

    found = [(debtors[f"D{n}"].kind, debtors[f"D{n}"].language) for n in range(len(data) - 1)]
    assert found == [(kind, lang) for *_, kind, lang in KIND_AND_LANGUAGE]


def test_contacts_addresses_and_payment_details(tmp_path: Path) -> None:
    data = [
        cells(
            "Relatiecode|Naam|E-mail|Telefoon|Mobiel|Adres|Huisnummer|Postcode|Plaats|Land|IBAN|"
            "Factuurnummer|Vervaldatum|Openstaand|Valuta|Betalingskenmerk|Betaallink|Betaalwijze"
        ),
        cells(
            "1|Bakkerij B.V.|a@example.nl, b@example.nl|020-1234567|06-12345678|Kerkstraat|1a|"
            "3511ab|Utrecht|Nederland|NL91 ABNA 0417 1643 00|F0|01-10-2026|10,00|EUR|"
            "RF18 5390 0754 7034|https://pay.example.nl/F0|Automatische incasso"
        ),
        cells(
            "2|Brouwerij NV||+32 2 555 12 12||Grote Markt 1||1000|Brussel|België||F1|01-10-2026|"
            "10,00|€|||Overboeking"
        ),
        cells(
            "3|Cliff Ltd|billing@example.com|||1 High Street||SW1A 1AA|London|"
            "Verenigd Koninkrijk||F2|01-10-2026|10,00|GBP|||Direct debit"
        ),
    ]

    result = read(write(tmp_path / "x.csv", data))

    assert result.rejects == []
    one, two, three = (result.debtors[d] for d in "123")
    assert one.emails == ("a@example.nl", "b@example.nl")
    assert one.phones == ("+31201234567", "+31612345678")
    assert one.address is not None and one.address.lines == ("Kerkstraat 1a",)
    assert (one.address.postcode, one.address.city, one.address.country) == (
        "3511 AB",
        "Utrecht",
        "NL",
    )
    assert one.iban == "NL91ABNA0417164300"
    assert two.address is not None and two.address.country == "BE"
    assert three.address is not None and three.address.country == "GB"
    f0, f1, f2 = (result.invoices[f"F{n}"] for n in range(3))
    assert (f0.payment_reference, f0.payment_url, f0.direct_debit) == (
        "RF18 5390 0754 7034",
        "https://pay.example.nl/F0",
        True,
    )
    assert (f1.currency, f1.direct_debit) == ("EUR", False)
    assert (f2.currency, f2.direct_debit) == ("GBP", True)


def test_a_debtor_is_built_once_from_its_first_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = [["Relatiecode", "Naam", "E-mail", "Factuurnummer", "Vervaldatum", "Openstaand"]]
    data += [["1", "Eerste Naam B.V.", "eerste@example.nl", "F1", "01-10-2026", "10,00"]]
    data += [["1", "Andere Naam B.V.", "andere@example.nl", "F2", "01-10-2026", "10,00"]]
    data += [["2", "", "", "F3", "01-10-2026", "10,00"]]

    result = read(write(tmp_path / "x.csv", data))

    assert result.rejects == [] and set(result.invoices) == {"F1", "F2", "F3"}
    assert result.debtors["1"].emails == ("eerste@example.nl",)
    assert result.debtors["2"].name == "2"  # no name: the id stands in
    assert "1 debtor(s) have different details on later rows" in caplog.text
    assert "Andere" not in caplog.text and "Eerste" not in caplog.text


# -- layouts -----------------------------------------------------------------------------------


REPORT = """\
Ouderdomsanalyse debiteuren
Administratie;Voorbeeld Installatietechniek B.V.
Peildatum;23-11-2026

Deb.nr.;Naam;Factuurnr.;Datum;Vervalt;Factuur;Saldo;0-30;31-60;61-90;>90
10001;Bakkerij De Gouden Korrel B.V.;;;;;;;;;
;;2026-0001;01-10-2026;31-10-2026;1.210,00;1.210,00;1.210,00;;;
;;2026-0002;15-10-2026;14-11-2026;605,00;605,00;605,00;;;
Subtotaal 10001;;;;;1.815,00;1.815,00;1.815,00;;;

10002;"De Vries; J.P.";;;;;;;;;
;;2026-0003;01-07-2026;15-07-2026;121,00;60,50;;;;60,50
;;2026-0004;31-02-2026;15-03-2026;121,00;121,00;;;;121,00
Subtotaal 10002;;;;;242,00;181,50;;;;181,50

Deb.nr.;Naam;Factuurnr.;Datum;Vervalt;Factuur;Saldo;0-30;31-60;61-90;>90
10003;Café 't Hoekje;2026-0005;01-11-2026;01-12-2026;99,95;99,95;;;;
Totaal;;;;;2.156,95;2.096,45;;;;
"""


def test_report_layout_skips_titles_groups_totals_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "ouderdom.csv"
    path.write_bytes(REPORT.replace("\n", "\r\n").encode("cp1252"))

    result = read(path)

    assert sorted(result.invoices) == ["2026-0001", "2026-0002", "2026-0003", "2026-0005"]
    assert result.invoices["2026-0002"].debtor_id == "10001"
    assert result.invoices["2026-0003"].debtor_id == "10002"
    assert result.invoices["2026-0003"].open_amount.amount == Decimal("60.50")
    assert {d: x.name for d, x in result.debtors.items()} == {
        "10001": "Bakkerij De Gouden Korrel B.V.",
        "10002": "De Vries; J.P.",
        "10003": "Café 't Hoekje",
    }
    assert [(r.ref, r.reason, r.invoice_id) for r in result.rejects] == [
        ("ouderdom.csv:13", "column 'Datum': '31-02-2026' is not a valid date", "2026-0004")
    ]


def test_explicit_columns_override_detection(tmp_path: Path) -> None:
    data = [["Nr", "Klant", "Soort", "Boekstuk", "Factuurnummer", "Te betalen voor"]]
    data[0] += ["Nog open", "Mail 1", "Mail 2"]
    data += [["1", "K1", "Factuur", "B-7", "F-7", "01-10-2026", "10,00"]]
    data[1] += ["a@example.nl", "b@example.nl"]
    columns = {
        "debtor_id": "klant",
        "number": "Boekstuk",
        "due_date": "Te betalen voor",
        "open_amount": "NOG OPEN",
        "email": ["Mail 1", "Mail 2"],
        "kind": "",  # this export's Soort is the document type, not the debtor's kind
    }

    result = read(write(tmp_path / "x.csv", data), columns=columns)

    assert list(result.invoices) == ["B-7"] and result.invoices["B-7"].debtor_id == "K1"
    assert result.debtors["K1"].emails == ("a@example.nl", "b@example.nl")
    assert result.debtors["K1"].kind == DebtorKind.UNKNOWN


def test_pages_carry_each_debtor_once_with_its_first_invoice(tmp_path: Path) -> None:
    data = [["Relatiecode", "Factuurnummer", "Vervaldatum", "Openstaand"]]
    data += [[d, f"F{n}", "01-10-2026", "10,00"] for n, d in enumerate("AABCA")]

    result = read(write(tmp_path / "x.csv", data), page_size=2)

    assert [[i.external_id for i in p.invoices] for p in result.pages] == [
        ["F0", "F1"],
        ["F2", "F3"],
        ["F4"],
    ]
    assert [[d.external_id for d in p.debtors] for p in result.pages] == [["A"], ["B", "C"], []]
    assert [p.snapshot_complete for p in result.pages] == [False, False, True]


# -- bad rows ------------------------------------------------------------------------------

GOOD = "10001|Bakkerij B.V.|info@example.nl; geen-adres|3511 AB|Utrecht|2026-0001|01-10-2026|"
GOOD += "31-10-2026|1.210,00|1.210,00"
BAD_ROWS = [
    cells(line)
    for line in (
        "Relatiecode|Naam|E-mail|Postcode|Plaats|Factuurnummer|Factuurdatum|Vervaldatum|Bedrag|"
        "Openstaand",
        GOOD,  # 2: kept; the second address is dropped
        "10002|Jansen\n& Zn||12345|Utrecht|2026-0002|01-10-2026|31-10-2026|50,00|50,00",  # 3-4
        "10002|Jansen||||2026-0003|01-10-2026|31-02-2026|50,00|50,00",
        "10003|Piet Puk||||2026-0004|01-10-2026|31-10-2026|1.210,00|12,34,5",
        "10003|Piet Puk|||||01-10-2026|31-10-2026|50,00|50,00",
        "|Anoniem||||2026-0005|01-10-2026|31-10-2026|50,00|50,00",
        GOOD,  # 9: an identical repeat is ignored
        GOOD.replace("|1.210,00|1.210,00", "|1.210,00|1.000,00"),  # 10: a conflicting one
        "10004|Kees||||2026-0006|Jan Jansen|31-10-2026|9,00|9,00",
        "10004|Kees||||2026-0007|01-10-2026|31-10-2026|9,00|9,00||Kees",
        "10004|Kees||||2026-0008|01-11-2026|01-10-2026|9,00|9,00",
        "10005|Truus||||2026-0009|01-10-2026|31-10-2026|9,00|9,00",
    )
]


def test_bad_rows_are_located_and_explained_while_the_rest_syncs(tmp_path: Path) -> None:
    result = read(write(tmp_path / "bad.csv", BAD_ROWS))

    assert sorted(result.invoices) == ["2026-0001", "2026-0002", "2026-0009"]
    assert result.invoices["2026-0001"].open_amount.amount == Decimal("1210.00")
    assert [(r.kind, r.ref, r.invoice_id, r.dropped, r.reason) for r in result.rejects] == [
        (
            "debtor",
            "bad.csv:2",
            None,
            True,
            "emails.1 dropped: Value error, invalid e-mail address: An email address must "
            "have an @-sign.",
        ),
        (
            "debtor",
            "bad.csv:3",
            None,
            True,
            "column 'Postcode': not a Dutch postcode (1234 AB); the address was dropped",
        ),
        (
            "row",
            "bad.csv:5",
            "2026-0003",
            False,
            "column 'Vervaldatum': '31-02-2026' is not a valid date",
        ),
        ("row", "bad.csv:6", "2026-0004", False, "column 'Openstaand': '12,34,5' is not an amount"),
        ("row", "bad.csv:7", None, False, "column 'Factuurnummer' is empty"),
        ("row", "bad.csv:8", "2026-0005", False, "column 'Relatiecode' is empty"),
        (
            "row",
            "bad.csv:10",
            "2026-0001",
            False,
            "invoice number '2026-0001' is also on line 2 with different values; line 2 is used",
        ),
        (
            "row",
            "bad.csv:11",
            "2026-0006",
            False,
            "column 'Factuurdatum': the value is not a date (expected dd-mm-yyyy or yyyy-mm-dd)",
        ),
        (
            "row",
            "bad.csv:12",
            "2026-0007",
            False,
            "the row has 12 fields but the header 10 (an unquoted ';' in a value?)",
        ),
        (
            "invoice",
            "bad.csv:13",
            "2026-0008",
            False,
            "record: Value error, due date 2026-10-01 is before issue date 2026-11-01",
        ),
    ]
    reasons = " ".join(r.reason for r in result.rejects)
    for personal in ("Jansen", "Kees", "Piet", "Bakkerij", "@example", "1.210", "12345"):
        assert personal not in reasons


def test_totals_are_told_from_debtors_named_total(tmp_path: Path) -> None:
    data = [cells("Factuurnummer|Relatiecode|Naam|Vervaldatum|Openstaand")]
    data += [cells("F1|1|Total Energies B.V.|31-02-2026|10,00")]
    data += [cells("F2|1|Total Energies B.V.|01-10-2026|10,00")]
    data += [cells("Totaal||||20,00"), cells("|Total Energies B.V.||||")]

    result = read(write(tmp_path / "x.csv", data))

    assert list(result.invoices) == ["F2"]
    assert [(r.ref, r.invoice_id) for r in result.rejects] == [("x.csv:2", "F1")]


def test_an_unknown_currency_is_a_located_reject(tmp_path: Path) -> None:
    data = [["Relatiecode", "Factuurnummer", "Vervaldatum", "Openstaand", "Valuta"]]
    data += [["1", "F1", "01-10-2026", "10,00", "GULDEN"], ["1", "F2", "01-10-2026", "1", ""]]

    result = read(write(tmp_path / "x.csv", data), currency="USD")

    assert [(r.ref, r.reason) for r in result.rejects] == [
        ("x.csv:2", "column 'Valuta': 'GULDEN' is not an ISO 4217 currency code")
    ]
    assert result.invoices["F2"].currency == "USD"


# -- through the engine ----------------------------------------------------------------------


def ledger(*lines: tuple[str, str, str, str]) -> list[list[str]]:
    """An export of (invoice number, total, open, due date) rows for one debtor."""
    out = [["Relatiecode", "Naam", "Factuurnummer", "Factuurdatum", "Vervaldatum", "Bedrag"]]
    out[0].append("Openstaand")
    return out + [["1", "Klant B.V.", n, "01-10-2026", d, t, o] for n, t, o, d in lines]


def test_vanished_row_closes_and_lower_open_amount_is_a_partial_payment(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    path = tmp_path / "open.csv"
    write(
        path,
        ledger(
            ("F1", "1.210,00", "1.210,00", "31-10-2026"),
            ("F2", "605,00", "605,00", "31-10-2026"),
            ("F3", "99,00", "99,00", "31-10-2026"),
        ),
    )
    first = sync(store, clock, path)
    write(
        path,
        ledger(
            ("F1", "1.210,00", "1.000,00", "31-10-2026"),
            ("F3", "99,00", "99,00", "31-02-2026"),  # broken: must not count as paid
        ),
    )

    second = sync(store, clock, path)

    assert first.ok and first.counts.invoices_new == 3 and first.counts.debtors_new == 1
    assert second.ok and second.error is None
    assert (second.counts.partial_payments, second.counts.invoices_closed) == (1, 1)
    assert [(r.ref, r.invoice_id) for r in second.rejects] == [("open.csv:3", "F3")]
    with store.engine.connect() as conn:
        rows = {
            r.external_id: (r.state, r.open_minor)
            for r in conn.execute(
                sa.select(invoices.c.external_id, invoices.c.state, invoices.c.open_minor)
            )
        }
        paid = sorted(
            (r.invoice_id, r.amount_minor)
            for r in conn.execute(sa.select(payments.c.invoice_id, payments.c.amount_minor))
        )
    assert rows == {"F1": ("open", 100000), "F2": ("closed", 0), "F3": ("open", 9900)}
    assert paid == [("F1", 21000), ("F2", 60500)]


def test_unchanged_resync_writes_nothing(store: Store, clock: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    first = sync(store, clock, path)
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()

    again = sync(store, clock, path)

    with store.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    assert first.ok and first.counts.writes == 3 + 5  # 3 invoices, 5 debtors
    assert again.ok and again.counts.writes == 0 and after == before
    assert again.counts.invoices_seen == 3 and again.counts.rejects == len(first.rejects)


def test_an_unchanged_resync_reads_rows_without_rebuilding_them(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    sync(store, clock, path)
    conn = connector(path)
    with store.engine.connect() as db:
        stored = dict(
            db.execute(sa.select(invoices.c.external_id, invoices.c.raw_fingerprint)).all()
        )
    conn.previous = Previous(invoices={k: v for k, v in stored.items() if v is not None})

    (page,) = read_with(conn)

    clean = sorted(k for k, v in stored.items() if v is not None)
    flagged = sorted(k for k, v in stored.items() if v is None)
    assert clean and flagged
    assert sorted(page.unchanged_invoices) == clean
    # rows reported with a problem are rebuilt every time, so the problem stays in status
    assert sorted(i.external_id for i in page.invoices) == flagged
    assert {r.ref for r in page.rejects} == {r.ref for r in sync(store, clock, path).rejects}


def test_a_change_in_how_rows_are_read_rebuilds_them(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "bad.csv", BAD_ROWS)
    sync(store, clock, path)
    changed = sync(store, clock, path, default_payment_term_days=14)  # another reading
    assert changed.counts.invoices_seen == 3
    assert changed.counts.invoices_new == changed.counts.invoices_changed == 0
    again = sync(store, clock, path, default_payment_term_days=14)
    assert again.counts.writes == 0 and again.counts.invoices_seen == 3


def test_a_re_spelled_row_updates_only_its_fingerprint(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    header = ["Relatiecode", "Naam", "Factuurnummer", "Vervaldatum", "Openstaand"]
    path = write(tmp_path / "clean.csv", [header, ["10001", "Kees", "F1", "31-10-2026", "9,00"]])
    sync(store, clock, path)
    with store.engine.connect() as db:
        before = db.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        (old,) = db.execute(sa.select(invoices.c.raw_fingerprint)).scalars()

    write(path, [header, ["10001", "Kees", " F1 ", "31-10-2026", "9,00"]])  # same invoice
    respelled = sync(store, clock, path)

    with store.engine.connect() as db:
        after = db.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        (new,) = db.execute(sa.select(invoices.c.raw_fingerprint)).scalars()
    assert respelled.counts.writes == 0 and after == before
    assert old is not None and new is not None and new != old
    assert sync(store, clock, path).counts.invoices_seen == 1


# -- the example -----------------------------------------------------------------------------


def test_the_example_export_syncs_with_exactly_its_deliberate_rejects(
    sqlite_store: Store, clock: Any
) -> None:
    raw = EXAMPLE.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n") == 225

    result = sync(sqlite_store, clock, EXAMPLE)

    assert result.ok and result.counts.invoices_new == 221 and result.counts.debtors_new == 48
    assert [(r.kind, r.ref, r.dropped, r.reason) for r in result.rejects] == [
        (
            "row",
            "open-items.csv:16",
            False,
            "column 'Vervaldatum': '31-02-2026' is not a valid date",
        ),
        (
            "debtor",
            "open-items.csv:30",
            True,
            "emails.0 dropped: Value error, invalid e-mail address: An email address must "
            "have an @-sign.",
        ),
        ("row", "open-items.csv:59", False, "column 'Openstaand': '12,34,5' is not an amount"),
        ("row", "open-items.csv:103", False, "column 'Factuurnummer' is empty"),
    ]


def test_the_example_generator_is_deterministic(tmp_path: Path) -> None:
    out = tmp_path / "again.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "generate_open_items.py"), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == EXAMPLE.read_bytes()


# -- fatal errors ----------------------------------------------------------------------------


def test_missing_required_columns_fail_the_run_with_headers_and_aliases(
    sqlite_store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "debiteuren.csv",
        [["Overzicht"], [], ["Relatiecode", "Naam", "Bedrag"], ["1", "X", "10,00"]],
    )

    result = sync(sqlite_store, clock, path)

    assert not result.ok and result.error is not None
    assert result.error.startswith(
        "FatalConnectorError: debiteuren.csv: required columns not found; headers found on "
        "line 3: 'Relatiecode', 'Naam', 'Bedrag'. Expected number: one of 'Factuurnummer', "
        "'Factuurnr.',"
    )
    assert "open_amount: one of 'Openstaand', 'Openstaand bedrag'" in result.error
    assert "due_date (or an invoice date column to derive it from): one of 'Vervaldatum'" in (
        result.error
    )
    assert result.error.endswith("Map other header names with `columns` in connectors.toml.")
    assert result.counts.writes == 0


def test_a_headerless_file_is_not_quoted_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [["1", "Jan Jansen", "jan@example.nl", "01-10-2026"]])

    with pytest.raises(FatalConnectorError) as caught:
        read(path)

    message = str(caught.value)
    assert "line 1 holds data: an export without a header row?" in message
    assert "Jansen" not in message and "@" not in message


def test_a_missing_file_names_the_resolved_path(
    sqlite_store: Store, clock: Any, tmp_path: Path
) -> None:
    result = sync(sqlite_store, clock, tmp_path / "nowhere.csv")

    assert not result.ok
    assert result.error == f"FatalConnectorError: CSV file not found: {tmp_path / 'nowhere.csv'}"


def test_a_stray_quote_that_swallows_rows_fails_the_run_instead_of_closing_them(
    sqlite_store: Store, clock: Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "x.csv", ledger(*[(f"F{n}", "1,00", "1,00", "31-10-2026") for n in range(6)])
    )
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    lines[2] = lines[2].replace("Klant B.V.", '"Klant B.V.')  # opened on line 3, never closed
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")

    result = sync(sqlite_store, clock, path)

    assert not result.ok
    assert result.error == (
        "FatalConnectorError: x.csv:3: a quote opened on line 3 closes only on line 7, taking "
        "the lines in between into one field; fix the quoting (nothing was closed)"
    )


def test_a_multi_line_cell_is_fine(tmp_path: Path) -> None:
    data = ledger(("F1", "1,00", "1,00", "31-10-2026"), ("F2", "1,00", "1,00", "31-10-2026"))
    data[1][1] = "Klant B.V.\nt.a.v. de administratie; kamer 2"

    result = read(write(tmp_path / "x.csv", data))

    assert sorted(result.invoices) == ["F1", "F2"] and result.rejects == []


def test_csv_errors_carry_their_line(tmp_path: Path) -> None:
    data = ledger(("F1", "1,00", "1,00", "31-10-2026"), ("F2", "1,00", "1,00", "31-10-2026"))
    # Beyond the csv module's field size limit in a cell spanning lines (a stray quote): where
    # the row ends cannot be told. A long cell on one line is a reject (test_bad_cells.py).
    data[2][1] = "x\n" + "x" * 200_000

    with pytest.raises(FatalConnectorError, match=r"^x.csv:3: unreadable CSV \(field larger"):
        read(write(tmp_path / "x.csv", data))


def test_an_explicit_column_that_is_not_there_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", ledger(("F1", "1,00", "1,00", "31-10-2026")))

    with pytest.raises(FatalConnectorError, match=r"columns.payment_url = \['Link'\] is not a"):
        read(path, columns={"payment_url": "Link"})


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("utf-8", "x.csv is neither UTF-8 nor Windows-1252 (byte 0x81 at offset {})"),
        ("utf-8-sig", "x.csv is not UTF-8 despite its byte-order mark (byte 0x81 at offset {})"),
    ],
)
def test_undecodable_bytes_are_fatal_with_their_offset(
    tmp_path: Path, encoding: str, message: str
) -> None:
    path = write(
        tmp_path / "x.csv", ledger(("F1", "1,00", "1,00", "31-10-2026")), encoding=encoding
    )
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"\x81")

    with pytest.raises(FatalConnectorError) as caught:
        read(path)

    assert str(caught.value) == message.format(size) + "; set `encoding` for this connector"


def test_an_encoding_override_that_does_not_fit_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", [["Naam"], ["Noël"]], encoding="utf-8")

    with pytest.raises(FatalConnectorError, match=r"x.csv cannot be read as ascii \(ordinal"):
        read(path, encoding="ascii")


def test_a_late_cp1252_byte_is_detected_beyond_the_sample(tmp_path: Path) -> None:
    data = ledger(("F1", "1,00", "1,00", "31-10-2026"), ("F2", "1,00", "1,00", "31-10-2026"))
    data[0].append("Omschrijving")
    data[1].append("x" * 70_000)  # the first 64 KiB are plain ASCII
    data[2][:2] = ["2", "Café Noël"]
    path = write(tmp_path / "x.csv", data, encoding="cp1252")

    result = read(path)

    assert result.rejects == [] and sorted(result.invoices) == ["F1", "F2"]
    assert result.debtors["2"].name == "Café Noël"
    assert path.read_bytes().index("Noël".encode("cp1252")) > 64 * 1024


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"delimeter": ";"}, "Extra inputs are not permitted"),
        ({"encoding": "utf9"}, "unknown encoding 'utf9'; use e.g. 'utf-8', 'utf-8-sig' or"),
        ({"delimiter": "tab"}, "Input should be ';', ',', '\\t' or '|'"),
        ({"columns": {"invoice_no": "Nr"}}, "Input should be 'debtor_id', 'name'"),
        ({"columns": {"total": ["A", "B"]}}, "'total' takes one header; only email, phone"),
        ({"columns": {"number": ""}}, "'number' is required and cannot be switched off"),
        (
            {"columns": {"number": "Nr", "debtor_id": "NR."}},
            "header 'NR.' is mapped to both 'number' and 'debtor_id'",
        ),
        ({"page_size": 0}, "Input should be greater than or equal to 1"),
        ({"currency": "EURO"}, "'EURO' is not an ISO 4217 currency code"),
    ],
)
def test_settings_errors_are_clear(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        CsvSettings.model_validate({"path": "x.csv", **settings})


def test_settings_problems_name_file_table_and_key(tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(
        textwrap.dedent(
            """
            [connectors.books]
            type = "csv"
            path = "open.csv"
            encoding = "utf9"
            default_payment_term_days = -1
            """
        ),
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        load_config(config, Plugins(entry_points=False))

    found = [str(p) for p in caught.value.problems]
    assert found == [
        f"{config}: [connectors.books.encoding]: Value error, unknown encoding 'utf9'; use e.g. "
        "'utf-8', 'utf-8-sig' or 'cp1252'",
        f"{config}: [connectors.books.default_payment_term_days]: Input should be greater "
        "than or equal to 0",
    ]


def test_aliases_are_unambiguous_after_normalising() -> None:
    seen: dict[str, str] = {}
    for key, aliases in ALIASES.items():
        for alias in aliases:
            assert seen.setdefault(normalise_header(alias), key) == key, alias
    assert normalise_header(" Deb.nr. ") == normalise_header("DEBNR") == "debnr"


def test_a_rejected_debtor_does_not_hold_back_its_invoices(tmp_path: Path) -> None:
    data = [cells("Relatiecode|KvK-nummer|Factuurnummer|Vervaldatum|Openstaand")]
    data += [cells("1|1234|F1|01-10-2026|10,00"), cells("1|1234|F2|01-10-2026|10,00")]

    result = read(write(tmp_path / "x.csv", data))

    assert sorted(result.invoices) == ["F1", "F2"] and result.debtors == {}
    assert [(r.kind, r.ref, r.reason) for r in result.rejects] == [
        ("debtor", "x.csv:2", "kvk: Value error, KvK number must be 8 digits")
    ]


def test_the_reference_documents_every_alias_and_setting() -> None:
    doc = (ROOT / "docs" / "connectors" / "csv.md").read_text(encoding="utf-8")
    for key, aliases in ALIASES.items():
        assert f"\n| `{key}` | " + ", ".join(f"`{a}`" for a in aliases) + " |\n" in doc
    for setting in CsvSettings.model_fields:
        assert f"| `{setting}` |" in doc
