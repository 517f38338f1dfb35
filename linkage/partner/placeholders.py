"""Suspected placeholders: one value on an implausibly large share of an extract's rows.

Source systems fill unknown values with a default (a date of birth of 01/01/1900 or
01/01/2000, a practice's own postcode, ``BABY`` for an unnamed newborn, a test NHS number).
Listed placeholders are in the schema's ``missing`` sentinels; this module finds the ones
nobody listed, by frequency (the placeholder check of data-quality profiling; Christen, *Data
Matching*, 2012, ch. 3): a normalised value held by at least ``max(MIN_ROWS, share x rows)``
rows of the extract, where ``share`` depends on how varied the field is in a real population
(:data:`SHARES`) and ``MIN_ROWS`` (10) keeps a handful of twins or housemates from being
flagged in a tiny extract, **and** standing out from the field's other values: on at least
:data:`RATIO` times as many rows as the field's ordinary value and :data:`RUNNER_UP` times as
many as the next less frequent value. A share alone misfires on any small or concentrated
extract (one estate's dozen postcodes are each on 5-8% of its rows; Jones on 8% of a Welsh
village's); a filler is frequent where the field's other values are not. Only fields that
identify a person are checked (dates, postcodes, addresses, names, NHS numbers, by
normaliser); a free-text or name field with few distinct values (under
:data:`CATEGORICAL_SHARE` of its rows: a town, county, ethnicity or practice column) is
categorical, its values naturally shared, and is not checked, unless its values other than
the commonest are varied (a name field that is mostly one filler). Two people sharing a
placeholder look like one person, so suspected placeholders are reported (encode summary and
rejects, never the value) and, when the partner asks (``--suspected-placeholders missing``),
treated as missing.

Counting is done once per distinct raw value (a numba hash table), then the distinct values
are normalised (free text only where seen at least twice), so the check costs a fraction of
encoding.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.partner.dates import DateFormat
from linkage.partner.normalisers import Normalised, normalise
from linkage.partner.values import distinct_rows
from linkage.schema import Field

MODES = ("report", "missing")
MIN_ROWS = 10
"""A value is never suspected on fewer rows than this, however small the extract (a family
of ten sharing a surname or a care home's postcode is plausible below it; 30 rows of one date
of birth among 1,383 is not)."""
CATEGORICAL_SHARE = 0.1
"""A ``text`` or ``name`` field whose distinct raw values number under this share of its rows
is categorical (towns: ~20 values on thousands of rows) and is not checked, if its filled
rows other than the commonest value's also hold under this share of distinct values (each
other value on ten rows or more, on average). A category may hold most rows (one town on 80%
of a district's extract, the other towns still shared); a filler holding most rows leaves few
distinct values too, but the values beside it are a name field's varied ones (``BABY`` on
2,148 of a maternity extract's 2,335 given names, the other 115 filled rows 96 names). Blanks are
not values. A field with one filled value only is left alone: nothing tells a filler from a
one-value category there."""
SAMPLE_ROWS = 100_000
"""Larger extracts are judged on this many evenly spaced rows (a value on 1% of rows is then
seen about 1,000 times); the rows holding a suspect are still all found and reported by the
encoder, and the summary's row count is scaled from the sample."""
SHARES = {
    "date": 0.01,  # one date of birth among ~30,000 plausible ones
    "postcode": 0.02,  # a postcode holds a few dozen people; care homes a few hundred
    "text": 0.02,  # addresses
    "name": 0.05,  # the commonest UK surname (Smith) is ~1.2%; Jones ~6% in parts of Wales
    "nhs_number": 0.001,  # one per person: any value on many rows is a test number
}
"""Share of rows above which one value is a suspected placeholder, by normaliser. Only these
normalisers are checked: sex codes (two or three values), integers and uninterpreted
(``none``) fields hold naturally shared values."""
RATIO = 3.0
"""A suspected placeholder is also held by at least this many times as many rows as the
field's ordinary value (the row-weighted median of the other values' row counts). Frequency
alone is not enough: one estate's few postcodes (each on 5-8% of its rows) are common where
the field's ordinary value is common too; a filler stands out from the field's other values
(30 rows of one date of birth where any other is on one or two; ``BABY`` on 6% of surnames
where the commonest real one is on 1%)."""
RUNNER_UP = 2.0
"""... and at least this many times as many rows as the next less frequent value: the top of
a smooth distribution is not a filler (a Welsh village's Jones on 8% of rows, Williams on 6%,
Davies on 5%: each well above the field's ordinary value). Neighbours at the top of a real
field differ by a factor well under 2 (Jones and Williams 1.45, an estate's two largest
blocks 1.2, Smith and Jones nationally 1.3). A filler is written on top of the real values,
and one real value moderately common beside it must not hide it: a practice's own postcode on
116 rows is suspected whether the largest real one is on 35 rows or on 39 (116 / 39 = 2.97,
under :data:`RATIO`)."""


@dataclass(frozen=True)
class Suspect:
    """A suspected placeholder of one field: its normalised value (kept inside the partner's
    process, never written), the rows holding it and their share of the extract."""

    field: str
    value: str
    rows: int
    share: float


def frequent_values(
    field: Field,
    values: pa.Array,
    *,
    date_format: DateFormat | None = None,
    today: _dt.date | None = None,
) -> list[Suspect]:
    """Normalised values of ``values`` (one column of the whole extract) held by at least
    ``max(MIN_ROWS, SHARES[normaliser] * len(values))`` rows and standing out from the
    column's other values (:data:`RATIO`, :data:`RUNNER_UP`); [] for normalisers not in
    :data:`SHARES` and for categorical ``text``/``name`` fields (:data:`CATEGORICAL_SHARE`)."""
    return frequent_values_and_rows(field, values, date_format=date_format, today=today)[0]


def frequent_values_and_rows(
    field: Field,
    values: pa.Array,
    *,
    date_format: DateFormat | None = None,
    today: _dt.date | None = None,
) -> tuple[list[Suspect], Normalised | None]:
    """:func:`frequent_values`, and the column normalised row by row when finding them
    normalised every distinct value of every row (an extract of at most :data:`SAMPLE_ROWS`
    rows, a field whose values seen once count): what
    :func:`linkage.partner.normalisers.normalise` gives the whole column with the same
    options, so the encoder need not normalise it again. None otherwise."""
    share = SHARES.get(field.normaliser)
    n = len(values)
    if share is None or n < MIN_ROWS:
        return [], None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    m = n
    if n > SAMPLE_ROWS:  # evenly spaced rows: deterministic, independent of any seed
        values = values.take(pa.array(np.arange(SAMPLE_ROWS, dtype=np.int64) * n // SAMPLE_ROWS))
        m = SAMPLE_ROWS
    which, first = distinct_rows(values)
    counts = np.bincount(which, minlength=len(first))
    few = field.normaliser in ("text", "name") and len(first) < CATEGORICAL_SHARE * m
    if few and _categorical(values, first, counts):
        return [], None  # a town column: values naturally shared
    need = max(MIN_ROWS * m / n, share * m)
    # every distinct value is normalised (spellings of one value add up), except that free
    # text (addresses: nearly one distinct value per row) skips values seen once
    cand = np.flatnonzero(counts >= (2 if field.normaliser in ("text", "none") else 1))
    if len(cand) == 0 or counts[cand].sum() < need:
        return [], None
    raw = values.take(pa.array(first[cand]))
    norm = normalise(
        field.normaliser, raw, missing=field.missing, date_format=date_format, today=today
    )
    rows = None
    if m == n and len(cand) == len(first):  # raw value i of the column is cand[i] = i
        rows = Normalised(norm.units, norm.unit_of_row[which], norm.status[which])
    ok = norm.unit_of_row >= 0
    if not ok.any():
        return [], rows
    # units may repeat a value (two raw spellings, one normal form): count per normal form
    u_which, u_first = distinct_rows(norm.units)
    per_value = np.bincount(
        u_which[norm.unit_of_row[ok]], weights=counts[cand][ok], minlength=len(u_first)
    )
    hits = _outliers(per_value, m - float(counts[cand].sum()), need)
    suspects = [
        Suspect(
            field.name,
            str(norm.units[int(u_first[h])]),
            round(float(per_value[h]) * n / m),
            float(per_value[h] / m),
        )
        for h in hits
    ]
    suspects.sort(key=lambda s: (-s.rows, s.value))  # not in order of first appearance
    return suspects, rows


def _categorical(values: pa.Array, first: np.ndarray, counts: np.ndarray) -> bool:
    """Whether a column of few distinct raw values is categorical (:data:`CATEGORICAL_SHARE`):
    its filled values other than the commonest are few for their rows. ``first``: the row of
    each distinct value; ``counts``: its rows."""
    raw = values.take(pa.array(first))
    length = pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(raw)), 0)
    filled = counts[np.asarray(length.to_numpy(zero_copy_only=False)) > 0]
    if len(filled) <= 1:
        return True
    rest = float(filled.sum() - filled.max())
    return len(filled) - 1 < CATEGORICAL_SHARE * rest


def _outliers(per_value: np.ndarray, singles: float, need: float) -> np.ndarray:
    """Indices of the normal forms that are suspected placeholders: held by at least ``need``
    rows (the share rule), by at least :data:`RATIO` times as many rows as the field's
    ordinary value (the row-weighted median of the other values' row counts) and by at least
    :data:`RUNNER_UP` times as many as the next less frequent value; or more frequent than a
    value that is. ``per_value``: rows per
    normal form; ``singles``: rows of values seen once and not normalised (free text),
    counted as values on one row. A field whose only value is the one judged falls back to
    the share rule."""
    hits = np.flatnonzero(per_value >= need)
    if len(hits) == 0:
        return hits
    sizes = np.concatenate([per_value, [1.0]]) if singles > 0 else per_value
    weights = np.concatenate([per_value, [singles]]) if singles > 0 else per_value
    order = np.argsort(sizes, kind="stable")
    sizes, cum = sizes[order], np.cumsum(weights[order])
    c = per_value[hits]
    others = cum[-1] - c
    # the first value whose cumulative rows reach half of the other rows: leaving the judged
    # value out changes nothing below it, and a median at or above it fails the ratio anyway
    median = sizes[np.minimum(np.searchsorted(cum, others / 2, side="left"), len(sizes) - 1)]
    below = np.searchsorted(sizes, c, side="left") - 1  # the next strictly smaller value
    runner_up = np.where(below >= 0, sizes[np.maximum(below, 0)], 0.0)
    outlier = (others <= 0) | ((c >= RATIO * median) & (c >= RUNNER_UP * runner_up))
    if not outlier.any():
        return hits[:0]
    return hits[c >= c[outlier].min()]  # a value more frequent than a suspect is one too
