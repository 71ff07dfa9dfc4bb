"""The conformance kit itself: a well-behaved connector and action pass every check, and
deliberately broken ones fail with messages that say what is wrong."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field

from debsync.actions.call import CallAction, CallSettings
from debsync.connectors.base import JSON, Connector, ConnectorContext, ConnectorSettings, Page
from debsync.errors import FatalConnectorError, RetryableConnectorError
from debsync.model import Invoice, Money
from debsync.testing import (
    ActionChecks,
    ActionHarness,
    ConnectorChecks,
    ConnectorHarness,
    SampleBook,
)


class Source:
    """A fake bookkeeping API: a change feed by version, and pages of ``page_size``."""

    def __init__(self) -> None:
        self.book: SampleBook | None = None
        self.invoices: dict[str, tuple[int, Invoice | None]] = {}  # number -> (version, invoice)
        self.version = 0
        self.failure: str | None = None

    def put(self, number: str, invoice: Invoice | None) -> None:
        self.version += 1
        self.invoices[number] = (self.version, invoice)


SOURCES: dict[str, Source] = {}


class SourceSettings(ConnectorSettings):
    source: str = Field(description="Which fake source to read.")
    page_size: int = Field(default=3, gt=0, description="Invoices per page.")


class SourceConnector(Connector[SourceSettings]):
    type_name: ClassVar[str] = "memory"
    Settings: ClassVar[type[ConnectorSettings]] = SourceSettings
    capabilities: ClassVar[frozenset[str]] = frozenset({"incremental"})

    async def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        source = SOURCES[self.settings.source]
        if source.failure == "transient":
            source.failure = None
            raise RetryableConnectorError("503 Service Unavailable")
        if source.failure == "fatal":
            source.failure = None
            raise FatalConnectorError("401 Unauthorized: the API token was revoked")
        assert source.book is not None
        since = cursor["version"] if isinstance(cursor, dict) else None
        changed = sorted(
            (n, inv) for n, (v, inv) in source.invoices.items() if since is None or v > since
        )
        size = self.settings.page_size
        chunks = [changed[i : i + size] for i in range(0, len(changed), size)] or [[]]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            yield Page(
                debtors=list(source.book.debtors) if index == 0 and since is None else [],
                invoices=[inv for _, inv in chunk if inv is not None],
                closed=[n for n, inv in chunk if inv is None],
                cursor={"version": source.version} if last else {"offset": index},
                snapshot_complete=last and since is None,
            )


class SourceHarness(ConnectorHarness):
    min_pages = 2

    def __init__(self, name: str) -> None:
        self.name = name
        SOURCES[name] = self.source = Source()

    def connector(self) -> Connector[Any]:
        settings = SourceSettings(source=self.name)
        return SourceConnector("memory", settings, ConnectorContext("memory", Path(".")))

    def seed(self, book: SampleBook) -> None:
        self.source.book = book
        for invoice in book.invoices:
            self.source.put(invoice.number, invoice)

    def set_open_amount(self, number: str, amount: Money) -> None:
        _, invoice = self.source.invoices[number]
        assert invoice is not None
        self.source.put(number, invoice.model_copy(update={"open_amount": amount}))

    def remove(self, number: str) -> None:
        self.source.put(number, None)

    def fail_next(self, kind: Literal["transient", "fatal"]) -> None:
        self.source.failure = kind


class TestAnIncrementalConnectorPassesTheKit(ConnectorChecks):
    @pytest.fixture
    def harness(self, request: pytest.FixtureRequest) -> ConnectorHarness:
        return SourceHarness(request.node.name)


class CallHarness(ActionHarness):
    """The built-in call action: a filed task is keyed by the action, so filing twice
    files once."""

    failures = ()

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.filed: set[str] = set()

    def action(self) -> CallAction:
        harness = self

        class Filing(CallAction):
            async def send(self, payload: dict[str, Any], idempotency_key: str) -> Any:
                harness.filed.add(idempotency_key)
                return await super().send(payload, idempotency_key)

        return Filing("calls", CallSettings(), self.environment())

    def deliveries(self) -> int:
        return len(self.filed)

    def fail_next(self, kind: str) -> None:
        raise AssertionError("the call queue cannot fail")


class TestTheCallActionPassesTheKit(ActionChecks):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ActionHarness:
        return CallHarness(tmp_path)


BROKEN_CONNECTOR = """
    import pytest
    from typing import ClassVar
    from debsync.connectors.base import Connector, ConnectorSettings, Page
    from debsync.testing import ConnectorChecks, ConnectorHarness

    class Settings(ConnectorSettings):
        url: str = "https://api.example.nl"          # no description

    class Broken(Connector[Settings]):
        type_name: ClassVar[str] = "broken"
        Settings: ClassVar[type] = Settings

        async def fetch(self, cursor):
            book = self.context.book
            for invoice in book.invoices:              # every page claims to be the last,
                yield Page(invoices=[invoice, invoice], cursor={"page": 1},
                           snapshot_complete=True)     # yields each invoice twice, no debtors
            if self.context.failure:
                raise ValueError("HTTP 503")           # not a ConnectorError

    class Harness(ConnectorHarness):
        book = None
        failure = None

        def connector(self):
            from pathlib import Path
            from debsync.connectors.base import ConnectorContext
            connector = Broken("broken", Settings(), ConnectorContext("broken", Path(".")))
            connector.context = self
            return connector

        def seed(self, book):
            self.book = book

        def set_open_amount(self, number, amount):
            pass

        def remove(self, number):
            pass

        def fail_next(self, kind):
            self.failure = kind

    class TestBroken(ConnectorChecks):
        @pytest.fixture
        def harness(self):
            return Harness()
