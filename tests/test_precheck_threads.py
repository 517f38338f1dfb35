"""Plan.precheck runs its per-column checks on threads: same suspects, date formats and first
error as one thread (the checks were serial, and the encode benchmark lost ~0.3 s to them)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from test_robust_placeholders import SCHEMA, _person, _table

from linkage.errors import InputError
from linkage.partner.plan import Plan
from linkage.partner.reader import TableInput


def _rows() -> list[dict[str, object]]:
    rows = [_person(i) for i in range(800)]
    for r in rows[:100]:
        r["date_of_birth"] = "01-01-1970"
        r["postcode"] = "CE1 9ZZ" if r["record_id"] != "r1" else "ce19zz"
    for r in rows[:60]:
        r["surname"] = "UNKNOWN PERSON"
    return rows


def _plan(table: pa.Table, threads: int) -> Plan:
    plan = Plan(TableInput(table), SCHEMA, "record_id", None, None, ())
    plan.precheck(threads=threads)
    return plan


@pytest.mark.parametrize("threads", [2, 4, 16])
def test_threaded_precheck_matches_serial(threads: int) -> None:
    table = _table(_rows())
    one, many = _plan(table, 1), _plan(table, threads)
    assert many.suspects == one.suspects
    assert {s.field for s in one.suspects} >= {"date_of_birth", "postcode"}
    assert {f: d.fmt for f, d in many.date_formats.items()} == {
        f: d.fmt for f, d in one.date_formats.items()
    }


@pytest.mark.parametrize("threads", [1, 4])
def test_threaded_precheck_raises_the_serial_first_error(threads: int) -> None:
    rows = _rows()
    rows[5]["record_id"] = "r4"  # duplicate id and an unreadable date column: ids come first
    for r in rows:
        r["date_of_birth"] = "not a date"
    with pytest.raises(InputError, match="duplicate record ids"):
        _plan(_table(rows), threads)
