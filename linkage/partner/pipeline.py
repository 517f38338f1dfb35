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
import pyarrow.parquet as pq

from linkage._files import CSV, PARQUET, Output, atomic_outputs, check_outputs
from linkage.encoded import (
    EncodedTable,
    arrow_schema,
    filters_to_arrow,
    make_meta,
    metadata_bytes,
    parquet_options,
)
from linkage.errors import InputError
from linkage.evidence import TOO_LITTLE_EVIDENCE
from linkage.integrity import META_KEY as CHECKSUM_KEY
from linkage.integrity import ChecksumLog
from linkage.partner.encoder import BatchResult, Encoder
from linkage.partner.plan import Plan, encode_one_batch
from linkage.partner.reader import InputFile, TableInput
from linkage.partner.values import reason
from linkage.schema import Schema
from linkage.secret import Secret
from linkage.segments import segments_meta

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
    rows_unlinkable: int = 0  # below the schema's min_evidence: left out, listed in rejects
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    filled: Counter[str] = field(default_factory=Counter)  # field -> rows with a value given
    # (field, distinct values, rows given) of name fields with implausibly few values
    few_names: list[tuple[str, int, int]] = field(default_factory=list)
    bits_set_total: int = 0
    absent_fields: list[str] = field(default_factory=list)
    date_formats: dict[str, str] = field(default_factory=dict)
    # (field, rows, share) of each suspected placeholder value (never the value itself)
    suspected_placeholders: list[tuple[str, int, float]] = field(default_factory=list)
    blank_rows: int = 0  # all-empty rows skipped (Excel leftovers), like blank lines
    unnamed_columns: int = 0  # empty columns without a header name, ignored

    @property
    def mean_bits_set(self) -> float:
        return self.bits_set_total / self.rows_encoded if self.rows_encoded else 0.0

    def mostly_rejected(self, share: float = 0.5) -> list[tuple[str, int, int]]:
        """``(field, rejected, given)`` of each field whose value was rejected (encoded as
        missing) on more than ``share`` of the rows that gave one (``given``; blanks and
        missing-value words do not count): usually a column mapped to the wrong field
        (``--column postcode=forename``), which would otherwise pass as a run with many row
        problems."""
        per: Counter[str] = Counter()
        for (f, why), n in self.problems.items():
            if "kept" not in why:
                per[f] += n
        out = []
        for f, n in sorted(per.items()):
            given = self.filled.get(f, self.rows_read)
            if n > share * given > 0:
                out.append((f, n, given))
        return out


