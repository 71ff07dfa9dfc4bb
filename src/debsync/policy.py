"""Dunning policies: the ladder of steps from ``[policies.<name>]`` in ``connectors.toml``.

A policy is data. The scheduler (``debsync.scheduler``) walks it; the legal guards that no
policy can switch off live there and in ``debsync.law``, not here. What this module checks is
that a policy makes sense before it is used: unique step names, exactly one timing per step,
and a veertiendagenbrief for consumers before any handoff.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from debsync.model import Amount, DebtorKind

DEFAULT_POLICY = "default"
CHANNELS = ("email", "sms", "letter", "call", "agency", "webhook")

StepRole = Literal["wik_notice", "handoff"]
B2BCosts = Literal["compensation", "staffel", "none"]

_STEP_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class Step(BaseModel):
    """One rung of the ladder.

    Timing is either ``days_after_due`` (negative for a courtesy notice before the due date) or
    ``days_after_previous`` (counted from the day the previous step was actually sent).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    channels: tuple[str, ...] = Field(min_length=1)
    template: str | None = Field(default=None, description="Template name; default: the name.")
    days_after_due: int | None = None
    days_after_previous: int | None = Field(default=None, ge=0)
    kinds: tuple[DebtorKind, ...] = (DebtorKind.BUSINESS, DebtorKind.CONSUMER, DebtorKind.UNKNOWN)
    min_open_amount: Amount = Decimal(0)
    min_days_overdue: int = 0
    requires_approval: bool = False
    role: StepRole | None = None
    claim_interest: bool = False
    claim_costs: bool = False
    deadline_business_days: int = Field(default=10, ge=1, le=60)
    fallback_channels: tuple[str, ...] = Field(
        default=("letter", "call"),
        description="Tried in order, first reachable one only, when none of the step's "
        "channels can reach the debtor (no e-mail address, no postal address, no phone).",
    )
    skip_when_unreachable: bool = Field(
        default=False,
        description="Waive the step for a debtor that neither its channels nor its fallback "
        "reach; otherwise the invoice waits as 'needs contact details'.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STEP_NAME.match(value):
            raise ValueError("step names use lowercase letters, digits, '-' and '_'")
        return value

    @field_validator("channels", "fallback_channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {', '.join(CHANNELS)}")
        return value

    @model_validator(mode="after")
    def _timing(self) -> Self:
        if (self.days_after_due is None) == (self.days_after_previous is None):
            raise ValueError("give exactly one of days_after_due or days_after_previous")
        if self.role == "wik_notice" and "letter" not in self.channels:
            raise ValueError("a wik_notice step must include the letter channel (the legal copy)")
        return self

    @property
    def template_name(self) -> str:
        return self.template or self.name

    def applies_to(self, kind: DebtorKind) -> bool:
        return kind in self.kinds


class Policy(BaseModel):
    """A named ladder plus the rules around it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = DEFAULT_POLICY
    steps: tuple[Step, ...] = Field(min_length=1)
    max_sync_age_hours: int = Field(default=24, ge=1)
    min_open_amount: Amount = Field(
        default=Decimal("5.00"), description="Below this principal no message is sent."
    )
    direct_debit_grace_days: int = Field(
        default=10,
        ge=0,
        description="A direct debit still pending this long after the due date is flagged in "
        "plan and status for checking; a pending direct debit is never dunned, a failed one is.",
    )
    promise_grace_days: int = Field(default=3, ge=0)
    instalment_grace_days: int = Field(default=3, ge=0)
    b2b_costs: B2BCosts = Field(
        default="compensation",
        description="compensation: EUR 40 per invoice (6:96 lid 4 BW); staffel: the BIK "
        "staffel on the summed principal; none.",
    )
    costs_vat_rate: Amount | None = Field(
        default=None,
        description="VAT on collection costs, only when the creditor cannot deduct VAT, e.g. 0.21.",
    )
    email_is_legal_copy: bool = False
    delivery_days: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Presumed postal delivery days; default: the "
        "date-dependent schedule in debsync.law.",
    )
    wik_buffer_business_days: int = Field(
        default=2,
        ge=0,
        description="Business days after the veertiendagenbrief term before "
        "escalating, for payments made on the last day.",
    )
    unknown_kind: Literal["consumer", "business"] = Field(
        default="consumer",
        description="How a debtor of unknown kind is treated (no type column, legal form, "
        "KvK or VAT number): consumer, the safe side, or business.",
    )
    send_without_interest: bool = Field(
        default=False,
        description="Send steps that claim interest without it when the statutory interest "
        "table does not cover the day; by default they wait for approval instead.",
    )
    consumer_sales: bool = Field(
        default=True,
        description="Claims on consumers are the price of goods sold (consumentenkoop) and "
        "prescribe in two years (art. 7:28 BW); false: services, five years (art. 3:307 BW).",
    )
    trust_recorded_wik: bool = Field(
        default=False,
        description="Count a consumer's final notice recorded in the source (laatste "
        "aanmaning, veertiendagenbrief) as a veertiendagenbrief that met art. 6:96 lid 6 BW; "
        "by default debsync sends its own before any collection costs are claimed.",
    )
    waive_courtesies_after_recorded: bool = Field(
        default=True,
        description="The courtesy steps (skip_when_unreachable) right after a step recorded "
        "in the source are waived: the source's own ladder ran in their place.",
    )
    interrupting_steps: tuple[str, ...] | None = Field(
        default=None,
        description="Steps whose sending interrupts prescription, being written aanmaningen "
        "that reserve the right to payment (art. 3:317 BW); default: the veertiendagenbrief.",
    )
    interruptions: dict[str, date] = Field(
        default_factory=dict,
        description="Interruptions of prescription outside debsync, by invoice number: the day "
        "a written aanmaning reached the debtor, or the debtor acknowledged the debt.",
    )

    @model_validator(mode="after")
    def _ladder(self) -> Self:
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate step name(s): {', '.join(duplicates)}")
        unknown = sorted(set(self.interrupting_steps or ()) - set(names))
        if unknown:
            raise ValueError(f"interrupting_steps names no step of this policy: {unknown}")
        for index, step in enumerate(self.steps):
            if step.role != "handoff":
                continue
            for kind in (DebtorKind.CONSUMER, DebtorKind.UNKNOWN):
                if step.applies_to(kind) and not any(
                    s.role == "wik_notice" and s.applies_to(kind) for s in self.steps[:index]
                ):
                    raise ValueError(
                        f"step {step.name!r} hands {kind.value} debtors off without a "
                        "wik_notice step (veertiendagenbrief) before it"
                    )
        return self

    def interrupts(self, step: str, role: str | None) -> bool:
        """Whether sending ``step`` interrupts prescription (see ``interrupting_steps``)."""
        if self.interrupting_steps is None:
            return role == "wik_notice"
        return step in self.interrupting_steps

    def kind_of(self, kind: DebtorKind) -> DebtorKind:
        """The kind the ladder and the claim treat a debtor as: ``unknown_kind`` for unknown."""
        return DebtorKind(self.unknown_kind) if kind is DebtorKind.UNKNOWN else kind

    def index(self, step_name: str) -> int | None:
        for i, step in enumerate(self.steps):
            if step.name == step_name:
                return i
        return None


_CONSUMERS = (DebtorKind.CONSUMER, DebtorKind.UNKNOWN)  # unknown is treated as a consumer

DEFAULT_STEPS = (
    Step(name="reminder", channels=("email",), days_after_due=1, deadline_business_days=7),
    Step(
        name="call",
        channels=("call",),
        days_after_previous=7,
        fallback_channels=(),
        skip_when_unreachable=True,
    ),
    Step(
        name="aanmaning",
        channels=("email", "letter"),
        days_after_due=14,
        claim_interest=True,
        deadline_business_days=10,
    ),
    Step(
        name="veertiendagenbrief",
        channels=("letter", "email"),
        days_after_previous=7,
        kinds=_CONSUMERS,
        role="wik_notice",
    ),
    Step(
        name="final-call",
        channels=("call",),
        days_after_previous=7,
        fallback_channels=(),
        skip_when_unreachable=True,
    ),
    Step(
        name="handoff",
        channels=("agency",),
        days_after_previous=7,
        requires_approval=True,
        role="handoff",
        claim_interest=True,
        claim_costs=True,
    ),
)
"""Dutch practice: a friendly reminder the day after the due date, a phone call a week later,
an aanmaning about two weeks after the due date, the veertiendagenbrief for consumers (B2B
skips it), a final phone call, then handoff to a collection agency after approval. The calls
are courtesies, waived for a debtor without a phone number; the written steps fall back to a
letter, then a call task, and are never waived."""


def default_policy() -> Policy:
    return Policy(name=DEFAULT_POLICY, steps=DEFAULT_STEPS)
