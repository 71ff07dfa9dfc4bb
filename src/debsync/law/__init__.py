"""Dutch statutory rules for dunning: collection costs, statutory interest, dates.

Pure functions over ``Decimal`` and ``datetime.date``; the only I/O is reading the shipped
interest table and, if configured, the operator's own. This is a reading of public law for
engineers, not legal advice. Everything marked FLAG rests on a secondary source or on an
interpretation, and is therefore a parameter with a documented default, not a constant.
Each module names its sources; docs/law.md explains them for operators.

- :mod:`~debsync.law.costs`: the BIK staffel, the B2B compensation, the Wki cumulation rule.
- :mod:`~debsync.law.rates`: the statutory interest rate table and its files.
- :mod:`~debsync.law.interest`: statutory interest over that table, and its conventions.
- :mod:`~debsync.law.calendar`: Dutch holidays, business days, postal delivery days.
- :mod:`~debsync.law.terms`: presumed receipt and the veertiendagenbrief term.
- :mod:`~debsync.law.prescription`: prescription (verjaring) of a claim and its interruption.

Callers use the names below as ``law.<name>`` (``from debsync import law``), not the modules.
"""

from __future__ import annotations

from debsync.law.calendar import (
    BUSINESS_CALENDAR,
    POSTAL_DELIVERY_CALENDAR,
    TERMIJNENWET_CALENDAR,
    DutchCalendar,
    add_business_days,
    easter,
    is_business_day,
    next_business_day,
)
from debsync.law.costs import (
    B2B_COMPENSATION,
    BIK_STAFFEL,
    CENT,
    WKI_CUMULATION,
    ZERO,
    CumulationRule,
    Staffel,
    collection_costs,
    collection_costs_for,
)
from debsync.law.interest import (
    DEFAULT_CONVENTION,
    Compounding,
    DayCount,
    InterestConvention,
    InterestPeriod,
    commercial_interest_start,
    statutory_interest,
    statutory_interest_breakdown,
)
from debsync.law.prescription import (
    PRESCRIPTION_MIN_YEARS,
    Prescription,
    PrescriptionTerm,
    prescription,
)
from debsync.law.rates import (
    HELD_WITHOUT_INTEREST,
    RATE_HEADER,
    RATE_TABLE_WARNING_DAYS,
    Article,
    RateRow,
    RateTable,
    RateTableError,
    RateUnknownError,
    article_for,
    load_rate_table,
    parse_rate_rows,
    rate_gap_warning,
    rate_table_warnings,
)
from debsync.law.terms import (
    POSTAL_CHANNELS,
    POSTAL_DELIVERY_SCHEDULE,
    DeliverySchedule,
    ReceiptNotPresumedError,
    Term,
    presumed_receipt,
    veertiendagenbrief_term,
)

__all__ = [
    "B2B_COMPENSATION",
    "BIK_STAFFEL",
    "BUSINESS_CALENDAR",
    "CENT",
    "DEFAULT_CONVENTION",
    "HELD_WITHOUT_INTEREST",
    "POSTAL_CHANNELS",
    "POSTAL_DELIVERY_CALENDAR",
    "POSTAL_DELIVERY_SCHEDULE",
    "PRESCRIPTION_MIN_YEARS",
    "RATE_HEADER",
    "RATE_TABLE_WARNING_DAYS",
    "TERMIJNENWET_CALENDAR",
    "WKI_CUMULATION",
    "ZERO",
    "Article",
    "Compounding",
    "CumulationRule",
    "DayCount",
    "DeliverySchedule",
    "DutchCalendar",
    "InterestConvention",
    "InterestPeriod",
    "Prescription",
    "PrescriptionTerm",
    "RateRow",
    "RateTable",
    "RateTableError",
    "RateUnknownError",
    "ReceiptNotPresumedError",
    "Staffel",
    "Term",
    "add_business_days",
    "article_for",
    "collection_costs",
    "collection_costs_for",
    "commercial_interest_start",
    "easter",
    "is_business_day",
    "load_rate_table",
    "next_business_day",
    "parse_rate_rows",
    "prescription",
    "presumed_receipt",
    "rate_gap_warning",
    "rate_table_warnings",
    "statutory_interest",
    "statutory_interest_breakdown",
    "veertiendagenbrief_term",
]
