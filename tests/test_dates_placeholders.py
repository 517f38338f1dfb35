"""Placeholder dates (a sentinel date of the field's ``missing`` list, ``01/01/1900``, in any
common spelling) are known placeholders: treated as missing and reported as row problems with
their reason, in the rejects and the summary, as the NHS pseudo-postcodes and placeholder NHS
numbers are. They still take no part in date-format detection."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from date_fixtures import date_rejects

from linkage.partner.dates import detect_date_format
from linkage.partner.normalisers import DateFormat, normalise
from linkage.partner.pipeline import encode_file
from linkage.partner.values import INVALID, MISSING, OK, REASONS
from linkage.schema import Schema
from linkage.schema_template import DATE_PLACEHOLDERS, NULL_SPELLINGS, uk_person_unhardened
from linkage.secret import Secret

TODAY = dt.date(2024, 6, 1)
MISSING_DOB = [*NULL_SPELLINGS, *DATE_PLACEHOLDERS]
SECRET = Secret(hashlib.sha256(b"placeholder-dates-test").digest())
SCHEMA = Schema.from_dict(uk_person_unhardened())
SPELLINGS = [
    "01/01/1900",
    "1900-01-01",
    "19000101",
    "01-01-1900",
    "01.01.1900",
    "01-Jan-1900",
    "1900-01-01 00:00:00",
    "1899-12-30",
    "31/12/1899",
]


def ddmm_dates(n: int) -> list[str]:
    """``n`` distinct dd/mm/yyyy dates, some with a day over 12 (no dd/mm-mm/dd ambiguity)."""
    start = dt.date(1940, 1, 1)
    return [(start + dt.timedelta(days=37 * i)).strftime("%d/%m/%Y") for i in range(n)]


def placeholder_reason(code: int) -> bool:
    reason = REASONS.get(code, "")
    return "known placeholder" in reason and "treated as missing" in reason


@pytest.mark.parametrize("given", [None, DateFormat("%d/%m/%Y")])
@pytest.mark.parametrize("value", SPELLINGS)
def test_a_placeholder_date_is_a_row_problem_treated_as_missing(
    value: str, given: DateFormat | None
) -> None:
    column = [*ddmm_dates(20), value, "N/A", ""]
    out = normalise("date", column, missing=MISSING_DOB, date_format=given, today=TODAY)
    code = int(out.status[20])
    assert code >= INVALID and placeholder_reason(code)  # reported, with its reason
    assert out.values[20].as_py() is None and int(out.unit_of_row[20]) == -1  # not encoded
    assert 20 in out.problems().tolist()
    # null spellings and blanks stay plainly missing; real dates stay valid
    assert out.status.tolist()[21:] == [MISSING, MISSING]
    assert set(out.status.tolist()[:20]) == {OK}


def test_placeholder_dates_are_reported_but_do_not_decide_the_format() -> None:
    column = pa.array([*ddmm_dates(40), *SPELLINGS], pa.string())
    assert detect_date_format(column, MISSING_DOB).fmt == "%d/%m/%Y"
    out = normalise("date", column, missing=MISSING_DOB, today=TODAY)
    assert all(placeholder_reason(int(c)) for c in out.status[40:])


def _table(n: int, rows: list[int], value: str) -> pa.Table:
    dob = ddmm_dates(n)
    for r in rows:
        dob[r] = value
    return pa.table(
        {
            "record_id": [f"r{i:04d}" for i in range(n)],
            "given_name": ["Ann"] * n,
            "surname": ["Smith"] * n,
            "date_of_birth": dob,
        }
    )


PLACEHOLDER_ROWS = list(range(3, 300, 20))  # 15 rows


@pytest.mark.parametrize("value", ["1900-01-01", "01/01/1900"])
def test_encode_reports_placeholder_dates_in_the_rejects(value: str) -> None:
    got = date_rejects(_table(300, PLACEHOLDER_ROWS, value), TODAY)
    reason = got[0][2] if got else ""
    assert "known placeholder" in reason and "treated as missing" in reason
    assert got == [(f"r{r:04d}", "date_of_birth", reason) for r in PLACEHOLDER_ROWS]


def test_encode_file_counts_placeholder_dates_in_the_summary(tmp_path: Path) -> None:
    table = _table(300, PLACEHOLDER_ROWS, "1900-01-01")
    src = tmp_path / "in.csv"
    pacsv.write_csv(table, src)
    absent = [f for f in SCHEMA.field_names if f not in table.column_names]
    summary = encode_file(
        src,
        tmp_path / "out.parquet",
        SCHEMA,
        SECRET,
        party="p",
        absent=absent,
        rejects_path=tmp_path / "rejects.csv",
        today=TODAY,
    )
    dob = {why: n for (f, why), n in summary.problems.items() if f == "date_of_birth"}
    assert len(dob) == 1, dob
    [(reason, count)] = dob.items()
    assert "known placeholder" in reason and count == 15
    assert summary.rows_read == 300
    written = pacsv.read_csv(tmp_path / "rejects.csv").to_pylist()
    assert sum(r["reason"] == reason for r in written) == 15
