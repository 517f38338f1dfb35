"""Readers for the tables ``linkage evaluate`` compares: links, truth, scored pairs and
candidate sets, as Parquet files, CSV files (truth only) or in-memory pyarrow Tables.

Every reader checks the columns it needs and raises :class:`~linkage.errors.InputError` naming
the file, the column and the first bad row. Row numbers count data rows from 1, the header
excluded (as in every linkage message: ``linkage encode`` counts the same way).
:class:`TruthIndex` maps ``(party, record_id)``
to truth rows, vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from linkage._csv_errors import csv_problem
from linkage.errors import InputError

__all__ = [
    "TableLike",
    "TruthIndex",
    "check_known",
    "csv_problem",
    "dense_codes",
    "read_table",
    "sorted_runs",
    "source_name",
    "string_column",
]

TableLike: TypeAlias = "str | Path | pa.Table"


def source_name(src: TableLike, what: str) -> str:
    return str(src) if isinstance(src, str | Path) else f"{what} table"


def read_table(src: TableLike, what: str, columns: Sequence[str], csv_ok: bool) -> pa.Table:
    """Read a Parquet (or, where allowed, CSV) file or take a Table; check the columns."""
    name = source_name(src, what)
    if isinstance(src, pa.Table):
        table = src
    elif isinstance(src, str | Path):
        p = Path(src)
        if not p.exists():
            raise InputError(f"{what} file {p} does not exist")
        if p.is_dir():
            raise InputError(f"{what} file {p} is a directory")
        is_csv = p.suffix.lower() in (".csv", ".tsv", ".txt") or (
            csv_ok and p.suffix.lower() != ".parquet" and not _is_parquet(p)
        )
        try:
            if is_csv:
                if not csv_ok:
                    raise InputError(f"{p}: {what} must be a Parquet file")
                table = _read_csv(p, columns)
            else:
                table = pq.read_table(p)
            table.column_names  # noqa: B018 (a header that is not UTF-8 fails here)
        except InputError:
            raise
        except UnicodeDecodeError:
            raise InputError(f"{p}: cannot read {what} file: not valid UTF-8 text") from None
        except pa.ArrowInvalid as exc:
            problem = csv_problem(exc, p, _delimiter(p)) if is_csv else "not a Parquet file"
            raise InputError(f"{p}: cannot read {what} file: {problem}") from None
        except OSError as exc:
            raise InputError(f"{p}: cannot read {what} file: {_one_line(exc)}") from None
    else:
        raise InputError(f"{what}: expected a path or a pyarrow Table, got {type(src).__name__}")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        hint = _delimiter_hint(table.column_names)
        raise InputError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (has: {', '.join(table.column_names) or 'no columns'}){hint}"
        )
    return table


def _delimiter_hint(names: Sequence[str]) -> str:
    """'; the file looks semicolon-separated...' when one header holds another delimiter."""
    if len(names) != 1:
        return ""
    for sep, word in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if sep in names[0]:
            return f"; the file looks {word}-separated: give a comma-separated file"
    return ""


def _delimiter(p: Path) -> str:
    return "\t" if p.suffix.lower() == ".tsv" else ","


def _is_parquet(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def _read_csv(p: Path, columns: Sequence[str]) -> pa.Table:
    delim = _delimiter(p)
    return pacsv.read_csv(
        p,
        parse_options=pacsv.ParseOptions(delimiter=delim),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def string_column(table: pa.Table, col: str, name: str) -> pa.Array:
    """A column as a plain string array, with no nulls."""
    arr = table.column(col)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        try:
            arr = pc.cast(
                arr, pa.large_string() if pa.types.is_large_string(arr.type) else pa.string()
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{name}: column {col} has type {arr.type}; expected strings"
            ) from None
        if pa.types.is_large_string(arr.type):
            arr = pc.cast(arr, pa.string())
    empty = pc.or_kleene(arr.is_null(), pc.equal(pc.utf8_length(arr), 0))
    n_empty = pc.sum(empty).as_py() or 0
    if n_empty:
        first = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise InputError(
            f"{name}: column {col} has {n_empty} empty values (first at row {first + 1})"
        )
    return arr


def dense_codes(arr: pa.Array) -> tuple[NDArray[np.int64], int]:
    """Dense integer codes of an array's values (first-seen order) and their number."""
    enc = pc.dictionary_encode(arr)
    return enc.indices.to_numpy().astype(np.int64), len(enc.dictionary)


