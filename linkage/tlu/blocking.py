"""Candidate generation and scoring: which pairs of records are compared, and their scores.

Strategies (``blocking=``):

- ``none``: every cross-party pair (and every within-party pair with dedupe), scored by the
  all-pairs kernel with exact popcount pruning. Exact; fine up to a few hundred thousand
  records per side.
- ``keys``: records that share any partner block key (the keyed 64-bit ``block_keys``).
- ``lsh``: records that share a Hamming bit-sampling LSH band key; bands x rows are chosen
  from the threshold and a target recall by :func:`linkage.kernels.lsh.choose_bands_rows`;
  positions are drawn from the seed, so runs are deterministic. Bit sampling is selective at
  high thresholds (0.85+); at 0.7 on filters about 35% full it keeps a few percent of all
  pairs, so prefer ``keys`` when the files have block keys.
- ``auto``: ``none`` when the exhaustive comparison count is small, else ``keys`` when
  every file has block keys, else ``lsh``. The choice is reported.

A block larger than ``max_block`` records would explode into quadratic pairs: it is not
dropped but scored by the all-pairs kernel (which keeps only pairs at or above the
threshold), with a warning naming its size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from linkage.errors import LinkageError
from linkage.kernels.blocking import (
    dedupe_sorted_pairs,
    group_bounds,
    score_groups_parallel,
    score_groups_serial,
)
from linkage.kernels.dice import allpairs_dice, dedup_dice
from linkage.kernels.lsh import band_keys, choose_bands_rows, sample_positions

STRATEGIES = ("auto", "none", "keys", "lsh")
EXHAUSTIVE_LIMIT = 4e9  # comparisons: about 5-10 s of the all-pairs kernel on one core
DEFAULT_MAX_BLOCK = 5000
CHUNK_SLOTS = 8_000_000  # candidate slots scored per chunk (bounds memory)
SCORE_BINS = 100  # score histogram of the match statistics: bins of 0.01 on [0, 1]
SAMPLE_STRIDE = 64  # below the threshold the histogram counts every 64th scored slot (~1% time)

Warn = Callable[[str], None]


@dataclass
class Candidates:
    """Scored pairs at or above the threshold (global record indices, i < j)."""

    left: np.ndarray
    right: np.ndarray
    score: np.ndarray
    strategy: str
    compared: int  # candidate pairs scored (after de-duplication where known)
    possible: int  # pairs an exhaustive comparison would score
    detail: dict[str, object] = field(default_factory=dict)
    below: np.ndarray | None = None  # SCORE_BINS sampled counts (x SAMPLE_STRIDE) below threshold

    @property
    def reduction_ratio(self) -> float:
        return 1.0 - self.compared / self.possible if self.possible else 0.0

    def score_histogram(self) -> dict[str, object]:
        """Counts of candidate scores in SCORE_BINS bins on [0, 1] (never single scores):
        exact for the pairs kept (at or above the threshold), plus, where blocking scored
        them, an estimate for the pairs below it from every SAMPLE_STRIDE-th scored slot
        (times SAMPLE_STRIDE; pairs sharing several blocks count once per block there).
        ``scope`` says which: ``"all candidates"`` or ``"at or above the threshold"``."""
        counts, _ = np.histogram(self.score, bins=SCORE_BINS, range=(0.0, 1.0))
        scope = "at or above the threshold"
        if self.below is not None:
            counts = counts + self.below * SAMPLE_STRIDE
            scope = "all candidates"
        return {
            "edges": np.linspace(0.0, 1.0, SCORE_BINS + 1).tolist(),
            "counts": [int(c) for c in counts],
            "scope": scope,
            "sample_stride": SAMPLE_STRIDE if self.below is not None else 1,
        }


def possible_pairs(sizes: list[int], dedupe: bool) -> int:
    total = sum(sizes)
    cross = (total * total - sum(s * s for s in sizes)) // 2
    within = sum(s * (s - 1) // 2 for s in sizes) if dedupe else 0
    return cross + within


def choose_strategy(sizes: list[int], dedupe: bool, have_keys: bool) -> str:
    if possible_pairs(sizes, dedupe) <= EXHAUSTIVE_LIMIT:
        return "none"
    return "keys" if have_keys else "lsh"


def exhaustive(
    filters: np.ndarray,
    offsets: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
    dedupe_threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """All pairs >= threshold across parties (and within, >= dedupe_threshold, with dedupe)."""
    t_within = threshold if dedupe_threshold is None else dedupe_threshold
    parts_l, parts_r, parts_s = [], [], []
    np_ = len(offsets) - 1
    compared = 0
    for p in range(np_):
        a0, a1 = int(offsets[p]), int(offsets[p + 1])
        if dedupe and a1 - a0 > 1:
            r, c, s = dedup_dice(filters[a0:a1], t_within, parallel=parallel)
            parts_l.append(r + a0)
            parts_r.append(c + a0)
            parts_s.append(s)
            compared += (a1 - a0) * (a1 - a0 - 1) // 2
        for q in range(p + 1, np_):
            b0, b1 = int(offsets[q]), int(offsets[q + 1])
            if a1 == a0 or b1 == b0:
                continue
            r, c, s = allpairs_dice(filters[a0:a1], filters[b0:b1], threshold, parallel=parallel)
            parts_l.append(r + a0)
            parts_r.append(c + b0)
            parts_s.append(s)
            compared += (a1 - a0) * (b1 - b0)
    return _cat(parts_l, np.int64), _cat(parts_r, np.int64), _cat(parts_s, np.float64), compared


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def score_blocks(
    keys: np.ndarray,
    owners: np.ndarray,
    filters: np.ndarray,
    pop: np.ndarray,
    party: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
    max_block: int,
    warn: Warn,
    below: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Score all pairs of records sharing a key; keep pairs >= threshold, de-duplicated.

    ``keys[k]`` is a block key held by record ``owners[k]``. ``below`` (int64[SCORE_BINS]):
    adds the bin counts of every SAMPLE_STRIDE-th scored slot under the threshold.
    """
    order = np.lexsort((owners, keys))
    skeys = keys[order]
    members = np.ascontiguousarray(owners[order], dtype=np.int64)
    bounds = group_bounds(skeys)
    starts, ends = bounds[:-1], bounds[1:]
    sizes = ends - starts
    multi = sizes > 1
    big = multi & (sizes > max_block)
    small = multi & ~big
    stats = {"blocks": len(sizes), "blocks_scored": int(small.sum()), "oversize_blocks": 0}
    parts_l, parts_r, parts_s = [], [], []
    s_starts, s_ends = starts[small], ends[small]
    slots = (sizes[small] * (sizes[small] - 1)) // 2
    kernel = score_groups_parallel if parallel else score_groups_serial
    compared = 0
    g = 0
    while g < len(s_starts):
        # a chunk of whole groups with at most CHUNK_SLOTS slots (at least one group)
        cum = np.cumsum(slots[g:])
        stop = g + max(1, int(np.searchsorted(cum, CHUNK_SLOTS, side="right")))
        c_slots = slots[g:stop]
        off = np.zeros(len(c_slots), np.int64)
        np.cumsum(c_slots[:-1], out=off[1:])
        total = int(c_slots.sum())
        oi = np.empty(total, np.int64)
        oj = np.empty(total, np.int64)
        os_ = np.empty(total, np.float64)
        kernel(
            s_starts[g:stop], s_ends[g:stop], off, members, party, filters, pop, dedupe, oi, oj, os_
        )
        compared += int((os_ >= 0).sum())
        if below is not None:
            sampled = os_[::SAMPLE_STRIDE]
            sampled = sampled[(sampled >= 0) & (sampled < threshold)]
            below += np.histogram(sampled, bins=SCORE_BINS, range=(0.0, 1.0))[0]
        keep = os_ >= threshold
        parts_l.append(oi[keep])
        parts_r.append(oj[keep])
        parts_s.append(os_[keep])
        g = stop
    big_idx = np.flatnonzero(big)
    if len(big_idx):
        warn(
            f"{len(big_idx)} block(s) exceed --max-block {max_block} (largest "
            f"{int(sizes[big_idx].max())} records); they are scored with the all-pairs kernel, "
            "not dropped"
        )
    for gi in big_idx:
        idx = members[starts[gi] : ends[gi]]
        stats["oversize_blocks"] += 1
        l_, r_, s_, c_ = _allpairs_subset(idx, filters, party, threshold, dedupe, parallel)
        parts_l.append(l_)
        parts_r.append(r_)
        parts_s.append(s_)
        compared += c_
    left = _cat(parts_l, np.int64)
    right = _cat(parts_r, np.int64)
    score = _cat(parts_s, np.float64)
    if len(left):
        o = np.lexsort((right, left))
        left, right, score = left[o], right[o], score[o]
        keep = dedupe_sorted_pairs(left, right)
        left, right, score = left[keep], right[keep], score[keep]
    stats["compared_with_repeats"] = compared
    return left, right, score, stats


