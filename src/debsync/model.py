"""The normalised model every connector produces and every other module reads.

Records are frozen pydantic models. Validation is strict where a silent coercion could cost
money (a float amount is rejected, never coerced) and normalising where the same fact arrives
in many spellings (phone numbers become E.164, e-mail addresses are normalised, VAT numbers
lose their dots and spaces).

Text from a source is bounded to what the store's columns hold, and cleaned: line breaks and
tabs become spaces (a name is one line, and a header must stay one), other control characters
and bidi controls (which can make ``2026-0001`` display as another number) are removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Self, TypeVar, get_args
from urllib.parse import urlsplit

import phonenumbers
from babel.numbers import get_currency_precision, list_currencies
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

DEFAULT_CURRENCY = "EUR"
DEFAULT_PHONE_REGION = "NL"
MAX_ID_LENGTH = 255
"""Ids, numbers and references: the store's ``String(255)`` columns."""
MAX_TEXT_LENGTH = 1000
"""Names, address lines and cities: longer is a broken export, not a name."""
MAX_URL_LENGTH = 2048
MAX_POSTCODE_LENGTH = 32
MAX_AMOUNT = Decimal(10) ** 9
"""A billion in the invoice's currency, or more, is a typo or a broken export (an amount
"near a trillion"), not an invoice debsync's users send: rejected, never dunned. A limit:
in a currency whose unit is worth far less than a euro cent (IDR, VND) a billion units is
some tens of thousands of euros, and such an invoice is rejected too, visibly, in status."""

_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029]+")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_UNSAFE = re.compile(f"{_LINE_BREAKS.pattern[:-1]}|{_INVISIBLE.pattern}")


def clean_text(value: str) -> str:
    """One line of text without control or bidi-control characters: line breaks and tabs
    become a space, the rest is removed."""
    if _UNSAFE.search(value) is None:
        return value
    return _INVISIBLE.sub("", _LINE_BREAKS.sub(" ", value))


def has_invisible(value: str) -> bool:
    """Whether cleaning removes characters (beyond turning line breaks into spaces)."""
    return _INVISIBLE.search(value) is not None


def _clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _https(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname or " " in value:
        raise ValueError("only https: links are used as payment links")
    return value


Id = Annotated[str, BeforeValidator(_clean), Field(min_length=1, max_length=MAX_ID_LENGTH)]
Reference = Annotated[str, BeforeValidator(_clean), Field(max_length=MAX_ID_LENGTH)]
Text = Annotated[str, BeforeValidator(_clean), Field(max_length=MAX_TEXT_LENGTH)]
PaymentUrl = Annotated[
    str, BeforeValidator(_clean), Field(max_length=MAX_URL_LENGTH), AfterValidator(_https)
]


class DebtorKind(StrEnum):
    """Who the debtor is in law: consumer rules (WIK, veertiendagenbrief) differ from B2B."""

    BUSINESS = "business"
    CONSUMER = "consumer"
    UNKNOWN = "unknown"


class InvoiceState(StrEnum):
    """Whether an invoice is in the bookkeeping program's open set."""

    OPEN = "open"
    CLOSED = "closed"


class Language(StrEnum):
    """Language of debtor-facing texts."""

    NL = "nl"
    EN = "en"


_M = TypeVar("_M", bound=BaseModel)
_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (EUR 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(code))


@cache
def _quantum(code: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(code))


def _check_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in _known_currencies():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[str, AfterValidator(_check_currency)]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must be Decimal, int or str; a float is rejected, not coerced")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(allow_inf_nan=False)]


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half up (the convention of Dutch invoices)."""
    try:
        return amount.quantize(_quantum(currency), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover - only absurdly large amounts
        raise ValueError(f"amount {amount} cannot be represented in {currency}") from exc


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact integer minor units, the form the store keeps (no float ever touches money)."""
    return int(amount.scaleb(currency_exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


class Money(BaseModel):
    """A Decimal amount with its ISO 4217 currency, quantised to the currency's minor unit."""

    model_config = _FROZEN

    amount: Amount
    currency: Currency = DEFAULT_CURRENCY

    @model_validator(mode="after")
    def _quantise(self) -> Self:
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))
        return self

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(amount=Decimal(amount), currency=currency)

    @property
    def minor(self) -> int:
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}"


@cache
def _minor_unit_of(code: str) -> tuple[int, Decimal] | None:
    """A currency code as a source spells it: its exponent and its minor unit."""
    try:
        checked = _check_currency(code)
    except ValueError:
        return None  # Money says what is wrong
    return currency_exponent(checked), _quantum(checked)