def sorted_runs(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct values of ``keys`` (ascending) and how often each occurs (sort-based)."""
    if keys.size == 0:
        return keys[:0].astype(np.int64), np.zeros(0, dtype=np.int64)
    sk = np.sort(keys)
    start = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
    counts = np.diff(np.append(start, sk.size)).astype(np.int64)
    return sk[start], counts


class TruthIndex:
    """The truth records keyed by (party, record_id), for vectorised look-ups.

    Record ids are hashed once into dense codes. An id held by one truth record maps straight
    to its row; ids held by several records (same id in several parties) are looked up as
    ``record code * n_parties + party code`` in a sorted array.
    """

    def __init__(self, party: pa.Array, record_id: pa.Array, name: str) -> None:
        self.name = name
        self.parties: list[str] = sorted(pc.unique(party).to_pylist())
        self._pv = pa.array(self.parties, pa.string())
        self.n_parties = len(self.parties)
        self.party = self.party_codes(party)
        enc = pc.dictionary_encode(record_id)
        self._rid_dict = enc.dictionary
        rcode = enc.indices.to_numpy().astype(np.int64)
        n = rcode.size
        # a record id used by one truth record only (the usual case) is looked up directly
        self._rid_count = np.bincount(rcode, minlength=len(self._rid_dict))
        self._row_of_rid = np.full(len(self._rid_dict), -1, dtype=np.int64)
        self._row_of_rid[rcode] = np.arange(n, dtype=np.int64)
        # ids shared by several records (several parties, or repeats) go through sorted keys
        shared = np.flatnonzero(self._rid_count[rcode] > 1)
        keys = rcode[shared] * self.n_parties + self.party[shared]
        order = np.argsort(keys)
        self._order = shared[order]
        self._sorted = keys[order]
        dup = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
        if dup.size:
            first = int(self._order[dup + 1].min())
            n_dup = int(sorted_runs(self._sorted[dup])[0].size)
            raise InputError(
                f"{name}: {n_dup} records appear more than once (first repeat: party "
                f"{party[first].as_py()!r}, record_id {record_id[first].as_py()!r}, "
                f"row {first + 1}); every record must appear once"
            )

    def party_codes(self, party: pa.Array) -> NDArray[np.int64]:
        """Party codes (-1 for a party not in the truth)."""
        return pc.index_in(party, value_set=self._pv).fill_null(-1).to_numpy().astype(np.int64)

    def lookup(self, party: pa.Array, record_id: pa.Array) -> NDArray[np.int64]:
        """Truth row of each (party, record_id), -1 where absent."""
        pcode = self.party_codes(party)
        rcode = pc.index_in(record_id, value_set=self._rid_dict).fill_null(-1).to_numpy()
        rcode = rcode.astype(np.int64)
        out = np.full(rcode.size, -1, dtype=np.int64)
        ok = (pcode >= 0) & (rcode >= 0)
        cnt = np.zeros(rcode.size, dtype=np.int64)
        cnt[ok] = self._rid_count[rcode[ok]]
        one = np.flatnonzero(cnt == 1)
        r = self._row_of_rid[rcode[one]]
        hit = self.party[r] == pcode[one]
        out[one[hit]] = r[hit]
        many = np.flatnonzero(cnt > 1)
        if many.size:
            key = rcode[many] * self.n_parties + pcode[many]
            pos = np.minimum(np.searchsorted(self._sorted, key), self._sorted.size - 1)
            hit = self._sorted[pos] == key
            out[many[hit]] = self._order[pos[hit]]
        return out


def check_known(
    idx: NDArray[np.int64],
    party: pa.Array,
    record_id: pa.Array,
    name: str,
    truth: str,
    what: str,
) -> None:
    bad = np.flatnonzero(idx < 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{name}: {bad.size} of {idx.size} {what} are not in the truth file {truth} "
            f"(first: party {party[i].as_py()!r}, record_id {record_id[i].as_py()!r}, row {i + 1})"
        )
