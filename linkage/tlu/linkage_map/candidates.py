"""Scored candidate pairs that touch the new records of an update, with the match flow's own
kernels and rules (so the map's pair graph equals the one a full relink would score).

A full relink scores every pair that shares a block (``keys`` / ``lsh``) or every pair
(``none``); the pairs between two unchanged records are already stored, so an update only
scores (a) new records against current ones and (b) new records among themselves.

(a) with ``keys`` blocking: the (new, current) pairs that share a block key come from the
map's block-key index (:mod:`.keyindex`: a binary search of the new keys in the sorted stored
ones), in rix order, and
:func:`linkage.kernels.dice_stored.dice_stored` scores them against the stored filters by rix
(the memory-mapped filter file, :mod:`.filters`: only the rows scored are read, nearly in
file order); a pair that shares several keys comes once per key, so the pairs kept are
deduplicated (a sort of the few kept pair codes).
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

import numpy as np
import pyarrow as pa

from linkage.tlu.blocking import exhaustive, score_blocks
from linkage.tlu.linkage_map.keyindex import KeyIndex
from linkage.tlu.linkage_map.records import KeyArrays
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
    from linkage.kernels.lsh import choose_bands_rows, sample_positions

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
    from linkage.kernels.lsh import band_keys

    bk = band_keys(filters, pos, parallel=parallel)
    n, bands = bk.shape
    return KeyArrays(bk.reshape(-1), np.repeat(np.arange(n, dtype=np.int64), bands))


def _key_pairs(
    store: MapStore, new: NewSet, node_pix: np.ndarray, index: KeyIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(new row, rix) of each new record and current one that share a block key, retiring
    records dropped; a pair sharing several keys comes once per key. From the map's key
    ``index`` (in rix order), or without one from a DuckDB join of the new keys with
    ``record_keys`` (in the join's order: nearly rix order; the reference the index is
    tested against)."""
    assert new.keys is not None
    if index is not None:
        i, r = index.pairs(new.keys.keys, new.keys.owner)
    else:
        nk = pa.table({"key": pa.array(new.keys.keys), "nrow": pa.array(new.keys.owner)})
        with store.temp("_newkeys", nk):
            kj = store.arrow(
                "SELECT n.nrow, k.rix FROM record_keys k JOIN _newkeys n ON k.key = n.key"
            )
        i, r = kj.column("nrow").to_numpy(), kj.column("rix").to_numpy()
    live = node_pix[r] >= 0  # not retiring in this update
    return i[live], r[live]


def new_pairs(
    store: MapStore,
    new: NewSet,
    node_pix: np.ndarray,
    stored: np.ndarray,
    strategy: str,
    rules: Rules,
    warn: Callable[[str], None],
    index: KeyIndex | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Pairs (a, b, score) with a < b (rix) touching a new record, and the number of current
    records they were scored against. ``node_pix``: party index by rix after the update
    (-1: not current, retiring included); ``stored``: the stored filters by rix (the map's
    filter file, :mod:`.filters`); ``index``: the map's block-key index (:mod:`.keyindex`)."""
    k = len(new.rix)
    if k == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), 0
    keyed = _key_pairs(store, new, node_pix, index) if strategy == "keys" else None
    # numba and the kernels only from here: the update imports them on its start-up thread
    # meanwhile (.startup), beside the DuckDB work above
    import numba

    from linkage.kernels.dice import allpairs_dice
    from linkage.kernels.dice_stored import dice_stored
    from linkage.kernels.popcount import popcount_rows

    parallel = numba.get_num_threads() > 1
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if keyed is not None:  # every pair sharing a key, as blocking scores it
        i, r = keyed
        m = int(np.count_nonzero(np.bincount(r))) if len(r) else 0
        if len(r):
            s = dice_stored(new.filters, stored, i, r, parallel=parallel)
            keep = rules.keep(new.pix[i] == node_pix[r], s)
            # each pair once (it came once per shared key), in (new row, rix) order
            n = np.int64(len(node_pix))
            code, first = np.unique(i[keep] * n + r[keep], return_index=True)
            parts.append((new.rix[code // n], code % n, s[keep][first]))
        old_rix = old_pix = old_f = None
    else:
        old_rix = np.flatnonzero(node_pix[: len(stored)] >= 0)
        old_pix = node_pix[old_rix]
        old_f = stored[old_rix]
        m = len(old_rix)
    pos = None
    if strategy == "lsh":
        assert old_f is not None
        pos = _lsh_positions(store, np.concatenate([old_f, new.filters]), rules)
    # (a) new vs current (keys: above)
    if m and strategy != "keys":
        assert old_rix is not None and old_pix is not None and old_f is not None
        if strategy == "none":
            i, j, s = allpairs_dice(new.filters, old_f, rules.low, parallel=parallel)
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
