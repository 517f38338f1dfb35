"""Field profile of a partner extract for the encode report: how often each schema field is
filled, and values that look like placeholders (``UNKNOWN``, ``01/01/1900``, ``ZZ99 3VZ``,
``0000000000``...) rather than data.

Only counts leave this module, and the text of values that match one of the known
placeholder patterns below (those are not personal data). Values suspected for their
frequency alone are found by the encoder (:mod:`linkage.partner.placeholders`) and never
shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from linkage.schema import Schema

# values that mean "not known" in many extracts (compared trimmed and upper-cased)
MISSING_WORDS = ("", "NULL", "NONE", "N/A", "NA", "NAN", "-", ".", "?")

_PLACEHOLDER = re.compile(
    r"""^(
        UNKNOWN|UNK|NOT\ KNOWN|NOT\ STATED|NOT\ GIVEN|NOT\ SPECIFIED|N/?K|TBC|TBA|TEST|DUMMY|
        NO\ FIXED\ ABODE|NFA|
        X{2,}|Z{2,}|\?+|-+|\.+|\*+|
        (\d)\2{5,}|                                   # 000000, 9999999999
        (19|18)00[-/.]?0?1[-/.]?0?1|0?1[-/.]0?1[-/.](19|18)00|  # 1900-01-01, 01/01/1900
        9999[-/.]?12[-/.]?31|31[-/.]12[-/.]9999|
        ZZ99\ ?\d[A-Z]{2}                             # NHS: no fixed abode / not known
    )$""",
    re.VERBOSE,
)


@dataclass
class Suspect:
    """A value matching a known placeholder pattern (``label``: the value itself) and its
    rows."""

    field: str
    label: str
    rows: int


@dataclass
class FieldProfile:
    """Fill counts per schema field (``filled[field]`` rows with a value), suspected
    placeholders, and the number of rows profiled."""

    rows: int
    filled: dict[str, int] = field(default_factory=dict)
    suspects: list[Suspect] = field(default_factory=list)
    distinct: dict[str, int] = field(default_factory=dict)

    def fill_rate(self, name: str) -> float:
        return self.filled.get(name, 0) / self.rows if self.rows else 0.0


def read_extract(path: str | Path, columns: Sequence[str], delimiter: str = ",") -> pa.Table:
    """The given columns of a CSV or Parquet extract, as strings."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    with p.open("rb") as fh:
        is_parquet = fh.read(4) == b"PAR1"
    if is_parquet:
        return pq.read_table(p, columns=list(columns))
    return pacsv.read_csv(
        p,
        read_options=pacsv.ReadOptions(use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(columns),
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
        ),
    )


def profile_extract(
    source: str | Path | pa.Table,
    schema: Schema,
    *,
    columns: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
    delimiter: str = ",",
) -> FieldProfile:
    """Profile the schema fields of an extract (a path or a Table). ``columns``: field ->
    column name where they differ (as for ``encode``); ``absent``: fields not in the extract.

    ``suspects``: the values that match a known placeholder pattern (shown: they name no
    one). Values suspected for their frequency alone are the encoder's finding
    (:mod:`linkage.partner.placeholders`, in the encode summary), not judged again here with
    another rule.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = dict(columns or {})
    wanted = {f.name: cols.get(f.name, f.name) for f in schema.fields if f.name not in absent}
    if isinstance(source, pa.Table):
        table = source
    else:
        table = read_extract(source, list(dict.fromkeys(wanted.values())), delimiter)
    prof = FieldProfile(rows=table.num_rows)
    for f in schema.fields:
        if f.name not in wanted or wanted[f.name] not in table.column_names:
            prof.filled[f.name] = 0
            continue
        col = table.column(wanted[f.name])
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = pc.cast(col, pa.string())
        norm = pc.utf8_upper(pc.utf8_trim_whitespace(col))
        missing = {w for w in MISSING_WORDS} | {str(m).strip().upper() for m in f.missing}
        is_missing = pc.or_kleene(pc.is_null(norm), pc.is_in(norm, pa.array(sorted(missing))))
        is_missing = pc.fill_null(is_missing, True)
        n_missing = int(pc.sum(is_missing).as_py() or 0)
        prof.filled[f.name] = table.num_rows - n_missing
        vc = pc.value_counts(pc.filter(norm, pc.invert(is_missing)))
        if len(vc) == 0:
            prof.distinct[f.name] = 0
            continue
        values = vc.field("values").to_pylist()
        counts = vc.field("counts").to_numpy()
        prof.distinct[f.name] = len(values)
        pattern_hit = (
            np.array([bool(_PLACEHOLDER.match(v)) for v in values])
            if len(values) <= 200_000
            else np.zeros(len(values), bool)
        )
        for i in np.flatnonzero(pattern_hit):
            prof.suspects.append(Suspect(f.name, values[i], int(counts[i])))
    prof.suspects.sort(key=lambda s: (-s.rows, s.field))
    return prof


def from_summary(summary: Any) -> FieldProfile | None:
    """A profile from an encode summary that carries fill counts (``summary.filled``), if
    the partner pipeline records them; else None."""
    filled = getattr(summary, "filled", None)
    if not filled:
        return None
    return FieldProfile(rows=int(summary.rows_read), filled={k: int(v) for k, v in filled.items()})
