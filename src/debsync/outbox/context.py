"""Assembling what an action needs to know, from the store and the configuration.

The outbox claims actions in batches; :func:`load_facts` reads everything those actions are
about (their debtors, every invoice of those debtors, the steps already taken, active pauses,
the posted veertiendagenbrieven) in a handful of queries, and :func:`message_context` turns one
action into the :class:`~debsync.actions.base.MessageContext` a template or channel sees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from debsync import law
from debsync.actions.base import (
    CreditorContext,
    DebtorContext,
    InterestClaim,
    InvoiceLine,
    MessageContext,
    PaymentInstructions,
    PreviousStep,
    RenderError,
    WikProof,
)
from debsync.config import Config
from debsync.decisions import ClaimLine, PlannedAction
from debsync.facts import DebtorFacts, InstanceFacts, InvoiceFacts, Pause, Snapshot, StepSent
from debsync.model import DebtorKind, Language, from_minor
from debsync.outbox.table import pairs_in
from debsync.pauses import load_active
from debsync.plain_debtors import stored_address
from debsync.planning import add_recorded, unreachable_channels
from debsync.store.schema import ActionState, EventKind, debtors, events, invoices, outbox

Key = tuple[str, str]


@dataclass
class Facts:
    """What the store says about a batch of actions, keyed by (instance, external id). The
    facts built from the rows are kept: a batch asks for the same debtor and invoices again
    for each of its actions (the figures, the credits, the context)."""

    debtors: dict[Key, Row[Any]]
    invoices: dict[Key, Row[Any]]
    history: dict[Key, list[StepSent]]
    pauses: list[Pause]
    letters: dict[Key, str]  # sha256 of the posted veertiendagenbrief covering an invoice
    by_debtor: dict[Key, list[Key]] = field(default_factory=dict)
    _invoice_facts: dict[Key, InvoiceFacts] = field(default_factory=dict, repr=False)
    _debtor_facts: dict[Key, DebtorFacts] = field(default_factory=dict, repr=False)
    _debtor_contexts: dict[Key, DebtorContext] = field(default_factory=dict, repr=False)
    _credits: dict[tuple[str, str, str], list[InvoiceFacts]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        for key, row in self.invoices.items():
            self.by_debtor.setdefault((row.instance, row.debtor_id), []).append(key)

    def invoice_facts(self, key: Key) -> InvoiceFacts | None:
        found = self._invoice_facts.get(key)
        if found is not None:
            return found
        row = self.invoices.get(key)
        if row is None:
            return None
        found = self._invoice_facts[key] = InvoiceFacts(
            row.instance,
            row.external_id,
            row.number,
            row.debtor_id,
            row.due_date,
            row.currency,
            row.open_minor,
            row.direct_debit,
            row.state != "open",
            row.direct_debit_failed,
            row.reminded_by_source,
        )
        return found

    def credits(self, instance: str, debtor_id: str, currency: str) -> list[InvoiceFacts]:
        """The debtor's open credit notes in ``currency``: offset against every message."""
        found = self._credits.get((instance, debtor_id, currency))
        if found is None:
            found = self._credits[(instance, debtor_id, currency)] = [
                facts
                for key in self.by_debtor.get((instance, debtor_id), ())
                for facts in [self.invoice_facts(key)]
                if facts is not None
                and not facts.closed
                and facts.open_minor < 0
                and facts.currency == currency
            ]
        return list(found)

    def debtor_facts(self, instance: str, debtor_id: str) -> DebtorFacts:
        found = self._debtor_facts.get((instance, debtor_id))
        if found is not None:
            return found
        row = self.debtors.get((instance, debtor_id))
        if row is None:
            return DebtorFacts(instance, debtor_id)
        found = self._debtor_facts[(instance, debtor_id)] = DebtorFacts(
            instance,
            debtor_id,
            DebtorKind(row.kind),
            Language(row.language),
            None,
            unreachable_channels(row.emails, row.phones, row.address),
        )
        return found

    def debtor_context(self, instance: str, debtor_id: str) -> DebtorContext:
        """The debtor as a message shows it."""
        found = self._debtor_contexts.get((instance, debtor_id))
        if found is not None:
            return found
        debtor = self.debtors.get((instance, debtor_id))
        if debtor is None:
            raise RenderError(f"debtor {debtor_id} is not in the store")
        found = self._debtor_contexts[(instance, debtor_id)] = DebtorContext(
            external_id=debtor.external_id,
            name=debtor.name,
            kind=DebtorKind(debtor.kind),
            language=Language(debtor.language),
            emails=tuple(debtor.emails),
            phones=tuple(debtor.phones),
            address=stored_address(debtor.address) if debtor.address else None,
            kvk=debtor.kvk,
            vat=debtor.vat,
        )
        return found

    def snapshot(self, config: Config, instance: str, debtor_id: str) -> Snapshot:
        """The scheduler's view of one debtor, for the pause rules."""
        mine = [
            facts
            for key in self.by_debtor.get((instance, debtor_id), ())
            if self.invoices[key].state == "open"
            for facts in [self.invoice_facts(key)]
            if facts is not None
        ]
        connector = config.connectors.get(instance)
        policy = connector.debtor_policies.get(debtor_id, connector.policy) if connector else ""
        return Snapshot(
            invoices=mine,
            debtors={(instance, debtor_id): self.debtor_facts(instance, debtor_id)},
            instances={instance: InstanceFacts(instance, policy or "default")},
            history=self.history,
            pauses=[p for p in self.pauses if p.instance == instance],
        )


