"""The map's block-key index: every stored record's block keys with its rix, sorted by key.

An update needs the current records that share a block key with its new ones (2M (new,
current) pairs in bench_map). DuckDB's join of the new keys with ``record_keys`` scans all
8M stored keys (0.14 s with DuckDB's buffers warm, 0.26-0.35 s of CPU from a freshly opened
map); a binary search of the new keys in the sorted stored keys, and a sort of the pairs by
rix (so the filter file is read nearly in file order), take about 0.1 s. The index file
``<map>.keys`` beside the DuckDB file holds those sorted keys, memory-mapped.

DuckDB's ``record_keys`` stays the source of truth; the index is a checked cache, kept like
the filter file (:mod:`.filters`):

- **Layout**: a 256-byte header (magic ``LKMAPK01``, the map's id (``meta.map_id``), the
  token of the map version it is synced to, the number of segments, then each segment's end
  as a cumulative entry count, uint64, at most :data:`MAX_SEGMENTS`), then the segments:
  a segment of n entries starting at entry e holds its n keys (uint64, little-endian) at
  byte ``256 + 16 e``, sorted, then their n rix (int64). ``map create`` (and a rebuild)
  write one segment; each update appends one with its new records' keys.
- **Token**: ``meta.keys_token``, 16 random bytes written in every update's transaction
  (and by ``map create``): a copy of the index from another version or another history of
  the map never has the map's token.
- **Trusted** only when the header's map id and token are the map's and the file holds
  every segment; otherwise (missing, another map's, a copy from another version, an update
  killed between its commit and the header write, a map made before the index) it is
  **rebuilt** from ``record_keys`` (written beside, renamed into place; about 1 s per 8M
  keys).
- **Retired records** keep their entries until the next rebuild (an update's own lookup
  drops every record that is not current, as it dropped retiring ones from the join). An
  update that finds :data:`MAX_SEGMENTS` segments rebuilds the index after its commit.
- **Crash safety**: an update writes its segment past the stored ones and fsyncs, commits
  the DuckDB transaction (with a new token), then writes the header. Killed before the
  commit, the entries past the stored segments are unused (the next update overwrites
  them); killed after it, the header's token is not the map's, and the next update
  rebuilds the index: never trusted while stale.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkage.tlu.linkage_map.store import (
    MapStore,
    append_durably,
    cut_back_on_failure,
    new_side_file,
    put_side_file,
    read_header,
)

MAGIC = b"LKMAPK01"
HEADER = 256
SLOTS = 24  # segment ends the header holds
MAX_SEGMENTS = SLOTS  # segments before a rebuild: two years of monthly updates
_LAYOUT = struct.Struct(f"<8s16s16sI4x{SLOTS}Q")  # 240 bytes, zero-padded to 256


def keys_path(map_path: Path) -> Path:
    """``map.duckdb`` -> ``map.duckdb.keys``."""
    return map_path.with_name(map_path.name + ".keys")


@dataclass
class KeyHeader:
    map_id: bytes
    token: bytes
    ends: list[int]  # cumulative entry counts, one per segment

    def pack(self) -> bytes:
        ends = self.ends + [0] * (SLOTS - len(self.ends))
        raw = _LAYOUT.pack(MAGIC, self.map_id, self.token, len(self.ends), *ends)
        return raw.ljust(HEADER, b"\0")

    @classmethod
    def read(cls, path: Path) -> KeyHeader | None:
        raw = read_header(path, HEADER)
        if raw is None:
            return None
        magic, map_id, token, n, *ends = _LAYOUT.unpack(raw[: _LAYOUT.size])
        if magic != MAGIC or n > SLOTS:
            return None
        ends = list(ends[:n])
        if any(b < a for a, b in zip([0, *ends], ends, strict=False)):
            return None
        return cls(map_id, token, ends)


def _segment(keys: np.ndarray, rix: np.ndarray) -> tuple[memoryview, memoryview]:
    """The bytes of one segment: keys sorted, then their rix."""
    order = np.argsort(keys)
    return (
        np.ascontiguousarray(keys[order], "<u8").data,
        np.ascontiguousarray(rix[order], "<i8").data,
    )


def write_key_index(map_path: Path, map_id: bytes, token: bytes, keys: np.ndarray,
                    rix: np.ndarray) -> tuple[Path, Path]:  # fmt: skip
    """The index of ``(keys, rix)`` as one segment, written durably to a temporary file
    beside its final path. Returns (temporary path, final path): the caller renames it into
    place (removed here on error)."""
    path = keys_path(map_path)
    with new_side_file(path) as (f, tmp):
        f.write(KeyHeader(map_id, token, [len(keys)]).pack())
        for part in _segment(keys, rix):
            f.write(part)
    return tmp, path


class KeyIndex:
    """The checked block-key index of an open map (see the module docstring)."""

    def __init__(self, store: MapStore, map_id: bytes) -> None:
        self.store = store
        self.path = keys_path(store.path)
        self.map_id = map_id
        token = store.meta.get("keys_token")
        self.token = bytes.fromhex(token) if token else b""
        self.rebuilt = False
        h = KeyHeader.read(self.path)
        if h is None or not self._trusted(h):
            self._rebuild(self.token or bytes(16))  # no token yet: trusted after a commit
            h = KeyHeader.read(self.path)
            assert h is not None
        self.ends = h.ends
        self._next: list[int] | None = None  # segment ends once the pending segment commits

    @property
    def entries(self) -> int:
        return self.ends[-1] if self.ends else 0

    def _trusted(self, h: KeyHeader) -> bool:
        end = HEADER + 16 * (h.ends[-1] if h.ends else 0)
        return (
            bool(self.token)
            and h.map_id == self.map_id
            and h.token == self.token
            and self.path.stat().st_size >= end
        )

    def _rebuild(self, token: bytes) -> None:
        t = self.store.arrow("SELECT key, rix FROM record_keys")
        keys = t.column("key").to_numpy().astype(np.uint64, copy=False)
        rix = t.column("rix").to_numpy().astype(np.int64, copy=False)
        tmp, path = write_key_index(self.store.path, self.map_id, token, keys, rix)
        put_side_file(tmp, path)
        self.rebuilt = True

    def pairs(self, keys: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(owner[k], rix)`` for every stored entry whose key equals ``keys[k]``, in rix
        order (owner: int64 >= 0). A pair comes once per shared key; retired records
        included (the caller drops them)."""
        z = np.zeros(0, np.int64)
        if not self.entries or not len(keys):
            return z, z
        body = np.memmap(self.path, "<u8", "r", HEADER, (2 * self.entries,))
        order = np.argsort(keys)
        k, own = keys[order], owner[order]  # sorted needles: each search starts nearer
        parts_i, parts_r = [], []
        start = 0
        for end in self.ends:
            n = end - start
            seg_keys = body[2 * start : 2 * start + n]
            seg_rix = body[2 * start + n : 2 * end].view(np.int64)
            lo = np.searchsorted(seg_keys, k, "left")
            cnt = np.searchsorted(seg_keys, k, "right") - lo
            hit = np.flatnonzero(cnt)
            if len(hit):
                lo, cnt = lo[hit], cnt[hit]
                first = np.cumsum(cnt) - cnt
                idx = np.arange(int(first[-1] + cnt[-1]), dtype=np.int64)
                idx += np.repeat(lo - first, cnt)
                parts_r.append(np.asarray(seg_rix[idx]))
                parts_i.append(np.repeat(own[hit], cnt))
            start = end
        if not parts_r:
            return z, z
        i, r = np.concatenate(parts_i), np.concatenate(parts_r)
        shift = max(int(owner.max()).bit_length(), 1)
        if int(r.max()) < (1 << (63 - shift)):  # one sort of packed (rix, owner) codes
            code = (r << shift) | i
            code.sort()
            return code & ((1 << shift) - 1), code >> shift
        o = np.lexsort((i, r))
        return i[o], r[o]

    def append(self, keys: np.ndarray, rix: np.ndarray) -> None:
        """Write the next version's entries as a segment past the stored ones (durably);
        the header names it once :meth:`synced` runs after the commit. With every segment
        used, nothing is written: :meth:`synced` rebuilds the index instead."""
        if len(self.ends) >= MAX_SEGMENTS:
            self._next = None
            return
        if not len(keys):
            self._next = list(self.ends)
            return
        append_durably(self.path, HEADER + 16 * self.entries, _segment(keys, rix))
        self._next = [*self.ends, self.entries + len(keys)]

    @contextlib.contextmanager
    def uncommitted(self) -> Iterator[None]:
        """Around the transaction that commits an appended segment: if it fails, the segment
        is cut off again (best effort: entries past the stored segments are unused)."""
        with cut_back_on_failure(self.path, HEADER + 16 * self.entries):
            yield

    def synced(self, token: bytes) -> None:
        """After the commit that wrote ``token`` to ``meta.keys_token``: the header names the
        appended segment and the token (durably), or the index is rebuilt when its segments
        were used up."""
        if self._next is None:
            self._rebuild(token)
            return
        with open(self.path, "r+b") as f:
            f.write(KeyHeader(self.map_id, token, self._next).pack())
            f.flush()
            os.fsync(f.fileno())
        self.ends, self.token = self._next, token
