"""One pass over one export: rows to records, a page at a time."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import itemgetter
from typing import Any

from pydantic import TypeAdapter, ValidationError

from debsync.clock import local_date
from debsync.connectors.base import Connector, Page, RecordBuilder
from debsync.connectors.csv.aliases import DEBTOR_FIELDS, INVOICE_FIELDS
from debsync.connectors.csv.lines import remembering, split_line
from debsync.connectors.csv.settings import CsvSettings
from debsync.connectors.csv.sniffing import Layout
from debsync.connectors.csv.values import (
    CellError,
    Values,
    country_code,
    debtor_kind,
    is_direct_debit,
    is_failed_collection,
    language,
    number_or_none,
)
from debsync.connectors.csv.workbook import Sheet
from debsync.errors import FatalConnectorError
from debsync.invoice_rows import InvoiceRow
from debsync.kinds import infer_kind
from debsync.model import MAX_ID_LENGTH, Address, Currency, DebtorKind, currency_exponent
from debsync.plain_debtors import plain_address
from debsync.prior_steps import parse_level

_CURRENCY: TypeAdapter[str] = TypeAdapter(Currency)
_TOTAL_ROW = re.compile(r"(?:sub|eind|grand\s*)?tota(?:a)?l\b", re.IGNORECASE)
_SPLIT_EMAILS = re.compile(r"[;,\s]+")
_SPLIT_PHONES = re.compile(r"[;,/]")
_ROW_FIELDS = frozenset(
    {"external_id", "number", "debtor_id", "issue_date", "due_date", "total", "open_amount"}
    | {"payment_reference", "payment_url", "direct_debit", "direct_debit_failed"}
)
"""The fields an invoice read by :meth:`FileReader.plain_row` has set: those of
:meth:`FileReader.invoice_data`'s mapping."""


@dataclass
class _Stats:
    rows: int = 0
    skipped: int = 0
    duplicates: int = 0
    unknown_kinds: int = 0
    kindless: list[str] = field(default_factory=list)
    contradicting: set[str] = field(default_factory=set)


def _shifted(day: date, term: timedelta) -> date | None:
    """``day`` moved by the payment term, ``None`` beyond the calendar (31-12-9999)."""
    try:
        return day + term
    except OverflowError:
        return None