def _exact(value: Any) -> Any:
    """A source's amount as it is: more decimals than its currency has, or an implausible
    size, is an error in the record, never rounded away (``Money`` itself rounds, for sums)."""
    if not isinstance(value, dict | Mapping):  # a dict, nearly always: the cheap check first
        return value
    amount = value.get("amount")
    if not isinstance(amount, str | int | Decimal):
        return value
    try:
        exact = Decimal(amount)
    except ArithmeticError:
        return value
    if not exact.is_finite():
        return value
    if abs(exact) >= MAX_AMOUNT:
        raise ValueError("the amount is implausibly large")
    code = str(value.get("currency", DEFAULT_CURRENCY))
    unit = _minor_unit_of(code)
    if unit is not None and exact != exact.quantize(unit[1]):  # 1.500 is exact in EUR
        raise ValueError(f"{code.strip().upper()} amounts have at most {unit[0]} decimals")
    return value


_PLAIN_EMAIL = re.compile(
    r"([A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]+)*)@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})",
    re.ASCII,
)
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def plain_email(value: str) -> str | None:
    """The normalised form of a plain ASCII address, as email_validator gives it (its
    ``normalized`` and, being ASCII, its ``ascii_email``); ``None`` for anything else (quoted,
    IDN, Punycode, reserved, long): the full check decides."""
    match = _PLAIN_EMAIL.fullmatch(value)
    if match is None or len(value) > 254 or "--" in match[2]:
        return None
    local, domain = match[1], match[2].lower()
    if len(local) > 64 or local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    if domain.rpartition(".")[2] in _SPECIAL_TLDS:
        return None
    return f"{local}@{domain}"


@lru_cache(maxsize=65536)
def normalise_email(value: str) -> str:
    """Syntax check and normalisation only: no DNS look-ups (the daemon may run offline).

    Cached: a daemon sees the same addresses every sync, and the check is the costliest part
    of validating a debtor; a plain ASCII address takes a fast path to the same result.
    """
    plain = plain_email(value)
    if plain is not None:
        return plain
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"invalid e-mail address: {exc}") from None


_DUTCH_PHONE = re.compile(r"(?:\+31|0031)(?:\(0\))?([1-9]\d{8})|0([1-9]\d{8})")


@cache
def _dutch_numbers() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """phonenumbers' own patterns for Dutch numbers in general and for mobile and fixed-line
    numbers (a number matching both is valid to ``is_valid_number``)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("NL")
    assert meta is not None and meta.general_desc is not None
    kinds = [d for d in (meta.mobile, meta.fixed_line) if d is not None and 9 in d.possible_length]
    typed = "|".join(f"(?:{d.national_number_pattern})" for d in kinds)
    return re.compile(str(meta.general_desc.national_number_pattern)), re.compile(typed)


def _dutch_phone(value: str) -> str | None:
    """E.164 of a 9-digit Dutch mobile or fixed-line number written with spaces, dashes,
    +31, 0031 or (0), as phonenumbers gives it; ``None`` for anything else."""
    match = _DUTCH_PHONE.fullmatch(value.replace(" ", "").replace("-", ""))
    if match is None:
        return None
    national = match[1] or match[2]
    general, typed = _dutch_numbers()
    if general.fullmatch(national) is None or typed.fullmatch(national) is None:
        return None
    return f"+31{national}"


@lru_cache(maxsize=65536)
def normalise_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Parse a Dutch or international number and return it in E.164 (+31612345678); a
    plain Dutch number takes a fast path to the same result."""
    dutch = _dutch_phone(value) if region == "NL" else None
    if dutch is not None:
        return dutch
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"invalid phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("invalid phone number: not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_iban(value: str) -> str:
    """Compact upper-case IBAN after the ISO 13616 mod-97 check."""
    text = re.sub(r"\s", "", value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", text):
        raise ValueError("IBAN must look like NL91ABNA0417164300")
    digits = "".join(str(int(ch, 36)) for ch in text[4:] + text[:4])
    if int(digits) % 97 != 1:
        raise ValueError("IBAN check digits do not match")
    return text


Email = Annotated[str, AfterValidator(normalise_email)]
Phone = Annotated[str, AfterValidator(normalise_phone)]

_KVK = re.compile(r"^\d{8}$")
_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z+*]{2,13}$")
_POSTCODE_NL = re.compile(r"^(\d{4})\s*([A-Za-z]{2})$")