"""


def test_a_broken_connector_fails_the_kit_with_reasons(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=textwrap.dedent(BROKEN_CONNECTOR))
    result = pytester.runpytest("-q")
    output = result.stdout.str()
    result.assert_outcomes(failed=10, passed=0)
    for reason in (
        "without description=...: url",
        "exactly the last page of a full snapshot must set snapshot_complete",
        "invoice ids yielded twice in one snapshot",
        "invoices whose debtor the snapshot never yields",
        "a transient failure raised ValueError: HTTP 503; it must raise "
        "RetryableConnectorError so that the daemon retries it later",
    ):
        assert reason in output, f"missing {reason!r} in:\n{output}"


BROKEN_ACTION = """
    import pytest
    from typing import ClassVar
    from debsync.actions.base import Action, ActionSettings, Receipt
    from debsync.testing import ActionChecks, ActionHarness

    class Settings(ActionSettings):
        pass

    class Fax(Action[Settings]):
        type_name: ClassVar[str] = "fax"
        Settings: ClassVar[type] = Settings
        channel: ClassVar[str] = "webhook"
        idempotent: ClassVar[bool] = True                 # a promise it does not keep

        def render(self, context):
            return {"to": context.debtor.name, "due": context.deadline}   # a date: not JSON

        async def send(self, payload, idempotency_key):
            FaxHarness.sent += 1
            if FaxHarness.failure:
                FaxHarness.failure = None
                raise RuntimeError("line busy")           # says nothing to the outbox
            return Receipt()

    class FaxHarness(ActionHarness):
        sent = 0
        failure = None

        def action(self):
            return Fax("fax", Settings(), self.environment())

        def deliveries(self):
            return FaxHarness.sent

        def fail_next(self, kind):
            FaxHarness.failure = kind

    class TestFax(ActionChecks):
        @pytest.fixture
        def harness(self, tmp_path):
            return FaxHarness(tmp_path)
"""


def test_a_broken_action_fails_the_kit_with_reasons(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fax=textwrap.dedent(BROKEN_ACTION))
    result = pytester.runpytest("-q")
    output = result.stdout.str()
    for reason in (
        "the payload is not JSON-serialisable",
        "declares idempotent = True, but sending the same payload with the same key twice "
        "delivered 2 times",
        "a retryable failure raised RuntimeError: line busy; it must raise "
        "RetryableActionError so that the outbox tries again later",
    ):
        assert reason in output, f"missing {reason!r} in:\n{output}"
    for failed in (  # one per step, language, kind and failure: none hides another
        "test_renders_every_shipped_step[consumer-reminder-nl]",
        "test_renders_every_shipped_step[business-handoff-en]",
        "test_failures_map_to_what_the_outbox_should_do[retryable]",
        "test_failures_map_to_what_the_outbox_should_do[unavailable]",
    ):
        assert f"FAILED test_fax.py::TestFax::{failed}" in output, output
    # 3 webhook steps x 2 languages x 2 kinds, 4 failures, idempotency; 4 unused steps x 4
    result.assert_outcomes(failed=17, passed=3, skipped=16)
