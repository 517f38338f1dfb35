"""Reading partner extracts (CSV or Parquet) in bounded batches, with clear errors.

Every value is read as a string (normalisers decide what it means). Error messages name the
file, and where it can be found the row (1-based data row, header excluded) and column; they
never quote a value.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from linkage.errors import InputError

PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
# CSV files up to this size are parsed once, in parallel, and kept in memory (the pre-check
# pass and the encoding batches then share one parse); larger files stream twice.
IN_MEMORY_CSV_BYTES = 256 * 2**20


class InputFile:
    """A partner extract: CSV (UTF-8, BOM tolerated) or Parquet, chosen by file suffix."""

    def __init__(self, path: str | Path, *, delimiter: str = ",") -> None:
        self.path = Path(path)
        self.delimiter = delimiter
        if not self.path.exists():
            raise InputError(f"{self.path}: file not found")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory, not a file")
        if len(delimiter) != 1:
            raise InputError(f"--delimiter must be one character, got {len(delimiter)}")
        self.is_parquet = self.path.suffix.lower() in PARQUET_SUFFIXES
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: file is empty")
        self.columns = self._read_columns()
        if not self.columns:
            raise InputError(f"{self.path}: no columns in the header")
        dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dup:
            raise InputError(f"{self.path}: duplicate column name(s) in header: {', '.join(dup)}")

    # -- header ---------------------------------------------------------------------------
    def _read_columns(self) -> list[str]:
        if self.is_parquet:
            try:
                return list(pq.read_schema(self.path).names)
            except (OSError, pa.ArrowInvalid):
                raise InputError(f"{self.path}: not a readable Parquet file") from None
        with open(self.path, "rb") as fh:
            head = fh.read(1 << 20)
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        line = head.split(b"\n", 1)[0].rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{self.path}: header row is not valid UTF-8") from None
        row = next(csv.reader(io.StringIO(text), delimiter=self.delimiter), [])
        return [c.strip() for c in row]

    # -- batches ----------------------------------------------------------------------------
    def iter_batches(
        self, columns: Sequence[str], batch_size: int = 65536
    ) -> Iterator[tuple[int, dict[str, pa.Array]]]:
        """Yield (first row index, {column: string array}) for bounded batches."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise InputError(f"{self.path}: column(s) not found: {', '.join(missing)}")
        start = 0
        if self.is_parquet:
            try:
                pf = pq.ParquetFile(self.path)
                for rb in pf.iter_batches(batch_size=batch_size, columns=list(columns)):
                    yield start, {c: _to_string(rb.column(c), self.path, c) for c in columns}
                    start += rb.num_rows
            except (OSError, pa.ArrowInvalid) as exc:
                raise InputError(f"{self.path}: cannot read ({exc.__class__.__name__})") from None
            return
        # Column names in the CSV header may carry surrounding spaces; map stripped -> raw.
        raw_names = self._raw_header()
        name_map = dict(zip(self.columns, raw_names, strict=True))
        if self.path.stat().st_size <= IN_MEMORY_CSV_BYTES:
            table = self._whole_csv(name_map)
            n = table.num_rows
            for off in range(0, n, batch_size):
                part = table.slice(off, batch_size)
                yield off, {c: part.column(name_map[c]).combine_chunks() for c in columns}
            return
        ropts = pcsv.ReadOptions(block_size=max(1 << 20, batch_size * 128), use_threads=True)
        popts = pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        copts = pcsv.ConvertOptions(
            column_types={name_map[c]: pa.string() for c in self.columns},
            include_columns=[name_map[c] for c in columns],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        try:
            reader = pcsv.open_csv(
                self.path, read_options=ropts, parse_options=popts, convert_options=copts
            )
            for rb in reader:
                if rb.num_rows == 0:
                    continue
                for off in range(0, rb.num_rows, batch_size):
                    part = rb.slice(off, batch_size)
                    yield start, {c: part.column(name_map[c]) for c in columns}
                    start += part.num_rows
        except pa.ArrowInvalid as exc:
            raise self._explain_csv_error(str(exc)) from None

    def _whole_csv(self, name_map: dict[str, str]) -> pa.Table:
        """The whole (small enough) CSV, every column as strings, parsed once and cached."""
        cached = getattr(self, "_table", None)
        if cached is not None:
            return cached
        popts = pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        copts = pcsv.ConvertOptions(
            column_types={name_map[c]: pa.string() for c in self.columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        try:
            table = pcsv.read_csv(
                self.path,
                read_options=pcsv.ReadOptions(use_threads=True),
                parse_options=popts,
                convert_options=copts,
            )
        except pa.ArrowInvalid as exc:
            raise self._explain_csv_error(str(exc)) from None
        self._table: pa.Table | None = table
        return table

    def _raw_header(self) -> list[str]:
        with open(self.path, "rb") as fh:
            head = fh.read(1 << 20)
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        text = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
        return next(csv.reader(io.StringIO(text), delimiter=self.delimiter), [])

    def _explain_csv_error(self, msg: str) -> InputError:
        """Locate the problem by a slow scan (error path only); never quote the data."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        if "UTF8" in msg or "utf8" in msg.lower():
            # parse as CSV records (quoted newlines included), bad bytes kept as surrogates
            text = data.decode("utf-8", errors="surrogateescape")
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
            for i, row in enumerate(reader):
                for j, value in enumerate(row):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:
                        where = "the header" if i == 0 else f"row {i}"
                        col = f", column {self.columns[j]!r}," if j < len(self.columns) else ""
                        return InputError(
                            f"{self.path}: {where}{col} is not valid UTF-8 "
                            "(re-save the file as UTF-8)"
                        )
            return InputError(f"{self.path}: not valid UTF-8 (re-save the file as UTF-8)")
        if "Expected" in msg and "columns" in msg:
            text = data.decode("utf-8", errors="replace")
            reader = csv.reader(io.StringIO(text), delimiter=self.delimiter)
            ncol = len(self.columns)
            for i, row in enumerate(reader):
                if i > 0 and len(row) != ncol and row:
                    return InputError(
                        f"{self.path}: row {i} has {len(row)} columns, the header has {ncol}"
                    )
            return InputError(f"{self.path}: a row has the wrong number of columns")
        return InputError(f"{self.path}: malformed CSV ({msg.split(':', 1)[0]})")

    def read_columns(self, columns: Sequence[str]) -> dict[str, pa.Array]:
        """Whole columns (for checks that need every row: ids, date formats)."""
        parts: dict[str, list[pa.Array]] = {c: [] for c in columns}
        for _, batch in self.iter_batches(columns, batch_size=1 << 20):
            for c in columns:
                col = batch[c]
                parts[c].extend(col.chunks if isinstance(col, pa.ChunkedArray) else [col])
        return {
            c: pa.concat_arrays(v) if v else pa.array([], pa.string()) for c, v in parts.items()
        }


def _to_string(col: pa.Array, path: Path, name: str) -> pa.Array:
    t = col.type
    if pa.types.is_string(t):
        return col
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return col.cast(pa.string())
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        import pyarrow.compute as pc

        return pc.strftime(col, format="%Y-%m-%d")
    try:
        return col.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{path}: column {name!r} of type {t} cannot be read as text") from None


class TableInput(InputFile):
    """An in-memory table behaving like an :class:`InputFile`."""

    def __init__(self, table: pa.Table) -> None:  # no super().__init__: there is no file
        self.table = table
        self.path = Path("<table>")
        self.columns = list(table.column_names)
        self.is_parquet = True

    def iter_batches(
        self, columns: Sequence[str], batch_size: int = 65536
    ) -> Iterator[tuple[int, dict[str, pa.Array]]]:
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise InputError(f"table: column(s) not found: {', '.join(missing)}")
        n = self.table.num_rows
        for start in range(0, n, batch_size):
            part = self.table.slice(start, batch_size)
            yield (
                start,
                {c: _to_string(part.column(c).combine_chunks(), self.path, c) for c in columns},
            )