def _allpairs_subset(
    idx: np.ndarray,
    filters: np.ndarray,
    party: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    idx = np.unique(idx)
    sub_party = party[idx]
    order = np.argsort(sub_party, kind="stable")
    idx = idx[order]
    sub_party = sub_party[order]
    _parties, starts = np.unique(sub_party, return_index=True)
    offsets = np.append(starts, len(idx)).astype(np.int64)
    sub = np.ascontiguousarray(filters[idx])
    l_, r_, s_, c_ = exhaustive(sub, offsets, threshold, dedupe, parallel)
    a, b = idx[l_], idx[r_]
    return np.minimum(a, b), np.maximum(a, b), s_, c_


def bands_rows(threshold: float, target_recall: float, length: int, fill: float) -> tuple[int, int]:
    """LSH (bands, rows) for the threshold (:func:`linkage.kernels.lsh.choose_bands_rows`);
    raises :class:`LinkageError` naming the option when no setting reaches the recall."""
    try:
        return choose_bands_rows(threshold, target_recall, length, fill=fill)
    except ValueError as exc:
        raise LinkageError(f"--blocking lsh at --threshold {threshold}: {exc}") from None


def lsh_keys(
    filters: np.ndarray,
    threshold: float,
    seed: int,
    target_recall: float,
    parallel: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(keys, owners) of every record's LSH band keys."""
    length = filters.shape[1] * 64
    fill = float(np.bitwise_count(filters).sum()) / max(1, filters.size * 64)
    fill = min(max(fill, 0.05), 0.95)
    bands, rows = bands_rows(threshold, target_recall, length, fill)
    pos = sample_positions(length, bands, rows, seed)
    bk = band_keys(filters, pos, parallel=parallel)  # (n, bands)
    n = filters.shape[0]
    keys = bk.reshape(-1)
    owners = np.repeat(np.arange(n, dtype=np.int64), bands)
    return keys, owners, {"bands": bands, "rows": rows, "fill": round(fill, 3)}


def generate(
    filters: np.ndarray,
    offsets: np.ndarray,
    party: np.ndarray,
    pop: np.ndarray,
    threshold: float,
    *,
    strategy: str,
    dedupe: bool,
    block_keys: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
    parallel: bool,
    max_block: int = DEFAULT_MAX_BLOCK,
    target_recall: float = 0.995,
    dedupe_threshold: float | None = None,
    warn: Warn,
) -> Candidates:
    """Scored pairs >= threshold between parties and, with dedupe, >= dedupe_threshold
    (default: threshold) within a party."""
    sizes = [int(offsets[p + 1] - offsets[p]) for p in range(len(offsets) - 1)]
    possible = possible_pairs(sizes, dedupe)
    if strategy == "auto":
        strategy = choose_strategy(sizes, dedupe, block_keys is not None)
    t0 = time.perf_counter()
    if strategy == "none":
        left, right, score, compared = exhaustive(
            filters, offsets, threshold, dedupe, parallel, dedupe_threshold
        )
        detail: dict[str, object] = {}
    elif strategy in ("keys", "lsh"):
        if strategy == "keys":
            if block_keys is None:
                raise LinkageError(
                    "--blocking keys needs block keys in every file (the schema defines none); "
                    "use --blocking lsh"
                )
            keys, owners = block_keys
            detail = {}
        else:
            keys, owners, detail = lsh_keys(filters, threshold, seed, target_recall, parallel)
        t_low = threshold
        if dedupe and dedupe_threshold is not None:
            t_low = min(threshold, dedupe_threshold)
        below = np.zeros(SCORE_BINS, np.int64)
        left, right, score, stats = score_blocks(
            keys, owners, filters, pop, party, t_low, dedupe, parallel, max_block, warn, below
        )
        detail.update(stats)
        compared = int(stats["compared_with_repeats"])
        if dedupe and dedupe_threshold is not None and dedupe_threshold != threshold:
            within = party[left] == party[right]
            keep = np.where(within, score >= dedupe_threshold, score >= threshold)
            left, right, score = left[keep], right[keep], score[keep]
    else:
        raise LinkageError(f"unknown blocking {strategy!r} (choose {', '.join(STRATEGIES)})")
    detail["seconds"] = round(time.perf_counter() - t0, 3)
    return Candidates(
        left, right, score, strategy, min(compared, possible), possible, detail,
        below=below if strategy in ("keys", "lsh") else None,
    )  # fmt: skip
