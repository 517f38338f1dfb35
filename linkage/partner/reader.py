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
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from linkage.errors import InputError

PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
# CSV files up to this size are parsed once, in parallel, and kept in memory (the pre-check
# pass and the encoding batches then share one parse); larger files stream twice.
IN_MEMORY_CSV_BYTES = 256 * 2**20
# What a file that is not a UTF-8 CSV starts with, and what to tell its owner.
_MAGIC = [
    (b"\x1f\x8b", "is gzip-compressed: decompress it first (gunzip)"),
    (b"BZh", "is bzip2-compressed: decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "is xz-compressed: decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "is zstd-compressed: decompress it first (unzstd)"),
    (b"PK\x03\x04", "is a ZIP archive (an Excel .xlsx?): save the sheet as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "is an old Excel .xls workbook: save the sheet as 'CSV UTF-8'"),
    (b"\xff\xfe", "is UTF-16 text (Excel's 'Unicode Text'): save it as 'CSV UTF-8'"),
    (b"\xfe\xff", "is UTF-16 text: save it as 'CSV UTF-8'"),
]
_DELIMITER_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}
_DELIMITER_OPTION = {";": "';'", "\t": "tab", "|": "'|'", ",": "','"}


def _utf16_without_bom(head: bytes) -> str:
    """'LE' or 'BE' when ``head`` (a file's first bytes) is ASCII text in UTF-16 without a
    byte-order mark: a NUL byte beside (nearly) every character, at odd offsets for
    little-endian, even for big-endian (9 in 10 or more: a name in another script may follow
    the header), which no UTF-8 CSV has; else ''."""
    n = len(head) - len(head) % 2
    if n < 4:
        return ""
    even, odd = head[0:n:2].count(0) / (n // 2), head[1:n:2].count(0) / (n // 2)
    if odd >= 0.9 and even <= 0.1:
        return "LE"
    if even >= 0.9 and odd <= 0.1:
        return "BE"
    return ""


def delimiter_char(delimiter: str) -> str:
    """The one-character delimiter; ``tab`` and ``\\t`` name the tab character."""
    return "\t" if delimiter in ("tab", "\\t", "TAB") else delimiter


def _refuse_non_file(path: Path) -> None:
    """An extract must be a regular file: it is read more than once (the whole-file checks,
    then the encoding), which a pipe (``gpg -d x.gpg |``, ``/dev/stdin``, ``-``) or a device
    cannot be. Raises :class:`InputError` saying so and what to do instead."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    what = "standard input" if str(path) == "-" else "a pipe or device, not a regular file"
    raise InputError(
        f"{path}: is {what}; an extract is read more than once, so write it to a file first "
        "(to keep decrypted data off the disk, on a memory file system such as /dev/shm)"
    )


class InputFile:
    """A partner extract: CSV (UTF-8, BOM tolerated; line endings LF, CRLF or CR) or Parquet,
    chosen by file suffix or by the Parquet magic bytes.

    Excel leftovers are ignored and counted: header columns with no name whose cells are all
    empty (``unnamed_columns``) and rows whose cells are all empty or blank, of any width
    (``blank_rows``, like blank lines; known once the file has been read); in a file read
    whole, empty cells beyond the header and rows that stop before its unnamed columns. Row
    numbers in messages count data rows, header excluded, blank rows and lines not counted."""

    def __init__(self, path: str | Path, *, delimiter: str = ",") -> None:
        self.path = Path(path)
        self.delimiter = delimiter = delimiter_char(delimiter)
        self.blank_rows = 0
        if str(path) == "-" or (self.path.exists() and not self.path.is_file()):
            _refuse_non_file(self.path)
        if not self.path.exists():
            raise InputError(f"{self.path}: file not found")
        if len(delimiter) != 1:
            raise InputError(f"--delimiter must be one character, got {len(delimiter)}")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: file is empty")
        with open(self.path, "rb") as fh:
            magic = fh.read(256)
        self.is_parquet = self.path.suffix.lower() in PARQUET_SUFFIXES or magic[:4] == b"PAR1"
        if not self.is_parquet:
            for prefix, what in _MAGIC:
                if magic.startswith(prefix):
                    raise InputError(f"{self.path}: the file {what}")
            utf16 = _utf16_without_bom(magic)
            if utf16:
                raise InputError(
                    f"{self.path}: the file is UTF-16{utf16} text without a byte-order mark "
                    "(its header has a NUL byte beside every character): save it as 'CSV UTF-8'"
                )
        self._header = header = self._read_header()
        self._csv_index = {name: i for i, name in enumerate(header) if name}
        self.unnamed_columns = sum(1 for name in header if not name)
        self.columns = [name for name in header if name]
        if not self.columns:
            raise InputError(f"{self.path}: no columns in the header")
        dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dup:
            shown = ", ".join(repr(c) for c in dup)
            raise InputError(f"{self.path}: duplicate column name(s) in header: {shown}")
        if not self.is_parquet and len(self.columns) == 1:
            self._suggest_delimiter(self.columns[0])

    def _suggest_delimiter(self, name: str) -> None:
        """A one-column header holding another delimiter: the file is not ``,``-separated."""
        counts = {d: name.count(d) for d in _DELIMITER_NAMES if d != self.delimiter}
        best = max(counts, key=lambda d: counts[d])
        if counts[best]:
            raise InputError(
                f"{self.path}: the header has one column; the file looks "
                f"{_DELIMITER_NAMES[best]}-separated: give --delimiter {_DELIMITER_OPTION[best]}"
            )

    # -- header ---------------------------------------------------------------------------
    def _read_header(self) -> list[str]:
        """Column names (stripped; '' for unnamed columns); sets ``_header_lines``."""
        self._header_lines = 1
        if self.is_parquet:
            try:
                return list(pq.read_schema(self.path).names)
            except (OSError, pa.ArrowInvalid):
                raise InputError(f"{self.path}: not a readable Parquet file") from None
        with open(self.path, "rb") as fh:
            head = fh.read(1 << 20)
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        text = head.decode("utf-8", errors="surrogateescape")
        # newline="": records end at LF, CRLF or CR (old Excel for Mac), as Arrow reads them
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        row = next(reader, [])
        self._header_lines = max(1, reader.line_num)
        names = [_strip(c) for c in row]
        for name in names:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"{self.path}: header row is not valid UTF-8") from None
        return names

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
        if self.path.stat().st_size <= IN_MEMORY_CSV_BYTES:
            table = self._whole_csv()
            n = table.num_rows
            for off in range(0, n, batch_size):
                part = table.slice(off, batch_size)
                yield off, {c: part.column(self._key(c)).combine_chunks() for c in columns}
            return
        ropts = pcsv.ReadOptions(
            block_size=max(1 << 20, batch_size * 128),
            use_threads=True,
            column_names=self._keys(),
            skip_rows=self._header_lines,
        )
        blank = 0
        try:
            reader = pcsv.open_csv(
                self.path,
                read_options=ropts,
                parse_options=self._parse_options(),
                convert_options=self._convert_options(),
            )
            for rb in reader:
                rb, dropped = self._drop_blank(pa.Table.from_batches([rb]))
                blank += dropped
                if rb.num_rows == 0:
                    continue
                for off in range(0, rb.num_rows, batch_size):
                    part = rb.slice(off, batch_size)
                    yield start, {c: part.column(self._key(c)).combine_chunks() for c in columns}
                    start += part.num_rows
        except pa.ArrowInvalid as exc:
            raise self._explain_csv_error(str(exc), ropts.block_size) from None
        self.blank_rows = blank + len(self._odd_blank)

    def _key(self, column: str) -> str:
        return f"c{self._csv_index[column]}"

    def _keys(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.columns) + self.unnamed_columns)]

    def _parse_options(self) -> pcsv.ParseOptions:
        self._odd_blank: list[int] = []  # blank rows of the wrong width, skipped by Arrow
        return pcsv.ParseOptions(
            delimiter=self.delimiter, newlines_in_values=True, invalid_row_handler=self._on_odd
        )

    def _on_odd(self, row: pcsv.InvalidRow) -> str:
        """Arrow's handler for a row of the wrong width: skip (and count) it if it holds no
        value (only delimiters, quotes and blanks: an Excel leftover); else an error."""
        if _strip((row.text or "").replace(self.delimiter, "").replace('"', "")):
            return "error"
        self._odd_blank.append(row.number or 0)  # (list.append: safe from Arrow's threads)
        return "skip"

    def _convert_options(self) -> pcsv.ConvertOptions:
        return pcsv.ConvertOptions(
            column_types={k: pa.string() for k in self._keys()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def _drop_blank(self, table: pa.Table) -> tuple[pa.Table, int]:
        """``table`` without its all-blank rows (and their count); refuses a value in a column
        that has no name in the header."""
        if table.num_rows == 0:
            return table, 0
        empty = [_blank(table.column(k)) for k in self._keys()]
        named = set(map(self._key, self.columns))
        for k, e in zip(self._keys(), empty, strict=True):
            if k in named or pc.all(e).as_py():
                continue
            raise InputError(
                f"{self.path}: column {int(k[1:]) + 1} has no name in the header but holds "
                "values; give it a name or delete it"
            )
        all_blank = empty[0]
        for e in empty[1:]:
            all_blank = pc.and_(all_blank, e)
        dropped = pc.sum(all_blank).as_py() or 0
        if dropped:
            table = table.filter(pc.invert(all_blank))
        return table, dropped

    def _whole_csv(self) -> pa.Table:
        """The whole (small enough) CSV, every column as strings, parsed once and cached."""
        cached = getattr(self, "_table", None)
        if cached is not None:
            return cached
        ropts = pcsv.ReadOptions(
            use_threads=True, column_names=self._keys(), skip_rows=self._header_lines
        )
        try:

            def read() -> pa.Table:
                return pcsv.read_csv(self.path, read_options=ropts,
                                     parse_options=self._parse_options(),
                                     convert_options=self._convert_options())  # fmt: skip

            try:
                table = read()
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc):
                    raise
                # a field longer than Arrow's read block (1 MB): one block the whole file
                ropts.block_size = self.path.stat().st_size + 1
                table = read()
        except pa.ArrowInvalid as exc:
            if not ("Expected" in str(exc) and "columns" in str(exc)):
                raise self._explain_csv_error(str(exc)) from None
            table = self._ragged_csv()  # trailing empty cells beyond the header, or short rows
        table, blank = self._drop_blank(table)
        self.blank_rows = blank + len(self._odd_blank)
        self._table: pa.Table | None = table
        return table

    def _ragged_csv(self) -> pa.Table:
        """The whole CSV read row by row when some rows are wider or narrower than the header
        (Excel leftovers): empty cells beyond the header are dropped, and a row that stops
        before the header's trailing unnamed columns is padded. A row that is wider with a
        value beyond the header, or that stops before a named column, is an error naming it."""
        try:
            text = self.path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise self._explain_csv_error("invalid UTF8") from None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        ncol = len(self._header)
        named_upto = max(i for i, name in enumerate(self._header) if name) + 1
        cols: list[list[str]] = [[] for _ in range(ncol)]
        self._odd_blank = []
        for i, row in enumerate(reader):
            if not row:  # an empty line: skipped, not counted, as Arrow does
                continue
            if i == 0 or len(row) == ncol:
                pass
            elif not _strip("".join(row)):
                self._odd_blank.append(i)
                continue
            elif len(row) > ncol and not _strip("".join(row[ncol:])):
                row = row[:ncol]
            elif named_upto <= len(row) < ncol:
                row = row + [""] * (ncol - len(row))
            else:
                raise InputError(
                    f"{self.path}: row {i} has {len(row)} columns, the header has {ncol}"
                )
            if i:
                for j, value in enumerate(row):
                    cols[j].append(value)
        return pa.table(
            {k: pa.array(c, pa.string()) for k, c in zip(self._keys(), cols, strict=True)}
        )

    def _explain_csv_error(self, msg: str, block: int = 1 << 20) -> InputError:
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
                        name = self._header[j] if j < len(self._header) else ""
                        col = f", column {name!r}," if name else ""
                        return InputError(
                            f"{self.path}: {where}{col} is not valid UTF-8 "
                            "(re-save the file as UTF-8)"
                        )
            return InputError(f"{self.path}: not valid UTF-8 (re-save the file as UTF-8)")
        if "Expected" in msg and "columns" in msg:
            text = data.decode("utf-8", errors="replace")
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
            ncol = len(self.columns) + self.unnamed_columns
            for i, row in enumerate(reader):
                if i > 0 and len(row) != ncol and row:
                    return InputError(
                        f"{self.path}: row {i} has {len(row)} columns, the header has {ncol}"
                    )
            return InputError(f"{self.path}: a row has the wrong number of columns")
        if "straddl" in msg:  # streaming a large file: a field longer than the read block
            return InputError(
                f"{self.path}: a field of more than {max(block >> 20, 1)} MB (an unclosed "
                "quote?): malformed CSV"
            )
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


_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u180e"


def _strip(text: str) -> str:
    """``text`` without surrounding whitespace, Unicode spaces and zero-width characters."""
    return text.strip().strip(_INVISIBLE + " \u00a0").strip()


def _blank(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """True where a cell is empty or whitespace only (Unicode spaces included)."""
    return pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0), True)
