"""Dutch statutory rules: table tests from the research note's worked examples, edge cases,
and properties (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debsync import law
from debsync.errors import DebsyncError

D = Decimal

# -- collection costs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "costs", "with_vat"),
    [  # research note A1.5
        ("200.00", "40.00", "48.40"),
        ("266.67", "40.00", "48.40"),
        ("300.00", "45.00", "54.45"),
        ("1234.56", "185.18", "224.07"),
        ("8400.00", "795.00", "961.95"),
        ("10000.00", "875.00", "1058.75"),
        ("23000.00", "1005.00", "1216.05"),
        ("1000000", "6775.00", "8197.75"),
        ("2000000", "6775.00", "8197.75"),
    ],
)
def test_bik_worked_examples(principal: str, costs: str, with_vat: str) -> None:
    assert law.collection_costs(D(principal)) == D(costs)
    assert law.collection_costs(D(principal), vat_rate=D("0.21")) == D(with_vat)


@pytest.mark.parametrize(
    ("principal", "costs"),
    [
        ("0.01", "40.00"),
        ("266.66", "40.00"),
        ("266.70", "40.01"),  # 40.005 rounds half up
        ("2500", "375.00"),
        ("2500.01", "375.00"),
        ("5000", "625.00"),
        ("10000", "875.00"),
        ("200000", "2775.00"),
        ("200100", "2775.50"),
        ("999999.99", "6775.00"),
        ("5000000", "6775.00"),
    ],
)
def test_bik_staffel_boundaries(principal: str, costs: str) -> None:
    assert law.collection_costs(D(principal)) == D(costs)


@pytest.mark.parametrize("principal", ["0", "0.00", "-100.00"])
def test_no_claim_no_costs(principal: str) -> None:
    assert law.collection_costs(D(principal)) == D("0.00")
    assert law.collection_costs(D(principal), vat_rate=D("0.21")) == D("0.00")


def test_bik_vat_zero_is_no_vat_and_bad_rates_are_refused() -> None:
    assert law.collection_costs(D("300"), vat_rate=D(0)) == D("45.00")
    with pytest.raises(ValueError, match="fraction"):
        law.collection_costs(D("300"), vat_rate=D(21))
    with pytest.raises(ValueError, match="fraction"):
        law.collection_costs(D("300"), vat_rate=D("-0.21"))


def test_bik_cap_after_vat_is_a_choice() -> None:
    staffel = law.Staffel(
        law.BIK_STAFFEL.bands,
        law.BIK_STAFFEL.minimum,
        law.BIK_STAFFEL.maximum,
        cap_before_vat=False,
    )
    assert law.collection_costs(D("1000000"), vat_rate=D("0.21"), staffel=staffel) == D("6775.00")
    assert law.collection_costs(D("200"), vat_rate=D("0.21"), staffel=staffel) == D("40.00")
    assert law.collection_costs(D("300"), vat_rate=D("0.21"), staffel=staffel) == D("54.45")


def test_one_letter_for_several_claims_uses_the_summed_principal() -> None:
    claims = [D("200.00"), D("300.00"), D("1000.00")]
    assert law.collection_costs_for(claims) == D("225.00")  # 15 % of 1,500
    assert sum(law.collection_costs(c) for c in claims) == D("235.00")
    assert law.collection_costs_for(claims, vat_rate=D("0.21")) == D("272.25")
    assert law.collection_costs_for([]) == D("0.00")


def test_b2b_compensation() -> None:
    assert D("40.00") == law.B2B_COMPENSATION
    assert law.commercial_interest_start(date(2024, 6, 30)) == date(2024, 7, 1)
    # no due date agreed: 30 days from the start of the day after receipt (6:119a lid 2)
    assert law.commercial_interest_start(invoice_received=date(2024, 6, 1)) == date(2024, 7, 2)
    with pytest.raises(ValueError, match="due date"):
        law.commercial_interest_start()


def test_wki_cumulation_rule_is_data() -> None:
    rule = law.WKI_CUMULATION
    assert (rule.claim_below, rule.cap, rule.lookback_months) == (D("266.67"), D("140.00"), 6)
    assert rule.covers(D("50"), date(2025, 1, 1))
    assert not rule.covers(D("266.67"), date(2025, 1, 1))
    assert not rule.covers(D("50"), date(2024, 9, 30))
    assert rule.window_start(date(2026, 8, 31)) == date(2026, 2, 28)
    assert rule.window_start(date(2024, 8, 31)) == date(2024, 2, 29)
    assert rule.window_start(date(2026, 3, 15)) == date(2025, 9, 15)
    assert rule.limit(D("40.00"), already_charged=D("120.00")) == D("20.00")
    assert rule.limit(D("40.00"), already_charged=D("150.00")) == D("0.00")
    assert law.CumulationRule(cap=D("200")).limit(D("40"), already_charged=D("120")) == D("40.00")


# -- statutory interest -------------------------------------------------------------------


def _rows(periods: list[law.InterestPeriod]) -> list[tuple[str, str, int, str, str, str]]:
    return [
        (
            p.start.isoformat(),
            p.end.isoformat(),
            p.days,
            f"{p.rate * 100:.2f}",
            f"{p.base:.2f}",
            f"{p.amount:.2f}",
        )
        for p in periods
    ]


def test_interest_worked_example_b2c() -> None:
    periods = law.statutory_interest_breakdown(
        D("1234.56"), date(2024, 3, 15), date(2026, 3, 14), commercial=False
    )
    assert _rows(periods) == [
        ("2024-03-15", "2024-12-31", 292, "7.00", "1234.56", "69.14"),
        ("2025-01-01", "2025-03-14", 73, "6.00", "1234.56", "14.81"),
        ("2025-03-15", "2025-12-31", 292, "6.00", "1318.51", "63.29"),
        ("2026-01-01", "2026-03-14", 73, "4.00", "1318.51", "10.55"),
    ]
    total = law.statutory_interest(
        D("1234.56"), date(2024, 3, 15), date(2026, 3, 14), commercial=False
    )
    assert total == D("157.79")


def test_interest_worked_example_b2b() -> None:
    start = law.commercial_interest_start(date(2024, 6, 30))
    periods = law.statutory_interest_breakdown(
        D("10000"), start, date(2026, 1, 31), commercial=True
    )
    assert _rows(periods) == [
        ("2024-07-01", "2024-12-31", 184, "12.25", "10000.00", "617.53"),
        ("2025-01-01", "2025-06-30", 181, "11.15", "10000.00", "552.92"),
        ("2025-07-01", "2025-12-31", 184, "10.15", "11170.45", "571.56"),
        ("2026-01-01", "2026-01-31", 31, "10.15", "11170.45", "96.30"),
    ]
    assert law.statutory_interest(D("10000"), start, date(2026, 1, 31), commercial=True) == D(
        "1838.31"
    )


@pytest.mark.parametrize(
    ("principal", "start", "end", "commercial", "expected"),
    [
        # one day (start == end, both inclusive): 10000 x 10.15 % / 365
        ("10000", "2026-01-15", "2026-01-15", True, "2.78"),
        ("10000", "2026-01-15", "2026-01-15", False, "1.10"),
        # 1 July with a rate change: two periods (30 d at 12.5 %, 31 d at 12.25 %)
        ("1000", "2024-06-01", "2024-07-31", True, "20.67"),
        # 1 July without a change (7 % both half-years): one period of 61 days
        ("1000", "2024-06-01", "2024-07-31", False, "11.70"),
        # leap year: 366 days / 365
        ("1000", "2024-01-01", "2024-12-31", False, "70.19"),
        # three anniversaries' worth of compounding at 2 %: 20.00 + 20.40 + 20.81
        ("1000", "2017-01-01", "2019-12-31", False, "61.21"),
        # start on 29 February: the first year ends 28 February, compounding on 1 March
        ("1000", "2024-02-29", "2025-03-31", False, "74.03"),
        # nothing before interest starts, nothing on nothing
        ("1000", "2024-07-01", "2024-06-30", True, "0.00"),
        ("0", "2015-01-01", "2026-06-30", True, "0.00"),
    ],
)
def test_interest_cases(
    principal: str, start: str, end: str, commercial: bool, expected: str
) -> None:
    got = law.statutory_interest(
        D(principal), date.fromisoformat(start), date.fromisoformat(end), commercial=commercial
    )
    assert got == D(expected)


def test_feb_29_start_compounds_on_1_march() -> None:
    periods = law.statutory_interest_breakdown(
        D("1000"), date(2024, 2, 29), date(2025, 3, 31), commercial=False
    )
    assert [(p.start, p.days, p.base) for p in periods] == [
        (date(2024, 2, 29), 307, D("1000")),
        (date(2025, 1, 1), 59, D("1000")),
        (date(2025, 3, 1), 31, D("1068.58")),
    ]


def test_act_act_and_calendar_year_compounding_are_options() -> None:
    act_act = law.InterestConvention(day_count=law.DayCount.ACT_ACT)
    one_year = (D("1000"), date(2024, 1, 1), date(2024, 12, 31))
    assert law.statutory_interest(*one_year, commercial=False, convention=act_act) == D("70.00")
    calendar = law.InterestConvention(compounding=law.Compounding.CALENDAR_YEAR)
    periods = law.statutory_interest_breakdown(
        D("1000"), date(2023, 7, 1), date(2024, 1, 31), commercial=False, convention=calendar
    )
    # 184 days at 6 % = 30.25, added to the base on 1 January
    assert [p.base for p in periods] == [D("1000"), D("1030.25")]


def test_commercial_and_non_commercial_differ() -> None:
    args = (D("5000"), date(2023, 1, 1), date(2023, 12, 31))
    assert law.statutory_interest(*args, commercial=False) == D("250.41")  # 181 d 4 %, 184 d 6 %
    assert law.statutory_interest(*args, commercial=True) == D("562.81")  # 10.5 %, 12 %


def test_negative_principal_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        law.statutory_interest(D("-1"), date(2024, 1, 1), date(2024, 2, 1), commercial=True)


def test_rates_are_never_guessed() -> None:
    table = law.load_rate_table()
    assert table.last_known() == date(2026, 12, 31)
    assert table.last_known(commercial=True) == date(2026, 12, 31)
    with pytest.raises(law.RateUnknownError) as info:
        law.statutory_interest(D("100"), date(2026, 12, 1), date(2027, 1, 1), commercial=True)
    err = info.value
    assert isinstance(err, DebsyncError)
    assert (err.day, err.article, err.table_end) == (date(2027, 1, 1), "6:119a", date(2026, 12, 31))
    assert "2027-01-01,6:119a,<rate_percent>,<source>" in str(err)
    assert "[law] interest_rates" in str(err)
    with pytest.raises(law.RateUnknownError, match="2014-12-31"):
        law.statutory_interest(D("100"), date(2014, 12, 31), date(2015, 1, 2), commercial=False)


def test_shipped_table_has_every_half_year() -> None:
    rows = law.load_rate_table().rows()
    for article in law.Article:
        starts = [r.valid_from for r in rows if r.article is article]
        assert starts[0] == date(2015, 1, 1)
        assert len(starts) == 24  # 2015-01-01 .. 2026-07-01
    assert all(r.source and r.origin.startswith("debsync/data/") for r in rows)
    commercial = {r.valid_from: r.rate for r in rows if r.article is law.Article.HANDELSRENTE}
    assert commercial[date(2016, 7, 1)] == D("0.08")
    assert commercial[date(2023, 7, 1)] == D("0.12")


def _write(tmp_path: Path, text: str, name: str = "rates.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "valid_from,article,rate_percent,source\n"


def test_user_file_extends_and_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# local additions\n"
        + HEADER
        + "2026-07-01,6:119,4.00,https://example.org/a\n"
        + "2026-07-01,6:119a,10.00,https://example.org/b\n"
        + "\n"
        + "2026-01-01,6:119a,11.00,correction\n",
    )
    table = law.load_rate_table(path)
    assert table.last_known() == date(2026, 12, 31)
    row = table.row_for(date(2026, 8, 1), commercial=True)
    assert (row.rate, row.origin) == (D("0.1"), f"{path}:4")
    assert table.rate(date(2026, 3, 1), commercial=True) == D("0.11")
    one_day = law.statutory_interest(
        D("36500"), date(2026, 7, 1), date(2026, 7, 1), commercial=True, table=table
    )
    assert one_day == D("10.00")


def test_user_file_with_a_gap_keeps_the_gap(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "2027-07-01,6:119a,9.00,x\n2027-07-01,6:119,3.00,x\n")
    table = law.load_rate_table(path)
    assert table.last_known() == date(2026, 12, 31)
    assert table.rate(date(2027, 8, 1), commercial=True) == D("0.09")
    with pytest.raises(law.RateUnknownError):
        table.rate(date(2027, 2, 1), commercial=True)


def test_user_file_may_start_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text(HEADER + "2026-07-01,6:119,4.00,x\n", encoding="utf-8-sig")
    assert law.load_rate_table(path).rate(date(2026, 7, 1), commercial=False) == D("0.04")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("2026-13-01,6:119,4.00,x\n", 2, "is not a date"),
        ("2026-07-02,6:119,4.00,x\n", 2, "1 January or 1 July"),
        ("2026-07-01,6:120,4.00,x\n", 2, "must be one of 6:119, 6:119a"),
        ("2026-07-01,6:119,four,x\n", 2, "not a number"),
        ("2026-07-01,6:119,-1,x\n", 2, "percentage from 0 to 100"),
        ("2026-07-01,6:119,NaN,x\n", 2, "percentage from 0 to 100"),
        ("2026-07-01,6:119,4.00,\n", 2, "source is empty"),
        ("2026-07-01,6:119,4.00\n", 2, "expected 4 fields"),
        ("# c\n\n2026-07-01,6:119,4.00,x,y\n", 4, "expected 4 fields"),
        ("2026-07-01,6:119,4.00,x\n2026-07-01,6:119,5.00,y\n", 3, "on line 2"),
    ],
)
def test_malformed_user_file_names_file_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(law.RateTableError, match=message) as info:
        law.load_rate_table(path)
    assert (info.value.file, info.value.line) == (str(path), line)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert isinstance(info.value, DebsyncError)


def test_rate_file_header_and_existence(tmp_path: Path) -> None:
    with pytest.raises(law.RateTableError, match="expected the header") as info:
        law.load_rate_table(_write(tmp_path, "2026-07-01,6:119,4.00,x\n"))
    assert info.value.line == 1
    with pytest.raises(law.RateTableError, match="empty"):
        law.load_rate_table(_write(tmp_path, "# nothing\n", "empty.csv"))
    with pytest.raises(law.RateTableError, match="cannot be read"):
        law.load_rate_table(tmp_path / "missing.csv")


def test_identical_duplicate_rows_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "2026-07-01,6:119,4.00,x\n2026-07-01,6:119,4,y\n")
    assert law.load_rate_table(path).rate(date(2026, 7, 1), commercial=False) == D("0.04")


def test_empty_article_has_no_last_known_day() -> None:
    with pytest.raises(law.RateUnknownError, match="known at all"):
        law.RateTable([]).last_known()


def test_rate_table_warns_a_month_before_it_ends_and_every_day_after(tmp_path: Path) -> None:
    ends = (
        "the statutory interest table ends on 2026-12-31; add the next half-year's rates "
        "([law] interest_rates, see docs/law.md) or upgrade debsync, otherwise steps that "
        "claim interest wait for approval from then on"
    )
    assert law.rate_table_warnings(date(2026, 11, 30)) == []
    assert law.rate_table_warnings(date(2026, 12, 1)) == [ends]
    assert law.rate_table_warnings(date(2027, 2, 1)) == [ends]
    extended = _write(tmp_path, HEADER + "2027-01-01,6:119,4.00,x\n2027-01-01,6:119a,10.00,x\n")
    assert law.rate_table_warnings(date(2026, 12, 15), extended) == []
    assert law.rate_table_warnings(date(2027, 6, 1), extended) == [
        ends.replace("2026-12-31", "2027-06-30")
    ]


def test_rate_table_warns_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    [warning] = law.rate_table_warnings(date(2026, 1, 1), missing)
    assert warning.startswith(f"statutory interest table cannot be read: {missing}: cannot be read")
    broken = _write(tmp_path, HEADER + "2026-07-02,6:119,4.00,x\n")
    [warning] = law.rate_table_warnings(date(2026, 1, 1), broken)
    assert warning.startswith(f"statutory interest table cannot be read: {broken}:2: ")


# -- presumed receipt and the veertiendagenbrief ------------------------------------------


@pytest.mark.parametrize(
    ("posted", "receipt", "first", "last", "costs"),
    [
        # research note A1.8 (2026 calendar)
        ("2026-03-10", "2026-03-12", "2026-03-13", "2026-03-26", "2026-03-27"),
        ("2026-03-13", "2026-03-17", "2026-03-18", "2026-03-31", "2026-04-01"),
        ("2026-04-02", "2026-04-07", "2026-04-08", "2026-04-21", "2026-04-22"),  # Easter
        ("2026-07-10", "2026-07-15", "2026-07-16", "2026-07-29", "2026-07-30"),  # 3 days
        # posted on a Saturday: Sunday and Monday are no delivery days
        ("2026-03-14", "2026-03-18", "2026-03-19", "2026-04-01", "2026-04-02"),
        # King's Day on Saturday 26 April 2025 (the 27th is a Sunday): no delivery
        ("2025-04-24", "2025-04-29", "2025-04-30", "2025-05-13", "2025-05-14"),
        # Christmas 2025 (2 days): 25 and 26 December; the term ends on a Saturday (Atw)
        ("2025-12-23", "2025-12-27", "2025-12-28", "2026-01-12", "2026-01-13"),
        # Easter 2025: Good Friday is no delivery day; the term would end on Saturday 3 May,
        # and Monday 5 May is an Atw holiday every year: it ends on Tuesday 6 May
        ("2025-04-16", "2025-04-19", "2025-04-20", "2025-05-06", "2025-05-07"),
        # Christmas 2026 (3 days from 2026-07-01)
        ("2026-12-23", "2026-12-30", "2026-12-31", "2027-01-13", "2027-01-14"),
        # Easter 2027 (3 days): Good Friday 26 March, Easter Monday 29 March
        ("2027-03-25", "2027-03-31", "2027-04-01", "2027-04-14", "2027-04-15"),
        # King's Day Tuesday 27 April 2027 (3 days)
        ("2027-04-23", "2027-04-29", "2027-04-30", "2027-05-13", "2027-05-14"),
        # 4 days from 2027-07-01
        ("2027-07-02", "2027-07-08", "2027-07-09", "2027-07-22", "2027-07-23"),
        ("2027-12-22", "2027-12-29", "2027-12-30", "2028-01-12", "2028-01-13"),
        # the schedule follows the posting date
        ("2026-06-30", "2026-07-02", "2026-07-03", "2026-07-16", "2026-07-17"),
        ("2026-07-01", "2026-07-04", "2026-07-05", "2026-07-20", "2026-07-21"),  # Sat -> Mon
        ("2027-06-30", "2027-07-03", "2027-07-04", "2027-07-19", "2027-07-20"),  # Sat -> Mon
        ("2027-07-01", "2027-07-07", "2027-07-08", "2027-07-21", "2027-07-22"),
    ],
)
def test_veertiendagenbrief_dates(
    posted: str, receipt: str, first: str, last: str, costs: str
) -> None:
    got = law.presumed_receipt(date.fromisoformat(posted), "letter")
    assert got == date.fromisoformat(receipt)
    term = law.veertiendagenbrief_term(got)
    assert (term.first_day, term.last_day, term.costs_due_from) == tuple(
        map(date.fromisoformat, (first, last, costs))
    )
    assert term.nominal_last_day == got + timedelta(days=14)


def test_termijnenwet_extension_is_optional() -> None:
    # nominal last day Good Friday 3 April 2026 (Atw art. 3 lid 2), then Easter weekend
    term = law.veertiendagenbrief_term(date(2026, 3, 20))
    assert (term.nominal_last_day, term.last_day) == (date(2026, 4, 3), date(2026, 4, 7))
    plain = law.veertiendagenbrief_term(date(2026, 3, 20), apply_termijnenwet=False)
    assert (plain.last_day, plain.costs_due_from) == (date(2026, 4, 3), date(2026, 4, 4))
    # Ascension Thursday 6 May 2027, then the equated Friday and the weekend
    assert law.veertiendagenbrief_term(date(2027, 4, 22)).last_day == date(2027, 5, 10)


def test_delivery_days_override_and_calendar() -> None:
    assert law.presumed_receipt(date(2026, 3, 10), "post", delivery_days=5) == date(2026, 3, 17)
    # 5 May 2026 (not a lustrum year) is no delivery day by default, but can be one
    assert law.presumed_receipt(date(2026, 5, 2), "letter") == date(2026, 5, 7)
    lustrum = law.DutchCalendar(frozenset(range(1, 6)), liberation_day="lustrum")
    assert law.presumed_receipt(date(2026, 5, 2), "letter", calendar=lustrum) == date(2026, 5, 6)
    schedule = law.DeliverySchedule(((date.min, 1),))
    assert law.presumed_receipt(date(2027, 7, 1), "letter", schedule=schedule) == date(2027, 7, 2)
    with pytest.raises(ValueError, match="at least 1"):
        law.presumed_receipt(date(2026, 3, 10), "letter", delivery_days=0)


def test_email_is_received_the_same_day_only_as_legal_copy() -> None:
    sent = date(2026, 3, 14)
    assert law.presumed_receipt(sent, "email", email_is_legal_copy=True) == sent
    with pytest.raises(law.ReceiptNotPresumedError, match="legal copy"):
        law.presumed_receipt(sent, "email")
    with pytest.raises(law.ReceiptNotPresumedError, match="'sms'"):
        law.presumed_receipt(sent, "sms", email_is_legal_copy=True)


# -- business days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "business"),
    [
        ("2026-03-13", True),  # Friday
        ("2026-03-14", False),  # Saturday
        ("2026-04-03", False),  # Good Friday (default)
        ("2026-04-06", False),  # Easter Monday
        ("2026-04-27", False),  # King's Day (Monday)
        ("2026-05-05", True),  # Liberation Day, not a lustrum year
        ("2025-05-05", False),  # Liberation Day 2025 (lustrum)
        ("2026-05-14", False),  # Ascension
        ("2026-05-15", True),  # the Friday after: a business day
        ("2026-05-25", False),  # Whit Monday
        ("2026-12-24", True),
        ("2026-12-25", False),
        ("2026-12-28", True),
        ("2027-01-01", False),
    ],
)
def test_business_days(day: str, business: bool) -> None:
    assert law.is_business_day(date.fromisoformat(day)) is business


def test_business_day_calendar_is_configurable() -> None:
    no_good_friday = law.DutchCalendar(frozenset(range(5)), good_friday=False)
    assert law.is_business_day(date(2026, 4, 3), calendar=no_good_friday)
    always = law.DutchCalendar(frozenset(range(5)), liberation_day="always")
    assert not law.is_business_day(date(2026, 5, 5), calendar=always)
    closed = law.DutchCalendar(frozenset(range(5)), extra_closed=frozenset({date(2026, 3, 13)}))
    assert not law.is_business_day(date(2026, 3, 13), calendar=closed)
    with pytest.raises(ValueError, match="open_weekdays"):
        law.DutchCalendar(frozenset())


def test_good_friday_and_liberation_day_do_not_depend_on_the_holidays_version() -> None:
    # Easter Monday comes from `holidays`; Good Friday is computed here from the same Easter
    for year in range(1970, 2100):
        easter_monday = law.easter(year) + timedelta(days=1)
        assert easter_monday in holidays.country_holidays("NL", years=year)
        assert not law.is_business_day(easter_monday - timedelta(days=3))


def test_adding_business_days() -> None:
    assert law.add_business_days(date(2026, 12, 24), 1) == date(2026, 12, 28)
    assert law.add_business_days(date(2027, 3, 25), 1) == date(2027, 3, 30)
    assert law.add_business_days(date(2027, 3, 30), -1) == date(2027, 3, 25)
    assert law.add_business_days(date(2026, 3, 14), 0) == date(2026, 3, 14)
    assert law.add_business_days(date(2026, 3, 13), 5) == date(2026, 3, 20)
    assert law.next_business_day(date(2026, 12, 31)) == date(2027, 1, 4)
    assert law.next_business_day(date(2026, 3, 10)) == date(2026, 3, 11)


# -- properties ---------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=3_000_000, places=2)
positive = st.decimals(min_value=D("0.01"), max_value=3_000_000, places=2)
TABLE_START, TABLE_END = date(2015, 1, 1), date(2026, 6, 30)
table_days = st.dates(min_value=TABLE_START, max_value=TABLE_END)
any_days = st.dates(min_value=date(1995, 1, 1), max_value=date(2060, 12, 31))


@given(amounts, amounts)
def test_bik_is_monotone(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert law.collection_costs(low) <= law.collection_costs(high)


@given(positive)
def test_bik_is_within_minimum_and_maximum(principal: Decimal) -> None:
    assert D("40.00") <= law.collection_costs(principal) <= D("6775.00")
    assert law.collection_costs(principal) == law.collection_costs(principal).quantize(law.CENT)


@given(amounts, table_days, table_days, st.booleans())
def test_interest_breakdown_is_consistent(
    principal: Decimal, a: date, b: date, commercial: bool
) -> None:
    start, end = sorted((a, b))
    periods = law.statutory_interest_breakdown(principal, start, end, commercial=commercial)
    total = law.statutory_interest(principal, start, end, commercial=commercial)
    assert total >= 0
    assert total == sum((p.amount for p in periods), D(0))
    if principal:
        assert periods[0].start == start and periods[-1].end == end
        assert sum(p.days for p in periods) == (end - start).days + 1
        assert all(q.start == p.end + timedelta(days=1) for p, q in pairwise(periods))
        assert all(p.start.year == p.end.year for p in periods)


@settings(max_examples=50)
@given(amounts, table_days, table_days, st.integers(1, 800), st.booleans())
def test_interest_is_monotone_in_end_date_and_principal(
    principal: Decimal, a: date, b: date, extra: int, commercial: bool
) -> None:
    start, end = sorted((a, b))
    later = min(end + timedelta(days=extra), TABLE_END)
    now = law.statutory_interest(principal, start, end, commercial=commercial)
    assert now <= law.statutory_interest(principal, start, later, commercial=commercial)
    assert now <= law.statutory_interest(principal + 1, start, end, commercial=commercial)


@given(amounts, st.dates(min_value=TABLE_START, max_value=date(2025, 6, 30)), st.booleans())
def test_interest_is_additive_at_a_period_boundary_within_the_first_year(
    principal: Decimal, start: date, commercial: bool
) -> None:
    # within one compounding year nothing compounds, and 1 January always cuts a period
    end = start + timedelta(days=364)
    cut = date(start.year + 1, 1, 1)
    whole = law.statutory_interest(principal, start, end, commercial=commercial)
    first = min(cut - timedelta(days=1), end)
    parts = law.statutory_interest(
        principal, start, first, commercial=commercial
    ) + law.statutory_interest(principal, cut, end, commercial=commercial)
    assert whole == parts


@given(any_days, st.sampled_from(["letter", "post"]), st.one_of(st.none(), st.integers(1, 6)))
def test_presumed_receipt_is_a_later_delivery_day(
    sent: date, channel: str, delivery_days: int | None
) -> None:
    received = law.presumed_receipt(sent, channel, delivery_days=delivery_days)
    assert received > sent
    assert law.POSTAL_DELIVERY_CALENDAR.is_open(received)
    assert received.weekday() not in (0, 6)
    term = law.veertiendagenbrief_term(received)
    assert term.costs_due_from - received >= timedelta(days=15)
    assert law.TERMIJNENWET_CALENDAR.is_open(term.last_day)


@given(any_days)
def test_email_receipt_is_never_before_sending(sent: date) -> None:
    assert law.presumed_receipt(sent, "email", email_is_legal_copy=True) == sent


@given(any_days, st.integers(-30, 30).filter(bool))
def test_add_business_days_lands_on_a_business_day(day: date, n: int) -> None:
    result = law.add_business_days(day, n)
    assert law.is_business_day(result)
    low, high = sorted((day, result))
    between = [low + timedelta(days=i) for i in range(1, (high - low).days + (1 if n > 0 else 0))]
    if n < 0:
        between = [result, *between]
    assert sum(map(law.is_business_day, between)) == abs(n)
    assert (result > day) == (n > 0)
