"""When a message counts as received, and the 14-day term of the veertiendagenbrief.

HR 25-11-2016, ECLI:NL:HR:2016:2704 (term starts the day after receipt; posted letters
presumed delivered on the 2nd delivery day, not counting Sundays, Mondays and public
holidays). Postal norm D+2 from 2026-07-01 and D+3 from 2027-07-01:
https://www.rijksoverheid.nl/actueel/nieuws/2025/12/19/kabinet-besluit-tot-aanpassing-bezorgtijd-post-per-juli-2026-en-juli-2027

FLAG: the delivery-day schedule (:data:`POSTAL_DELIVERY_SCHEDULE`) after the norm change and
whether the Algemene termijnenwet (Atw) extends the 14-day term
(:func:`veertiendagenbrief_term`) are unsettled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

from debsync.errors import DebsyncError
from debsync.law.calendar import POSTAL_DELIVERY_CALENDAR, TERMIJNENWET_CALENDAR, DutchCalendar

_ONE_DAY = timedelta(days=1)


class ReceiptNotPresumedError(DebsyncError):
    """No receipt date can be presumed for this channel: it cannot carry the legal copy."""


@dataclass(frozen=True)
class DeliverySchedule:
    """Presumed postal delivery days by posting date: ``steps`` of (posted on or after, days),
    ascending. FLAG: after the 2026 postal norm change there is no case law (note A1.8)."""

    steps: tuple[tuple[date, int], ...]

    def days_for(self, sent: date) -> int:
        applicable = [(start, n) for start, n in self.steps if start <= sent]
        if not applicable:
            raise ValueError(f"the delivery schedule starts after {sent}")
        return max(applicable)[1]


POSTAL_DELIVERY_SCHEDULE = DeliverySchedule(
    ((date.min, 2), (date(2026, 7, 1), 3), (date(2027, 7, 1), 4))
)

POSTAL_CHANNELS = frozenset({"letter", "post"})


@functools.lru_cache(maxsize=4096)
def presumed_receipt(
    sent: date,
    channel: str,
    *,
    delivery_days: int | None = None,
    email_is_legal_copy: bool = False,
    schedule: DeliverySchedule = POSTAL_DELIVERY_SCHEDULE,
    calendar: DutchCalendar = POSTAL_DELIVERY_CALENDAR,
) -> date:
    """The day a message sent on ``sent`` is presumed received.

    Post (``"letter"``/``"post"``): the ``delivery_days``-th delivery day after posting
    (default from ``schedule`` by posting date). Email: the day it was sent, but only if the
    creditor made email the legal copy (FLAG: proof of receipt by email is contested, note
    A1.7 #12; a bounce means no receipt); otherwise :class:`ReceiptNotPresumedError`.
    Cached: every veertiendagenbrief of a day asks for the same receipt.
    """
    if channel == "email":
        if email_is_legal_copy:
            return sent
        raise ReceiptNotPresumedError(
            "email is not the legal copy: no receipt date is presumed for it; send the "
            "veertiendagenbrief by post, or set email_is_legal_copy in the policy"
        )
    if channel not in POSTAL_CHANNELS:
        raise ReceiptNotPresumedError(f"no receipt date is presumed for channel {channel!r}")
    days = schedule.days_for(sent) if delivery_days is None else delivery_days
    if days < 1:
        raise ValueError(f"delivery_days must be at least 1, got {days}")
    received = sent
    for _ in range(days):
        received += _ONE_DAY
        while not calendar.is_open(received):
            received += _ONE_DAY
    return received


@dataclass(frozen=True)
class Term:
    """The 14-day term of a veertiendagenbrief (art. 6:96 lid 6 BW, HR 2016:2704).

    ``last_day`` is the day the debtor may still pay: ``nominal_last_day`` (receipt + 14),
    moved forward if the Atw extension applies. Costs are due from ``costs_due_from``.
    """

    receipt: date
    first_day: date
    nominal_last_day: date
    last_day: date
    costs_due_from: date
    days: int = 14


@functools.lru_cache(maxsize=4096)
def veertiendagenbrief_term(
    receipt: date,
    *,
    apply_termijnenwet: bool = True,
    calendar: DutchCalendar = TERMIJNENWET_CALENDAR,
) -> Term:
    """The term starts the day after receipt and runs 14 days; costs are due the day after.

    FLAG (note A1.8): whether the Algemene termijnenwet extends this term is unsettled; by
    default (``apply_termijnenwet``) a term ending on a Saturday, Sunday or Atw holiday runs
    to the next day that is none of those, which can only make the debtor's term longer.
    Cached, like :func:`presumed_receipt`.
    """
    nominal = receipt + timedelta(days=14)
    last = nominal
    while apply_termijnenwet and not calendar.is_open(last):
        last += _ONE_DAY
    return Term(receipt, receipt + _ONE_DAY, nominal, last, last + _ONE_DAY)
