"""The letter as structured text: what ``render`` returns and the PDF is built from.

:class:`LetterContent` holds every text already in the debtor's language and every amount and
date already formatted, so laying it out needs no locale data and the payload alone rebuilds
the same PDF. :func:`render_letter` makes it from a :class:`MessageContext`; :func:`letter_text`
reads it back as plain text for previews.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Literal

from babel import Locale
from pydantic import BaseModel, ConfigDict

from debsync.actions.base import CreditorContext, DebtorContext, MessageContext, RenderError
from debsync.actions.letter.fonts import printable_code_points
from debsync.formatting import LOCALES, iban, long_date, phone, short_date
from debsync.formatting import money as format_money
from debsync.model import Address, Language
from debsync.templates import LABELS, Templates, failed_collection, paragraphs
from debsync.templates.combined import stage_label

ADDRESS_MAX_LINES = 6
"""PostNL: an address has 3 to 6 lines."""
REFERENCE_NUMBERS = 3
"""Invoice numbers named in "our reference"; more are counted ("+42"), the table lists all."""
THIS_LETTER = {Language.NL: "deze brief", Language.EN: "this letter"}
"""``this_message`` in the templates ("Heeft u betaald? Dan kunt u deze brief ...")."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipient(_Part):
    """The debtor's address, as lines for the window and as parts for a hybrid-mail API."""

    debtor_id: str
    name: str
    street: list[str]
    postcode: str
    city: str
    country: str
    window: list[str]


class Sender(_Part):
    name: str
    letterhead: list[str]
    return_address: str
    footer: list[str]
    """Registration and bank details, one item each ("KvK 12345678")."""


class InvoiceRow(_Part):
    number: str
    issue_date: str
    due_date: str
    open: str


class TotalRow(_Part):
    label: str
    amount: str
    grand: bool = False


class Labels(_Part):
    date: str
    our_reference: str
    subject: str
    columns: list[str]
    page: str
    """``"Pagina {page} van {pages}"``."""


class LetterContent(_Part):
    """The structured letter ``render`` returns: every text already in the debtor's language,
    every amount and date already formatted, so the PDF needs no locale data."""

    format: Literal["debsync.letter/1"] = "debsync.letter/1"
    key: str
    language: Language
    date: date
    date_text: str
    reference: str
    sender: Sender
    recipient: Recipient
    labels: Labels
    subject: str
    salutation: str
    opening: list[str]
    invoices: list[InvoiceRow]
    totals: list[TotalRow]
    payment: list[str]
    closing: list[str]
    regards: str
    signature: str


def render_letter(context: MessageContext, templates: Templates) -> LetterContent:
    """The letter for ``context``, its wording from ``templates``.

    :raises RenderError: no usable postal address, or text the letter font cannot print.
    """
    language = context.language
    t = LABELS[language]

    def money(amount: Decimal) -> str:
        return format_money(amount, context.currency, language)

    def short(day: date) -> str:
        return short_date(day, language)

    recipient = _recipient(context.debtor, language)
    sender = _sender(context.creditor, language)
    texts = templates.blocks(
        "letter",
        context,
        ("subject", "opening", "closing"),
        this_message=THIS_LETTER[language],
    )
    numbers = ", ".join(line.number for line in context.invoices[:REFERENCE_NUMBERS])
    if len(context.invoices) > REFERENCE_NUMBERS:
        numbers += f" +{len(context.invoices) - REFERENCE_NUMBERS}"
    totals: list[TotalRow] = []
    mixed = any(line.stage for line in context.invoices)  # names each invoice's stage
    claims_more = context.interest is not None or context.costs is not None
    if len(context.invoices) > 1 or claims_more or context.credits:
        totals.append(TotalRow(label=t["principal"], amount=money(context.principal)))
    if context.interest is not None:
        totals.append(TotalRow(label=t["interest"], amount=money(context.interest)))
    if context.costs is not None:
        totals.append(TotalRow(label=t["costs"], amount=money(context.costs)))
    if claims_more:
        totals.append(TotalRow(label=t["total"], amount=money(context.total), grand=True))
    payment: list[str] = []
    if context.payment.iban:
        payment.append(
            f"{t['pay_to']} {iban(context.payment.iban)} {t['in_name_of']} "
            f"{context.payment.beneficiary}, {t['reference']} “{context.payment.reference}”."
        )
    if context.payment.url:
        payment.append(f"{t['pay_online']}: {context.payment.url}")
    content = LetterContent(
        key=context.key,
        language=language,
        date=context.today,
        date_text=long_date(context.today, language),
        reference=f"{numbers} / {context.key[:12]}",
        sender=sender,
        recipient=recipient,
        labels=Labels(
            date=t["date"],
            our_reference=t["our_reference"],
            subject=t["subject"],
            columns=[t["invoice"], t["invoice_date"], t["due_date"], t["open"]],
            page=f"{t['page']} {{page}} {t['of']} {{pages}}",
        ),
        subject=" ".join(texts["subject"].split()),
        salutation=t["salutation"],
        opening=[p for p in [failed_collection(context)] if p] + paragraphs(texts["opening"]),
        invoices=[
            InvoiceRow(
                number=line.number
                + (f" ({stage_label(line.stage or context.step, language)})" if mixed else ""),
                issue_date=short(line.issue_date),
                due_date=short(line.due_date),
                open=money(line.open_amount),
            )
            for line in context.invoices
        ]
        + [  # the open credit notes offset against them
            InvoiceRow(
                number=f"{t['credit_note']} {credit.number}",
                issue_date=short(credit.issue_date),
                due_date="",
                open=money(credit.open_amount),
            )
            for credit in context.credits
        ],
        totals=totals,
        payment=payment,
        closing=paragraphs(texts["closing"]),
        regards=t["regards"],
        signature=context.creditor.name,
    )
    check_printable(content)
    return content


