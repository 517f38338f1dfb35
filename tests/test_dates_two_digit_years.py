"""Two-digit years (``%y``): read as the latest year that does not put the date after the
encode's ``today`` (a date of birth is never in the future), and an encode under such a format
is told that 1924 and 2024 cannot be told apart."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from date_fixtures import date_rejects
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.partner.dates import COMMON_DATE_FORMATS, DateFormat, two_digit_year_warning
from linkage.partner.normalisers import normalise
from linkage.partner.values import OK

TWO_DIGIT = [f for f in COMMON_DATE_FORMATS if "%y" in f]


def read(raw: list[str], fmt: str, today: dt.date) -> list[str | None]:
    return normalise("date", raw, date_format=DateFormat(fmt), today=today).values.to_pylist()


@pytest.mark.parametrize("fmt", TWO_DIGIT)
@pytest.mark.parametrize(
    ("today", "date", "want"),
    [
        # the year of today: up to today this century, after it the last one
        (dt.date(2026, 11, 30), dt.date(2024, 7, 2), "2024-07-02"),
        (dt.date(2026, 11, 30), dt.date(2026, 11, 30), "2026-11-30"),
        (dt.date(2026, 11, 30), dt.date(2026, 12, 1), "1926-12-01"),
        (dt.date(2026, 11, 30), dt.date(2027, 1, 1), "1927-01-01"),
        (dt.date(2024, 6, 1), dt.date(2024, 7, 2), "1924-07-02"),
        (dt.date(2024, 6, 1), dt.date(2024, 5, 31), "2024-05-31"),
        (dt.date(2024, 6, 1), dt.date(1999, 12, 31), "1999-12-31"),
        (dt.date(2000, 1, 1), dt.date(2000, 1, 2), "1900-01-02"),
    ],
)
def test_two_digit_year_is_the_latest_that_is_not_in_the_future(
    fmt: str, today: dt.date, date: dt.date, want: str
) -> None:
    assert read([date.strftime(fmt)], fmt, today) == [want]


@settings(max_examples=200, deadline=None)
@given(
    today=st.dates(dt.date(1990, 1, 1), dt.date(2090, 12, 31)),
    back=st.integers(0, 36_400),  # under 100 years back
)
def test_dates_of_the_last_century_read_back_exactly(today: dt.date, back: int) -> None:
    born = today - dt.timedelta(days=back)
    for fmt in TWO_DIGIT:
        out = normalise("date", [born.strftime(fmt)], date_format=DateFormat(fmt), today=today)
        assert (out.values.to_pylist(), int(out.status[0])) == ([born.isoformat()], OK), fmt


def test_encode_detects_day_month_name_two_digit_year_and_uses_its_today() -> None:
    born = [dt.date(1924, 7, 2), dt.date(1926, 8, 14), dt.date(1999, 12, 31)]
    born += [dt.date(1930, 1, 1) + dt.timedelta(days=97 * i) for i in range(60)]
    raw = [d.strftime("%d-%b-%y") for d in born]
    table = pa.table({"record_id": [f"r{i}" for i in range(len(raw))], "date_of_birth": raw})
    # 02-Jul-24 is after today: 1924, not a future date
    assert date_rejects(table, today=dt.date(2024, 6, 1)) == []


@pytest.mark.parametrize("fmt", TWO_DIGIT)
def test_a_two_digit_year_format_earns_a_warning(fmt: str) -> None:
    msg = two_digit_year_warning("date_of_birth", fmt)
    assert msg is not None
    assert msg.startswith("field date_of_birth:") and fmt in msg
    assert "1924" in msg and "2024" in msg and "four-digit" in msg


@pytest.mark.parametrize("fmt", [f for f in COMMON_DATE_FORMATS if "%y" not in f])
def test_a_four_digit_year_format_earns_none(fmt: str) -> None:
    assert two_digit_year_warning("date_of_birth", fmt) is None
