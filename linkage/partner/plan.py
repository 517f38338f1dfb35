"""The plan for one input against one schema, and the per-batch encode recipe.

:class:`Plan` maps schema fields to the extract's columns, fixes date formats and runs the
whole-file checks (ids present and unique). :func:`encode_one_batch` is the one recipe that
turns a read batch into encoded rows; local threads and Dask workers both call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.errors import InputError
from linkage.partner.dates import (
    AmbiguousDateFormat,
    DateFormat,
    DateFormatMismatch,
    check_date_format,
    detect_date_format,
)
from linkage.partner.encoder import BatchResult, Encoder
from linkage.partner.normalisers import Normalised
from linkage.partner.placeholders import SHARES, Suspect, frequent_values_and_rows
from linkage.partner.reader import InputFile
from linkage.partner.values import distinct_rows, unify_spaces
from linkage.schema import Schema


class Plan:
    """Column mapping, date formats and checks for one input against one schema."""

    def __init__(
        self,
        src: InputFile,
        schema: Schema,
        id_column: str,
        columns: Mapping[str, str] | None,
        date_formats: Mapping[str, str] | None,
        absent: Sequence[str],
    ) -> None:
        self.src = src
        self.schema = schema
        self.suspects: list[Suspect] = []
        self.normalised: dict[str, Normalised] = {}
        """Fields the checks normalised row by row over the whole extract (see
        :func:`linkage.partner.placeholders.frequent_values_and_rows`; ``today`` not given):
        the encoder slices these instead of normalising the rows again."""
        self.placeholders_missing = False  # encode suspected placeholders as missing
        self.few_names: list[tuple[str, int, int]] = []
        """(field, distinct values, rows given) of each name field with implausibly few
        distinct values (:func:`few_distinct`): a column mapped to the wrong field?"""
        names = set(schema.field_names)
        columns = dict(columns or {})
        for f in list(columns) + list(date_formats or {}) + list(absent):
            if f not in names:
                raise InputError(
                    f"unknown schema field {f!r} (the schema has: {', '.join(schema.field_names)})"
                )
        if id_column not in src.columns:
            raise InputError(f"{src.path}: id column {id_column!r} not found in the header")
        _check_contradictions(columns, date_formats or {}, absent)
        self.absent = [f for f in schema.field_names if f in set(absent)]
        self.field_col: dict[str, str] = {}
        unmatched = []
        for f in schema.field_names:
            if f in self.absent:
                continue
            col = columns.get(f, f)
            if col not in src.columns:
                if f in columns:
                    raise InputError(f"{src.path}: column {col!r} (mapped to field {f}) not found")
                unmatched.append(f)
            else:
                self.field_col[f] = col
        if unmatched:
            raise InputError(
                f"{src.path}: no column for schema field(s) {', '.join(unmatched)}; map them "
                "with --column FIELD=COLUMN or declare them --absent FIELD"
            )
        _check_one_field_per_column(src.path, self.field_col)
        self.id_column = id_column
        self.date_formats: dict[str, DateFormat] = {}
        for f, fmt in (date_formats or {}).items():
            if schema.field(f).normaliser != "date":
                raise InputError(f"--date-format {f}=...: field {f} is not a date field")
            try:
                self.date_formats[f] = DateFormat(fmt)
            except ValueError as exc:
                raise InputError(f"--date-format {f}: {exc}") from None
        self.date_fields = [
            f.name for f in schema.fields if f.normaliser == "date" and f.name in self.field_col
        ]

    def precheck(self, threads: int = 1) -> int:
        """Whole-file checks: ids present and unique; one date format per date column (a given
        one must fit: :func:`linkage.partner.dates.check_date_format`);
        suspected placeholders (:mod:`linkage.partner.placeholders`) in :attr:`suspects`.

        The checks of different columns run on up to ``threads`` threads (their kernels and
        Arrow compute release the GIL); errors and suspects come in schema order, as serially."""
        checked = [f.name for f in self.schema.fields if f.name in self.field_col]
        checked = [f for f in checked if self.schema.field(f).normaliser in SHARES]
        need = (
            [self.id_column]
            + [self.field_col[f] for f in self.date_fields]
            + [self.field_col[f] for f in checked]
        )
        cols = self.src.read_columns(list(dict.fromkeys(need)))
        ids = cols[self.id_column]

        def date_format(f: str) -> DateFormat:
            col = self.field_col[f]
            missing = self.schema.field(f).missing
            try:
                if f in self.date_formats:  # given: it must fit the column
                    check_date_format(cols[col], self.date_formats[f], missing)
                    return self.date_formats[f]
                return detect_date_format(cols[col], missing)
            except (AmbiguousDateFormat, DateFormatMismatch) as exc:
                raise InputError(f"{self.src.path}: column {col!r} (field {f}): {exc}") from None

        def suspects(f: str, fmt: Future[DateFormat] | None) -> list[Suspect]:
            found, rows = frequent_values_and_rows(
                self.schema.field(f),
                cols[self.field_col[f]],
                date_format=fmt.result() if fmt is not None else self.date_formats.get(f),
            )
            if rows is not None:
                self.normalised[f] = rows
            return found

        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="check") as pool:
            ids_ok = pool.submit(check_ids, ids, self.src.path, self.id_column)
            fmts = {f: pool.submit(date_format, f) for f in self.date_fields}
            found = [pool.submit(suspects, f, fmts.get(f)) for f in checked]
            ids_ok.result()  # the first error in the serial order is the one raised
            for f, fut in fmts.items():
                self.date_formats[f] = fut.result()
            self.suspects = [s for fut in found for s in fut.result()]
        names = [f for f in checked if self.schema.field(f).normaliser == "name"]
        self.few_names = [
            (f, *counts) for f in names if (counts := few_distinct(cols[self.field_col[f]]))
        ]
        return len(ids)

    @property
    def placeholder_values(self) -> dict[str, list[str]]:
        """Each field's suspected placeholders (normalised values), for the encoder."""
        out: dict[str, list[str]] = {}
        for s in self.suspects:
            out.setdefault(s.field, []).append(s.value)
        return out