class FileReader:
    """One pass over one file: rows to records, a page at a time.

    Every row is padded with one extra empty cell, and a field without a column reads that
    cell, so one ``itemgetter`` call fetches all fields of a row.
    """

    def __init__(
        self,
        connector: Connector[CsvSettings],
        name: str,
        layout: Layout,
        sheet: Sheet | None = None,
    ) -> None:
        self.settings = connector.settings
        self.sheet = sheet
        """The workbook sheet being read, ``None`` for a CSV file."""
        self.row_line = 0
        """Line (or sheet row) of the row being read, for :meth:`column`."""
        self.log = connector.context.logger
        self.instance = connector.instance
        self.name = name
        self.layout = layout
        self.values = Values(
            day_first=layout.day_first,
            decimal=layout.decimal,
            strict=self.settings.decimal != "auto",
        )
        self.term = timedelta(days=self.settings.default_payment_term_days)
        self.today = local_date(connector.context.clock())
        self.builder = RecordBuilder()
        self.stats = _Stats()
        self.debtors: dict[str, int] = {}
        """Debtor id → hash of the debtor cells it was built from (first row wins)."""
        self.invoices: dict[str, tuple[int, int]] = {}
        """Invoice number → (line, hash of its cells), to tell repeats from conflicts."""
        self.group: list[str] | None = None
        """The current debtor group header row of a report-style export."""
        self.group_line = 0
        self.line = 1
        """Physical line where the next record starts: where a csv error is."""
        self.currencies: dict[str, str] = {"": self.settings.currency}
        self.methods: dict[str, tuple[bool, bool]] = {}
        self.previous = connector.previous
        self.salt = hashlib.blake2b(
            repr((self.settings.model_dump(mode="json", exclude={"page_size"}), layout)).encode(),
            digest_size=16,
        )
        """What a row means depends on the settings and the layout: both salt the row's
        raw fingerprint (connectors.base.Previous), so a change to either rebuilds it."""

        def at(key: str) -> int:
            column = layout.one(key)
            return column.index if column else layout.width

        self.debtor_at = at("debtor_id")
        self.date_at = [at("issue_date"), at("due_date")]
        self.debtor_cells = itemgetter(*(at(key) for key in DEBTOR_FIELDS))
        self.contact_columns = [
            column.index for key in ("email", "phone") for column in layout.columns.get(key, ())
        ]
        self.invoice_cells = itemgetter(*(at(key) for key in INVOICE_FIELDS))

    def header(self, key: str) -> str:
        column = self.layout.one(key)
        assert column is not None  # only asked for fields that have a column
        return column.header

    def column(self, key: str) -> str:
        """A field's column for a reason: ``column 'Vervaldatum'``, in a workbook with the
        cell of the row being read (``column 'Vervaldatum' (Sheet1!C7)``)."""
        named = f"column {self.header(key)!r}"
        column = self.layout.one(key)
        if self.sheet is None or column is None:
            return named
        return f"{named} ({self.sheet.cell(self.row_line, column.index)})"

    def ref(self, line: int) -> str:
        return f"{self.name}:{self.sheet.title}!{line}" if self.sheet else f"{self.name}:{line}"

    def pages(self, handle: io.TextIOBase) -> Iterator[Page]:
        last = [""]
        reader = csv.reader(remembering(handle, last), delimiter=self.layout.delimiter)
        header_record = self.layout.header_record
        record = -1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # the reader goes on with the next physical line
                self.unreadable(reader.line_num, last[0], exc, record < header_record)
                continue
            record += 1
            line, end = self.line, reader.line_num
            self.line = end + 1
            if record <= header_record:
                continue
            if end > line:
                self.check_quotes(line, end, row)
            if self.take(line, row):
                yield self.builder.page(cursor=None)
        yield self.builder.page(cursor=None, snapshot_complete=True)
        self.report()

    def sheet_pages(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[Page]:
        """The pages of a workbook's sheet: (row number, cells) after the header row."""
        for line, row in rows:
            if line > self.layout.header_record + 1 and self.take(line, row):
                yield self.builder.page(cursor=None)
        yield self.builder.page(cursor=None, snapshot_complete=True)
        self.report()

    def take(self, line: int, row: list[str]) -> bool:
        """Read one row after the header; whether a page is full."""
        builder, width = self.builder, self.layout.width
        number_at = self.layout.columns["number"][0].index
        self.stats.rows += 1
        self.row_line = line
        if len(row) != width:
            if len(row) < width:
                row += [""] * (width - len(row))
            elif any(cell.strip() for cell in row[width:]):
                self.overlong(line, row[number_at].strip(), len(row))
                return False
            else:
                del row[width:]
        row.append("")
        number = row[number_at].strip()
        try:
            if number and number != self.layout.columns["number"][0].header:
                self.invoice_row(line, row, number)
            else:
                self.other_row(line, row, number)
        except Exception as exc:  # a bug must cost one row, not the sync
            # Where it failed, not what it said: the message of a bug may quote the row's cells.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            self.log.error(
                "csv %s: %s: unexpected %s\n%s",
                self.instance,
                self.ref(line),
                type(exc).__name__,
                frames,
            )
            reason = f"the row cannot be read ({type(exc).__name__})"
            builder.reject("row", self.ref(line), reason, invoice_id=number or None)
        return len(builder.invoices) >= self.settings.page_size

    def unreadable(self, end: int, text: str, exc: csv.Error, in_header: bool) -> None:
        """A row the csv module refuses is a reject when it is one physical line whose cells
        can still be told apart (its invoice stays open); one spanning lines (a stray quote)
        or in the header fails the file, before anything is closed."""
        line, self.line = self.line, end + 1
        cells = (
            None
            if in_header or end != line
            else split_line(text.rstrip("\r\n"), self.layout.delimiter)
        )
        if cells is None:
            raise FatalConnectorError(
                f"{self.name}:{line}: unreadable CSV ({exc}); nothing was closed"
            )
        self.stats.rows += 1
        at = self.layout.columns["number"][0].index
        number = cells[at].strip() if at < len(cells) else ""
        self.builder.reject(
            "row",
            self.ref(line),
            f"the row cannot be read ({exc})",
            invoice_id=number if number and len(number) <= MAX_ID_LENGTH else None,
        )

    def check_quotes(self, line: int, end: int, row: list[str]) -> None:
        """A stray opening quote swallows the lines up to the next quote into one field.
        Those rows would vanish and their invoices be closed as paid, so the file is
        refused instead; a genuine multi-line cell (an address) has few separators."""
        limit = max(2, self.layout.width // 2)
        if any("\n" in cell and cell.count(self.layout.delimiter) >= limit for cell in row):
            raise FatalConnectorError(
                f"{self.name}:{line}: a quote opened on line {line} closes only on line {end}, "
                "taking the lines in between into one field; fix the quoting (nothing was "
                "closed)"
            )

    def overlong(self, line: int, number: str, fields: int) -> None:
        self.builder.reject(
            "row",
            self.ref(line),
            f"the row has {fields} fields but the header {self.layout.width} "
            f"(an unquoted {self.layout.delimiter!r} in a value?)",
            invoice_id=number or None,
        )

    def other_row(self, line: int, row: list[str], number: str) -> None:
        """A row without an invoice number: blank, repeated header, total, group header,
        label, or an invoice that lost its number (it still has a date)."""
        first = next((cell.strip() for cell in row if cell.strip()), "")
        if number or not first or _TOTAL_ROW.match(first):
            self.stats.skipped += 1
        elif any(row[i].strip() for i in self.date_at):
            self.builder.reject("row", self.ref(line), f"{self.column('number')} is empty")
        elif row[self.debtor_at].strip():
            self.group, self.group_line = row, line
        else:
            self.stats.skipped += 1

    def invoice_row(self, line: int, row: list[str], number: str) -> None:
        debtor_line, debtor_row = line, row
        if self.group is not None and not row[self.debtor_at].strip():
            debtor_line = self.group_line
            debtor_row = [c if c.strip() else g for c, g in zip(row, self.group, strict=True)]
        debtor = self.debtor_cells(debtor_row)
        fields = self.invoice_cells(row)
        key = hash((debtor[0], fields))
        first = self.invoices.setdefault(number, (line, key))
        if first[0] != line:
            if first[1] == key:
                self.stats.duplicates += 1
            else:
                self.builder.reject(
                    "row",
                    self.ref(line),
                    f"invoice number {number!r} is also on line {first[0]} with different "
                    f"values; line {first[0]} is used",
                    invoice_id=number,
                )
            return
        problems: list[str] = []
        debtor_id = self.debtor(debtor_line, debtor_row, debtor, problems)
        raw = self.raw((debtor_id, fields))
        if not problems and self.previous.invoices.get(number) == raw:
            self.builder.unchanged("invoice", number)
            return
        if not problems:
            plain = self.plain_row(fields, debtor_id)
            ref = self.ref(line)
            if plain is not None and self.builder.invoice_row(
                plain, ref=ref, fields=_ROW_FIELDS, raw=raw
            ):
                return
        data = self.invoice_data(fields, debtor_id, problems)
        if not problems:
            data.update(self.prior_step(line, number, fields[-2:], data["issue_date"]))
            self.builder.invoice(data, ref=self.ref(line), raw=raw)
        elif _TOTAL_ROW.match(number) and not any(row[i].strip() for i in self.date_at):
            # "Totaal" in the invoice number column; an invoice "Total-7" has dates
            self.stats.skipped += 1
            del self.invoices[number]
        else:
            self.builder.reject("row", self.ref(line), "; ".join(problems), invoice_id=number)

    def debtor(self, line: int, row: list[str], cells: tuple[str, ...], problems: list[str]) -> str:
        """The row's debtor id; the debtor is built from the first row that names it."""
        debtor_id = cells[0].strip()
        if not debtor_id or len(debtor_id) > MAX_ID_LENGTH:
            problems.append(self.id_problem("debtor_id", debtor_id))
            return ""
        known = self.debtors.get(debtor_id)
        if known is None:
            self.debtors[debtor_id] = hash(cells)
            raw = self.raw((cells, tuple(row[i] for i in self.contact_columns)))
            if self.previous.debtors.get(debtor_id) == raw:
                self.builder.unchanged("debtor", debtor_id)
            else:
                fields = dict(zip(DEBTOR_FIELDS, cells, strict=True))
                self.build_debtor(line, row, debtor_id, fields, raw)
        elif known != hash(cells):
            self.stats.contradicting.add(debtor_id)
        return debtor_id

    def id_problem(self, key: str, value: str) -> str:
        if value:
            return f"{self.column(key)} is longer than {MAX_ID_LENGTH} characters"
        return f"{self.column(key)} is empty"

    def raw(self, cells: object) -> bytes:
        """The raw fingerprint of a record's cells (see ``salt``)."""
        digest = self.salt.copy()
        digest.update(repr(cells).encode())
        return digest.digest()

    def build_debtor(
        self, line: int, row: list[str], debtor_id: str, cells: dict[str, str], raw: bytes
    ) -> None:
        one = {key: value.strip() for key, value in cells.items()}
        ref = self.ref(line)
        kind = debtor_kind(one["kind"])
        if kind is None:
            self.stats.unknown_kinds += bool(one["kind"])
            kind = infer_kind(one["name"], one["kvk"], one["vat"])
        if kind is DebtorKind.UNKNOWN:
            self.stats.kindless.append(debtor_id)
        columns = self.layout.columns
        emails = [
            email
            for column in columns.get("email", ())
            for email in _SPLIT_EMAILS.split(row[column.index])
            if email
        ]
        phones = [
            phone.strip()
            for column in columns.get("phone", ())
            for phone in _SPLIT_PHONES.split(row[column.index])
            if phone.strip()
        ]
        self.builder.debtor(
            {
                "external_id": debtor_id,
                "name": one["name"] or debtor_id,
                "kind": kind,
                "emails": list(dict.fromkeys(emails)),
                "phones": list(dict.fromkeys(phones)),
                "language": language(one["language"]),
                "address": self.address(ref, one),
                "kvk": number_or_none(one["kvk"]),
                "vat": number_or_none(one["vat"]),
                "iban": one["iban"] or None,
            },
            ref=ref,
            raw=raw,
        )

    def address(self, ref: str, one: Mapping[str, str]) -> Address | None:
        """The debtor's address, or ``None`` with a "dropped" reject when it is unusable: a
        bad postcode must not cost the debtor its e-mail reminders."""
        street = " ".join(part for part in (one["address"], one["house_number"]) if part)
        postcode, city, country = one["postcode"], one["city"], one["country"]
        if not (street or postcode or city or country):
            return None
        try:
            code = country_code(country) if country else "NL"
            lines = (street,) if street else ()
            return plain_address(lines, postcode, city, code) or Address(
                lines=lines, postcode=postcode, city=city, country=code
            )
        except CellError as exc:
            reason = f"{self.column('country')}: {exc}"
        except ValidationError:  # only the postcode check is left once the country is a code
            reason = f"{self.column('postcode')}: not a Dutch postcode (1234 AB)"
        self.builder.reject("debtor", ref, f"{reason}; the address was dropped", dropped=True)
        return None

    def problem(self, key: str, reason: str) -> str:
        return f"{self.column(key)}: {reason}"

    def direct_debit(self, method: str) -> tuple[bool, bool]:
        """Whether a payment-method cell means direct debit, and whether that failed."""
        found = self.methods.get(method)
        if found is None:
            failed = is_failed_collection(method)
            found = self.methods[method] = (failed or is_direct_debit(method), failed)
        return found

    def currency(self, text: str, problems: list[str]) -> str:
        """The ISO code of a currency cell (``€`` is EUR); validated once per spelling."""
        try:
            code = _CURRENCY.validate_python("EUR" if text in ("€", "EURO", "Euro") else text)
        except ValidationError:
            problems.append(self.problem("currency", f"{text!r} is not an ISO 4217 currency code"))
            return self.settings.currency
        self.currencies[text] = code
        return code

    def plain_row(self, fields: tuple[str, ...], debtor_id: str) -> InvoiceRow | None:
        """The row of an invoice written plainly (both dates, amounts with two decimals in a
        currency of cents, no prior step), read in a few steps; ``None`` for anything else,
        which :meth:`invoice_data` reads and explains."""
        if fields[9] or fields[10]:
            return None
        number, issued, due, total, open_, currency, reference, url = map(str.strip, fields[:8])
        code = self.currencies.get(currency)
        if code is None or not issued or not due or not open_ or currency_exponent(code) != 2:
            return None
        values = self.values
        issue_date, due_date = values.day(issued), values.day(due)
        open_minor = values.cents(open_, "open_amount")
        total_minor = values.cents(total, "total") if total else open_minor
        if (
            type(issue_date) is not date
            or type(due_date) is not date
            or open_minor is None
            or total_minor is None
        ):
            return None
        direct_debit, failed = self.direct_debit(fields[8])
        return InvoiceRow(
            number,
            number,
            debtor_id,
            issue_date,
            due_date,
            code,
            total_minor,
            open_minor,
            reference or None,
            url or None,
            direct_debit,
            False,
            failed,
        )

    def invoice_data(
        self, fields: tuple[str, ...], debtor_id: str, problems: list[str]
    ) -> dict[str, Any]:
        """The Invoice mapping of one row; what is wrong with it goes to ``problems``."""
        number, issued_text, due_text, total_text, open_text, currency_text, reference, url = map(
            str.strip, fields[:8]
        )
        values = self.values
        direct_debit, collection_failed = self.direct_debit(fields[8])
        issued = values.day(issued_text) if issued_text else None
        due = values.day(due_text) if due_text else None
        open_amount = values.amount(open_text, "open_amount") if open_text else None
        total = values.amount(total_text, "total") if total_text else open_amount
        currency = self.currencies.get(currency_text) or self.currency(currency_text, problems)
        if isinstance(issued, str):
            problems.append(self.problem("issue_date", issued))
        if isinstance(due, str):
            problems.append(self.problem("due_date", due))
        if isinstance(issued, str) or isinstance(due, str):
            pass
        elif due is not None:
            issued = issued or _shifted(due, -self.term)
            if issued is None:
                problems.append(self.problem("due_date", "no invoice date lies a term before it"))
        elif issued is not None:
            due = _shifted(issued, self.term)  # no due date: the payment term applies
            if due is None:
                problems.append(self.problem("issue_date", "no due date lies a term after it"))
        else:
            key = "due_date" if self.layout.one("due_date") else "issue_date"
            problems.append(f"{self.column(key)} is empty")
        if isinstance(open_amount, str):
            problems.append(self.problem("open_amount", open_amount))
        elif open_amount is None:
            problems.append(f"{self.column('open_amount')} is empty")
        if isinstance(total, str) and total_text:
            problems.append(self.problem("total", total))
        if len(number) > MAX_ID_LENGTH:
            problems.append(self.id_problem("number", number))
        if len(reference) > MAX_ID_LENGTH:
            problems.append(self.id_problem("payment_reference", reference))
        return {
            "external_id": number,
            "number": number,
            "debtor_id": debtor_id,
            "issue_date": issued,
            "due_date": due,
            "total": {"amount": total, "currency": currency},
            "open_amount": {"amount": open_amount, "currency": currency},
            "payment_reference": reference or None,
            "payment_url": url or None,
            "direct_debit": direct_debit,
            "direct_debit_failed": collection_failed,
        }

    def prior_step(
        self, line: int, number: str, cells: tuple[str, ...], issued: date
    ) -> dict[str, Any]:
        """The dunning step the export says was already taken (a level and its date; a date
        alone is a reminder). A value that cannot be used is dropped with a located reject:
        the invoice is kept, without the prior step."""
        level_text, date_text = cells[0].strip(), cells[1].strip()
        if not level_text and not date_text:
            return {}
        try:
            level = parse_level(level_text) if level_text else "reminder"
        except ValueError as exc:
            problem = self.problem("prior_level", str(exc))
        else:
            if level is None:
                return {}
            day = self.values.day(date_text) if date_text else None
            if day is None:
                problem = f"{self.column('prior_level')}: {level_text!r} has no date"
            elif isinstance(day, str):
                problem = self.problem("prior_date", day)
            elif day > self.today:
                problem = self.problem("prior_date", f"{date_text!r} lies in the future")
            elif day < issued:
                problem = self.problem("prior_date", f"{date_text!r} is before the invoice date")
            else:
                return {"prior_step": level, "prior_step_on": day}
        reason = f"{problem}; the prior dunning step was dropped"
        self.builder.reject("invoice", self.ref(line), reason, invoice_id=number, dropped=True)
        return {}

    def report(self) -> None:
        """One summary line per file; ids only, never names or amounts."""
        stats = self.stats
        self.log.info(
            "csv %s: %s: %d row(s) after the header, %d skipped (blank, total, label or "
            "repeated header rows), %d identical repeat(s) ignored",
            self.instance,
            self.name,
            stats.rows,
            stats.skipped,
            stats.duplicates,
        )
        if stats.contradicting:
            self.log.warning(
                "csv %s: %d debtor(s) have different details on later rows; the first row "
                "of each was used (e.g. %s)",
                self.instance,
                len(stats.contradicting),
                ", ".join(sorted(stats.contradicting)[:5]),
            )
        if stats.kindless:
            self.log.warning(
                "csv %s: %d debtor(s) of unknown kind (no type column value, legal form, KvK "
                "or VAT number): the policy's unknown_kind applies (e.g. %s)",
                self.instance,
                len(stats.kindless),
                ", ".join(stats.kindless[:5]),
            )
        if stats.unknown_kinds:
            self.log.warning(
                "csv %s: %d debtor(s) have an unrecognised value in column %r; their kind "
                "was derived from the legal form in the name and KvK and VAT numbers instead",
                self.instance,
                stats.unknown_kinds,
                self.header("kind"),
            )
