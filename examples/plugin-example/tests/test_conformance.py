"""The example plugin against debsync's conformance kit: one harness and one class per type."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import respx
from debsync_jsonl_example import ChatWebhookAction, JsonLinesConnector
from debsync_jsonl_example.action import ChatWebhookSettings
from debsync_jsonl_example.connector import JsonLinesSettings

from debsync.actions.base import ActionEnvironment
from debsync.connectors.base import ConnectorContext
from debsync.model import Money
from debsync.templates import Templates
from debsync.testing import (
    ActionChecks,
    ActionHarness,
    ConnectorChecks,
    ConnectorHarness,
    SampleBook,
    fetch_all,
    sample_context,
)

WEBHOOK = "https://chat.example.com/hooks/T000/B000/XXXX"


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


class ExportHarness(ConnectorHarness):
    """The fake source is the export file itself."""

    min_pages = 3  # seven invoices, three per page

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "open-items.jsonl"
        self.debtors: list[dict[str, Any]] = []
        self.invoices: dict[str, dict[str, Any]] = {}

    def connector(self) -> JsonLinesConnector:
        settings = JsonLinesSettings(path=Path("open-items.jsonl"), page_size=3)
        return JsonLinesConnector("shop", settings, ConnectorContext("shop", self.directory))

    def write(self) -> None:
        records = self.debtors + list(self.invoices.values())
        self.path.write_text("".join(line(r) for r in records), encoding="utf-8")

    def seed(self, book: SampleBook) -> None:
        self.debtors = [
            {
                "record": "debtor",
                "id": d.external_id,
                "name": d.name,
                "kind": d.kind.value,
                "emails": list(d.emails),
                "phones": list(d.phones),
                "language": d.language.value,
                "address": d.address.model_dump(mode="json") if d.address else None,
                "kvk": d.kvk,
                "vat": d.vat,
            }
            for d in book.debtors
        ]
        self.invoices = {
            i.number: {
                "record": "invoice",
                "id": i.external_id,
                "number": i.number,
                "debtor": i.debtor_id,
                "issued": i.issue_date.isoformat(),
                "due": i.due_date.isoformat(),
                "total": str(i.total.amount),
                "open": str(i.open_amount.amount),
                "currency": i.currency,
                "reference": i.payment_reference,
            }
            for i in book.invoices
        }
        self.write()

    def set_open_amount(self, number: str, amount: Money) -> None:
        self.invoices[number]["open"] = str(amount.amount)
        self.write()

    def remove(self, number: str) -> None:
        del self.invoices[number]
        self.write()

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        if kind == "transient":
            Path(f"{self.path}.lock").touch()  # the exporting program is still writing
        else:
            self.path.unlink()


class TestJsonLinesConnector(ConnectorChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ConnectorHarness:
        return ExportHarness(tmp_path)


class ChatHarness(ActionHarness):
    """A fake chat webhook, as the respx router the test runs under."""

    def __init__(self, tmp_path: Path, router: respx.MockRouter) -> None:
        super().__init__(tmp_path)
        self.received: list[dict[str, Any]] = []
        self.failure: str | None = None
        router.post(WEBHOOK).mock(side_effect=self.respond)

    def respond(self, request: httpx.Request) -> httpx.Response:
        failure, self.failure = self.failure, None
        if failure == "unknown":
            raise httpx.ReadTimeout("no answer", request=request)
        status = {"retryable": 503, "permanent": 400, "unavailable": 403}.get(failure or "", 200)
        if status == 200:
            self.received.append(json.loads(request.content))
        return httpx.Response(status, text="ok" if status == 200 else "error")

    def action(self) -> ChatWebhookAction:
        settings = ChatWebhookSettings.model_validate({"url": WEBHOOK})
        return ChatWebhookAction("sales-chat", settings, self.environment())

    def deliveries(self) -> int:
        return len(self.received)

    def fail_next(self, kind: str) -> None:
        self.failure = kind


class TestChatWebhookAction(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path, respx_mock: respx.MockRouter) -> ActionHarness:
        return ChatHarness(tmp_path, respx_mock)


def test_a_bad_line_is_rejected_where_it_is_and_the_rest_syncs(tmp_path: Path) -> None:
    export = tmp_path / "open-items.jsonl"
    good = {
        "record": "invoice",
        "id": "F1",
        "number": "F1",
        "debtor": "D1",
        "issued": "2026-10-01",
        "due": "2026-10-31",
        "total": "121.00",
        "open": "121.00",
    }
    export.write_text(
        line({"record": "debtor", "id": "D1", "name": "Bakkerij De Gouden Korrel B.V."})
        + line(good)
        + "{not json\n"
        + line({**good, "id": "F2", "number": "F2", "open": 12.5})
        + line({"record": "payment"}),
        encoding="utf-8",
    )
    settings = JsonLinesSettings(path=Path("open-items.jsonl"))
    (page,) = fetch_all(JsonLinesConnector("shop", settings, ConnectorContext("shop", tmp_path)))

    assert [i.number for i in page.invoices] == ["F1"]
    assert [(r.ref, r.invoice_id) for r in page.rejects] == [
        ("open-items.jsonl:3", None),
        ("open-items.jsonl:4", "F2"),  # known id: not mistaken for a paid invoice
        ("open-items.jsonl:5", None),
    ]
    assert "not JSON numbers" in page.rejects[1].reason


def test_the_notice_names_the_debtor_and_the_amount_open(tmp_path: Path) -> None:
    settings = ChatWebhookSettings.model_validate({"url": WEBHOOK, "language": "en"})
    env = ActionEnvironment(instance="sales-chat", config_dir=tmp_path, templates=Templates())
    action = ChatWebhookAction("sales-chat", settings, env)
    payload = action.render(sample_context("aanmaning", "webhook"))
    assert payload == {
        "text": "Debtor D20017 (J.P. de Vries) reached step 'aanmaning': 2 invoice(s), "
        "€1,105.00 outstanding. Please stop delivering on credit until payment arrives."
    }


def test_retry_after_is_passed_on(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    from debsync.actions.base import RetryableActionError

    respx_mock.post(WEBHOOK).mock(return_value=httpx.Response(429, headers={"Retry-After": "30"}))
    action = ChatHarness(tmp_path, respx.mock()).action()

    async def send() -> None:
        async with action:
            await action.send({"text": "x"}, "k" * 32)

    with pytest.raises(RetryableActionError) as caught:
        asyncio.run(send())
    assert caught.value.retry_after == 30.0
