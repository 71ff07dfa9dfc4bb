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
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from debsync.clock import Clock, system_clock
from debsync.connectors.http import HttpFactory
from debsync.invoice_rows import InvoiceRow, Invoices, is_plain, row_of
from debsync.model import (
    MAX_ID_LENGTH,
    Debtor,
    Invoice,
    Payment,
    clean_text,
    has_invisible,
    plain_invoice,
)
from debsync.plain_debtors import plain_debtor

if TYPE_CHECKING:
    from debsync.connectors.oauth import OAuthFlow

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
    :param unchanged_invoices: external ids whose raw input matches :class:`Previous`: seen,
        and not rebuilt. ``unchanged_debtors`` likewise.
    :param raw: ``("invoice" | "debtor", external id)`` → fingerprint of the raw input the
        record in this page was built from, kept for the next sync's :class:`Previous`.
    """

    debtors: list[Debtor] = field(default_factory=list)
    invoices: Sequence[Invoice] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    cursor: JSON = None
    snapshot_complete: bool = False
    unchanged_invoices: list[str] = field(default_factory=list)
    unchanged_debtors: list[str] = field(default_factory=list)
    raw: dict[tuple[str, str], bytes] = field(default_factory=dict)

    @property
    def record_count(self) -> int:
        return (
            len(self.invoices)
            + len(self.debtors)
            + len(self.payments)
            + len(self.rejects)
            + len(self.unchanged_invoices)
        )


@dataclass
class SyncCounts:
    """What one sync run changed in the store, by kind."""

    debtors_new: int = 0
    debtors_changed: int = 0
    invoices_new: int = 0
    invoices_changed: int = 0
    invoices_closed: int = 0
    invoices_reopened: int = 0
    partial_payments: int = 0
    payments_new: int = 0
    invoices_seen: int = 0
    rejects: int = 0

    @property
    def writes(self) -> int:
        return sum(v for k, v in asdict(self).items() if k not in ("invoices_seen", "rejects"))


@dataclass
class SyncResult:
    """The outcome of one sync run of one instance, as reported to hooks and the CLI."""

    instance: str
    run_id: int
    snapshot: bool
    ok: bool = False
    pages: int = 0
    counts: SyncCounts = field(default_factory=SyncCounts)
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Previous:
    """What the last sync stored, as fingerprints of the raw input each record was built from
    (``Page.raw``). A connector that fingerprints its raw input the same way may report a
    record whose fingerprint matches as unchanged (``Page.unchanged_invoices``) instead of
    parsing and validating it again: an unchanged re-sync of a large export then costs little
    more than reading it. Only invoices still open are listed, so a record that returns after
    being closed is always rebuilt. Optional: a connector that ignores it stays correct."""

    invoices: Mapping[str, bytes] = field(default_factory=dict)
    debtors: Mapping[str, bytes] = field(default_factory=dict)


class TokenVault(Protocol):
    """Where a connector keeps OAuth tokens that rotate (its own instance's only).

    The core supplies one per instance (the OS keyring, or the store encrypted with the
    ``[store] token_key``); a connector never learns which. Every method may block briefly.
    """

    def load(self) -> dict[str, Any] | None:
        """The tokens last saved, or ``None`` before the first ``debsync auth``."""

    def save(self, tokens: dict[str, Any]) -> None:
        """Persist ``tokens`` durably (committed) before returning."""

    def lock(self) -> AbstractContextManager[None]:
        """Held around load-refresh-save, so one process refreshes at a time, across
        processes sharing the store."""


@dataclass(frozen=True)
class ConnectorContext:
    """What the core gives a connector: never the store, never other connectors.

    :param config_dir: directory of ``connectors.toml``; relative paths in settings resolve
        against it.
    :param http: makes the HTTP clients of REST connectors, with the retry, rate-limit,
        redaction and error policy of :mod:`debsync.connectors.http`; the engine reads the
        totals of what they did from ``http.stats``.
    :param tokens: the instance's :class:`TokenVault`, for connectors whose OAuth refresh
        tokens rotate; ``None`` where the core has none to give (no keyring, no token key).
    """

    instance: str
    config_dir: Path
    clock: Clock = system_clock
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("debsync.connector"))
    http: HttpFactory = field(default_factory=HttpFactory)
    tokens: TokenVault | None = None


class WebhookRefused(Exception):
    """A webhook delivery that is not authentic, or too old to trust; the message says which
    and quotes nothing from the request."""


SettingsT = TypeVar("SettingsT", bound=ConnectorSettings)


class Connector(ABC, Generic[SettingsT]):
    """Base class of every connector type.

    :cvar type_name: the ``type = "..."`` value in ``connectors.toml``.
    :cvar Settings: pydantic model validating the instance's table.
    :cvar capabilities: what the engine may ask beyond ``fetch``: ``"incremental"`` (a non-None
        cursor yields changes only), ``"digest"`` (the last page's cursor is a digest of the
        whole source; handed back, an unchanged source yields one empty complete page and the
        engine repeats the last snapshot), ``"documents"``, ``"notes"``, ``"webhooks"``.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, instance: str, settings: SettingsT, context: ConnectorContext) -> None:
        self.instance = instance
        self.settings = settings
        self.context = context
        self.previous = Previous()
        """Set by the sync engine before :meth:`fetch`; see :class:`Previous`."""

    @abstractmethod
    def fetch(self, cursor: JSON) -> AsyncIterator[Page]:
        """Yield pages of normalised records.

        ``cursor`` is ``None`` for a full snapshot, whose last page sets
        ``snapshot_complete``. Connectors without the ``"incremental"`` capability get
        ``None``, or with ``"digest"`` the last complete snapshot's digest. Raise
        :class:`~debsync.errors.RetryableConnectorError` for transient failures and
        :class:`~debsync.errors.FatalConnectorError` for ones that need a person; a bad record
        is a :class:`Reject` in the page, not an exception.
        """

    async def fetch_document(self, invoice: Invoice) -> bytes | None:
        """Return the invoice PDF (capability ``"documents"``)."""
        raise NotImplementedError(f"{self.type_name} does not supply documents")

    async def record_note(self, invoice: Invoice, text: str) -> None:
        """Write a note back to the bookkeeping program (capability ``"notes"``)."""
        raise NotImplementedError(f"{self.type_name} does not record notes")

    async def record_handoff(self, invoice: Invoice) -> None:
        """Mark an invoice handed to a collection agency in the bookkeeping program, when its
        settings ask for it (capability ``"notes"``); the default does nothing."""

    async def register_webhook(self, url: str) -> str:
        """Subscribe ``url`` to the source's change events (capability ``"webhooks"``) and
        return the signing secret, which the source shows only once."""
        raise NotImplementedError(f"{self.type_name} does not send webhooks")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check one delivery (``headers`` with lower-case names, ``body`` as received) against
        the instance's secret and return its id, by which the core records it once; raise
        :class:`WebhookRefused` when it is not authentic or too old (capability ``"webhooks"``)."""
        raise WebhookRefused(f"{self.type_name} does not send webhooks")

    async def webhook_page(self, payload: Mapping[str, Any], cursor: JSON) -> Page | None:
        """The change a verified delivery carries, as an incremental page; ``None`` when it
        carries nothing to apply. ``cursor`` is the last sync's; the core keeps it as it is,
        so the next sync still sees every change (capability ``"webhooks"``)."""
        return None

    async def list_administrations(self) -> list[tuple[str, str]]:
        """The administrations (Exact: divisions) the credentials reach, as (id, name), for
        ``debsync auth INSTANCE --list-administrations``."""
        raise NotImplementedError(f"{self.type_name} does not list administrations")

    def oauth(self) -> OAuthFlow | None:
        """The instance's OAuth2 flow, for ``debsync auth INSTANCE`` (authorise, adopt a
        refresh token); ``None``: the credentials are all in ``connectors.toml``."""
        return None


def _reason(error: Exception) -> str:
    if not isinstance(error, ValidationError):  # a validator bug: its message may quote data
        return f"record: cannot be read ({type(error).__name__})"
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _invisible(data: Mapping[str, Any]) -> list[str]:
    """The fields whose text loses control or bidi-control characters in the model (e-mail
    addresses and phone numbers are not cleaned but checked: such a value is dropped)."""
    everything: list[str] = []
    for key, value in data.items():
        if key in _SALVAGEABLE:
            continue
        if isinstance(value, str):  # the common case, without a list of its own
            everything.append(value)
        elif isinstance(value, list | tuple):
            everything.extend(_strings(value))
    # One search over all the record's text first: nearly every record is clean. A newline
    # joins them because it is a line break, which has_invisible does not count.
    if not has_invisible("\n".join(everything)):
        return []
    return [
        key
        for key, value in data.items()
        if key not in _SALVAGEABLE and any(has_invisible(t) for t in _strings(value))
    ]


def _strings(value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple) else (value,)
    return [v for v in values if isinstance(v, str)]


_SALVAGEABLE = frozenset({"emails", "phones"})
_REASON_LENGTH = 2000
"""A reject reason is a sentence or a few; a longer one is cut, so it always stores."""


class RecordBuilder:
    """Validates raw mappings into records and collects rejects, so one bad record never fails
    a page: any exception while validating one is that record's reject.

    A debtor whose only faults are unusable e-mail addresses or phone numbers is kept without
    them (the invoices still need their debtor), and an invoice whose only fault is its payment
    link without the link; each dropped value is reported, as are control characters removed.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.debtors: list[Debtor] = []
        self.invoices = Invoices()
        self.payments: list[Payment] = []
        self.rejects: list[Reject] = []
        self.unchanged_invoices: list[str] = []
        self.unchanged_debtors: list[str] = []
        self.raw: dict[tuple[str, str], bytes] = {}
        self._flagged: set[str] = set()  # refs with a reject in this page

    def unchanged(self, kind: str, external_id: str) -> None:
        """Report a record whose raw input matches :class:`Previous` (``"invoice"`` or
        ``"debtor"``): seen, not rebuilt."""
        target = self.unchanged_invoices if kind == "invoice" else self.unchanged_debtors
        target.append(external_id)

    def reject(
        self,
        kind: str,
        ref: str,
        reason: str,
        *,
        invoice_id: str | None = None,
        dropped: bool = False,
    ) -> None:
        """Report a problem with the record at ``ref``; ``dropped`` when the record was kept
        with the offending field removed (see :class:`Reject`). Ref, reason and invoice id are
        cleaned and bounded as the model bounds text, so the reject itself always stores; an
        invoice id too long to be stored names no stored invoice and is left out."""
        self._flagged.add(ref)
        invoice_id = clean_text(invoice_id) if invoice_id else None
        self.rejects.append(
            Reject(
                kind,
                clean_text(ref)[:MAX_ID_LENGTH],
                clean_text(reason)[:_REASON_LENGTH],
                invoice_id=invoice_id if invoice_id and len(invoice_id) <= MAX_ID_LENGTH else None,
                dropped=dropped,
            )
        )

    def _cleaned(self, kind: str, data: Mapping[str, Any], ref: str) -> None:
        fields = _invisible(data)
        if fields:
            reason = f"{', '.join(fields)}: control or bidi-control characters removed"
            self.reject(kind, ref, reason, dropped=True)

    def debtor(
        self, data: Mapping[str, Any], *, ref: str, raw: bytes | None = None
    ) -> Debtor | None:
        """Validate a debtor; ``raw`` fingerprints the input it came from (:class:`Previous`).
        A plain one is built directly (``plain_debtor``): it has nothing to clean."""
        debtor = plain_debtor(data)
        if debtor is None:
            debtor = self._validated_debtor(data, ref)
            if debtor is None:
                return None
            self._cleaned("debtor", data, ref)
        self.debtors.append(debtor)
        self._remember(("debtor", debtor.external_id), raw, ref)
        return debtor

    def _validated_debtor(self, data: Mapping[str, Any], ref: str) -> Debtor | None:
        """The validator's debtor, without the contacts it refuses; ``None`` rejected."""
        try:
            return Debtor.model_validate(data)
        except ValidationError as error:
            salvaged = self._salvage_contacts(data, error, ref)
            if salvaged is None:
                self.reject("debtor", ref, _reason(error))
            return salvaged
        except Exception as error:
            self.reject("debtor", ref, _reason(error))
            return None

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
            self.reject("debtor", ref, f"{where} dropped: {item['msg']}", dropped=True)
        return debtor

    def invoice(
        self, data: Mapping[str, Any], *, ref: str, raw: bytes | None = None
    ) -> Invoice | None:
        """Validate an invoice; ``raw`` fingerprints the input it came from. A mapping in
        the model's own types with nothing to clean is built directly (``plain_invoice``)."""
        invoice = plain_invoice(data)
        if invoice is not None:
            self.invoices.add(row_of(invoice), invoice)
            self._remember(("invoice", invoice.external_id), raw, ref)
            return invoice
        try:
            invoice = Invoice.model_validate(data)
        except Exception as error:
            salvaged = self._salvage_link(data, error, ref)
            if salvaged is None:
                known = data.get("external_id")
                invoice_id = str(known) if known else None
                self.reject("invoice", ref, _reason(error), invoice_id=invoice_id)
                return None
            invoice = salvaged
        self._cleaned("invoice", data, ref)
        self.invoices.add(row_of(invoice), invoice)
        self._remember(("invoice", invoice.external_id), raw, ref)
        return invoice

    def invoice_row(
        self, row: InvoiceRow, *, ref: str, fields: frozenset[str], raw: bytes | None = None
    ) -> bool:
        """Keep an invoice given in its stored form, when it is plain (:func:`is_plain`):
        its record, built when read, is the validator's from a mapping with the keys
        ``fields``. ``False`` otherwise: then the caller hands over the mapping
        (:meth:`invoice`), and the validator says what is wrong."""
        if not is_plain(row):
            return False
        self.invoices.add(row, None, fields)
        self._remember(("invoice", row.external_id), raw, ref)
        return True

    def _salvage_link(self, data: Mapping[str, Any], error: Exception, ref: str) -> Invoice | None:
        """The invoice without its payment link, when the link is its only fault: a
        ``javascript:`` link must not cost the debtor the reminder."""
        if not isinstance(error, ValidationError) or any(
            item["loc"][:1] != ("payment_url",) for item in error.errors()
        ):
            return None
        try:
            invoice = Invoice.model_validate({**data, "payment_url": None})
        except Exception:
            return None
        known = data.get("external_id")
        reason = f"payment_url dropped: {_reason(error).partition(': ')[2]}"
        self.reject("invoice", ref, reason, invoice_id=str(known), dropped=True)
        return invoice

    def _remember(self, key: tuple[str, str], raw: bytes | None, ref: str) -> None:
        """Keep a raw fingerprint only for a record that came through clean: one reported with
        a problem (a dropped e-mail address, say) is rebuilt every sync, so the problem stays
        in ``debsync status`` until the source is fixed."""
        if raw is not None and ref not in self._flagged:
            self.raw[key] = raw

    def payment(self, data: Mapping[str, Any], *, ref: str) -> Payment | None:
        try:
            payment = Payment.model_validate(data)
        except Exception as error:
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
            unchanged_invoices=self.unchanged_invoices,
            unchanged_debtors=self.unchanged_debtors,
            raw=self.raw,
        )
        self._reset()
        return page
