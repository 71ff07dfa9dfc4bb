"""The built-in CSV connector and the email and file actions pass the conformance kit, exactly
as a third-party plugin would run it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from debsync.actions.email import FileAction, FileSettings, SmtpAction, SmtpSettings
from debsync.connectors.csv import CsvConnector
from debsync.model import Money
from debsync.testing import (
    ActionChecks,
    ActionHarness,
    ConnectorChecks,
    ConnectorHarness,
    SampleBook,
)
from debsync.testing.actions import Failure

from csv_helpers import connector, write
from smtp_server import DROP, SMTPTestServer

HEADER = [
    "Relatiecode",
    "Naam",
    "Soort",
    "E-mail",
    "Telefoon",
    "Adres",
    "Postcode",
    "Plaats",
    "KvK-nummer",
    "Taal",
    "Factuurnummer",
    "Factuurdatum",
    "Vervaldatum",
    "Bedrag",
    "Openstaand",
    "Valuta",
    "Betalingskenmerk",
]


def dutch(amount: Money) -> str:
    whole, _, cents = f"{abs(amount.amount):.2f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return f"{'-' if amount.amount < 0 else ''}{grouped},{cents}"


class ExportHarness(ConnectorHarness):
    """The fake source is an export as e-Boekhouden or SnelStart write it: ; and 1.234,56."""

    min_pages = 3

    def __init__(self, directory: Path) -> None:
        self.path = directory / "openstaande-posten.csv"
        self.book: SampleBook | None = None
        self.open: dict[str, Money] = {}

    def connector(self) -> CsvConnector:
        return connector(self.path, page_size=3)

    def write(self) -> None:
        assert self.book is not None
        debtors = {d.external_id: d for d in self.book.debtors}
        rows = [HEADER]
        for invoice in self.book.invoices:
            if invoice.number not in self.open:
                continue
            d = debtors[invoice.debtor_id]
            address = d.address
            rows.append(
                [
                    d.external_id,
                    d.name,
                    "Zakelijk" if d.kind.value == "business" else "Particulier",
                    ", ".join(d.emails),
                    d.phones[0],
                    address.lines[0] if address else "",
                    address.postcode if address else "",
                    address.city if address else "",
                    d.kvk or "",
                    d.language.value,
                    invoice.number,
                    f"{invoice.issue_date:%d-%m-%Y}",
                    f"{invoice.due_date:%d-%m-%Y}",
                    dutch(invoice.total),
                    dutch(self.open[invoice.number]),
                    invoice.currency,
                    invoice.payment_reference or "",
                ]
            )
        write(self.path, rows)

    def seed(self, book: SampleBook) -> None:
        self.book = book
        self.open = {i.number: i.open_amount for i in book.invoices}
        self.write()

    def set_open_amount(self, number: str, amount: Money) -> None:
        self.open[number] = amount
        self.write()

    def remove(self, number: str) -> None:
        del self.open[number]
        self.write()

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        if kind == "transient":  # the exporting program is still writing
            Path(f"{self.path}.lock").touch()
        else:
            self.path.unlink()


class TestCsvConnector(ConnectorChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ConnectorHarness:
        return ExportHarness(tmp_path)


class FileHarness(ActionHarness):
    failures: tuple[Failure, ...] = ("unavailable",)

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.directory = tmp_path / "outbox"

    def action(self) -> FileAction:
        settings = FileSettings.model_validate(
            {"directory": "outbox", "from_address": "debiteuren@voorbeeld.example.nl"}
        )
        return FileAction("files", settings, self.environment())

    def deliveries(self) -> int:
        return len(list(self.directory.glob("*.eml"))) if self.directory.is_dir() else 0

    def fail_next(self, kind: str) -> None:  # the folder is gone and a file is in its way
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.write_text("not a folder")


class TestFileAction(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ActionHarness:
        return FileHarness(tmp_path)


class SmtpHarness(ActionHarness):
    """A real SMTP server on loopback; failures are its replies."""

    def __init__(self, tmp_path: Path, server: SMTPTestServer) -> None:
        super().__init__(tmp_path)
        self.server = server

    def action(self) -> SmtpAction:
        settings = SmtpSettings.model_validate(
            {
                "host": self.server.host,
                "port": self.server.port,
                "security": "none",
                "allow_insecure": True,
                "from_address": "debiteuren@voorbeeld.example.nl",
                "timeout": 5,
            }
        )
        return SmtpAction("mail", settings, self.environment())

    def deliveries(self) -> int:
        return len(self.server.messages)

    def fail_next(self, kind: str) -> None:
        stage, reply = {
            "retryable": ("DATA", "451 4.3.0 Try again later"),
            "permanent": ("RCPT", "550 5.1.1 Mailbox unavailable"),
            "unknown": ("CONTENT", DROP),
            "unavailable": ("MAIL", "530 5.7.0 Authentication required"),
        }[kind]
        self.server.fail(stage, reply, times=1)


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as server:
        yield server


class TestSmtpAction(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path, smtp_server: SMTPTestServer) -> ActionHarness:
        return SmtpHarness(tmp_path, smtp_server)