_CONTROL = (  # C0, DEL, C1, line/paragraph separators, bidi controls (RE2 syntax)
    "[\\x{00}-\\x{1f}\\x{7f}-\\x{9f}\\x{2028}\\x{2029}\\x{200e}\\x{200f}"
    "\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]"
)


def check_ids(ids: pa.Array, path: object, column: str) -> None:
    n = len(ids)
    if n == 0:
        raise InputError(f"{path}: no data rows")
    # ids compare without surrounding whitespace, Unicode spaces and zero-width characters
    # included: "A1", "A1 " and "A1<no-break space>" are one id
    key = pc.utf8_trim_whitespace(unify_spaces(ids))
    blank = pc.fill_null(pc.equal(key, ""), True)
    if pc.any(blank).as_py():
        row = int(np.flatnonzero(blank.to_numpy(zero_copy_only=False))[0]) + 1
        raise InputError(f"{path}: row {row}, column {column!r}: empty record id")
    # a control character anywhere in an id (ESC, a line break, a bidi override) is a damaged
    # extract: ids are stored exactly, and would reach terminals raw through the rejects CSV
    # and the map's listings
    ctrl = pc.fill_null(pc.match_substring_regex(ids, _CONTROL), False)
    if pc.any(ctrl).as_py():
        row = int(np.flatnonzero(ctrl.to_numpy(zero_copy_only=False))[0]) + 1
        raise InputError(
            f"{path}: row {row}, column {column!r}: the record id contains a control character "
            "(such as ESC, a tab, a line break or a text-direction override); record ids must "
            "be printable text"
        )
    which, first = distinct_rows(key)
    if len(first) != n:
        b = int(np.flatnonzero(first[which] != np.arange(n))[0])  # first repeated row
        a = int(first[which[b]])
        raise InputError(
            f"{path}: column {column!r}: duplicate record ids ({n - len(first)} duplicates; "
            f"first: row {b + 1} repeats row {a + 1})"
        )


