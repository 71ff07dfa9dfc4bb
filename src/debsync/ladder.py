"""A policy's ladder as one kind of debtor with given contact details walks it: for every
position (the last step sent) the next step, the channels that carry it, or why it cannot
be taken.

The ladder is never skipped. A step passes over a debtor only when the policy says so: the
step is for another kind of debtor, or it is marked ``skip_when_unreachable`` and nothing
reaches the debtor. A step none of whose channels reach the debtor falls back to the first
reachable of its ``fallback_channels`` (a letter with a postal address, a call task with a
phone); with none, the ladder stops there and the invoice needs contact details.

Pure: no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from debsync.model import DebtorKind
from debsync.policy import Policy, Step

_MISSING = {
    "email": "e-mail address",
    "letter": "postal address",
    "call": "phone number",
    "sms": "mobile phone number",
}


class Rung(NamedTuple):
    """The next step for an invoice whose last step sent is at a given position."""

    position: int
    step: Step
    channels: tuple[str, ...]  # the channels that carry it to this debtor, fallback included
    after_due: int | None
    after_previous: int | None
    previous_nominal: int  # days after due at which the last sent step nominally fell
    min_overdue: int
    # the steps before it that must be in the history before a handoff: every one that
    # applies and cannot be waived (the veertiendagenbrief has its own, stricter guard)
    required: frozenset[str]


class Unreachable(NamedTuple):
    """The next step the policy requires cannot reach the debtor: what is missing."""

    position: int
    step: Step
    detail: str


def legal_copy_possible(step: Step, policy: Policy, channels: tuple[str, ...]) -> bool:
    """Whether a veertiendagenbrief on ``channels`` has its legal copy (the letter, or e-mail
    where the policy makes e-mail the legal copy); always true for other steps."""
    return step.role != "wik_notice" or any(
        c == "letter" or (c == "email" and policy.email_is_legal_copy) for c in channels
    )


def channels_for(step: Step, policy: Policy, unreachable: frozenset[str]) -> tuple[str, ...]:
    """The step's channels that reach the debtor or, when none does, its first reachable
    fallback channel; none when even that fails (or a veertiendagenbrief lacks its legal
    copy: its legal effect needs the letter, so a fallback cannot stand in for it)."""
    channels = tuple(c for c in step.channels if c not in unreachable)
    if channels:
        return channels if legal_copy_possible(step, policy, channels) else ()
    if step.role == "wik_notice":
        return ()
    for channel in step.fallback_channels:
        if channel not in unreachable:
            return (channel,)
    return ()


def missing_contact(step: Step, unreachable: frozenset[str]) -> str:
    """Which contact details keep ``step`` from reaching a debtor, by kind (never values)."""
    tried = dict.fromkeys((*step.channels, *step.fallback_channels))
    missing = [_MISSING[c] for c in tried if c in unreachable and c in _MISSING]
    fallback = f"; fallback {', '.join(step.fallback_channels)}" if step.fallback_channels else ""
    what = ", ".join(missing) if missing else "a channel that can carry it"
    if step.role == "wik_notice" and "letter" in unreachable:
        what = "postal address (the veertiendagenbrief's legal copy is a letter)"
    return (
        f"step {step.name!r} cannot reach the debtor: no {what} "
        f"(channels {', '.join(step.channels)}{fallback})"
    )


class Ladder:
    """A policy as one kind of debtor walks it, precomputed once per plan: for every
    position (the last step sent, -1 for none) the next rung, an :class:`Unreachable` when
    the next required step cannot reach the debtor, or None at the end of the ladder."""

    def __init__(
        self,
        policy: Policy,
        kind: DebtorKind,
        unreachable: frozenset[str] = frozenset(),
    ) -> None:
        self.policy = policy
        self.kind = kind = policy.kind_of(kind)  # unknown: as the policy says
        self.consumer = kind is not DebtorKind.BUSINESS  # unknown is treated as a consumer
        steps = policy.steps
        applies = [step.applies_to(kind) for step in steps]
        usable = [
            channels_for(step, policy, unreachable) if ok else ()
            for step, ok in zip(steps, applies, strict=True)
        ]
        self.position = {step.name: i for i, step in enumerate(steps)}
        nominal, offset = [], 0
        for step in steps:
            offset = (
                step.days_after_due
                if step.days_after_due is not None
                else (offset + (step.days_after_previous or 0))
            )
            nominal.append(offset)
        required = [
            frozenset(
                s.name
                for j, s in enumerate(steps[:index])
                if applies[j] and not s.skip_when_unreachable and s.role != "wik_notice"
            )
            for index in range(len(steps))
        ]
        self.after: dict[int, Rung | Unreachable | None] = {}
        for last in range(-1, len(steps)):
            index = last + 1
            while index < len(steps) and not usable[index]:
                step = steps[index]
                if applies[index] and not step.skip_when_unreachable:
                    break  # required and unreachable: the ladder stops here
                index += 1
            if index >= len(steps):
                self.after[last] = None
                continue
            step = steps[index]
            if not usable[index]:
                detail = missing_contact(step, unreachable)
                self.after[last] = Unreachable(index, step, detail)
                continue
            self.after[last] = Rung(
                index,
                step,
                usable[index],
                step.days_after_due,
                step.days_after_previous,
                nominal[last] if last >= 0 else 0,
                step.min_days_overdue,
                required[index],
            )
