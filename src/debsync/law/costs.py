"""Collection costs (buitengerechtelijke incassokosten, BIK) and the B2B compensation.

Art. 6:96 lid 2 sub c, 4-7 BW; Besluit vergoeding voor buitengerechtelijke incassokosten
(Stb. 2012, 141) art. 2: https://wetten.overheid.nl/BWBR0031432 ,
https://zoek.officielebekendmakingen.nl/stb-2012-141.html . The staffel applies to the
principal only (not interest); for one letter covering several claims, to their sum (lid 7:
:func:`collection_costs_for`). A principal of zero or less owes nothing: the EUR 40 minimum
compensates collecting a claim, and there is none.

FLAG: rounding (half-up to cents, once) and cap-before-VAT are conventions, see
:class:`Staffel`; the Wki cumulation cap (Stb. 2024, 44) was not read in full, see
:class:`CumulationRule`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
"""Every amount the law package returns is rounded to this."""
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Staffel:
    """The BIK staffel (Besluit BIK art. 2). ``bands``: (width or None for the rest, rate).

    FLAG (convention, not law): ``rounding`` is applied once to the total; with
    ``cap_before_vat`` the minimum and maximum bound the amount before the VAT surcharge (so
    EUR 6,775 x 1.21 = 8,197.75 is the maximum with 21 % VAT), otherwise they bound the total.
    """

    bands: tuple[tuple[Decimal | None, Decimal], ...]
    minimum: Decimal
    maximum: Decimal
    rounding: str = ROUND_HALF_UP
    cap_before_vat: bool = True


BIK_STAFFEL = Staffel(
    bands=(
        (Decimal("2500"), Decimal("0.15")),
        (Decimal("2500"), Decimal("0.10")),
        (Decimal("5000"), Decimal("0.05")),
        (Decimal("190000"), Decimal("0.01")),
        (None, Decimal("0.005")),
    ),
    minimum=Decimal("40.00"),
    maximum=Decimal("6775.00"),
)

B2B_COMPENSATION = Decimal("40.00")
"""Fixed compensation in a handelsovereenkomst, due without demand (art. 6:96 lid 4 BW)."""


def collection_costs(
    principal: Decimal, *, vat_rate: Decimal | None = None, staffel: Staffel = BIK_STAFFEL
) -> Decimal:
    """BIK on an unpaid principal, in cents; ``Decimal("0.00")`` for a principal <= 0.

    :param vat_rate: VAT added on top, e.g. ``Decimal("0.21")``, only when the creditor cannot
        deduct VAT and says so in the letter (Besluit art. 2 lid 3). ``None`` or 0: no VAT.
    """
    if vat_rate is not None and not Decimal(0) <= vat_rate < 1:
        raise ValueError(f"vat_rate must be a fraction in [0, 1), e.g. 0.21; got {vat_rate}")
    if principal <= 0:
        return ZERO
    rest, raw = principal, Decimal(0)
    for width, rate in staffel.bands:
        part = rest if width is None else min(rest, width)
        raw += part * rate
        rest -= part
        if rest <= 0:
            break
    factor = 1 + (vat_rate or 0)
    if staffel.cap_before_vat:
        amount = min(max(raw, staffel.minimum), staffel.maximum).quantize(CENT, staffel.rounding)
        return (amount * factor).quantize(CENT, staffel.rounding)
    amount = min(max(raw * factor, staffel.minimum), staffel.maximum)
    return amount.quantize(CENT, staffel.rounding)


def collection_costs_for(
    principals: Iterable[Decimal],
    *,
    vat_rate: Decimal | None = None,
    staffel: Staffel = BIK_STAFFEL,
) -> Decimal:
    """BIK for one letter covering several claims: the staffel on the summed principal
    (art. 6:96 lid 7 BW), not the sum of per-claim amounts."""
    return collection_costs(sum(principals, Decimal(0)), vat_rate=vat_rate, staffel=staffel)


@dataclass(frozen=True)
class CumulationRule:
    """FLAG: the Wki cumulation rule for small recurring consumer claims (Besluit BIK as
    amended by Stb. 2024, 44, https://zoek.officielebekendmakingen.nl/stb-2024-44.html), as
    summarised by secondary sources; the article text (trigger, scope of the cap, VAT) was not
    read. Recurring claims of the same creditor against a consumer, each below
    ``claim_below``, that fell due within ``lookback_months`` count as one: their BIK together
    is at most ``cap``.
    """

    in_force_from: date = date(2024, 10, 1)
    claim_below: Decimal = Decimal("266.67")
    lookback_months: int = 6
    cap: Decimal = Decimal("140.00")

    def covers(self, principal: Decimal, due_date: date) -> bool:
        """Whether a recurring claim falls under the rule."""
        return due_date >= self.in_force_from and 0 < principal < self.claim_below

    def window_start(self, today: date) -> date:
        """First due date that counts with claims due today (``lookback_months`` back)."""
        month = today.year * 12 + today.month - 1 - self.lookback_months
        year, month0 = divmod(month, 12)
        for day in (today.day, 30, 29, 28):  # clamp 31 August -> 28/29 February
            try:
                return date(year, month0 + 1, day)
            except ValueError:
                continue
        raise AssertionError("unreachable")  # pragma: no cover

    def limit(self, costs: Decimal, *, already_charged: Decimal) -> Decimal:
        """``costs`` reduced so that the claims in one window never carry more than ``cap``."""
        return max(ZERO, min(costs, self.cap - already_charged)).quantize(CENT, ROUND_HALF_UP)


WKI_CUMULATION = CumulationRule()