def batch_columns(
    batch: Mapping[str, pa.Array],
    id_column: str,
    field_col: Mapping[str, str],
    field_names: Sequence[str],
) -> tuple[pa.Array, dict[str, pa.Array]]:
    """The id array and the schema-field columns of a read batch (absent fields as nulls)."""
    ids = batch[id_column]
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    cols = {}
    for f in field_names:
        cols[f] = batch[field_col[f]] if f in field_col else pa.nulls(n, pa.string())
    return ids, cols


def encode_one_batch(
    encoder: Encoder,
    batch: Mapping[str, pa.Array],
    id_column: str,
    field_col: Mapping[str, str],
    start: int | None = None,
) -> tuple[pa.Array, BatchResult]:
    """Encode one read batch: (record ids, the encoder's :class:`BatchResult`). ``start``:
    the batch's first row in the extract, for an encoder given the whole extract's
    normalised columns (:attr:`Plan.normalised`).

    The only per-batch recipe: in-process threads and Dask workers both call it."""
    ids, cols = batch_columns(batch, id_column, field_col, encoder.schema.field_names)
    return ids, encoder.encode_batch(cols, len(ids), ids, start=start)


def _check_contradictions(
    columns: Mapping[str, str], date_formats: Mapping[str, str], absent: Sequence[str]
) -> None:
    """A field declared absent cannot also be mapped to a column or given a date format
    (which of the two did the user mean?). Raises :class:`InputError`."""
    for f in dict.fromkeys(absent):
        if f in columns:
            raise InputError(
                f"field {f} is both mapped to a column (--column {f}={columns[f]}) and declared "
                f"--absent {f}; give one of the two"
            )
        if f in date_formats:
            raise InputError(
                f"field {f} is declared --absent {f} but given --date-format {f}=...; "
                "give one of the two"
            )


def _check_one_field_per_column(path: object, field_col: Mapping[str, str]) -> None:
    """One input column feeds one schema field: the same column under two fields (e.g.
    ``--column surname=forename`` beside ``given_name=forename``) is a mapping mistake that
    would double one value's weight in every filter. Raises :class:`InputError`."""
    fields_of: dict[str, list[str]] = {}
    for f, col in field_col.items():
        fields_of.setdefault(col, []).append(f)
    for col, fields in fields_of.items():
        if len(fields) > 1:
            raise InputError(
                f"{path}: column {col!r} is mapped to fields {' and '.join(fields)}; each "
                "column feeds one field (check the --column mappings; declare a field the "
                "extract lacks with --absent FIELD)"
            )


FEW_NAMES = 0.01
"""A name column whose distinct values number under this share of the rows that give one
(and under :data:`FEW_NAMES_MAX`) is implausible: 2,335 people share far more than two
surnames (a ``sex`` or ``town`` column mapped to ``surname``)."""
FEW_NAMES_MAX = 20
FEW_NAMES_ROWS = 200  # rows given below which nothing is judged


def few_distinct(values: pa.Array) -> tuple[int, int] | None:
    """``(distinct, given)`` when a column holds implausibly few distinct values for a name
    field (:data:`FEW_NAMES`), else None. Blank cells do not count as given."""
    text = pc.utf8_upper(pc.utf8_trim_whitespace(values.cast(pa.string())))
    text = pc.filter(text, pc.fill_null(pc.greater(pc.utf8_length(text), 0), False))
    given = len(text)
    if given < FEW_NAMES_ROWS:
        return None
    distinct = int(pc.count_distinct(text).as_py())
    return (distinct, given) if distinct <= min(FEW_NAMES_MAX, FEW_NAMES * given) else None
