"""Six-digit dates (``261129``, ``670315``): a yymmdd column is detected as ``%y%m%d`` and a
ddmmyy one (the day-first order of UK extracts, and of the Scottish CHI number's first six
digits) as ``%d%m%y``; neither is steered to ``%Y%m%d``, which needs eight digits (it read
``261129`` as year 2611). Where every value fits both (every year at most 31), detection stops
and names both."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from linkage.partner.dates import (
    COMMON_DATE_FORMATS,
    AmbiguousDateFormat,
    DateFormat,
    DateFormatMismatch,
    check_date_format,
    detect_date_format,
    two_digit_year_warning,
)
from linkage.partner.normalisers import normalise
from linkage.partner.values import OK
from linkage.schema_template import DATE_PLACEHOLDERS, NULL_SPELLINGS

TODAY = dt.date(2024, 6, 1)
MISSING = [*NULL_SPELLINGS, *DATE_PLACEHOLDERS]


def births(n: int, first: dt.date = dt.date(1925, 1, 3), step: int = 97) -> list[dt.date]:
    return [first + dt.timedelta(days=step * i) for i in range(n)]


def column(fmt: str, dates: list[dt.date]) -> pa.Array:
    return pa.array([d.strftime(fmt) for d in dates], pa.string())


@pytest.mark.parametrize("fmt", ["%y%m%d", "%d%m%y"])
def test_six_digit_dates_are_detected_in_their_order(fmt: str) -> None:
    dates = births(300)  # 1925-2004: years on both sides of 31
    values = column(fmt, dates)
    assert detect_date_format(values, MISSING).fmt == fmt
    out = normalise("date", values, missing=MISSING, today=TODAY)
    assert set(out.status.tolist()) == {OK}
    assert out.values.to_pylist() == [d.isoformat() for d in dates]


def test_the_reported_yymmdd_values_read_as_dates() -> None:
    values = pa.array(["261129", "670315", "881231", "050607"], pa.string())
    assert detect_date_format(values).fmt == "%y%m%d"
    out = normalise("date", values, date_format=DateFormat("%y%m%d"), today=TODAY)
    assert out.values.to_pylist() == ["1926-11-29", "1967-03-15", "1988-12-31", "2005-06-07"]


def test_six_digits_never_fit_an_eight_digit_format() -> None:
    values = pa.array(["261129", "670315", "990101"], pa.string())
    assert not DateFormat("%Y%m%d").parse(values)[3].any()
    assert DateFormat("%Y%m%d").parse(pa.array(["19670315"]))[3].all()
    # nor a seven-digit value, which could be 1990-01-12 or 1990-11-02
    assert not DateFormat("%Y%m%d").parse(pa.array(["1990112"]))[3].any()


def test_years_at_most_31_fit_both_orders_and_the_error_names_both() -> None:
    values = column("%y%m%d", births(200, dt.date(2001, 1, 1), 37))  # years 01-21
    with pytest.raises(AmbiguousDateFormat) as exc:
        detect_date_format(values, MISSING)
    msg = str(exc.value)
    assert "%y%m%d" in msg and "%d%m%y" in msg and "--date-format" in msg
    assert "%Y%m%d" not in msg


def test_a_yymmdd_column_with_a_few_unreadable_values_is_not_advised_yyyymmdd() -> None:
    values = [d.strftime("%y%m%d") for d in births(400)]
    for row in (10, 20, 30, 40, 50, 60):  # 1.5%: too many to leave out, so detection stops
        values[row] = "000000"
    with pytest.raises(AmbiguousDateFormat) as exc:
        detect_date_format(pa.array(values), MISSING)
    msg = str(exc.value)
    assert "--date-format FIELD=%y%m%d" in msg and "%Y%m%d" not in msg


def test_yyyymmdd_given_for_a_yymmdd_column_is_refused_naming_yymmdd() -> None:
    values = column("%y%m%d", births(300))
    with pytest.raises(DateFormatMismatch) as exc:
        check_date_format(values, DateFormat("%Y%m%d"), MISSING)
    msg = str(exc.value)
    assert "reads only 0 of 300" in msg and "looks like %y%m%d" in msg


@pytest.mark.parametrize("fmt", ["%y%m%d", "%d%m%y"])
def test_six_digit_formats_keep_the_two_digit_year_rule_and_warning(fmt: str) -> None:
    assert fmt in COMMON_DATE_FORMATS
    warning = two_digit_year_warning("date_of_birth", fmt)
    assert warning is not None and fmt in warning
    day = dt.date(2024, 7, 2)  # after today: the century before
    out = normalise("date", [day.strftime(fmt)], date_format=DateFormat(fmt), today=TODAY)
    assert out.values.to_pylist() == ["1924-07-02"]


def test_placeholder_dates_still_count_in_a_six_digit_column() -> None:
    values = [d.strftime("%y%m%d") for d in births(100)] + ["1900-01-01", "01/01/1900"]
    assert detect_date_format(pa.array(values), MISSING).fmt == "%y%m%d"
