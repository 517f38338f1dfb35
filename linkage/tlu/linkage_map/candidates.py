"""Scored candidate pairs that touch the new records of an update, with the match flow's own
kernels and rules (so the map's pair graph equals the one a full relink would score).

A full relink scores every pair that shares a block (``keys`` / ``lsh``) or every pair
(``none``); the pairs between two unchanged records are already stored, so an update only
scores (a) new records against current ones and (b) new records among themselves.

(a) with ``keys`` blocking: the current records that share a block key with a new one come
from a DuckDB semi-join on ``record_keys``; a sort-merge join gives the distinct (new,
current) pairs (a pair sharing several keys is scored once), scored by
:func:`linkage.kernels.dice.dice_pairs`; only those current records' filters are read.
With ``lsh``: :func:`linkage.tlu.blocking.score_blocks` over the
band keys of all records, with a two-valued "side" array as its party array, so the kernel
scores only new-vs-current pairs. With ``none``: the all-pairs kernel, new x current. The
real parties then apply match's rules: within one party only with dedupe, at
``dedupe_threshold``; across parties at ``threshold``. (b) is the match flow's candidate
generation over the new records alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

from linkage.kernels.dice import allpairs_dice, dice_pairs
from linkage.kernels.lsh import band_keys, choose_bands_rows, sample_positions
from linkage.kernels.popcount import popcount_rows
from linkage.tlu.blocking import exhaustive, score_blocks
from linkage.tlu.linkage_map.records import KeyArrays, filters_from_blobs
from linkage.tlu.linkage_map.store import MapStore


@dataclass
class NewSet:
    """The records an update stores: filters, party index, rix, block keys (owner = row)."""

    filters: np.ndarray  # (k, W) uint64
    pix: np.ndarray  # int64[k], grouped by party
    rix: np.ndarray  # int64[k]
    keys: KeyArrays | None


@dataclass
class Rules:
    threshold: float
    dedupe: bool
    dedupe_threshold: float | None
    max_block: int
    seed: int

    @property
    def low(self) -> float:
        if self.dedupe and self.dedupe_threshold is not None:
            return min(self.threshold, self.dedupe_threshold)
        return self.threshold

    def keep(self, same_party: np.ndarray, score: np.ndarray) -> np.ndarray:
        if not self.dedupe:
            return ~same_party & (score >= self.threshold)
        t_in = self.threshold if self.dedupe_threshold is None else self.dedupe_threshold
        return np.where(same_party, score >= t_in, score >= self.threshold)


def _lsh_positions(store: MapStore, filters: np.ndarray, rules: Rules) -> np.ndarray:
    length = filters.shape[1] * 64
    m = store.meta
    if "lsh_bands" in m:
        bands, rows = int(m["lsh_bands"]), int(m["lsh_rows"])
    else:
        fill = float(np.bitwise_count(filters).sum()) / max(1, filters.size * 64)
        bands, rows = choose_bands_rows(
            rules.threshold, 0.995, length, fill=min(max(fill, 0.05), 0.95)
        )
    return sample_positions(length, bands, rows, rules.seed)


def _band_key_arrays(filters: np.ndarray, pos: np.ndarray, parallel: bool) -> KeyArrays:
    bk = band_keys(filters, pos, parallel=parallel)
    n, bands = bk.shape
    return KeyArrays(bk.reshape(-1), np.repeat(np.arange(n, dtype=np.int64), bands))


def _old_records(
    store: MapStore, new: NewSet, retired: np.ndarray, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Current records the new ones may pair with: (rix, pix, filters) and, with ``keys``
    blocking, the distinct (new row, old row) pairs that share a block key."""
    words = new.filters.shape[1]
    ret = pa.table({"rix": pa.array(retired, pa.int64())})
    with store.temp("_retired", ret):
        if strategy == "keys":
            assert new.keys is not None
            nk = pa.table({"key": pa.array(_distinct(new.keys.keys))})
            with store.temp("_newkeys", nk):
                ck = store.arrow(
                    "SELECT k.key, k.rix FROM record_keys k SEMI JOIN _newkeys n ON k.key = n.key "
                    "ANTI JOIN _retired t ON k.rix = t.rix"
                )
            want = pa.table({"rix": pa.array(_distinct(ck.column("rix").to_numpy()))})
            with store.temp("_want", want):
                recs = store.arrow(
                    "SELECT rix, pix, clk FROM records WHERE valid_to IS NULL "
                    "AND rix IN (SELECT rix FROM _want)"
                )
        else:
            recs = store.arrow(
                "SELECT rix, pix, clk FROM records r WHERE valid_to IS NULL "
                "AND rix NOT IN (SELECT rix FROM _retired)"
            )
            ck = None
    # rows stay in fetch order (no sort in DuckDB, no second copy of the filters here)
    rix = recs.column("rix").to_numpy()
    pix = recs.column("pix").to_numpy().astype(np.int64)
    filters = filters_from_blobs(recs.column("clk"), words)
    pairs = None
    if ck is not None:
        pairs = _key_join(new.keys, ck.column("key").to_numpy(), ck.column("rix").to_numpy(), rix)
    return rix, pix, filters, pairs


