"""Block scoring with a small per-record cap: each record's ``k`` best candidates kept in a
bounded list inside the scoring kernel (:mod:`linkage.kernels.topk`).

:func:`linkage.tlu.blocking.score_blocks` writes every scored slot to a buffer and gathers the
pairs at or above the threshold in a :class:`~linkage.tlu.blocking.PairPool`, which caps them
by sorting all held pairs, again each time the pool doubles. Under field-aware scoring the
candidate threshold is low (Dice 0.5) and the coarse block keys (Soundex of the names,
postcode district + initial, surname + year of birth) grow quadratically with the job: at
400k people 34M slots kept 8.5M pairs, and at the 1.6M-person region the pool's sorts never
finished. Here every record keeps its ``k`` best partners as it goes, so memory is
``chunks x records x k`` entries and no slot or pair buffer exists; the pairs kept are exactly
those the pool would keep with the same ``k`` (best by score, then the partner's rank; a pair
stays when either of its records keeps it).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from linkage.kernels.blocking import group_bounds
from linkage.kernels.topk import (
    SCRATCH,
    emit_pairs,
    merge_topk,
    topk_groups_parallel,
    topk_groups_serial,
)

__all__ = ["TOPK_MAX", "topk_blocks"]

TOPK_MAX = 32
"""Caps up to this use :func:`topk_blocks` (lists of ``k`` entries per record and chunk);
larger caps keep the pair pool, whose memory follows the pairs instead."""


def topk_blocks(
    keys: np.ndarray,
    owners: np.ndarray,
    filters: np.ndarray,
    pop: np.ndarray,
    party: np.ndarray,
    rank: np.ndarray,
    *,
    t_cross: float,
    t_within: float,
    dedupe: bool,
    k: int,
    parallel: bool,
    max_block: int,
    warn: Callable[[str], None],
    below: np.ndarray,
    stride: int,
    scratch: int = SCRATCH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int], int]:
    """Pairs of records sharing a key (``keys[e]`` held by ``owners[e]``) scoring at least
    ``t_cross`` across parties (``t_within`` inside one, with ``dedupe``), each record
    keeping its ``k`` best: (left, right, score sorted by (left, right), stats, records
    that had more than ``k``). ``below`` (int64[bins]) gains the sampled histogram of the
    scores under the threshold (every ``stride``-th slot). Blocks over ``max_block``
    records are scored whole (named in a warning); a block whose member set repeats one
    already scored (LSH bands) is skipped. ``scratch``: the kernel's block size for
    scoring each pair once (tests make it small; the results do not depend on it)."""
    n = filters.shape[0]
    order = np.lexsort((owners, keys))
    members = np.ascontiguousarray(owners[order], dtype=np.int64)
    bounds = group_bounds(keys[order])
    starts, ends = bounds[:-1], bounds[1:]
    sizes = ends - starts
    use = sizes > 1
    stats = {"blocks": len(sizes), "blocks_scored": 0, "oversize_blocks": 0}
    big = np.flatnonzero(use & (sizes > max_block))
    if len(big):
        warn(
            f"{len(big)} block(s) exceed --max-block {max_block} (largest "
            f"{int(sizes[big].max())} records); they are scored whole, each record keeping "
            f"its {k} best candidates"
        )
        seen: set[bytes] = set()
        for g in big:
            stats["oversize_blocks"] += 1
            digest = np.unique(members[starts[g] : ends[g]]).tobytes()
            if digest in seen:  # the same records as a block scored already (LSH bands)
                use[g] = False
                stats["oversize_repeats_skipped"] = stats.get("oversize_repeats_skipped", 0) + 1
            seen.add(digest)
    starts = np.ascontiguousarray(starts[use])
    ends = np.ascontiguousarray(ends[use])
    stats["blocks_scored"] = len(starts)
    chunks = _chunk_bounds(ends - starts, numba.get_num_threads() if parallel else 1)
    c = len(chunks) - 1
    idx = np.int32 if n < 2**31 else np.int64
    hj = np.zeros((c, n, k), idx)
    hs = np.zeros((c, n, k), np.float64)
    small = n == 0 or (rank.min() >= -(2**31) and rank.max() < 2**31)
    hr = np.zeros((c, n, k), np.int32 if small else np.int64)
    cnt = np.zeros((c, n), np.int64)
    worst = np.zeros((c, n), np.int64)
    over = np.zeros((c, n), np.bool_)
    compared = np.zeros(c, np.int64)
    hist = np.zeros((c, len(below)), np.int64)
    kernel = topk_groups_parallel if parallel and c > 1 else topk_groups_serial
    kernel(
        starts, ends, chunks, members, party, filters, pop, rank, dedupe,
        float(t_cross), float(t_within), stride,
        np.linspace(0.0, 1.0, len(below) + 1), scratch, hj, hs, hr, cnt, worst, over, compared,
        hist,
    )  # fmt: skip
    del members
    if c > 1:
        merge_topk(hj, hs, hr, cnt, worst, over)
    left, right, score = emit_pairs(hj, hs, cnt)
    below += hist.sum(0)
    stats["compared_with_repeats"] = int(compared.sum())
    return left, right, score, stats, int(over[0].sum())


def _chunk_bounds(sizes: np.ndarray, chunks: int) -> np.ndarray:
    """int64[C+1] group boundaries splitting groups into at most ``chunks`` contiguous runs
    of about equal pair slots."""
    if chunks <= 1 or len(sizes) == 0:
        return np.array([0, len(sizes)], np.int64)
    cum = np.cumsum(sizes * (sizes - 1) // 2)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, chunks) / chunks, side="right")
    return np.unique(np.r_[0, cuts, len(sizes)]).astype(np.int64)
