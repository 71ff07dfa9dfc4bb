"""Scriptable fakes for engine tests: an in-memory connector whose yield the test sets,
recording actions, and a batch of sends as the outbox makes one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from debsync import hookimpl
from debsync.actions.base import Action, ActionError, ActionSettings, MessageContext, Receipt
from debsync.config import ConnectorInstance
from debsync.connectors.base import JSON, Connector, ConnectorContext, ConnectorSettings, Page
from debsync.model import Debtor, Invoice, Money


class FakeSettings(ConnectorSettings):
    label: str = "fake"
    token: SecretStr | None = None
    page_size: int = Field(default=100, gt=0)


class FakeConnector(Connector[FakeSettings]):
    """Yields ``pages`` (a list of Page) for a snapshot; ``fail_after`` raises after N pages."""

    type_name: ClassVar[str] = "fake"
    Settings: ClassVar[type[ConnectorSettings]] = FakeSettings

    def __init__(
        self,
        pages: list[Page],
        *,
        fail_after: int | None = None,
        capabilities: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__("books", FakeSettings(), ConnectorContext("books", Path(".")))
        self.pages = pages
        self.fail_after = fail_after
        self.capabilities = capabilities  # type: ignore[misc]
        self.cursors_seen: list[JSON] = []

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        self.cursors_seen.append(cursor)
        start = int(cursor["page"]) if isinstance(cursor, dict) else 0  # type: ignore[arg-type]
        for index, page in enumerate(self.pages[start:], start=start):
            if self.fail_after is not None and index >= self.fail_after:
                raise RuntimeError(f"crash before page {index}")
            yield page


INSTANCE = ConnectorInstance("books", "fake", FakeConnector, FakeSettings())


def debtor(ext: str = "D1", **changes: Any) -> Debtor:
    data: dict[str, Any] = {
        "external_id": ext,
        "name": f"Debiteur {ext} B.V.",
        "kind": "business",
        "emails": [f"{ext.lower()}@example.nl"],
    }
    data.update(changes)
    return Debtor.model_validate(data)


def invoice(
    ext: str,
    open_amount: str = "121.00",
    *,
    debtor_id: str = "D1",
    total: str = "121.00",
    due: date = date(2026, 10, 1),
    currency: str = "EUR",
) -> Invoice:
    return Invoice(
        external_id=ext,
        number=ext,
        debtor_id=debtor_id,
        issue_date=date(2026, 9, 1),
        due_date=due,
        total=Money.of(total, currency),
        open_amount=Money.of(open_amount, currency),
    )


def snapshot(*invoices: Invoice, debtors: tuple[Debtor, ...] = (), per_page: int = 2) -> list[Page]:
    """Split a full snapshot into pages with page-number cursors."""
    pages = [
        Page(invoices=list(invoices[i : i + per_page]), cursor={"page": i // per_page + 1})
        for i in range(0, max(len(invoices), 1), per_page)
    ]
    pages[0].debtors = list(debtors)
    pages[-1].snapshot_complete = True
    return pages


class FakePlugin:
    """Registers the fake connector the way a third-party package would."""

    @hookimpl
    def debsync_register_connectors(self, register: Any) -> None:
        register(FakeConnector)


def money(text: str) -> Decimal:
    return Decimal(text)


class RecordingSettings(ActionSettings):
    pass


class RecordingAction(Action[RecordingSettings]):
    """An email-channel action that records what it sends. ``script`` maps an idempotency key
    to exceptions raised on successive attempts; ``dispatched`` False acts like a printed
    letter waiting to be posted."""

    type_name: ClassVar[str] = "recording"
    Settings: ClassVar[type[ActionSettings]] = RecordingSettings
    channel: ClassVar[str] = "email"
    sent: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    script: ClassVar[dict[str, list[Exception]]] = {}
    dispatched: ClassVar[bool] = True
    batches: ClassVar[int] = 0

    def render(self, context: MessageContext) -> dict[str, Any]:
        return {
            "to": list(context.debtor.emails),
            "step": context.step,
            "invoices": [line.number for line in context.invoices],
            "principal": str(context.principal),
            "interest": None if context.interest is None else str(context.interest),
            "costs": None if context.costs is None else str(context.costs),
            "announced_costs": None
            if context.announced_costs is None
            else str(context.announced_costs),
        }

    async def send(self, payload: dict[str, Any], idempotency_key: str) -> Receipt:
        failures = self.script.get(idempotency_key)
        if failures:
            raise failures.pop(0)
        self.sent.append((idempotency_key, payload))
        return Receipt(provider_id=f"rec-{len(self.sent)}", dispatched=self.dispatched)

    async def __aenter__(self) -> RecordingAction:
        type(self).batches += 1
        return self


class IdempotentRecordingAction(RecordingAction):
    type_name: ClassVar[str] = "recording-idempotent"
    idempotent: ClassVar[bool] = True


class LetterRecordingAction(RecordingAction):
    type_name: ClassVar[str] = "recording-letter"
    channel: ClassVar[str] = "letter"
    dispatched: ClassVar[bool] = False


async def batch(action: Action[Any], items: Sequence[tuple[dict[str, Any], str]]) -> list[Any]:
    """Send every (payload, key) in one ``async with``, as the outbox sends a batch; each
    outcome is a receipt or the error the action raised."""
    outcomes: list[Any] = []
    async with action:
        for payload, key in items:
            try:
                outcomes.append(await action.send(payload, key))
            except ActionError as exc:
                outcomes.append(exc)
    return outcomes
