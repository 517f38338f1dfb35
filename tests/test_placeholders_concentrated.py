"""Suspected placeholders in a small or concentrated extract: a value common because the
whole extract is concentrated (one estate's few postcodes, a Welsh village's surnames) is
not a filler; a value that stands out from every other value of its field still is.

The bundled demo extracts (examples/council_a.csv, one street or two in each of five towns)
had 303 of 333 postcodes flagged by the share rule alone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import TODAY
from test_robust_placeholders import SCHEMA, SECRET, _encode, _person, _table

from linkage.partner.placeholders import frequent_values

# one estate: 14 postcodes of one sector, from a close of 12 people to a block of 48
ESTATE = {f"LS9 7{u}": n for u, n in zip(
    ["AB", "AD", "AE", "AF", "AG", "AH", "AJ", "AL", "AN", "AP", "AQ", "AR", "AS", "AT"],
    [48, 41, 37, 35, 33, 30, 28, 26, 24, 21, 19, 16, 14, 12], strict=True,
)}  # fmt: skip


def _estate(extra: dict[str, int] | None = None) -> list[str | None]:
    """Postcodes of an estate extract in a shuffled order: the estate's, a few mistyped
    (valid elsewhere), a few blank, and ``extra`` values on the given number of rows."""
    col: list[str | None] = [pc for pc, n in {**ESTATE, **(extra or {})}.items() for _ in range(n)]
    col += [f"LS{i} 8BZ" for i in range(10, 18)]  # typos: each a real postcode, seen once
    col += [None] * 20
    order = np.random.default_rng(5).permutation(len(col))
    return [col[i] for i in order]


def test_one_estate_postcodes_are_not_suspected() -> None:
    col = _estate()
    assert max(ESTATE.values()) / len(col) > 0.1  # each way over the 2% share
    assert frequent_values(SCHEMA.field("postcode"), pa.array(col)) == []


def test_a_filler_among_the_estate_postcodes_is_suspected() -> None:
    # the practice's own postcode for patients whose address is not known: 160 rows, over
    # three times the estate's largest block
    col = _estate({"LS9 7TF": 160})
    (hit,) = frequent_values(SCHEMA.field("postcode"), pa.array(col))
    assert (hit.value, hit.rows) == ("LS9 7TF", 160)


def test_estate_extract_encodes_without_suspects(tmp_path: Path) -> None:
    """End to end: no row is flagged, and --suspected-placeholders missing drops nothing."""
    rows = [_person(i, postcode=pc) for i, pc in enumerate(_estate())]
    enc, rejects = _encode(rows)
    assert not [r for r in rejects if "suspected placeholder" in r[2]]
    enc2, _ = _encode(rows, suspected_placeholders="missing")
    np.testing.assert_array_equal(enc.filters, enc2.filters)

    from linkage.partner.pipeline import encode_file

    src = tmp_path / "estate.csv"
    pacsv.write_csv(_table(rows), src)
    s = encode_file(src, tmp_path / "o.parquet", SCHEMA, SECRET, party="p", today=TODAY)
    assert s.suspected_placeholders == []


def _village_surnames() -> list[str]:
    """A Welsh village's surnames: Jones on 8% of rows, the next few close behind."""
    common = {"JONES": 32, "WILLIAMS": 22, "DAVIES": 20, "EVANS": 17, "THOMAS": 15,
              "ROBERTS": 12, "HUGHES": 11, "LEWIS": 10, "MORGAN": 9, "GRIFFITHS": 8,
              "EDWARDS": 8, "PRICE": 7, "REES": 6, "JENKINS": 6, "OWEN": 6}  # fmt: skip
    names = [n for n, k in common.items() for _ in range(k)]
    names += [f"{a}{b}ER" for a in "BCDFGHKLMNPRSTW" for b in "AEIOU"][:150]
    names += names[-40:]  # some surnames twice (couples)
    return names