_DEBTOR_COLUMNS = [
    c
    for c in debtors.c
    if c.name
    not in ("iban", "fingerprint", "raw_fingerprint", "created_at", "updated_at", "purged_at")
]
"""What a message shows of a debtor: no fingerprints, no bookkeeping times."""

_INVOICE_COLUMNS = [
    c
    for c in invoices.c
    if c.name not in ("fingerprint", "raw_fingerprint", "closed_at", "created_at", "updated_at")
]


def load_facts(conn: Connection, rows: Sequence[Row[Any]], config: Config) -> Facts:
    """Everything about the debtors of ``rows`` (their open invoices and those the actions
    name), in six queries however many rows. The history holds the steps the source recorded
    as planning placed them, so the figures rebuilt before sending gate costs exactly as the
    plan did."""
    pairs = sorted({(r.instance, r.debtor_id) for r in rows})
    if not pairs:
        return Facts({}, {}, {}, [], {})
    by_debtor = pairs_in(debtors.c.instance, debtors.c.external_id, pairs)
    debtor_rows = {
        (r.instance, r.external_id): r
        for r in conn.execute(sa.select(*_DEBTOR_COLUMNS).where(by_debtor))
    }
    named = [(r.instance, i) for r in rows for i in r.invoice_ids]
    invoice_rows = {
        (r.instance, r.external_id): r
        for r in conn.execute(
            sa.select(*_INVOICE_COLUMNS).where(
                pairs_in(invoices.c.instance, invoices.c.debtor_id, pairs),
                # a debtor's paid invoices matter only where an action names them
                sa.or_(
                    invoices.c.state == "open",
                    pairs_in(invoices.c.instance, invoices.c.external_id, named),
                ),
            )
        )
    }
    history: dict[Key, list[StepSent]] = defaultdict(list)
    for inst, invoice_id, data in conn.execute(
        sa.select(events.c.instance, events.c.invoice_id, events.c.data)
        .where(
            pairs_in(events.c.instance, events.c.debtor_id, pairs),
            events.c.kind == EventKind.STEP_SENT,
        )
        .order_by(events.c.id)
    ):
        history[(inst, invoice_id)].append(
            StepSent(
                step=data["step"],
                sent_on=date.fromisoformat(data["sent_on"]),
                role=data.get("role"),
                received_on=date.fromisoformat(data["received_on"])
                if data.get("received_on")
                else None,
                stated_costs_minor=data.get("stated_costs_minor"),
            )
        )
    placed = {
        key: (
            config.policy_for(*key) if key[0] in config.connectors else None,
            DebtorKind(row.kind),
        )
        for key, row in debtor_rows.items()
    }
    add_recorded(conn, [pairs_in(events.c.instance, events.c.debtor_id, pairs)], placed, history)
    letters: dict[Key, str] = {}
    noticed = {  # only a message about a veertiendagenbrief's invoices cites the letter
        (key[0], invoice_rows[key].debtor_id)
        for key, steps in history.items()
        if key in invoice_rows and any(sent.role == "wik_notice" for sent in steps)
    }
    if noticed:
        for inst, invoice_ids, receipt in conn.execute(
            sa.select(outbox.c.instance, outbox.c.invoice_ids, outbox.c.receipt).where(
                pairs_in(outbox.c.instance, outbox.c.debtor_id, noticed),
                outbox.c.role == "wik_notice",
                outbox.c.legal_copy.is_(True),
                outbox.c.state == ActionState.SENT,
                outbox.c.dispatched_on.is_not(None),
            )
        ):
            digest = (receipt or {}).get("content_sha256")
            for invoice_id in invoice_ids:
                if digest:
                    letters[(inst, invoice_id)] = digest
    return Facts(debtor_rows, invoice_rows, dict(history), load_active(conn), letters)


def creditor_context(config: Config) -> CreditorContext:
    creditor = config.creditor
    if creditor is None:
        raise RenderError("no [creditor] in connectors.toml: messages need the creditor's name")
    return CreditorContext(
        name=creditor.name,
        address=creditor.address,
        iban=creditor.iban,
        bic=creditor.bic,
        kvk=creditor.kvk,
        vat=creditor.vat,
        email=creditor.email,
        phone=creditor.phone,
        website=creditor.website,
    )