class Address(BaseModel):
    """Postal address; Dutch postcodes are normalised to ``1234 AB``."""

    model_config = _FROZEN

    lines: tuple[Text, ...] = ()
    postcode: Annotated[str, BeforeValidator(_clean), Field(max_length=MAX_POSTCODE_LENGTH)] = ""
    city: Text = ""
    country: str = "NL"

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("country must be an ISO 3166 alpha-2 code such as NL")
        return value.upper()

    @model_validator(mode="after")
    def _postcode(self) -> Self:
        if self.country == "NL" and self.postcode:
            match = _POSTCODE_NL.match(self.postcode)
            if not match:  # the value stays out: with a house number it locates a person
                raise ValueError("not a Dutch postcode (expected 1234 AB)")
            object.__setattr__(self, "postcode", f"{match[1]} {match[2].upper()}")
        return self


class Debtor(BaseModel):
    """A customer who owes money, keyed by the connector's external id."""

    model_config = _FROZEN

    external_id: Id
    name: Annotated[Text, Field(min_length=1)]
    kind: DebtorKind = DebtorKind.UNKNOWN
    emails: tuple[Email, ...] = ()
    phones: tuple[Phone, ...] = ()
    language: Language = Language.NL
    address: Address | None = None
    kvk: str | None = None
    vat: str | None = None
    iban: str | None = None

    @field_validator("kvk", mode="before")
    @classmethod
    def _kvk(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).replace(" ", "").replace(".", "")
        if not _KVK.match(text):
            raise ValueError("KvK number must be 8 digits")
        return text

    @field_validator("vat", mode="before")
    @classmethod
    def _vat(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = re.sub(r"[\s.\-]", "", str(value)).upper()
        if not _VAT.match(text):
            raise ValueError("VAT number must start with a country code, e.g. NL123456789B01")
        return text

    @field_validator("iban", mode="before")
    @classmethod
    def _iban(cls, value: object) -> object:
        if value in (None, ""):
            return None
        return normalise_iban(str(value))


PriorStep = Literal["reminder", "aanmaning", "veertiendagenbrief"]
"""A dunning level a source records, lowest first (:mod:`debsync.prior_steps`)."""


class Invoice(BaseModel):
    """An open (or once open) sales invoice or credit note.

    ``total`` and ``open_amount`` share the invoice's currency. A negative total is a credit
    note; it is synced like any invoice and never dunned.
    """

    model_config = _FROZEN

    external_id: Id
    number: Id
    debtor_id: Id
    issue_date: date
    due_date: date
    total: Annotated[Money, BeforeValidator(_exact)]
    open_amount: Annotated[Money, BeforeValidator(_exact)]
    payment_reference: Reference | None = None
    payment_url: PaymentUrl | None = None
    direct_debit: bool = False
    """Collected by direct debit (SEPA incasso): never dunned while the collection is pending."""
    direct_debit_failed: bool = False
    """The collection failed (a storno): the invoice is dunned, and the message says so."""
    reminded_by_source: bool = False
    """The bookkeeping program's own reminder workflow handles the invoice: debsync leaves it."""
    has_document: bool = False
    prior_step: PriorStep | None = None
    """The last dunning step the source already took (:mod:`debsync.prior_steps`)."""
    prior_step_on: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_consistent(self)
        return self

    @property
    def currency(self) -> str:
        return self.total.currency


def _check_consistent(invoice: Invoice) -> None:
    """Dates, currencies and amounts that agree; the model's last check."""
    if (invoice.prior_step is None) != (invoice.prior_step_on is None):
        raise ValueError("a prior dunning step needs both its level and its date")
    if invoice.prior_step_on is not None and invoice.prior_step_on < invoice.issue_date:
        raise ValueError(f"prior step date {invoice.prior_step_on} is before the invoice date")
    total, open_amount = invoice.total, invoice.open_amount
    if total.currency != open_amount.currency:
        raise ValueError(f"total is in {total.currency} but open_amount in {open_amount.currency}")
    if invoice.due_date < invoice.issue_date:
        raise ValueError(f"due date {invoice.due_date} is before issue date {invoice.issue_date}")
    if abs(open_amount.amount) > abs(total.amount):  # sign-aware: a credit note's is negative
        what = "credit note's" if total.amount < 0 else "invoice"
        raise ValueError(
            f"open amount {open_amount.amount} exceeds the {what} total {total.amount}"
        )


class Payment(BaseModel):
    """A payment the bookkeeping program reports against one invoice."""

    model_config = _FROZEN

    external_id: Id
    invoice_id: Id
    paid_on: date
    amount: Annotated[Money, BeforeValidator(_exact)]


_MONEY_FIELDS = frozenset({"amount", "currency"})
_INVOICE_FLAGS = ("direct_debit", "direct_debit_failed", "reminded_by_source", "has_document")
_PRIOR_STEPS = frozenset(get_args(PriorStep))
_set = object.__setattr__


@cache
def _shape(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str], dict[str, Any]]:
    """A model's fields, its required ones, and the fields in the validator's order with the
    defaults it fills in (required ones: None): a copy updated with a mapping keeps this order."""
    fields = model.model_fields
    required = frozenset(n for n, f in fields.items() if f.is_required())
    template = {n: None if f.is_required() else f.default for n, f in fields.items()}
    return frozenset(fields), required, template


