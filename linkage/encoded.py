"""Encoded files: the only thing partners send to the trusted linkage unit.

Parquet with columns ``record_id`` (string), ``clk`` (fixed_size_binary(L/8)) and, when the
schema defines block keys, ``block_keys`` (list<uint64>). Bit p of a filter is byte p // 8,
bit p % 8 (least significant first), so on a little-endian machine the filters are a
zero-copy numpy ``uint64`` array of shape (n, L/64) with bit p in word p // 64, bit p % 64.

File metadata (Parquet key-value metadata, keys prefixed ``linkage.``): format version,
schema fingerprint, key-check value, party, filter length, record count, package version,
creation time, optional recommended threshold and filter layout, and SHA-256 digests of
every data column of every row group and of the metadata itself (all but the creation time
and package version; :mod:`linkage.integrity`), checked on every read. No input value,
normalised or not, is stored anywhere.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from linkage.errors import CompatibilityError, InputError
from linkage.integrity import META_KEY as CHECKSUM_KEY
from linkage.integrity import ChecksumLog, expected_digests, verify, verify_metadata

ROW_GROUP_ROWS = 1 << 17  # rows per row group of write_encoded (one digest set per group)

FORMAT_VERSION = "1"
_PREFIX = "linkage."
META_KEYS = (
    "format_version",
    "schema_fingerprint",
    "key_check",
    "party",
    "filter_length",
    "record_count",
    "package_version",
    "created",
)

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("linkage needs a little-endian machine for zero-copy filter views")


def arrow_schema(filter_length: int, with_block_keys: bool) -> pa.Schema:
    fields = [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("clk", pa.binary(filter_length // 8), nullable=False),
    ]
    if with_block_keys:
        fields.append(pa.field("block_keys", pa.list_(pa.uint64()), nullable=False))
    return pa.schema(fields)


def parquet_options() -> dict[str, object]:
    """Writer options for encoded files: filters and keyed block keys are random bits, so
    compressing them, dictionary-encoding them or keeping min/max statistics of them only
    costs time; record ids are unique (no dictionary) but compress well."""
    return {
        "compression": {"record_id": "zstd", "clk": "none", "block_keys": "none"},
        "use_dictionary": False,
        "write_statistics": ["record_id"],
    }


def filters_to_arrow(filters: np.ndarray) -> pa.FixedSizeBinaryArray:
    """(n, W) uint64 -> fixed_size_binary(8W) array without copying."""
    f = np.ascontiguousarray(filters, dtype=np.uint64)
    n, w = f.shape
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(8 * w), n, [None, pa.py_buffer(f)])


def arrow_to_filters(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """fixed_size_binary(L/8) -> (n, L/64) uint64 view (zero-copy for one aligned chunk)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    width = arr.type.byte_width
    if width % 8:
        raise InputError(f"clk width {width} bytes is not a multiple of 8")
    n = len(arr)
    if n == 0:
        return np.zeros((0, width // 8), np.uint64)
    buf = arr.buffers()[1]
    raw = np.frombuffer(buf, dtype=np.uint8, count=(arr.offset + n) * width)[arr.offset * width :]
    if raw.ctypes.data % 8:
        raw = raw.copy()
    return raw.view(np.uint64).reshape(n, width // 8)


@dataclass
class EncodedTable:
    """Encodings of one party: a pyarrow Table plus linkage metadata."""

    table: pa.Table
    meta: dict[str, str]

    @property
    def party(self) -> str:
        return self.meta["party"]

    @property
    def filter_length(self) -> int:
        return int(self.meta["filter_length"])

    @property
    def record_ids(self) -> pa.Array:
        return self.table.column("record_id").combine_chunks()

    @property
    def filters(self) -> np.ndarray:
        """(n, L/64) uint64 view of the filters."""
        return arrow_to_filters(self.table.column("clk"))

    @property
    def has_block_keys(self) -> bool:
        return "block_keys" in self.table.column_names

    def __len__(self) -> int:
        return self.table.num_rows

    def to_bitarrays(self) -> list:
        """The filters as ``bitarray`` objects (little-endian bit order), for interop."""
        from bitarray import bitarray

        out = []
        width = self.filter_length // 8
        raw = self.filters.view(np.uint8).reshape(-1, width)
        for row in raw:
            b = bitarray(endian="little")
            b.frombytes(row.tobytes())
            out.append(b)
        return out

    @staticmethod
    def filters_from_bitarrays(bits: list) -> np.ndarray:
        """bitarray objects (any endianness, equal length, multiple of 64) -> (n, W) uint64."""
        from bitarray import bitarray

        if not bits:
            raise InputError("no bitarrays given")
        length = len(bits[0])
        if length % 64 or any(len(b) != length for b in bits):
            raise InputError("bitarrays must share one length, a multiple of 64")
        rows = []
        for b in bits:
            if b.endian != "little":
                b = bitarray(b, endian="little")
            rows.append(b.tobytes())
        return np.frombuffer(b"".join(rows), np.uint64).reshape(len(bits), length // 64).copy()

    def write(self, path: str | Path, *, force: bool = False) -> None:
        write_encoded(self, path, force=force)


def metadata_bytes(meta: Mapping[str, str]) -> dict[bytes, bytes]:
    return {(_PREFIX + k).encode(): str(v).encode() for k, v in meta.items()}


def make_meta(
    *,
    fingerprint: str,
    key_check: str,
    party: str,
    filter_length: int,
    record_count: int,
) -> dict[str, str]:
    from linkage import __version__

    return {
        "format_version": FORMAT_VERSION,
        "schema_fingerprint": fingerprint,
        "key_check": key_check,
        "party": party,
        "filter_length": str(filter_length),
        "record_count": str(record_count),
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }


def write_encoded(enc: EncodedTable, path: str | Path, *, force: bool = False) -> None:
    """Write an encoded file (mode 0600, atomically; see :mod:`linkage._files`). Raises
    :class:`~linkage._files.OutputError` if ``path`` exists (unless ``force``), is not named
    ``.parquet`` or cannot be written."""
    from linkage._files import PARQUET, Output, atomic_outputs, check_outputs

    (p,) = check_outputs([Output(Path(path), "encoded file", PARQUET)], force=force)
    log = ChecksumLog()
    n = enc.table.num_rows
    for r0 in range(0, max(n, 1), ROW_GROUP_ROWS):  # an empty table is one empty row group
        log.add(enc.table.slice(r0, min(ROW_GROUP_ROWS, n - r0)))
    meta = dict(enc.meta, record_count=str(n))
    meta[CHECKSUM_KEY] = log.value(meta)
    table = enc.table.replace_schema_metadata(metadata_bytes(meta))
    with atomic_outputs(p) as (tmp,):
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **parquet_options())


def decode_meta(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """The ``linkage.`` keys of Parquet key-value metadata, prefix removed."""
    return {
        k.decode(errors="replace")[len(_PREFIX) :]: v.decode(errors="replace")
        for k, v in raw.items()
        if k.decode(errors="replace").startswith(_PREFIX)
    }


def read_meta(path: str | Path) -> dict[str, str]:
    p = Path(path)
    try:
        md = pq.read_metadata(p).metadata or {}
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{p}: not a readable Parquet file ({exc.__class__.__name__})") from None
    meta = decode_meta(md)
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise InputError(
            f"{p}: not a linkage encoded file (metadata lacks {', '.join(missing)}); "
            "make it with `linkage encode`"
        )
    return meta


def read_encoded(path: str | Path) -> EncodedTable:
    """Read an encoded file and check its structure."""
    p = Path(path)
    meta = read_meta(p)
    if meta["format_version"] != FORMAT_VERSION:
        raise CompatibilityError(
            f"{p}: encoded-file format version {meta['format_version']} is not supported "
            f"(this linkage reads version {FORMAT_VERSION})"
        )
    expected = expected_digests(meta, p)
    try:
        pf = pq.ParquetFile(p)
        rows = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
        table = pf.read()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{p}: cannot read ({exc.__class__.__name__})") from None
    check_structure(table, meta, p)
    verify_metadata(meta, p)
    verify(table, rows, expected, p)
    if len(expected) != len(rows):
        raise InputError(f"{p}: {len(expected)} checksums for {len(rows)} row groups; altered")
    return EncodedTable(table, meta)


def filter_length_of(meta: Mapping[str, str], where: object) -> int:
    """The metadata's filter length; InputError unless a positive multiple of 64."""
    raw = meta.get("filter_length", "")
    if not raw.isdigit() or int(raw) <= 0 or int(raw) % 64:
        raise InputError(f"{where}: filter_length {raw[:20]!r} in the metadata is not a "
                         "positive multiple of 64; the file was altered")  # fmt: skip
    return int(raw)


def check_structure(table: pa.Table, meta: Mapping[str, str], where: object) -> None:
    """Columns, types, nulls and record count of an encoded table (hand-made files)."""
    length = filter_length_of(meta, where)
    for col in ("record_id", "clk"):
        if col not in table.column_names:
            raise InputError(f"{where}: column {col!r} is missing")
    if table.schema.field("clk").type != pa.binary(length // 8):
        raise InputError(
            f"{where}: column 'clk' should be fixed_size_binary({length // 8}) for {length}-bit "
            f"filters, got {table.schema.field('clk').type}"
        )
    rid = table.schema.field("record_id").type
    if not (pa.types.is_string(rid) or pa.types.is_large_string(rid)):
        raise InputError(f"{where}: column 'record_id' should hold strings, got {rid}")
    if "block_keys" in table.column_names:
        bk = table.schema.field("block_keys").type
        if not (pa.types.is_list(bk) and pa.types.is_uint64(bk.value_type)):
            raise InputError(f"{where}: column 'block_keys' should be list<uint64>, got {bk}")
    for col in table.column_names:
        if table.column(col).null_count:
            raise InputError(f"{where}: column {col!r} holds nulls; the file was altered")
    count = meta.get("record_count", "")
    if count != str(table.num_rows):
        raise InputError(
            f"{where}: the metadata says {count[:20]!r} records but the file holds "
            f"{table.num_rows}; the file was altered"
        )


def is_url(path: str) -> bool:
    """True for ``scheme://`` locations (read through ``pyarrow.fs``), False for local paths."""
    return "://" in path


def open_parquet(path: str) -> pq.ParquetFile:
    """A ParquetFile over a local path or a ``scheme://`` URL that ``pyarrow.fs`` understands."""
    if is_url(path):
        from pyarrow import fs as pafs

        filesystem, inner = pafs.FileSystem.from_uri(path)
        return pq.ParquetFile(filesystem.open_input_file(inner))
    return pq.ParquetFile(path)