def test_concentrated_surnames_are_not_suspected() -> None:
    names = _village_surnames()
    assert names.count("JONES") / len(names) > 0.05  # over the 5% share for names
    assert frequent_values(SCHEMA.field("surname"), pa.array(names)) == []


def test_a_filler_surname_among_concentrated_ones_is_suspected() -> None:
    names = _village_surnames() + ["BABY"] * 100
    (hit,) = frequent_values(SCHEMA.field("surname"), pa.array(names))
    assert (hit.value, hit.rows) == ("BABY", 100)


def test_two_filler_dates_are_both_suspected() -> None:
    """A value more frequent than a suspect is one too, even when beside it alone it does not
    stand out (01/01/1970 on 300 rows next to 01/01/2000 on 250)."""
    rows: list[Any] = [_person(i)["date_of_birth"] for i in range(1000)]
    rows[:300] = ["01-01-1970"] * 300
    rows[300:550] = ["01-01-2000"] * 250
    from linkage.partner.dates import DateFormat

    got = frequent_values(SCHEMA.field("date_of_birth"), pa.array(rows),
                          date_format=DateFormat("%d-%m-%Y"))  # fmt: skip
    assert sorted((s.value, s.rows) for s in got) == [("1970-01-01", 300), ("2000-01-01", 250)]


def test_result_does_not_depend_on_row_order() -> None:
    col = _estate({"LS9 7TF": 160, "LS9 7UU": 170})
    f = SCHEMA.field("postcode")
    got = frequent_values(f, pa.array(col))
    assert [(s.value, s.rows) for s in got] == [("LS9 7UU", 170), ("LS9 7TF", 160)]
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(col))
        assert frequent_values(f, pa.array([col[i] for i in order])) == got


def _practice_postcodes(tmp_path: Path, runner_up: int) -> list[str | None]:
    """A synthetic council extract's postcodes (2,335 rows, the commonest real one N15 4NG on
    35) with the practice's own postcode L1 8JQ written on 116 rows (5%), and N15 4NG on
    ``runner_up`` rows."""
    from linkage.lab.synthetic import synth

    synth(tmp_path / "s", 3000, 2)
    t = pacsv.read_csv(tmp_path / "s" / "council_a.csv")
    col: list[str | None] = t["post_code"].to_pylist()
    top = "N15 4NG"
    free = [i for i, v in enumerate(col) if v and v != top]
    for i in free[:116]:
        col[i] = "L1 8JQ"
    for i in free[116 : 116 + runner_up - col.count(top)]:
        col[i] = top
    return col


@pytest.mark.parametrize("runner_up", [35, 39])
def test_a_filler_beside_a_moderately_common_value_is_suspected(
    tmp_path: Path, runner_up: int
) -> None:
    """Whether the filler is found must not flip on the next value's count: 116 rows are
    over three times 35 but not 39; they are far above the field's ordinary value either
    way."""
    col = _practice_postcodes(tmp_path, runner_up)
    counts = Counter(v for v in col if v).most_common(2)
    assert (len(col), counts) == (2335, [("L1 8JQ", 116), ("N15 4NG", runner_up)])
    (hit,) = frequent_values(SCHEMA.field("postcode"), pa.array(col))
    assert (hit.value, hit.rows) == ("L1 8JQ", 116)


@pytest.mark.parametrize("jones, flagged", [(40, False), (44, True)])
def test_the_top_of_a_smooth_distribution_is_not_suspected(jones: int, flagged: bool) -> None:
    """Jones on 1.8 times Williams's rows is the top of the village's surnames, well above
    their ordinary value (two rows) and the 5% share; at twice Williams's it stands out."""
    names = [n for n in _village_surnames() if n != "JONES"] + ["JONES"] * jones
    assert names.count("WILLIAMS") == 22 and jones / len(names) > 0.05
    got = frequent_values(SCHEMA.field("surname"), pa.array(names))
    assert [(s.value, s.rows) for s in got] == ([("JONES", jones)] if flagged else [])
