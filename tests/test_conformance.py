"""The built-in CSV connector and the email, file, SMS and letter actions pass the conformance
kit, exactly as a third-party plugin would run it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
import respx

from debsync.actions.email import FileAction, FileSettings, SmtpAction, SmtpSettings
from debsync.actions.letter import PrintLetterAction, PrintLetterSettings
from debsync.actions.sms import SmsAction, SmsSettings
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

from csv_helpers import connector, export_header, write
from smtp_server import DROP, SMTPTestServer

HEADER = export_header()


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


class PrintLetterHarness(ActionHarness):
    """The print folder: a letter is a PDF in it; a file where the folder should be fails."""

    failures: tuple[Failure, ...] = ("unavailable",)

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.directory = tmp_path / "letters"

    def action(self) -> PrintLetterAction:
        settings = PrintLetterSettings.model_validate({"directory": "letters"})
        return PrintLetterAction("post", settings, self.environment())

    def deliveries(self) -> int:
        return len(list(self.directory.glob("*.pdf"))) if self.directory.is_dir() else 0

    def fail_next(self, kind: str) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.write_text("not a folder")


class TestPrintLetterAction(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ActionHarness:
        return PrintLetterHarness(tmp_path)


CM_URL = "https://gw.cmtelecom.com/v1.0/message"


class CmHarness(ActionHarness):
    """The SMS action against CM.com's gateway faked with respx in its documented shapes: an
    accepted message echoes the request's reference; failures are the gateway's answers."""

    def __init__(self, tmp_path: Path, router: respx.MockRouter) -> None:
        super().__init__(tmp_path)
        self.accepted = 0
        self.failing: list[str] = []
        router.post(CM_URL).mock(side_effect=self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        (message,) = json.loads(request.content)["messages"]["msg"]
        reference = message["reference"]
        kind = self.failing.pop(0) if self.failing else "accepted"
        if kind == "unknown":
            raise httpx.ReadTimeout("read timed out", request=request)
        if kind == "accepted":
            self.accepted += 1
        return {
            "accepted": httpx.Response(200, json=cm_answer(reference, "Accepted", 0)),
            "retryable": httpx.Response(503, text="Service Unavailable"),
            "permanent": httpx.Response(200, json=cm_answer(reference, "Rejected", 402)),
            "unavailable": httpx.Response(401, json={"errorCode": 999}),
        }[kind]

    def action(self) -> SmsAction:
        settings = SmsSettings.model_validate(
            {
                "provider": "cm",
                "product_token": "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b",
                "sender": "Voorbeeld",
            }
        )
        return SmsAction("sms", settings, self.environment())

    def deliveries(self) -> int:
        return self.accepted

    def fail_next(self, kind: str) -> None:
        self.failing.append(kind)


def cm_answer(reference: str, status: str, error_code: int) -> dict[str, object]:
    message = {
        "to": "0031687654321",
        "status": status,
        "reference": reference,
        "parts": 1,
        "messageDetails": None,
        "messageErrorCode": error_code,
    }
    return {"details": "Created 1 message(s)", "errorCode": 0, "messages": [message]}


class TestSmsAction(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path, respx_mock: respx.MockRouter) -> ActionHarness:
        return CmHarness(tmp_path, respx_mock)