def _distinct(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy 2's hash-based ``unique`` is slower here)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _key_join(
    new_keys: KeyArrays | None, old_keys: np.ndarray, old_key_rix: np.ndarray, rix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (new row, old row) pairs that share a block key (a sort-merge join)."""
    assert new_keys is not None
    by_rix = np.argsort(rix, kind="stable")
    old_row = by_rix[np.searchsorted(rix[by_rix], old_key_rix)]
    o = np.argsort(old_keys, kind="stable")
    ok, orow = old_keys[o], old_row[o]
    lo = np.searchsorted(ok, new_keys.keys, side="left")
    hi = np.searchsorted(ok, new_keys.keys, side="right")
    cnt = hi - lo
    i = np.repeat(new_keys.owner, cnt)
    starts = np.repeat(lo - np.cumsum(cnt) + cnt, cnt)
    j = orow[starts + np.arange(int(cnt.sum()), dtype=np.int64)]
    code = _distinct(i * np.int64(len(rix) + 1) + j)
    return code // (len(rix) + 1), code % (len(rix) + 1)


def new_pairs(
    store: MapStore,
    new: NewSet,
    retired: np.ndarray,
    strategy: str,
    rules: Rules,
    warn: Callable[[str], None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Pairs (a, b, score) with a < b (rix) touching a new record, and the number of current
    records they were scored against."""
    parallel = numba.get_num_threads() > 1
    k = len(new.rix)
    if k == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), 0
    old_rix, old_pix, old_f, key_pairs = _old_records(store, new, retired, strategy)
    m = len(old_rix)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pos = None
    if strategy == "lsh":
        pos = _lsh_positions(store, np.concatenate([old_f, new.filters]), rules)
    # (a) new vs current
    if m:
        if strategy == "none":
            i, j, s = allpairs_dice(new.filters, old_f, rules.low, parallel=parallel)
            a, b = new.rix[i], old_rix[j]
            same = new.pix[i] == old_pix[j]
        elif strategy == "keys":  # every pair sharing a key, as blocking scores it
            assert key_pairs is not None
            i, j = key_pairs
            s = dice_pairs(new.filters, old_f, i, j, parallel=parallel)
            a, b = new.rix[i], old_rix[j]
            same = new.pix[i] == old_pix[j]
        else:
            filters = np.ascontiguousarray(np.concatenate([old_f, new.filters]))
            side = np.r_[np.ones(m, np.int32), np.zeros(k, np.int32)]
            assert pos is not None
            bk = _band_key_arrays(filters, pos, parallel)
            keys, owner = bk.keys, bk.owner
            i, j, s, _ = score_blocks(
                keys,
                owner,
                filters,
                popcount_rows(filters),
                side,
                rules.low,
                False,
                parallel,
                rules.max_block,
                warn,
            )
            rix_all = np.concatenate([old_rix, new.rix])
            pix_all = np.concatenate([old_pix, new.pix])
            a, b = rix_all[i], rix_all[j]
            same = pix_all[i] == pix_all[j]
        keep = rules.keep(same, s)
        parts.append((a[keep], b[keep], s[keep]))
    # (b) new vs new, with the real parties
    if k > 1:
        if strategy == "none":
            bounds = np.flatnonzero(np.r_[True, new.pix[1:] != new.pix[:-1], True])
            i, j, s, _ = exhaustive(
                new.filters,
                bounds.astype(np.int64),
                rules.threshold,
                rules.dedupe,
                parallel,
                rules.dedupe_threshold if rules.dedupe else None,
            )
        else:
            if strategy == "keys":
                assert new.keys is not None
                keys, owner = new.keys.keys, new.keys.owner
            else:
                assert pos is not None
                bk = _band_key_arrays(new.filters, pos, parallel)
                keys, owner = bk.keys, bk.owner
            party = new.pix.astype(np.int32)
            i, j, s, _ = score_blocks(
                keys,
                owner,
                new.filters,
                popcount_rows(new.filters),
                party,
                rules.low,
                rules.dedupe,
                parallel,
                rules.max_block,
                warn,
            )
            keep = rules.keep(new.pix[i] == new.pix[j], s)
            i, j, s = i[keep], j[keep], s[keep]
        parts.append((new.rix[i], new.rix[j], s))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), m
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    s = np.concatenate([p[2] for p in parts])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo, hi, s, m
