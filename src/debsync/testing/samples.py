"""Realistic sample data for tests and template previews: invented Dutch debtors, never real.

``sample_context`` builds the :class:`~debsync.actions.base.MessageContext` the core would
build for a step, so an action author can render every shipped template without a store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from debsync import law
from debsync.actions.base import (
    CreditorContext,
    DebtorContext,
    InterestClaim,
    InvoiceLine,
    MessageContext,
    PaymentInstructions,
    PreviousStep,
    WikProof,
)
from debsync.model import Address, DebtorKind, Language

SAMPLE_TODAY = date(2026, 11, 23)

SAMPLE_CREDITOR = CreditorContext(
    name="Voorbeeld Installatietechniek B.V.",
    address=Address(lines=("Industrieweg 12",), postcode="3542 AD", city="Utrecht"),
    iban="NL91ABNA0417164300",
    bic="ABNANL2A",
    kvk="12345678",
    vat="NL123456789B01",
    email="debiteuren@voorbeeld-installatie.nl",
    phone="+31301234567",
    website="https://voorbeeld-installatie.nl",
)


def sample_debtor(
    kind: DebtorKind = DebtorKind.CONSUMER, language: Language = Language.NL
) -> DebtorContext:
    if kind is DebtorKind.BUSINESS:
        return DebtorContext(
            external_id="D10042",
            name="Bakkerij De Gouden Korrel B.V.",
            kind=kind,
            language=language,
            emails=("administratie@goudenkorrel.example.nl",),
            phones=("+31612345678",),
            address=Address(lines=("Kerkstraat 8",), postcode="8011 PK", city="Zwolle"),
            kvk="87654321",
            vat="NL862745162B01",
        )
    return DebtorContext(
        external_id="D20017",
        name="J.P. de Vries",
        kind=kind,
        language=language,
        emails=("jp.devries@example.nl",),
        phones=("+31687654321",),
        address=Address(lines=("Dorpsstraat 14 A",), postcode="1234 AB", city="Haarlem"),
    )


def sample_context(
    step: str = "reminder",
    channel: str = "email",
    language: Language = Language.NL,
    *,
    kind: DebtorKind = DebtorKind.CONSUMER,
    role: str | None = None,
    invoices: int = 2,
    today: date = SAMPLE_TODAY,
) -> MessageContext:
    """A context as the core builds it for ``step`` on ``channel``, with ``invoices`` lines.

    A ``veertiendagenbrief`` (or ``role="wik_notice"``) states the exact collection costs; a
    ``handoff`` claims interest and costs and carries the veertiendagenbrief's proof.
    """
    if step == "veertiendagenbrief":
        role = role or "wik_notice"
    if step == "handoff":
        role = role or "handoff"
    lines = tuple(
        InvoiceLine(
            external_id=f"F2026-{n:04d}",
            number=f"2026-{n:04d}",
            issue_date=today - timedelta(days=60 + 10 * n),
            due_date=today - timedelta(days=30 + 10 * n),
            days_overdue=30 + 10 * n,
            total=Decimal("605.00") * n,
            open_amount=Decimal("605.00") * n if n != 2 else Decimal("500.00"),
            payment_reference=f"RF18{n:010d}",
            payment_url=f"https://betalen.example.nl/2026-{n:04d}",
            has_document=True,
        )
        for n in range(1, invoices + 1)
    )
    principal = sum((line.open_amount for line in lines), Decimal(0))
    business = kind is DebtorKind.BUSINESS
    interest = costs = announced = None
    interest_claim = wik = None
    if step in ("aanmaning", "handoff"):  # interest per line, as the scheduler computes it
        lines = tuple(replace(line, interest=Decimal("6.17")) for line in lines)
        interest = Decimal("6.17") * len(lines)
        interest_claim = InterestClaim(
            article=law.article_for(business).value,
            start=min(line.due_date for line in lines) + timedelta(days=1),
            until=today,
            day_count=law.DEFAULT_CONVENTION.day_count.value,
            compounding=law.DEFAULT_CONVENTION.compounding.value,
        )
    if role == "wik_notice" and not business:
        announced = law.collection_costs(principal)
    if role == "handoff":
        costs = law.B2B_COMPENSATION * len(lines) if business else law.collection_costs(principal)
        if not business:
            sent = today - timedelta(days=24)
            receipt = law.presumed_receipt(sent, "letter")
            wik = WikProof(
                sent_on=sent,
                received_on=receipt,
                term_last_day=law.veertiendagenbrief_term(receipt).last_day,
                stated_costs=costs,
                document_sha256="0" * 64,
            )
    debtor = sample_debtor(kind, language)
    return MessageContext(
        key="3f2a9c0d41b7e6a85c1d2e3f4a5b6c7d",
        instance="example",
        step=step,
        template=step,
        channel=channel,
        role=role,
        language=language,
        today=today,
        creditor=SAMPLE_CREDITOR,
        debtor=debtor,
        invoices=lines,
        currency="EUR",
        principal=principal,
        interest=interest,
        costs=costs,
        costs_basis=None if costs is None else ("compensation" if business else "staffel"),
        announced_costs=announced,
        deadline=law.add_business_days(today, 10),
        payment=PaymentInstructions(
            beneficiary=SAMPLE_CREDITOR.name,
            iban=SAMPLE_CREDITOR.iban,
            bic=SAMPLE_CREDITOR.bic,
            reference=lines[0].payment_reference or lines[0].number
            if len(lines) == 1
            else ", ".join(line.number for line in lines),
            url=lines[0].payment_url if len(lines) == 1 else None,
        ),
        legal_copy=channel == "letter" and role == "wik_notice",
        previous_steps=(PreviousStep("reminder", today - timedelta(days=20)),),
        wik=wik,
        interest_claim=interest_claim,
    )
