"""A name field mostly filled with one placeholder is not a categorical column.

``BABY`` as the given name on 2,148 of a maternity extract's 2,335 rows left so few distinct
values that the field counted as categorical (a town column) and was not checked, though at
6-80% of rows it was flagged. A category may hold most rows too; what tells them apart is the
values beside it: other towns are shared, other given names are varied.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from test_robust_placeholders import SCHEMA

from linkage.partner.placeholders import CATEGORICAL_SHARE, frequent_values
from linkage.schema import Field

TOWN_FIELDS = [
    Field("town", normaliser, SCHEMA.field("address").tokeniser, bit_budget=40)
    for normaliser in ("text", "name")
]


def _shuffled(col: list[str | None], seed: int = 7) -> list[str | None]:
    order = np.random.default_rng(seed).permutation(len(col))
    return [col[i] for i in order]


def test_a_given_name_that_is_mostly_one_filler_is_suspected(tmp_path: Path) -> None:
    from linkage.lab.synthetic import synth

    synth(tmp_path / "s", 3000, 2)
    opts = pacsv.ConvertOptions(strings_can_be_null=False)
    col = pacsv.read_csv(tmp_path / "s" / "council_a.csv", convert_options=opts)["forename"]
    names: list[str | None] = col.to_pylist()
    for i in [i for i, v in enumerate(names) if v][:2148]:
        names[i] = "BABY"
    assert len(names) == 2335 and len(set(names)) < CATEGORICAL_SHARE * len(names)
    (hit,) = frequent_values(SCHEMA.field("given_name"), pa.array(names))
    assert (hit.value, hit.rows) == ("BABY", 2148)


def _towns(largest: int) -> list[str | None]:
    """20 towns on 2,000 rows, the largest on ``largest`` rows and the other 19 sharing the
    rest unevenly, and 40 blanks."""
    others = 2000 - largest
    weights = np.arange(19, 0, -1, dtype=float) + 1.2
    sizes = np.floor(weights / weights.sum() * others).astype(int)
    sizes[0] += others - sizes.sum()
    col: list[str | None] = ["TOWN A"] * largest
    col += [f"TOWN {chr(66 + k)}" for k, n in enumerate(sizes) for _ in range(n)]
    return _shuffled(col + [None] * 40)


def test_town_columns_are_still_categorical() -> None:
    """20 towns, the largest on 15% of rows; and a district's extract where its own town holds
    80% and the other 19 are shared by the rest: neither is suspected, with either normaliser."""
    for largest in (300, 1600):
        col = _towns(largest)
        counts = Counter(v for v in col if v)
        assert len(counts) == 20 and counts.most_common(1) == [("TOWN A", largest)]
        for f in TOWN_FIELDS:
            assert frequent_values(f, pa.array(col)) == [], (largest, f.normaliser)


def test_blanks_do_not_make_a_name_field_categorical() -> None:
    """A given name filled on 300 of 2,000 rows: BABY on 120 (6% of the extract), 180 real
    names each once. The blanks are not a value shared by 1,700 rows."""
    col: list[str | None] = ["BABY"] * 120 + [f"NAME{i}" for i in range(180)] + [None] * 1700
    col = _shuffled(col)
    assert len(set(col)) < CATEGORICAL_SHARE * len(col)
    (hit,) = frequent_values(SCHEMA.field("given_name"), pa.array(col))
    assert (hit.value, hit.rows) == ("BABY", 120)
