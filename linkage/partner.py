"""The partner-side workflow behind ``linkage encode``: read, check, encode, write.

File-level problems (missing id column, duplicate or empty ids, unknown field mapping,
unreadable file, non-UTF-8 bytes, empty file, ambiguous date format, bad schema, missing or
short secret) raise :class:`~linkage.errors.LinkageError` before anything is written. Row
problems (invalid NHS number, impossible date, bad postcode...) do not stop the run: the row is
encoded from its valid fields and listed in the rejects file as ``record_id, field, reason``
(never the value). A row with no usable field is left out and listed with field ``*``.
Outputs are written to a temporary file and renamed at the end.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.encode import BatchResult, Encoder, reason
from linkage.encoded import (
    EncodedTable,
    arrow_schema,
    filters_to_arrow,
    make_meta,
    metadata_bytes,
    parquet_options,
    temp_path_for,
)
from linkage.errors import InputError
from linkage.normalise import AmbiguousDateFormat, DateFormat, detect_date_format, distinct_rows
from linkage.reader import InputFile
from linkage.schema import Schema
from linkage.secret import Secret

NO_USABLE_FIELD = "no usable field"
Progress = Callable[[int, int], None]
"""``progress(rows_done_now, total_rows)``: called once with 0 when the total is known, then
after each batch with the rows it held."""


@dataclass
class EncodeSummary:
    party: str
    rows_read: int = 0
    rows_encoded: int = 0
    rows_left_out: int = 0
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    bits_set_total: int = 0
    absent_fields: list[str] = field(default_factory=list)
    date_formats: dict[str, str] = field(default_factory=dict)

    @property
    def mean_bits_set(self) -> float:
        return self.bits_set_total / self.rows_encoded if self.rows_encoded else 0.0

    def lines(self, filter_length: int) -> list[str]:
        out = [
            f"party {self.party}: {self.rows_read} rows read, {self.rows_encoded} encoded, "
            f"{self.rows_left_out} left out (no usable field)",
            f"mean bits set {self.mean_bits_set:.1f} of {filter_length} "
            f"({100 * self.mean_bits_set / filter_length:.1f}%)",
        ]
        for f, fmt in sorted(self.date_formats.items()):
            out.append(f"date format of {f}: {fmt}")
        for f in self.absent_fields:
            out.append(f"field {f}: declared absent, encoded as missing")
        if self.problems:
            out.append("row problems (value treated as missing):")
            for (f, why), n in sorted(self.problems.items()):
                out.append(f"  {f}: {why}: {n}")
        return out


def _filter_popcount(filters: np.ndarray) -> int:
    return int(np.bitwise_count(filters).sum())


class _Plan:
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
        names = set(schema.field_names)
        columns = dict(columns or {})
        for f in list(columns) + list(date_formats or {}) + list(absent):
            if f not in names:
                raise InputError(
                    f"unknown schema field {f!r} (the schema has: {', '.join(schema.field_names)})"
                )
        if id_column not in src.columns:
            raise InputError(f"{src.path}: id column {id_column!r} not found in the header")
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

    def precheck(self) -> int:
        """Whole-file checks: ids present and unique; one date format per date column."""
        need = [self.id_column] + [
            self.field_col[f] for f in self.date_fields if f not in self.date_formats
        ]
        cols = self.src.read_columns(list(dict.fromkeys(need)))
        ids = cols[self.id_column]
        check_ids(ids, self.src.path, self.id_column)
        for f in self.date_fields:
            if f in self.date_formats:
                continue
            col = self.field_col[f]
            try:
                self.date_formats[f] = detect_date_format(cols[col])
            except AmbiguousDateFormat as exc:
                raise InputError(f"{self.src.path}: column {col!r} (field {f}): {exc}") from None
        return len(ids)


def check_ids(ids: pa.Array, path: object, column: str) -> None:
    n = len(ids)
    if n == 0:
        raise InputError(f"{path}: no data rows")
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(ids), ""), True)
    if pc.any(blank).as_py():
        row = int(np.flatnonzero(blank.to_numpy(zero_copy_only=False))[0]) + 1
        raise InputError(f"{path}: row {row}, column {column!r}: empty record id")
    which, first = distinct_rows(ids)
    if len(first) != n:
        b = int(np.flatnonzero(first[which] != np.arange(n))[0])  # first repeated row
        a = int(first[which[b]])
        raise InputError(
            f"{path}: column {column!r}: duplicate record ids ({n - len(first)} duplicates; "
            f"first: row {b + 1} repeats row {a + 1})"
        )


@dataclass(frozen=True)
class _Options:
    """How one input is read and encoded (shared by encode() and encode_file())."""

    id_column: str
    columns: Mapping[str, str] | None
    date_formats: Mapping[str, str] | None
    absent: Sequence[str]
    batch_size: int
    today: _dt.date | None
    threads: int | None


def _encode_stream(
    src: InputFile,
    schema: Schema,
    secret: Secret,
    summary: EncodeSummary,
    opts: _Options,
    *,
    progress: Progress | None,
    rejects: list[tuple[str, str, str]] | None,
    remote: RemoteEncoder | None = None,
) -> Iterator[pa.RecordBatch]:
    """Encoded record batches (record_id, clk[, block_keys]) of ``src``, in input order.

    Batches are encoded on local threads, or by ``remote`` (e.g. Dask workers)."""
    aschema = arrow_schema(schema.filter_length, bool(schema.block_keys))
    plan = _Plan(src, schema, opts.id_column, opts.columns, opts.date_formats, opts.absent)
    today, threads = opts.today, opts.threads
    total = plan.precheck()
    if progress is not None:
        progress(0, total)
    summary.absent_fields = plan.absent
    summary.date_formats = {f: d.fmt for f, d in plan.date_formats.items()}
    read_cols = list(dict.fromkeys([plan.id_column, *plan.field_col.values()]))
    workers = max(1, threads if threads is not None else len(os.sched_getaffinity(0)))
    local = threading.local()

    def work(batch: dict[str, pa.Array]) -> tuple[pa.Array, BatchResult]:
        enc = getattr(local, "encoder", None)
        if enc is None:  # one Encoder (and token cache) per worker thread
            enc = Encoder(
                schema, secret, date_formats=plan.date_formats, today=today, parallel=workers == 1
            )
            local.encoder = enc
        ids, cols = batch_columns(batch, plan.id_column, plan.field_col, schema.field_names)
        return ids, enc.encode_batch(cols, len(ids))

    # a small input is split so that every worker gets a share (batches of at least 1000)
    batch_size = opts.batch_size
    if remote is None and workers > 1:
        batch_size = min(batch_size, max(1000, -(-total // workers)))
    batches = (b for _, b in src.iter_batches(read_cols, batch_size))
    if remote is not None:
        results = remote.map(plan, batches)
    else:
        results = _ordered_map(work, batches, workers)
    for ids, res in results:
        n = len(ids)
        summary.rows_read += n
        for rows, fname, codes in res.problems:
            why = [reason(c) for c in codes.tolist()]
            summary.problems.update((fname, w) for w in why)
            if rejects is not None:
                rid = ids.take(pa.array(rows)).to_pylist()
                rejects.extend(zip(rid, [fname] * len(rid), why, strict=True))
        keep = res.usable
        dropped = np.flatnonzero(~keep)
        if len(dropped):
            summary.rows_left_out += len(dropped)
            summary.problems.update({("*", NO_USABLE_FIELD): len(dropped)})
            if rejects is not None:
                for rid in ids.take(pa.array(dropped)).to_pylist():
                    rejects.append((rid, "*", NO_USABLE_FIELD))
        if len(dropped):
            kidx = pa.array(np.flatnonzero(keep))
            ids = ids.take(kidx)
            filters = res.filters[keep]
            bks = res.block_keys.take(kidx) if res.block_keys is not None else None
        else:
            filters, bks = res.filters, res.block_keys
        summary.rows_encoded += len(ids)
        summary.bits_set_total += _filter_popcount(filters)
        if progress is not None:
            progress(n, total)
        arrays = [ids, filters_to_arrow(filters)]
        if bks is not None:
            arrays.append(bks)
        yield pa.RecordBatch.from_arrays(arrays, schema=aschema)


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


class RemoteEncoder(Protocol):
    """Encodes batches elsewhere (see :class:`linkage.distributed.DaskEncoder`)."""

    def map(
        self, plan: _Plan, batches: Iterator[dict[str, pa.Array]]
    ) -> Iterator[tuple[pa.Array, BatchResult]]: ...


T = TypeVar("T")
R = TypeVar("R")


def _ordered_map(fn: Callable[[T], R], items: Iterator[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, in order, with at most ``workers + 1``
    items in flight (bounded memory). Encoding releases the GIL in Arrow and numba."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encode") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def encode_file(
    input_path: str | Path,
    output_path: str | Path,
    schema: Schema,
    secret: Secret,
    *,
    party: str,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
    rejects_path: str | Path | None = None,
    delimiter: str = ",",
    batch_size: int = 50_000,
    progress: Progress | None = None,
    today: _dt.date | None = None,
    threads: int | None = None,
    scheduler: Any = None,
    secret_file: str | Path | None = None,
) -> EncodeSummary:
    """Encode a CSV or Parquet extract into an encoded Parquet file, streaming in batches.

    Nothing is left at ``output_path`` (or ``rejects_path``) unless the whole run succeeds.
    ``scheduler`` (``local[:N]``, ``tls://HOST:PORT`` or an open
    :class:`linkage.distributed.DaskSession`): encode batches on the partner's own
    Dask workers, which read the secret from ``secret_file`` themselves (the secret never
    travels); see docs/scale.md.
    """
    _check_party(party)
    src = InputFile(input_path, delimiter=delimiter)
    out = Path(output_path)
    _check_output(out, "output", [src.path])
    if rejects_path is not None:
        _check_output(Path(rejects_path), "--rejects file", [src.path, out])
    own_session = remote = None
    if scheduler is not None:
        from linkage.distributed import DaskEncoder, open_scheduler

        if secret_file is None:
            raise InputError(
                "encode --scheduler needs --secret-file, a path every worker can read (the "
                "secret itself is never sent to workers)"
            )
        if isinstance(scheduler, str):
            session = own_session = open_scheduler(scheduler)
        else:
            session = scheduler
        remote = DaskEncoder(
            session, schema, Path(secret_file), secret.key_check(schema.fingerprint), today
        )
    try:
        opts = _Options(id_column, columns, date_formats, absent, batch_size, today, threads)
        return _encode_file(
            src, out, schema, secret, opts,
            party=party, rejects_path=rejects_path, progress=progress, remote=remote,
        )  # fmt: skip
    finally:
        if own_session is not None:
            own_session.close()


def _encode_file(
    src: InputFile,
    out: Path,
    schema: Schema,
    secret: Secret,
    opts: _Options,
    *,
    party: str,
    rejects_path: str | Path | None,
    progress: Progress | None,
    remote: RemoteEncoder | None,
) -> EncodeSummary:
    summary = EncodeSummary(party)
    rejects: list[tuple[str, str, str]] | None = [] if rejects_path is not None else None
    has_bk = bool(schema.block_keys)
    aschema = arrow_schema(schema.filter_length, has_bk)
    tmp = temp_path_for(out)
    writer = None
    try:
        writer = pq.ParquetWriter(tmp, aschema, **parquet_options())
        for batch in _encode_stream(
            src, schema, secret, summary, opts, progress=progress, rejects=rejects, remote=remote
        ):
            writer.write_batch(batch)
        if summary.rows_encoded == 0:
            raise InputError(f"{src.path}: no row has a usable field; nothing to encode")
        meta = _meta(schema, secret, party, summary.rows_encoded)
        writer.add_key_value_metadata(metadata_bytes(meta))
        writer.close()
        writer = None
        if rejects_path is not None and rejects is not None:
            write_rejects(rejects_path, rejects)
        os.replace(tmp, out)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return summary


def _check_output(path: Path, what: str, others: Sequence[Path]) -> None:
    """Refuse outputs that would overwrite an input or another output, or cannot be written."""
    if path.is_dir():
        raise InputError(f"{path}: the {what} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent}: directory for the {what} does not exist")
    for other in others:
        if path.resolve() == other.resolve():
            raise InputError(f"{path}: the {what} would overwrite {other.name}")


def write_rejects(path: str | Path, rows: list[tuple[str, str, str]]) -> None:
    p = Path(path)
    tmp = temp_path_for(p)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["record_id", "field", "reason"])
            w.writerows(rows)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _meta(schema: Schema, secret: Secret, party: str, count: int) -> dict[str, str]:
    return make_meta(
        fingerprint=schema.fingerprint,
        key_check=secret.key_check(schema.fingerprint),
        party=party,
        filter_length=schema.filter_length,
        record_count=count,
    )


def _check_party(party: str) -> None:
    if not party or not party.strip():
        raise InputError("--party must name the partner (e.g. council_a)")
    if len(party) > 64 or any(c in party for c in "\n\r\t/\\"):
        raise InputError("--party must be a short name without slashes or control characters")


def encode(
    table_or_path: pa.Table | str | Path,
    schema: Schema,
    secret: Secret,
    *,
    party: str,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
    rejects: list[tuple[str, str, str]] | None = None,
    batch_size: int = 50_000,
    today: _dt.date | None = None,
    threads: int | None = None,
) -> EncodedTable:
    """Encode a pyarrow Table (or a CSV/Parquet path) in memory -> :class:`EncodedTable`.

    ``rejects``, if given, is extended with ``(record_id, field, reason)`` rows.
    """
    _check_party(party)
    if isinstance(table_or_path, pa.Table):
        src: InputFile = _TableInput(table_or_path)
    else:
        src = InputFile(table_or_path)
    summary = EncodeSummary(party)
    opts = _Options(id_column, columns, date_formats, absent, batch_size, today, threads)
    batches = list(
        _encode_stream(src, schema, secret, summary, opts, progress=None, rejects=rejects)
    )
    aschema = arrow_schema(schema.filter_length, bool(schema.block_keys))
    table = pa.Table.from_batches(batches, schema=aschema)
    meta = _meta(schema, secret, party, table.num_rows)
    return EncodedTable(table, meta)


class _TableInput(InputFile):
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
        from linkage.reader import _to_string

        n = self.table.num_rows
        for start in range(0, n, batch_size):
            part = self.table.slice(start, batch_size)
            yield (
                start,
                {c: _to_string(part.column(c).combine_chunks(), self.path, c) for c in columns},
            )
