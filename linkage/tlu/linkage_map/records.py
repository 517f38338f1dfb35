"""Encoded records as the map stores them: rows for ``records`` and ``record_keys``, digests.

A record's digest is BLAKE2b-128 (RFC 7693) of its filter bytes followed by its block keys
(little-endian uint64): two versions of a record with the same id are "the same" exactly
when their digests are equal (a changed filter or changed block keys is a change).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.encoded import EncodedTable, filters_to_arrow

DIGEST_BATCH = 1 << 18  # records hashed per kernel call (about 40 MB of messages)
SMALL_DIGESTS = 20_000  # up to this many records, hashlib (no numba start-up: see digests)


@dataclass
class KeyArrays:
    """Block keys of ``n`` records: ``keys[k]`` belongs to record ``owner[k]`` (0..n-1)."""

    keys: np.ndarray  # uint64
    owner: np.ndarray  # int64


def block_keys(enc: EncodedTable) -> KeyArrays | None:
    """The table's block keys, or None when it has none."""
    if not enc.has_block_keys:
        return None
    col = enc.table.column("block_keys").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    lens = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    return KeyArrays(flat, np.repeat(np.arange(len(enc), dtype=np.int64), lens))


def digests(enc: EncodedTable, *, parallel: bool | None = None) -> np.ndarray:
    """BLAKE2b-128 of (filter bytes, block keys) per record: ``S16`` array of length n.

    The message of a record is its filter's bytes followed by its block keys as
    little-endian uint64 (none without block keys); hashed in one batch by
    :func:`linkage.kernels.blake2b.blake2b_batch` (equal to ``hashlib.blake2b(message,
    digest_size=16)``), in slices of :data:`DIGEST_BATCH` records to bound memory. Up to
    :data:`SMALL_DIGESTS` records (a monthly delta) with ``hashlib`` itself, the same
    digests: a process's first numba call costs about half a second of numba's own start-up,
    more than hashing them one by one, and :func:`.update.map_update` runs that start-up
    beside its DuckDB queries instead."""
    n = len(enc)
    if n == 0:
        return np.zeros(0, dtype="S16")
    f = np.ascontiguousarray(enc.filters).view("<u8")
    w = f.shape[1]
    if enc.has_block_keys:
        col = enc.table.column("block_keys").combine_chunks()
        flat = col.flatten().to_numpy(zero_copy_only=False).astype("<u8", copy=False)
        koffs = col.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        koffs = koffs - koffs[0]
    else:
        flat = np.zeros(0, "<u8")
        koffs = np.zeros(n + 1, np.int64)
    out = np.empty((n, 16), np.uint8)
    for lo in range(0, n, DIGEST_BATCH):
        hi = min(n, lo + DIGEST_BATCH)
        cnt = np.diff(koffs[lo : hi + 1])
        offs = np.zeros(hi - lo + 1, np.int64)
        np.cumsum(w + cnt, out=offs[1:])
        msg = np.empty(int(offs[-1]), "<u8")
        starts = offs[:-1]
        msg[(starts[:, None] + np.arange(w)).reshape(-1)] = f[lo:hi].reshape(-1)
        k = flat[koffs[lo] : koffs[hi]]
        if len(k):
            msg[np.arange(len(k)) + np.repeat(starts + w - (koffs[lo:hi] - koffs[lo]), cnt)] = k
        if hi - lo <= SMALL_DIGESTS:
            raw = memoryview(msg.tobytes())
            b = (offs * 8).tolist()
            out[lo:hi] = np.frombuffer(
                b"".join(
                    hashlib.blake2b(raw[b[j] : b[j + 1]], digest_size=16).digest()
                    for j in range(hi - lo)
                ),
                np.uint8,
            ).reshape(-1, 16)
        else:  # numba only here: an update's diff must not wait for numba's import
            import numba

            from linkage.kernels.blake2b import blake2b_batch

            if parallel is None:
                parallel = numba.get_num_threads() > 1
            out[lo:hi] = blake2b_batch(msg, offs, 16, parallel=parallel)
    return out.reshape(-1).view("S16")


def record_rows(
    enc: EncodedTable,
    rows: np.ndarray,
    rix: np.ndarray,
    pix: int,
    digest: np.ndarray,
    version: int,
) -> pa.Table:
    """``records`` rows for ``enc``'s rows ``rows`` (int64), given their rix and digests."""
    idx = pa.array(rows)
    clk = filters_to_arrow(enc.filters[rows]).cast(pa.binary())
    n = len(rows)
    return pa.table(
        {
            "rix": pa.array(rix, pa.int64()),
            "pix": pa.array(np.full(n, pix, np.int16)),
            "record_id": pc.take(enc.record_ids, idx),
            "clk": clk,
            "digest": pa.array(digest[rows].astype(object), pa.binary()),
            "valid_from": pa.array(np.full(n, version, np.int32)),
            "valid_to": pa.nulls(n, pa.int32()),
        }
    )


def key_rows(keys: KeyArrays | None, rows: np.ndarray, rix: np.ndarray) -> pa.Table:
    """``record_keys`` rows of the records ``rows`` (their rix given)."""
    if keys is None or len(rows) == 0:
        return pa.table({"key": pa.array([], pa.uint64()), "rix": pa.array([], pa.int64())})
    lookup = np.full(int(keys.owner.max(initial=-1)) + 1, -1, np.int64)
    lookup[rows] = rix
    sel = lookup[keys.owner] >= 0
    return pa.table({"key": pa.array(keys.keys[sel]), "rix": pa.array(lookup[keys.owner[sel]])})


def filters_from_blobs(col: pa.Array | pa.ChunkedArray, words: int) -> np.ndarray:
    """A BLOB column of equal-length filters -> (n, words) uint64 (one copy at most)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(col)
    if n == 0:
        return np.zeros((0, words), np.uint64)
    if col.type != pa.binary():
        col = col.cast(pa.binary())
    offs = np.frombuffer(col.buffers()[1], np.int32, count=n + 1, offset=col.offset * 4)
    data = np.frombuffer(col.buffers()[2], np.uint8)[offs[0] : offs[-1]]
    if not (np.diff(offs) == words * 8).all():  # pragma: no cover - the store writes fixed sizes
        raise ValueError("stored filters have unequal lengths")
    return np.ascontiguousarray(data).view(np.uint64).reshape(n, words)
