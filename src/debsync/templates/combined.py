"""The wording of a message that does more than one thing: it offsets open credit notes
against the claim, or it names invoices at a lower stage than the message's own step (one
message per debtor and channel a day).

Each function returns a sentence in the message's language, or an empty string, so every
template can print it unconditionally.
"""

from __future__ import annotations

from decimal import Decimal

from debsync import formatting
from debsync.actions.base import MessageContext
from debsync.model import Language

STAGES = {
    Language.NL: {
        "courtesy": "vooraankondiging",
        "reminder": "herinnering",
        "call": "herinnering",
        "aanmaning": "aanmaning",
        "veertiendagenbrief": "veertiendagenbrief",
        "final-call": "laatste herinnering",
        "handoff": "overdracht",
    },
    Language.EN: {
        "courtesy": "advance notice",
        "reminder": "reminder",
        "call": "reminder",
        "aanmaning": "formal notice",
        "veertiendagenbrief": "fourteen-day letter",
        "final-call": "final reminder",
        "handoff": "handoff",
    },
}
"""How a stage is named to the debtor; a step of another name is a reminder."""


def stage_label(step: str | None, language: Language) -> str:
    if not step:
        return ""
    return STAGES[language].get(step, STAGES[language]["reminder"])


def _listed(numbers: list[str], nl: bool) -> str:
    if len(numbers) == 1:
        return numbers[0]
    return f"{', '.join(numbers[:-1])} {'en' if nl else 'and'} {numbers[-1]}"


def credit_note(context: MessageContext) -> str:
    """The sentence saying which open credit notes were offset against the claim."""
    if not context.credits:
        return ""
    nl = context.language is Language.NL
    numbers = _listed([c.number for c in context.credits], nl)
    amount = -sum((c.open_amount for c in context.credits), Decimal(0))
    shown = formatting.money(amount, context.currency, context.language)
    if len(context.credits) > 1:
        if nl:
            return (
                f"Op het openstaande bedrag zijn de openstaande creditnota's {numbers} van "
                f"samen {shown} in mindering gebracht."
            )
        return (
            f"The open credit notes {numbers} totalling {shown} have been deducted from the "
            "outstanding amount."
        )
    if nl:
        return (
            f"Op het openstaande bedrag is de openstaande creditnota {numbers} van {shown} in "
            "mindering gebracht."
        )
    return (
        f"The open credit note {numbers} of {shown} has been deducted from the outstanding amount."
    )


def reminder_note(context: MessageContext) -> str:
    """The sentence saying that invoices at a lower stage are named as a reminder only: this
    message's interest, costs and terms do not apply to them yet."""
    lower = [line.number for line in context.invoices if line.stage and line.stage != context.step]
    if not lower:
        return ""
    nl = context.language is Language.NL
    listed = _listed(lower, nl)
    this = THIS[(context.channel == "letter", nl)]
    if nl:
        which = f"De facturen {listed} noemen" if len(lower) > 1 else f"Factuur {listed} noemen"
        return (
            f"{which} wij hier ter herinnering; wat {this} verder over rente, kosten of "
            "termijnen zegt, geldt daarvoor nog niet."
        )
    which = f"Invoices {listed} are" if len(lower) > 1 else f"Invoice {listed} is"
    them = "them" if len(lower) > 1 else "it"
    return (
        f"{which} mentioned here as a reminder; what {this} says about interest, costs or "
        f"terms does not yet apply to {them}."
    )


THIS = {
    (True, True): "deze brief",
    (True, False): "this letter",
    (False, True): "dit bericht",
    (False, False): "this message",
}
