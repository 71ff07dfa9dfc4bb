"""Prescription (verjaring) of the claim to payment of an invoice, and its interruption.

Sources: the Burgerlijk Wetboek (official text: wetten.overheid.nl, BWBR0005291 for Boek 3,
BWBR0005290 for Boek 7); the wording quoted below was checked against the article texts as
reproduced at wetboekplus.nl (3:307, 3:317, 7:28) and beslagrecht.nl (3:307, 3:319):

* art. 3:307 lid 1 BW: a claim to performance of a contractual obligation "verjaart door
  verloop van vijf jaren na de aanvang van de dag, volgende op die waarop de vordering
  opeisbaar is geworden". An invoice's claim is exigible on its due date, so the five years
  run from the start of the day after the due date.
* art. 7:28 BW: "Bij een consumentenkoop verjaart de rechtsvordering tot betaling van de
  koopprijs door verloop van twee jaren" (mandatory in the consumer's favour). It names no
  start of its own; the start of art. 3:307 is used.
* art. 3:317 lid 1 BW: prescription is interrupted (gestuit) "door een schriftelijke
  aanmaning of door een schriftelijke mededeling waarin de schuldeiser zich ondubbelzinnig
  zijn recht op nakoming voorbehoudt"; art. 3:318 BW: also by the debtor's acknowledgment.
  A written statement takes effect when it reaches the debtor (art. 3:37 lid 3 BW).
* art. 3:319 BW: after an interruption "begint een nieuwe verjaringstermijn te lopen met de
  aanvang van de volgende dag", equal to the original term but never longer than five years
  (lid 1), and prescription never occurs before the original term would have ended (lid 2).

Conservative where the law leaves room, since dunning a prescribed claim is the harm to
avoid: a term that would end on a 29 February of a common year ends on the 28th; the
Algemene termijnenwet's extension past a weekend or holiday is not applied; an interruption
counts only if it took effect before the claim prescribed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

GENERAL_YEARS = 5
"""Art. 3:307 lid 1 BW."""
CONSUMER_SALE_YEARS = 2
"""Art. 7:28 BW."""
PRESCRIPTION_MIN_YEARS = min(GENERAL_YEARS, CONSUMER_SALE_YEARS)
"""No claim prescribes sooner: a plan need not look at younger ones."""


class PrescriptionTerm(StrEnum):
    """Which prescription term governs a claim, by its article."""

    GENERAL = "art. 3:307 BW"
    CONSUMER_SALE = "art. 7:28 BW"

    @property
    def years(self) -> int:
        return CONSUMER_SALE_YEARS if self is PrescriptionTerm.CONSUMER_SALE else GENERAL_YEARS


@dataclass(frozen=True)
class Prescription:
    """When a claim prescribes: ``prescribed_on`` is the first day it is prescribed, after the
    last interruption that counted (``interrupted_on``, or None)."""

    term: PrescriptionTerm
    due_date: date
    prescribed_on: date
    interrupted_on: date | None = None

    def applies(self, today: date) -> bool:
        return today >= self.prescribed_on

    def describe(self) -> str:
        if self.interrupted_on is None:
            since = f"the due date {self.due_date}"
        else:
            since = f"the interruption of {self.interrupted_on}"
        return (
            f"prescribed since {self.prescribed_on} ({self.term}: {self.term.years} years "
            f"from the day after {since})"
        )


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 28 February (the earlier
    end: conservative)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _end(start_day: date, years: int) -> date:
    """The first day prescribed, for a term of ``years`` running from the start of the day
    after ``start_day``: the term ends as that day's anniversary begins."""
    return add_years(start_day + timedelta(days=1), years)


def prescription(
    due_date: date, term: PrescriptionTerm, interruptions: Iterable[date] = ()
) -> Prescription:
    """When the claim of an invoice due on ``due_date`` prescribes, given the days on which
    interruptions (art. 3:317/3:318 BW) took effect."""
    years = term.years
    original = prescribed_on = _end(due_date, years)
    interrupted_on = None
    for day in sorted(interruptions):
        if day < due_date or day >= prescribed_on:
            continue  # before the claim was due, or after it had prescribed: no interruption
        prescribed_on = max(original, _end(day, min(years, GENERAL_YEARS)))  # art. 3:319
        interrupted_on = day
    return Prescription(term, due_date, prescribed_on, interrupted_on)
