"""The connector contract: what a bookkeeping source yields and what the core does with it.

A connector reads; the sync engine (``debsync.sync``) owns everything else: cursors, upserts,
change detection, closing invoices that left the open set, and the record of rejects. A
connector therefore never touches the store.

A minimal third-party connector::

    class JsonLinesConnector(Connector[JsonLinesSettings]):
        type_name = "jsonl"
        Settings = JsonLinesSettings

        async def fetch(self, cursor):
            builder = RecordBuilder()
            for line_no, line in enumerate(open(self.settings.path), start=1):
                builder.invoice(json.loads(line), ref=f"{self.settings.path}:{line_no}")
            yield builder.page(cursor=None, snapshot_complete=True)

    @debsync.hookimpl
    def debsync_register_connectors(register):
        register(JsonLinesConnector)
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from debsync.clock import Clock, system_clock
from debsync.model import Debtor, Invoice, Payment

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]
"""A cursor is any JSON value; the engine stores it verbatim and hands it back."""


class ConnectorSettings(BaseModel):
    """Base of every connector's settings: unknown keys in ``connectors.toml`` are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Reject:
    """A record that could not be used, with where it came from and why.

    :param kind: ``"debtor"``, ``"invoice"``, ``"payment"`` or ``"row"`` (unparseable input).
    :param ref: the record's external id, or ``file:line`` for a row with no usable id.
    :param reason: a sentence an operator understands; no personal data.
    :param invoice_id: the invoice's external id when it is known despite the error, so a
        snapshot does not mistake a broken row for a vanished (paid) invoice.
    :param dropped: ``True`` when the record itself was kept and only a field was dropped
        (an invalid e-mail address, say).
    """

    kind: str
    ref: str
    reason: str
    invoice_id: str | None = None
    dropped: bool = False


@dataclass
class Page:
    """One batch from a connector, committed atomically together with its cursor.

    :param cursor: JSON-serialisable position to resume after this page.
    :param snapshot_complete: on the last page of a full snapshot (``fetch(None)``): every
        open invoice of this instance that no page of the snapshot mentioned is closed.
    :param closed: external ids of invoices the source says left the open set.
    """

    debtors: list[Debtor] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    cursor: JSON = None
    snapshot_complete: bool = False

    @property
    def record_count(self) -> int:
        return len(self.invoices) + len(self.debtors) + len(self.payments) + len(self.rejects)


@dataclass(frozen=True)
class ConnectorContext:
    """What the core gives a connector: never the store, never other connectors.

    :param config_dir: directory of ``connectors.toml``; relative paths in settings resolve
        against it.
    """

    instance: str
    config_dir: Path
    clock: Clock = system_clock
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("debsync.connector"))


SettingsT = TypeVar("SettingsT", bound=ConnectorSettings)


class Connector(ABC, Generic[SettingsT]):
    """Base class of every connector type.

    :cvar type_name: the ``type = "..."`` value in ``connectors.toml``.
    :cvar Settings: pydantic model validating the instance's table.
    :cvar capabilities: what the engine may ask beyond ``fetch``: ``"incremental"`` (a non-None
        cursor yields changes only), ``"documents"``, ``"notes"``, ``"webhooks"``.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, instance: str, settings: SettingsT, context: ConnectorContext) -> None:
        self.instance = instance
        self.settings = settings
        self.context = context

    @abstractmethod
    def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        """Yield pages of normalised records.

        ``cursor`` is ``None`` for a full snapshot, whose last page sets
        ``snapshot_complete``. Connectors without the ``"incremental"`` capability always get
        ``None``. Raise :class:`~debsync.errors.RetryableConnectorError` for transient failures
        and :class:`~debsync.errors.FatalConnectorError` for ones that need a person; a bad
        record is a :class:`Reject` in the page, not an exception.
        """

    async def fetch_document(self, invoice: Invoice) -> bytes | None:
        """Return the invoice PDF (capability ``"documents"``)."""
        raise NotImplementedError(f"{self.type_name} does not supply documents")

    async def record_note(self, invoice: Invoice, text: str) -> None:
        """Write a note back to the bookkeeping program (capability ``"notes"``)."""
        raise NotImplementedError(f"{self.type_name} does not record notes")


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


_SALVAGEABLE = frozenset({"emails", "phones"})


class RecordBuilder:
    """Validates raw mappings into records and collects rejects, so one bad record never fails
    a page.

    A debtor whose only faults are unusable e-mail addresses or phone numbers is kept without
    them (the invoices still need their debtor); each dropped value is reported.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.debtors: list[Debtor] = []
        self.invoices: list[Invoice] = []
        self.payments: list[Payment] = []
        self.rejects: list[Reject] = []

    def reject(self, kind: str, ref: str, reason: str, *, invoice_id: str | None = None) -> None:
        self.rejects.append(Reject(kind, ref, reason, invoice_id=invoice_id))

    def debtor(self, data: Mapping[str, Any], *, ref: str) -> Debtor | None:
        try:
            debtor = Debtor.model_validate(data)
        except ValidationError as error:
            salvaged = self._salvage_contacts(data, error, ref)
            if salvaged is None:
                self.reject("debtor", ref, _reason(error))
                return None
            debtor = salvaged
        self.debtors.append(debtor)
        return debtor

    def _salvage_contacts(
        self, data: Mapping[str, Any], error: ValidationError, ref: str
    ) -> Debtor | None:
        bad: dict[str, set[int]] = {}
        for item in error.errors(include_url=False, include_input=False):
            loc = item["loc"]
            if len(loc) < 2 or loc[0] not in _SALVAGEABLE or not isinstance(loc[1], int):
                return None
            bad.setdefault(str(loc[0]), set()).add(loc[1])
        cleaned = dict(data)
        for name, indexes in bad.items():
            cleaned[name] = [v for i, v in enumerate(data[name]) if i not in indexes]
        try:
            debtor = Debtor.model_validate(cleaned)
        except ValidationError:
            return None
        for item in error.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in item["loc"])
            self.rejects.append(
                Reject("debtor", ref, f"{where} dropped: {item['msg']}", dropped=True)
            )
        return debtor

    def invoice(self, data: Mapping[str, Any], *, ref: str) -> Invoice | None:
        try:
            invoice = Invoice.model_validate(data)
        except ValidationError as error:
            known = data.get("external_id")
            self.reject("invoice", ref, _reason(error), invoice_id=str(known) if known else None)
            return None
        self.invoices.append(invoice)
        return invoice

    def payment(self, data: Mapping[str, Any], *, ref: str) -> Payment | None:
        try:
            payment = Payment.model_validate(data)
        except ValidationError as error:
            self.reject("payment", ref, _reason(error))
            return None
        self.payments.append(payment)
        return payment

    def page(self, *, cursor: JSON, snapshot_complete: bool = False) -> Page:
        """Hand over what was built as a page and start afresh."""
        page = Page(
            debtors=self.debtors,
            invoices=self.invoices,
            payments=self.payments,
            rejects=self.rejects,
            cursor=cursor,
            snapshot_complete=snapshot_complete,
        )
        self._reset()
        return page