def _with_defaults(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``data`` (a dict with every required field of ``model`` and no other key) with the
    defaults the validator fills in, in its order; ``None`` for anything else."""
    fields, required, template = _shape(model)
    if type(data) is not dict or not required <= data.keys() <= fields:
        return None
    values = template.copy()
    values.update(data)
    return values


def _built(model: type[_M], values: dict[str, Any], fields: set[str]) -> _M:
    """A record stored as the validator stores it (``model_construct`` without its per-field
    work): ``values`` in field order, ``fields`` its ``model_fields_set``."""
    record = model.__new__(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", fields)
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def _plain_text(value: Any, limit: int, least: int = 0) -> bool:
    """Printable ASCII within its bounds, without spaces to strip: nothing for the model to
    clean or strip (every character ``clean_text`` touches is a control or non-ASCII)."""
    return (
        type(value) is str
        and least <= len(value) <= limit
        and value.isascii()
        and value.isprintable()
        and value.strip(" ") == value
    )


def _plain_money(value: Any) -> Money | None:
    """``Money`` of ``{"amount": Decimal, "currency": code}`` with a canonical code and an
    exact, plausible amount (what ``_exact`` lets through, with nothing to round)."""
    if type(value) is not dict or value.keys() != _MONEY_FIELDS:
        return None
    amount, code = value["amount"], value["currency"]
    if type(amount) is not Decimal or type(code) is not str or code not in _known_currencies():
        return None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT or (amount.is_signed() and not amount):
        return None
    exact = amount.quantize(_quantum(code), rounding=ROUND_HALF_UP)
    if exact != amount:
        return None
    return _built(Money, {"amount": exact, "currency": code}, {"amount", "currency"})


def plain_invoice(data: Mapping[str, Any]) -> Invoice | None:
    """The invoice of a mapping already in the model's own types and needing nothing from its
    validators (printable ASCII text within bounds, ``date`` dates, exact ``Decimal`` amounts
    in a canonical currency, consistent), built directly: equal to
    ``Invoice.model_validate(data)``, its fields set included, at a fraction of the cost.
    ``None`` for anything else: the validator decides, and explains."""
    values = _with_defaults(Invoice, data)
    if values is None:
        return None
    if not (
        _plain_text(values["external_id"], MAX_ID_LENGTH, 1)
        and _plain_text(values["number"], MAX_ID_LENGTH, 1)
        and _plain_text(values["debtor_id"], MAX_ID_LENGTH, 1)
        and type(values["issue_date"]) is date
        and type(values["due_date"]) is date
    ):
        return None
    reference, url = values["payment_reference"], values["payment_url"]
    if reference is not None and not _plain_text(reference, MAX_ID_LENGTH):
        return None
    if url is not None and not (_plain_text(url, MAX_URL_LENGTH) and _is_https(url)):
        return None
    if any(type(values[name]) is not bool for name in _INVOICE_FLAGS):
        return None
    step, step_on = values["prior_step"], values["prior_step_on"]
    if (step is not None and step not in _PRIOR_STEPS) or (
        step_on is not None and type(step_on) is not date
    ):
        return None
    total, open_amount = _plain_money(values["total"]), _plain_money(values["open_amount"])
    if total is None or open_amount is None:
        return None
    values["total"], values["open_amount"] = total, open_amount
    invoice = _built(Invoice, values, set(data))
    try:
        _check_consistent(invoice)
    except ValueError:
        return None
    return invoice


def _is_https(url: str) -> bool:
    try:
        _https(url)
    except ValueError:
        return False
    return True
