"""Dunning steps the bookkeeping program (or the bookkeeper, by hand) already took before
debsync saw an invoice: reading a source's reminder level, and placing it on a policy's ladder.

A source knows three levels: a reminder (herinnering), an aanmaning, and a final notice
(laatste aanmaning, sommatie, veertiendagenbrief). On a policy's ladder a recorded level stands
for its step and the required written steps below it (a source's level 2 means its level 1 was
sent too); the courtesy steps right after it (calls the policy waives for an unreachable
debtor) are waived when the policy says so, because the source's own ladder ran in their place.

The law is applied conservatively: a consumer's final notice recorded elsewhere counts as a
veertiendagenbrief (art. 6:96 lid 6 BW, the gate for collection costs) only when the policy
vouches for it (``trust_recorded_wik``); otherwise debsync sends its own before any costs.

Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final, get_args

from debsync.facts import StepSent
from debsync.model import DebtorKind, PriorStep
from debsync.policy import Policy, Step

LEVELS: Final[tuple[PriorStep, ...]] = get_args(PriorStep)
"""The source's levels, lowest first: level 1, 2 and 3 of a numbered export."""

_WORDS: Final[dict[str, PriorStep]] = {
    "herinnering": "reminder",
    "betalingsherinnering": "reminder",
    "reminder": "reminder",
    "aanmaning": "aanmaning",
    "dunningletter": "aanmaning",
    "laatsteaanmaning": "veertiendagenbrief",
    "finaleaanmaning": "veertiendagenbrief",
    "sommatie": "veertiendagenbrief",
    "ingebrekestelling": "veertiendagenbrief",
    "veertiendagenbrief": "veertiendagenbrief",
    "14dagenbrief": "veertiendagenbrief",
    "wikbrief": "veertiendagenbrief",
    "finalnotice": "veertiendagenbrief",
    "finalreminder": "veertiendagenbrief",
}
_NONE: Final = frozenset({"", "0", "geen", "none", "nee", "no", "-"})
_ORDINAL: Final = re.compile(
    r"^(?:\d+(?:e|de|ste|st|nd|rd|th)|eerste|tweede|derde|vierde|first|second|third)"
)
"""``2e aanmaning``, ``Tweede herinnering``: a second aanmaning is still an aanmaning (only a
*laatste* one is final), a second reminder still a reminder, the conservative reading."""
_WRITTEN: Final = frozenset({"email", "letter", "sms"})


def parse_level(text: str) -> PriorStep | None:
    """The level a source's cell names: a number (1 reminder, 2 aanmaning, 3 or more the final
    notice) or a word in Dutch or English, case, spaces and punctuation ignored;
    ``None`` for an empty or "0" cell. Raises ``ValueError`` for anything else."""
    folded = "".join(ch for ch in text.casefold() if ch.isalnum())
    if folded in _NONE:
        return None
    if folded.isdigit():
        return LEVELS[min(int(folded), len(LEVELS)) - 1]
    found = _WORDS.get(folded) or _WORDS.get(_ORDINAL.sub("", folded))
    if found is None:
        raise ValueError(f"{text!r} is not a reminder level (1-3, herinnering, aanmaning, …)")
    return found


def _written(step: Step) -> bool:
    return step.role is None and any(c in _WRITTEN for c in step.channels)


def _courtesy(step: Step) -> bool:
    return step.role is None and step.skip_when_unreachable


def level_index(policy: Policy, kind: DebtorKind, level: PriorStep) -> int | None:
    """The policy step a level stands for, among the written steps for a ``kind`` debtor: the
    first (reminder), the first after it that claims interest, else the next (aanmaning), the
    veertiendagenbrief, else the last written step (final notice); None when there is none.
    A business's final notice stands at the veertiendagenbrief it skips: past the aanmaning."""
    steps = policy.steps
    written = [i for i, step in enumerate(steps) if _written(step) and step.applies_to(kind)]
    if not written:
        return None
    if level == "reminder":
        return written[0]
    if level == "aanmaning":
        later = written[1:] or written
        return next((i for i in later if steps[i].claim_interest), later[0])
    wik = next((i for i, step in enumerate(steps) if step.role == "wik_notice"), None)
    return wik if wik is not None else written[-1]


def recorded_history(
    policy: Policy,
    kind: DebtorKind,
    level: PriorStep,
    sent_on: date,
    source: str,
) -> list[StepSent]:
    """The history a step recorded in ``source`` gives an invoice of a ``kind`` debtor under
    ``policy``, oldest first, every entry marked ``elsewhere``: the required steps below it,
    the step itself, and the last courtesy step waived after it. Empty when the policy has no
    step for the level."""
    steps = policy.steps
    kind = policy.kind_of(kind)
    at = level_index(policy, kind, level)
    if at is None:
        return []
    wik = steps[at].role == "wik_notice"
    if wik and kind is not DebtorKind.BUSINESS and not policy.trust_recorded_wik:
        lower = [i for i in range(at) if _written(steps[i]) and steps[i].applies_to(kind)]
        if not lower:
            return []
        at = lower[-1]  # not vouched for: debsync sends its own veertiendagenbrief
    history = [
        StepSent(step.name, sent_on, elsewhere=source)
        for step in steps[:at]
        if step.applies_to(kind) and not step.skip_when_unreachable and step.role is None
    ]
    history.append(StepSent(steps[at].name, sent_on, steps[at].role, elsewhere=source))
    if policy.waive_courtesies_after_recorded:
        waived = None
        for later in steps[at + 1 :]:
            if not later.applies_to(kind):
                continue
            if not _courtesy(later):
                break
            waived = later
        if waived is not None:
            history.append(StepSent(waived.name, sent_on, elsewhere=source))
    return history