def message_context(
    action: PlannedAction, facts: Facts, config: Config, today: date
) -> MessageContext:
    """The context for one action, with the figures the scheduler just (re)computed."""
    instance = action.instance
    debtor = facts.debtor_context(instance, action.debtor_id)
    creditor = creditor_context(config)
    policy = config.policies[action.policy]
    business = action.kind is DebtorKind.BUSINESS
    lines = []
    for line in action.lines:
        row = facts.invoices[(instance, line.invoice_id)]
        lines.append(
            _invoice_line(
                line,
                row,
                interest=line.interest,
                payment_url=row.payment_url,
                has_document=row.has_document,
                stage=line.step if line.step and line.step != action.step else None,
                direct_debit_failed=row.direct_debit_failed,
            )
        )
    credits = [
        _invoice_line(credit, facts.invoices[(instance, credit.invoice_id)])
        for credit in action.credits
    ]
    single = lines[0] if len(lines) == 1 else None
    return MessageContext(
        key=action.key,
        instance=instance,
        step=action.step,
        template=action.template,
        channel=action.channel,
        role=action.role,
        language=action.language,
        today=today,
        creditor=creditor,
        debtor=debtor,
        invoices=tuple(lines),
        currency=action.currency,
        principal=action.principal,
        interest=action.interest,
        costs=action.costs,
        announced_costs=action.announced_costs,
        deadline=action.deadline,
        payment=PaymentInstructions(
            beneficiary=creditor.name,
            iban=creditor.iban,
            bic=creditor.bic,
            reference=(single.payment_reference or single.number)
            if single
            else ", ".join(line.number for line in lines),
            url=single.payment_url if single else None,
        ),
        legal_copy=action.legal_copy,
        costs_basis=None
        if action.costs is None
        else ("compensation" if business and policy.b2b_costs == "compensation" else "staffel"),
        costs_vat_rate=policy.costs_vat_rate,
        notes=action.notes,
        previous_steps=_previous_steps(facts, instance, (line.external_id for line in lines)),
        wik=_wik_proof(facts, instance, [line.external_id for line in lines], policy.delivery_days),
        interest_claim=_interest_claim(action, today),
        credits=tuple(credits),
    )


def _invoice_line(line: ClaimLine, row: Row[Any], **more: Any) -> InvoiceLine:
    """An invoice (or credit note) of a claim as a message shows it: the scheduler's figures
    beside what the store knows of it."""
    return InvoiceLine(
        external_id=line.invoice_id,
        number=line.number,
        issue_date=row.issue_date,
        due_date=line.due_date,
        days_overdue=line.days_overdue,
        total=from_minor(row.total_minor, row.currency),
        open_amount=line.principal,
        payment_reference=row.payment_reference,
        **more,
    )


def _interest_claim(action: PlannedAction, today: date) -> InterestClaim | None:
    """How the action's interest was computed (as :mod:`debsync.claims` does), for payloads
    that must state it; actions do not import the law."""
    if action.interest is None:
        return None
    business = action.kind is DebtorKind.BUSINESS
    convention = law.DEFAULT_CONVENTION
    return InterestClaim(
        article=law.article_for(business).value,
        start=min(line.due_date for line in action.lines) + timedelta(days=1),
        until=today,
        day_count=convention.day_count.value,
        compounding=convention.compounding.value,
    )


def _previous_steps(
    facts: Facts, instance: str, invoice_ids: Iterable[str]
) -> tuple[PreviousStep, ...]:
    seen = {
        (sent.step, sent.sent_on, sent.role)
        for invoice_id in invoice_ids
        for sent in facts.history.get((instance, invoice_id), ())
    }
    return tuple(
        PreviousStep(step, on, role) for step, on, role in sorted(seen, key=lambda s: (s[1], s[0]))
    )


def _wik_proof(
    facts: Facts, instance: str, invoice_ids: Sequence[str], delivery_days: int | None
) -> WikProof | None:
    """The latest veertiendagenbrief covering every invoice of the message, if there is one."""
    letters = []
    for invoice_id in invoice_ids:
        sent = [s for s in facts.history.get((instance, invoice_id), ()) if s.role == "wik_notice"]
        if not sent:
            return None
        letters.append(sent[-1])
    latest = max(letters, key=lambda s: s.sent_on)
    receipt = latest.received_on or law.presumed_receipt(
        latest.sent_on, "letter", delivery_days=delivery_days
    )
    stated = latest.stated_costs_minor
    return WikProof(
        sent_on=latest.sent_on,
        received_on=receipt,
        term_last_day=law.veertiendagenbrief_term(receipt).last_day,
        stated_costs=None if stated is None else from_minor(stated, "EUR"),
        document_sha256=facts.letters.get((instance, invoice_ids[0])),
    )
