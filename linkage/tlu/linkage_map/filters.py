"""The map's filter file: every stored record's filter by row id, memory-mapped for updates.

An update scores its new records against the current records that share a block key with
them (1.27M of 2M in bench_map); reading their filters out of DuckDB as BLOBs was most of
an update's time. The filter file ``<map>.filters`` beside the DuckDB file holds the same
filters as ``records.clk``, row ``rix`` at byte ``64 + rix * W * 8`` (W uint64 words,
little-endian), so an update reads exactly the rows it scores, from the page cache.

DuckDB stays the source of truth; the filter file is a cache that is checked and rebuilt:

- **Header** (64 bytes): magic ``LKMAPF01``, words (uint32), 4 reserved bytes, the map's id
  (16 bytes, also ``meta.map_id``), the version it is synced to (uint32), 4 reserved bytes,
  the digest at that version (16 bytes), 8 reserved bytes.
- **Digest**: a chain over versions, ``D_0 = 16 zero bytes``, ``D_v = BLAKE2b-128(D_{v-1} ||
  the bytes of the rows version v added, in rix order)`` (``D_v = D_{v-1}`` when version v
  added no rows); ``meta.filters_digest`` holds
  ``D`` of the map's current version, written in the update's transaction.
- **Trusted** only when the header's map id, words, version and digest equal the map's and
  the file holds every stored row; otherwise (missing, another map's, an older or newer
  copy, an update killed between its commit and the header write) it is **rebuilt** from
  ``records`` (written beside, renamed into place), and the rebuilt rows must reproduce the
  map's digest.
- **Crash safety**: an update writes its new rows past the stored ones (rows of a killed
  update are overwritten by the next), fsyncs, commits the DuckDB transaction, then writes
  the header. Killed anywhere, the DuckDB file is at one version, and the filter file
  either matches it or is rebuilt: never trusted while stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkage.errors import InputError
from linkage.tlu.linkage_map.records import filters_from_blobs
from linkage.tlu.linkage_map.store import (
    MapStore,
    append_durably,
    cut_back_on_failure,
    new_side_file,
    read_header,
)

MAGIC = b"LKMAPF01"
HEADER = 64
_LAYOUT = struct.Struct("<8sI4x16sI4x16s8x")  # 64 bytes
ZERO_DIGEST = bytes(16)
REBUILD_BATCH = 1 << 17  # rows per DuckDB batch while rebuilding


def filters_path(map_path: Path) -> Path:
    """``map.duckdb`` -> ``map.duckdb.filters``."""
    return map_path.with_name(map_path.name + ".filters")


def chain(prev: bytes, rows: np.ndarray) -> bytes:
    """``BLAKE2b-128(prev || bytes of rows)`` (rows: (n, W) uint64, little-endian)."""
    h = hashlib.blake2b(prev, digest_size=16)
    h.update(np.ascontiguousarray(rows, "<u8").data)
    return h.digest()


@dataclass
class Header:
    words: int
    map_id: bytes
    version: int
    digest: bytes

    def pack(self) -> bytes:
        return _LAYOUT.pack(MAGIC, self.words, self.map_id, self.version, self.digest)

    @classmethod
    def read(cls, path: Path) -> Header | None:
        raw = read_header(path, HEADER)
        if raw is None:
            return None
        magic, words, map_id, version, digest = _LAYOUT.unpack(raw)
        return cls(words, map_id, version, digest) if magic == MAGIC else None


class FilterFile:
    """The checked filter file of an open map (see the module docstring). ``array``: the
    stored rows ``(n, W)`` uint64, memory-mapped read-only (n = stored records)."""

    def __init__(self, store: MapStore) -> None:
        self.store = store
        self.path = filters_path(store.path)
        self.words = int(store.meta["filter_length"]) // 64
        self.rows = store.max_rix() + 1
        meta = store.meta
        self.map_id = bytes.fromhex(meta["map_id"]) if meta.get("map_id") else os.urandom(16)
        self.digest = bytes.fromhex(meta["filters_digest"]) if meta.get("filters_digest") else b""
        self.rebuilt = False
        if not self._trusted():
            self._rebuild()
        self.array = self._map()

    def meta(self) -> dict[str, str]:
        """What the map's ``meta`` must hold for this file (written with each version)."""
        return {"map_id": self.map_id.hex(), "filters_digest": self.digest.hex()}

    def _trusted(self) -> bool:
        h = Header.read(self.path)
        if h is None or not self.digest:
            return False
        size = self.path.stat().st_size
        return (
            h.words == self.words
            and h.map_id == self.map_id
            and h.version == self.store.version
            and h.digest == self.digest
            and size >= HEADER + self.rows * self.words * 8
        )

    def _map(self) -> np.ndarray:
        if self.rows == 0:
            return np.zeros((0, self.words), np.uint64)
        mm = np.memmap(self.path, np.uint64, "r", HEADER, (self.rows, self.words))
        return np.asarray(mm)

    def _rebuild(self) -> None:
        """Write every stored filter from ``records`` beside the file, then rename it in."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        digest, version, seen = ZERO_DIGEST, 0, 0
        h = hashlib.blake2b(digest, digest_size=16)
        try:
            with open(tmp, "wb") as f:
                os.chmod(tmp, 0o600)
                f.write(bytes(HEADER))
                reader = self.store.con.sql(
                    "SELECT rix, valid_from, clk FROM records ORDER BY rix"
                ).to_arrow_reader(REBUILD_BATCH)
                for batch in reader:
                    rix = batch.column(0).to_numpy()
                    if len(rix) and (rix != np.arange(seen, seen + len(rix))).any():
                        raise InputError(f"{self.store.path}: record row ids are not dense")
                    vf = batch.column(1).to_numpy()
                    rows = filters_from_blobs(batch.column(2), self.words)
                    cuts = np.flatnonzero(np.r_[True, vf[1:] != vf[:-1], True])
                    for lo, hi in itertools.pairwise(cuts.tolist()):
                        if int(vf[lo]) != version:  # a new version's rows begin
                            if version:
                                digest = h.digest()
                            h = hashlib.blake2b(digest, digest_size=16)
                            version = int(vf[lo])
                        h.update(np.ascontiguousarray(rows[lo:hi], "<u8").data)
                    f.write(np.ascontiguousarray(rows, "<u8").data)
                    seen += len(rix)
                digest = h.digest() if version else ZERO_DIGEST
                if self.digest and digest != self.digest:
                    raise InputError(
                        f"{self.store.path}: the stored filters do not match the map's digest "
                        "(meta.filters_digest): the map file may be damaged"
                    )
                self.digest = digest
                f.seek(0)
                f.write(Header(self.words, self.map_id, self.store.version, digest).pack())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.rebuilt = True

    def append(self, rows: np.ndarray) -> bytes:
        """Write the rows of the next version after the stored ones (durably); returns the
        digest the map will hold once that version commits."""
        rows = np.ascontiguousarray(rows, "<u8")
        if len(rows) == 0:  # a version that adds no rows leaves the digest as it was
            return self.digest
        append_durably(self.path, HEADER + self.rows * self.words * 8, [rows.data])
        return chain(self.digest, rows)

    @contextlib.contextmanager
    def uncommitted(self) -> Iterator[None]:
        """Around the transaction that commits appended rows: if it fails, the rows are cut
        off again (best effort: rows past the stored ones are unused in any case), so the file
        is byte for byte as it was."""
        with cut_back_on_failure(self.path, HEADER + self.rows * self.words * 8):
            yield

    def synced(self, version: int, digest: bytes) -> None:
        """After the commit: the header says the file matches ``version`` (durably)."""
        with open(self.path, "r+b") as f:
            f.write(Header(self.words, self.map_id, version, digest).pack())
            f.flush()
            os.fsync(f.fileno())


def write_filter_file(
    map_path: Path, parts: list[np.ndarray], map_id: bytes
) -> tuple[Path, Path, bytes]:
    """The filter file of a new map (version 1: ``parts`` in rix order), written durably to
    a temporary file beside its final path. Returns (temporary path, final path, digest D_1):
    the caller renames it into place once the map itself is in place (removed on error)."""
    path = filters_path(map_path)
    words = parts[0].shape[1] if parts else 0
    h = hashlib.blake2b(ZERO_DIGEST, digest_size=16)
    with new_side_file(path) as (f, tmp):
        f.write(bytes(HEADER))
        for p in parts:
            data = np.ascontiguousarray(p, "<u8").data
            h.update(data)
            f.write(data)
        digest = h.digest()
        f.seek(0)
        f.write(Header(words, map_id, 1, digest).pack())
    return tmp, path, digest
