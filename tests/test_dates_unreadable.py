"""Date-format detection with values that no common format reads (``00/00/0000``,
``1990-13-01``): a few are row problems, as an impossible date is; values that another format
reads, or too many unreadable ones, still stop the encode with a clear error."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from date_fixtures import date_rejects

from linkage.partner.dates import MAX_UNREADABLE_SHARE, AmbiguousDateFormat, detect_date_format
from linkage.partner.normalisers import normalise
from linkage.partner.values import OK, REASONS
from linkage.schema_template import NULL_SPELLINGS

TODAY = dt.date(2024, 6, 1)
MISSING = [*NULL_SPELLINGS, "01/01/1900"]


def iso_dates(n: int) -> list[str]:
    """``n`` distinct ISO dates, some with a day over 12 (no dd/mm-mm/dd ambiguity)."""
    start = dt.date(1940, 1, 1)
    return [(start + dt.timedelta(days=37 * i)).isoformat() for i in range(n)]


def ddmm_dates(n: int) -> list[str]:
    return [dt.date.fromisoformat(d).strftime("%d/%m/%Y") for d in iso_dates(n)]


@pytest.mark.parametrize("bad", ["00/00/0000", "1990-13-01", "1990-00-10", "99999999", "??"])
def test_a_value_no_format_reads_does_not_stop_detection(bad: str) -> None:
    column = iso_dates(300)
    column[150] = bad
    assert detect_date_format(pa.array(column), MISSING).fmt == "%Y-%m-%d"
    # ... and the normaliser (which detects when given no format) makes it a row problem
    out = normalise("date", column, missing=MISSING, today=TODAY)
    bad_rows = [i for i, s in enumerate(out.status.tolist()) if s != OK]
    assert bad_rows == [150]
    assert REASONS[int(out.status[150])] == "unparseable date"


def test_unreadable_values_within_the_bound_are_accepted_whatever_the_row_order() -> None:
    n = 1000
    k = int(MAX_UNREADABLE_SHARE * n)  # exactly at the bound
    column = ddmm_dates(n - k) + ["00/00/0000", "31-31-1990"] * (k // 2)
    for order in (column, column[::-1], column[1::2] + column[::2]):
        assert detect_date_format(pa.array(order), MISSING).fmt == "%d/%m/%Y"


def test_too_many_unreadable_values_stop_with_their_count_and_rows() -> None:
    column = iso_dates(200)
    for row in (4, 17, 90, 150):  # 4 of 200 = 2% > 1%
        column[row] = "00/00/0000"
    with pytest.raises(AmbiguousDateFormat) as exc:
        detect_date_format(pa.array(column), MISSING)
    msg = str(exc.value)
    assert "4 of 200 dates fit no common format" in msg
    assert "rows 5, 18, 91, ..." in msg  # 1-based data rows
    assert "%Y-%m-%d" in msg and "--date-format" in msg
    assert "00/00/0000" not in msg


@pytest.mark.parametrize(
    ("other", "closest"),
    [
        ("25/12/1990", "%Y-%m-%d"),  # a second format in an ISO column
        ("12/25/1990", "%d/%m/%Y"),  # mm/dd among dd/mm
    ],
)
def test_values_another_format_reads_still_stop_detection(other: str, closest: str) -> None:
    column = iso_dates(300) if closest == "%Y-%m-%d" else ddmm_dates(300)
    column[10] = other
    column[20] = "00/00/0000"  # unreadable too: does not turn the ambiguity into a choice
    with pytest.raises(AmbiguousDateFormat) as exc:
        detect_date_format(pa.array(column), MISSING)
    msg = str(exc.value)
    assert f"the closest, {closest}, fits 298 of 300" in msg and "rows 11 and 21" in msg
    assert other not in msg


def test_every_day_at_most_12_stays_ambiguous_beside_an_unreadable_value() -> None:
    column = [f"{d:02d}/{m:02d}/19{50 + d + m}" for d in range(1, 13) for m in range(1, 13)]
    column[7] = "00/00/0000"
    with pytest.raises(AmbiguousDateFormat) as exc:
        detect_date_format(pa.array(column), MISSING)
    msg = str(exc.value)
    assert "%d/%m/%Y" in msg and "%m/%d/%Y" in msg and "row 8" in msg
    assert "00/00/0000" not in msg


def test_encode_reports_the_unreadable_date_as_a_row_problem() -> None:
    ids = [f"r{i:04d}" for i in range(400)]
    dob = iso_dates(400)
    dob[123] = "00/00/0000"
    dob[321] = "1990-13-01"
    table = pa.table({"record_id": ids, "date_of_birth": dob})
    assert date_rejects(table, TODAY) == [
        ("r0123", "date_of_birth", "unparseable date"),
        ("r0321", "date_of_birth", "unparseable date"),
    ]