def _locality(address: Address, *, capitals: bool) -> str:
    """``1234 AB  HAARLEM``: PostNL puts two spaces between a Dutch postcode and the town."""
    city = address.city.upper() if capitals else address.city
    gap = "  " if address.country == "NL" and capitals else " "
    return gap.join(part for part in (address.postcode, city) if part)


def _country(code: str, language: Language) -> str:
    return str(Locale.parse(LOCALES[language]).territories.get(code, code))


def _recipient(debtor: DebtorContext, language: Language) -> Recipient:
    address = debtor.address
    street = [line for line in address.lines if line.strip()] if address else []
    if address is None or not (street or address.postcode or address.city):
        raise RenderError(f"debtor {debtor.external_id} has no postal address")
    if not street or not address.city or (address.country == "NL" and not address.postcode):
        raise RenderError(
            f"debtor {debtor.external_id} has an incomplete postal address "
            "(street, postcode and town are needed)"
        )
    window = [debtor.name, *street, _locality(address, capitals=True)]
    if address.country != "NL":
        window.append(_country(address.country, language).upper())
    if len(window) > ADDRESS_MAX_LINES:
        raise RenderError(
            f"debtor {debtor.external_id}: the address has {len(window)} lines; a window "
            f"envelope shows at most {ADDRESS_MAX_LINES}"
        )
    return Recipient(
        debtor_id=debtor.external_id,
        name=debtor.name,
        street=street,
        postcode=address.postcode,
        city=address.city,
        country=address.country,
        window=window,
    )


def _sender(creditor: CreditorContext, language: Language) -> Sender:
    t = LABELS[language]
    address = creditor.address
    if address is None or not address.city:
        raise RenderError("[creditor] has no postal address: a letter needs a return address")
    lines = [*address.lines, _locality(address, capitals=False)]
    if address.country != "NL":
        lines.append(_country(address.country, language))
    letterhead = list(lines)
    if creditor.phone:
        letterhead.append(f"{t['phone']} {phone(creditor.phone, language)}")
    if creditor.email:
        letterhead.append(f"{t['email']} {creditor.email}")
    if creditor.website:
        letterhead.append(re.sub(r"^https?://|/$", "", creditor.website))
    footer = [
        f"{t['kvk']} {creditor.kvk}" if creditor.kvk else "",
        f"{t['vat']} {creditor.vat}" if creditor.vat else "",
        f"{t['iban']} {iban(creditor.iban)}" if creditor.iban else "",
        f"BIC {creditor.bic}" if creditor.bic else "",
    ]
    return Sender(
        name=creditor.name,
        letterhead=letterhead,
        return_address=", ".join([creditor.name, *lines]),
        footer=[part for part in footer if part],
    )


def _texts(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name), name if where == "letter" else where)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, where)


def check_printable(content: LetterContent) -> None:
    """A character the font lacks would print as nothing, in an address or a legal text.

    :raises RenderError: naming the debtor id, the code point and the part of the letter.
    """
    printable = printable_code_points()
    for where, text in _texts(content, "letter"):
        for char in text:
            if char not in "\n\t" and ord(char) not in printable:
                raise RenderError(
                    f"letter to debtor {content.recipient.debtor_id}: the letter font cannot "
                    f"print U+{ord(char):04X} (in the {where.replace('_', ' ')})"
                )


def letter_text(content: LetterContent) -> str:
    """The letter as plain text, in reading order (``debsync preview``)."""
    labels = content.labels
    rows = [labels.columns] + [
        [row.number, row.issue_date, row.due_date, row.open] for row in content.invoices
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3].rjust(widths[3])])
        for row in rows
    ]
    table += [f"{total.label}: {total.amount}" for total in content.totals]
    parts = [
        content.sender.return_address,
        "\n".join(content.recipient.window),
        f"{labels.date}: {content.date_text}\n{labels.our_reference}: {content.reference}\n"
        f"{labels.subject}: {content.subject}",
        content.salutation,
        *content.opening,
        "\n".join(table),
        *content.payment,
        *content.closing,
        f"{content.regards}\n\n{content.signature}",
        " · ".join(content.sender.footer),
    ]
    return "\n\n".join(parts) + "\n"