def _filter_popcount(filters: np.ndarray) -> int:
    return int(np.bitwise_count(filters).sum())


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
    placeholders: str = "report"  # suspected placeholders: "report" or "missing"


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
    aschema = arrow_schema(schema.output_length, bool(schema.block_keys))
    plan = Plan(src, schema, opts.id_column, opts.columns, opts.date_formats, opts.absent)
    today, threads = opts.today, opts.threads
    workers = max(1, threads if threads is not None else len(os.sched_getaffinity(0)))
    total = plan.precheck(threads=workers)
    if progress is not None:
        progress(0, total)
    summary.absent_fields = plan.absent
    summary.unnamed_columns = getattr(src, "unnamed_columns", 0)
    summary.date_formats = {f: d.fmt for f, d in plan.date_formats.items()}
    summary.suspected_placeholders = [(s.field, s.rows, s.share) for s in plan.suspects]
    summary.few_names = plan.few_names
    as_missing = plan.placeholders_missing = opts.placeholders == "missing"
    read_cols = list(dict.fromkeys([plan.id_column, *plan.field_col.values()]))
    local = threading.local()
    # fields the checks already normalised over the whole extract (a date only when the
    # checks' "today", the real one, is the encoder's)
    whole = {
        f: nv
        for f, nv in plan.normalised.items()
        if today is None or schema.field(f).normaliser != "date"
    }

    def work(item: tuple[int, dict[str, pa.Array]]) -> tuple[pa.Array, BatchResult]:
        start, batch = item
        enc = getattr(local, "encoder", None)
        if enc is None:  # one Encoder (and token cache) per worker thread
            enc = Encoder(
                schema, secret, date_formats=plan.date_formats, today=today,
                parallel=workers == 1, placeholders=plan.placeholder_values,
                placeholders_missing=as_missing, normalised=whole,
            )  # fmt: skip
            local.encoder = enc
        return encode_one_batch(enc, batch, plan.id_column, plan.field_col, start)

    # a small input is split so that every worker gets a share (batches of at least 1000)
    batch_size = opts.batch_size
    if remote is None and workers > 1:
        batch_size = min(batch_size, max(1000, -(-total // workers)))
    batches = src.iter_batches(read_cols, batch_size)
    if remote is not None:
        results = remote.map(plan, (b for _, b in batches))
    else:
        results = _ordered_map(work, batches, workers)
    for ids, res in results:
        n = len(ids)
        summary.rows_read += n
        summary.filled.update(res.filled)
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
        if res.enough is not None:  # the schema's min_evidence: unlinkable rows never leave
            weak = np.flatnonzero(keep & ~res.enough)
            if len(weak):
                summary.rows_unlinkable += len(weak)
                summary.problems.update({("*", TOO_LITTLE_EVIDENCE): len(weak)})
                if rejects is not None:
                    for rid in ids.take(pa.array(weak)).to_pylist():
                        rejects.append((rid, "*", TOO_LITTLE_EVIDENCE))
                keep = keep & res.enough
                dropped = np.flatnonzero(~keep)
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
    summary.blank_rows = getattr(src, "blank_rows", 0)  # known once the file is read


class RemoteEncoder(Protocol):
    """Encodes batches elsewhere (see :class:`linkage.partner.dask_encode.DaskEncoder`)."""

    def map(
        self, plan: Plan, batches: Iterator[dict[str, pa.Array]]
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
    schema: Schema | str | Path,
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
    suspected_placeholders: str = "report",
    scheduler: Any = None,
    secret_file: str | Path | None = None,
    force: bool = False,
) -> EncodeSummary:
    """Encode a CSV or Parquet extract into an encoded Parquet file, streaming in batches.

    ``output_path`` (``.parquet``) and ``rejects_path`` (``.csv``) must not exist unless
    ``force``; they are written with mode 0600, together, or not at all (see
    :mod:`linkage._files`): nothing is left there unless the whole run succeeds.
    ``scheduler`` (``local[:N]``, ``tls://HOST:PORT`` or an open
    :class:`linkage.dask_session.DaskSession`): encode batches on the partner's own
    Dask workers, which read the secret from ``secret_file`` themselves (the secret never
    travels); see docs/scale.md. ``suspected_placeholders``: ``report`` (default) lists
    values held by an implausible share of rows (:mod:`linkage.partner.placeholders`) in the
    summary and rejects; ``missing`` also encodes them as missing.
    """
    schema = _schema_and_secret(schema, secret)
    _check_party(party)
    _check_placeholder_mode(suspected_placeholders)
    wanted = [Output(Path(output_path), "encoded output", PARQUET)]
    if rejects_path is not None:
        wanted.append(Output(Path(rejects_path), "rejects file", CSV))
    check_outputs(wanted, [input_path], force=force)
    src = InputFile(input_path, delimiter=delimiter)
    out = Path(output_path)
    own_session = remote = None
    if scheduler is not None:
        from linkage.dask_session import open_scheduler
        from linkage.partner.dask_encode import DaskEncoder

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
        opts = _Options(
            id_column, columns, date_formats, absent, batch_size, today, threads,
            suspected_placeholders,
        )  # fmt: skip
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
    aschema = arrow_schema(schema.output_length, has_bk)
    paths = [out] if rejects_path is None else [out, Path(rejects_path)]
    with atomic_outputs(*paths) as temps:
        writer = pq.ParquetWriter(temps[0], aschema, **parquet_options())
        sums = ChecksumLog()  # one digest set per row group (= per non-empty batch)
        try:
            for batch in _encode_stream(
                src, schema, secret, summary, opts,
                progress=progress, rejects=rejects, remote=remote,
            ):  # fmt: skip
                if batch.num_rows:
                    writer.write_batch(batch, row_group_size=batch.num_rows)
                    sums.add(batch)
            if summary.rows_encoded == 0:
                if summary.rows_unlinkable:
                    raise InputError(
                        f"{src.path}: no row has enough identifying information (the schema's "
                        "min_evidence); nothing to encode"
                    )
                raise InputError(f"{src.path}: no row has a usable field; nothing to encode")
            meta = _meta(schema, secret, party, summary.rows_encoded)
            meta[CHECKSUM_KEY] = sums.value(meta)
            writer.add_key_value_metadata(metadata_bytes(meta))
        finally:
            writer.close()
        if rejects is not None:
            write_rejects(temps[1], rejects)
    return summary


def write_rejects(path: str | Path, rows: list[tuple[str, str, str]]) -> None:
    """The rejects CSV (record_id, field, reason; never a value) at ``path`` as it is: the
    caller gives a temporary file of :func:`linkage._files.atomic_outputs`. Cells a
    spreadsheet would run as a formula are neutralised (:func:`linkage._files.spreadsheet_safe`:
    a record id ``=HYPERLINK(...)`` or ``-1`` is written ``'=HYPERLINK(...)``, ``'-1``)."""
    from linkage._files import spreadsheet_safe

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "field", "reason"])
        w.writerows([spreadsheet_safe(c) for c in row] for row in rows)


def _meta(schema: Schema, secret: Secret, party: str, count: int) -> dict[str, str]:
    meta = make_meta(
        fingerprint=schema.fingerprint,
        key_check=secret.key_check(schema.fingerprint),
        party=party,
        filter_length=schema.output_length,
        record_count=count,
    )
    meta.update(segments_meta(schema.wire_segments))  # the layout, for field-aware scoring
    if schema.match_threshold is not None:  # what `linkage match` uses when given none
        meta["recommended_threshold"] = f"{schema.match_threshold:g}"
    return meta


def _check_party(party: str) -> None:
    if not party or not party.strip():
        raise InputError("--party must name the partner (e.g. council_a)")
    if len(party) > 64 or any(c in party for c in "\n\r\t/\\"):
        raise InputError("--party must be a short name without slashes or control characters")
    if party != party.strip():  # ' council_a' would be another party than 'council_a'
        raise InputError(f"--party {party!r} starts or ends with a space; give the name alone")


def _schema_and_secret(schema: Schema | str | Path, secret: Secret) -> Schema:
    """The schema (a path is loaded, as :func:`linkage.audit` takes one) after checking that
    ``secret`` is a :class:`Secret`. Raises TypeError for a secret given as text or a path
    (a library caller's mistake that used to surface as an AttributeError deep inside)."""
    if not isinstance(secret, Secret):
        raise TypeError(
            f"secret must be a linkage.Secret (linkage.Secret.from_file(path), "
            f"Secret.from_text(text), or Secret.resolve() for the LINKAGE_SECRET variable), "
            f"not {type(secret).__name__}"
        )
    if isinstance(schema, str) and schema.lstrip().startswith("{"):
        raise TypeError("schema is JSON text: give its path, or Schema.from_dict(json.loads(text))")
    if isinstance(schema, (str, Path)):
        return Schema.load(schema)
    if not isinstance(schema, Schema):
        raise TypeError(
            f"schema must be a linkage.Schema or a path to a schema file, "
            f"not {type(schema).__name__}"
        )
    return schema


def _check_placeholder_mode(mode: str) -> None:
    if mode not in ("report", "missing"):
        raise InputError(f"--suspected-placeholders must be report or missing, got {mode!r}")


def encode(
    table_or_path: pa.Table | str | Path,
    schema: Schema | str | Path,
    secret: Secret,
    *,
    party: str,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
    rejects: list[tuple[str, str, str]] | None = None,
    delimiter: str = ",",
    batch_size: int = 50_000,
    today: _dt.date | None = None,
    threads: int | None = None,
    suspected_placeholders: str = "report",
) -> EncodedTable:
    """Encode a pyarrow Table (or a CSV/Parquet path) in memory -> :class:`EncodedTable`.

    ``schema``: a :class:`Schema` or the path of a schema file; ``secret``: a
    :class:`Secret` (never text). ``rejects``, if given, is extended with ``(record_id,
    field, reason)`` rows; ``delimiter``: of a CSV path; the other options as in
    :func:`encode_file`.

    Raises :class:`InputError` on a bad extract or option (one message naming the file, row
    and column) and TypeError when ``schema`` or ``secret`` is of the wrong type.
    """
    schema = _schema_and_secret(schema, secret)
    _check_party(party)
    _check_placeholder_mode(suspected_placeholders)
    if isinstance(table_or_path, pa.Table):
        src: InputFile = TableInput(table_or_path)
    else:
        src = InputFile(table_or_path, delimiter=delimiter)
    summary = EncodeSummary(party)
    opts = _Options(
        id_column, columns, date_formats, absent, batch_size, today, threads,
        suspected_placeholders,
    )  # fmt: skip
    batches = list(
        _encode_stream(src, schema, secret, summary, opts, progress=None, rejects=rejects)
    )
    aschema = arrow_schema(schema.output_length, bool(schema.block_keys))
    table = pa.Table.from_batches(batches, schema=aschema)
    meta = _meta(schema, secret, party, table.num_rows)
    return EncodedTable(table, meta)
