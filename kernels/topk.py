"""Per-record top-k candidates of blocked records: a bounded heap per record, no pair buffers.

Blocks are runs ``members[starts[g]:ends[g]]`` of global record indices (as in
:mod:`linkage.kernels.blocking`). Every member pair (i, j) of a block is scored by Dice; a pair
at or above its threshold (``t_cross`` between parties, ``t_within`` inside one party, only
with ``dedupe``) is offered to the candidate lists of both records. Each record keeps its
``k`` best distinct partners: higher score first, then lower ``rank`` of the partner (a
distinct order per record, so ties do not depend on row order). A pair found again in
another block is offered again and recognised (repeats are few: 2.5% of the slots at 400k
people with the uk-person keys). A pair kept by either of its
records is a candidate: exactly the pairs a cap of all scored pairs would keep, while memory
is ``chunks x n x k`` entries however many pairs the blocks hold.

Parallel runs split the blocks into ``chunks`` contiguous runs, each with its own lists
(``hj``, ``hs``, ``cnt`` with a leading chunk axis); :func:`merge_topk` merges them into
chunk 0 (the ``k`` best of a union of per-chunk ``k`` best lists are the ``k`` best overall).
:func:`emit_pairs` writes the candidate pairs, left < right, sorted by (left, right).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import popcount64, serial_and_parallel

__all__ = [
    "KERNELS",
    "SCRATCH",
    "emit_pairs",
    "merge_topk",
    "topk_groups_parallel",
    "topk_groups_serial",
]


@njit(cache=True, nogil=True)
def _beats(s1: float, r1: int, s2: float, r2: int) -> bool:
    """(s1, r1) ranks before (s2, r2): higher score, then lower rank."""
    return s1 > s2 or (s1 == s2 and r1 < r2)


@njit(cache=True, nogil=True, inline="always")
def _holds(hj: np.ndarray, c: int, i: int, m: int, j: int) -> bool:
    """Partner j is among the first m entries of record i's list in chunk c."""
    for t in range(m):  # noqa: SIM110 - a generator does not compile in numba's nopython mode
        if hj[c, i, t] == j:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _put(hj: np.ndarray, hs: np.ndarray, hr: np.ndarray, c: int, i: int, t: int, j: int,
         s: float, r: int) -> None:  # fmt: skip
    hj[c, i, t] = j
    hs[c, i, t] = s
    hr[c, i, t] = r


@njit(cache=True, nogil=True)
def _offer(
    hj: np.ndarray,
    hs: np.ndarray,
    hr: np.ndarray,
    cnt: np.ndarray,
    worst: np.ndarray,
    c: int,
    i: int,
    j: int,
    s: float,
    r: int,
) -> bool:
    """Offer partner j (score s, rank r) to record i's list in chunk c, which keeps the k
    best distinct partners; True when a distinct partner was left out (the list overflowed).
    The partners' ranks are kept in the list (``hr``): comparisons never reach ``rank``."""
    k = hj.shape[2]
    m = cnt[c, i]
    if m < k:
        if _holds(hj, c, i, m, j):
            return False
        _put(hj, hs, hr, c, i, m, j, s, r)
        cnt[c, i] = m + 1
        w = worst[c, i]
        if m == 0 or not _beats(s, r, hs[c, i, w], hr[c, i, w]):
            worst[c, i] = m
        return False
    w = worst[c, i]
    if not _beats(s, r, hs[c, i, w], hr[c, i, w]):
        return hj[c, i, w] != j  # equal to the worst entry: the same pair again
    if _holds(hj, c, i, k, j):
        return False
    _put(hj, hs, hr, c, i, w, j, s, r)
    w = 0
    for t in range(1, k):
        if _beats(hs[c, i, w], hr[c, i, w], hs[c, i, t], hr[c, i, t]):
            w = t
    worst[c, i] = w
    return True


@njit(cache=True, nogil=True)
def _bin(x: float, edges: np.ndarray) -> int:
    """The bin of x in ``np.histogram(..., bins=edges)`` for equal bins from 0 to 1."""
    b = edges.shape[0] - 1
    i = min(int(x * b), b - 1)
    if x < edges[i]:
        i -= 1
    elif i < b - 1 and x >= edges[i + 1]:
        i += 1
    return i


@njit(cache=True, nogil=True)
def _inter(filters: np.ndarray, i: int, j: int) -> int:
    """Bits set in both filters i and j."""
    x = 0
    for t in range(filters.shape[1]):
        x += popcount64(filters[i, t] & filters[j, t])
    return x


SCRATCH = 512
"""Blocks of up to this many records are scored once into a per-chunk matrix of
intersection counts and read back row by row; larger ones score each pair twice."""


def _topk_groups_body(
    starts: np.ndarray,
    ends: np.ndarray,
    chunk_bounds: np.ndarray,
    members: np.ndarray,
    party: np.ndarray,
    filters: np.ndarray,
    pop: np.ndarray,
    rank: np.ndarray,
    dedupe: bool,
    t_cross: float,
    t_within: float,
    stride: int,
    edges: np.ndarray,
    scratch: int,
    hj: np.ndarray,
    hs: np.ndarray,
    hr: np.ndarray,
    cnt: np.ndarray,
    worst: np.ndarray,
    over: np.ndarray,
    compared: np.ndarray,
    below: np.ndarray,
) -> None:
    """Chunk c scores groups ``chunk_bounds[c] .. chunk_bounds[c+1]-1`` into its lists.

    ``hj`` int (C, n, k) partners, ``hs`` float64 (C, n, k) scores, ``hr`` int (C, n, k)
    their ranks, ``cnt`` / ``worst``
    int64 (C, n) zeroed; ``over`` bool (C, n) False: set where a list overflowed (the record
    had more than k candidates in the chunk); ``compared`` int64[C]: pairs scored;
    ``below`` int64 (C, B): a
    histogram (bin ``edges`` float64[B+1] from 0 to 1, as ``np.histogram``) of every
    ``stride``-th pair slot (slots numbered over all groups in
    order) scoring under min(t_cross, t_within). Self pairs and, unless ``dedupe``,
    same-party pairs are not scored (their slots still count). ``scratch``: blocks of up to
    this many members are scored once (:data:`SCRATCH`; the results do not depend on it).

    A block is taken row by row: member a is offered every other member and only a's list
    is written, so the list stays in cache for the row (offering each pair to both records
    touched a random list per pair); the score of a full list's worst entry (``floor``)
    turns most offers away without reading the list. The intersection counts of a block of
    up to ``scratch`` members are computed once (upper triangle, mirrored)."""
    n_chunks = chunk_bounds.shape[0] - 1
    k = hj.shape[2]
    t_low = min(t_cross, t_within) if dedupe else t_cross
    for c in prange(n_chunks):
        xs = np.zeros((scratch, scratch), np.int64)
        g0 = chunk_bounds[c]
        q = 0  # the slot number of the group's first pair
        for g in range(g0):
            s_ = ends[g] - starts[g]
            q += s_ * (s_ - 1) // 2
        done = 0
        for g in range(g0, chunk_bounds[c + 1]):
            lo = starts[g]
            s_ = ends[g] - lo
            kept = s_ <= scratch
            for a in range(s_):  # the upper triangle: counts, histogram of low scores
                i = members[lo + a]
                for b in range(a + 1, s_):
                    j = members[lo + b]
                    if i == j or (party[j] == party[i] and not dedupe):
                        continue
                    x = _inter(filters, i, j)
                    done += 1
                    if kept:
                        xs[a, b] = x
                        xs[b, a] = x
                    den = pop[i] + pop[j]
                    sc = 0.0 if den == 0 else 2.0 * x / den
                    if sc < t_low:
                        slot = q + a * s_ - a * (a + 1) // 2 + (b - a - 1)
                        if slot % stride == 0:
                            below[c, _bin(sc, edges)] += 1
            q += s_ * (s_ - 1) // 2
            for a in range(s_):  # row by row: offers to a's list
                i = members[lo + a]
                pi = party[i]
                floor = hs[c, i, worst[c, i]] if cnt[c, i] == k else -1.0
                for b in range(s_):
                    j = members[lo + b]
                    same = party[j] == pi
                    if b == a or i == j or (same and not dedupe):
                        continue
                    x = xs[a, b] if kept else _inter(filters, i, j)
                    den = pop[i] + pop[j]
                    sc = 0.0 if den == 0 else 2.0 * x / den
                    if sc < (t_within if same else t_cross):
                        continue
                    if sc < floor:
                        over[c, i] = True  # j cannot be listed: every entry scores more
                        continue
                    if _offer(hj, hs, hr, cnt, worst, c, i, j, sc, rank[j]):
                        over[c, i] = True
                    if cnt[c, i] == k:
                        floor = hs[c, i, worst[c, i]]
        compared[c] = done


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
topk_groups_serial, topk_groups_parallel = serial_and_parallel(_topk_groups_body, nogil=True)


@njit(cache=True, nogil=True, parallel=True)
def merge_topk(
    hj: np.ndarray,
    hs: np.ndarray,
    hr: np.ndarray,
    cnt: np.ndarray,
    worst: np.ndarray,
    over: np.ndarray,
) -> None:
    """Merge every chunk's lists into chunk 0's (in place): the k best distinct partners;
    ``over[0]`` marks every record whose lists overflowed in any chunk or in the merge."""
    n_chunks, n, _ = hj.shape
    for i in prange(n):
        for c in range(1, n_chunks):
            if over[c, i]:
                over[0, i] = True
            for t in range(cnt[c, i]):
                if _offer(hj, hs, hr, cnt, worst, 0, i, hj[c, i, t], hs[c, i, t], hr[c, i, t]):
                    over[0, i] = True


@njit(cache=True, nogil=True)
def emit_pairs(
    hj: np.ndarray, hs: np.ndarray, cnt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, score) of every pair in chunk 0's lists, once, left < right, sorted by
    (left, right). Every list entry is put in its pair's left row; each row is sorted by
    right (insertion sort when short) and a pair both records list is written once."""
    n = hj.shape[1]
    per = np.zeros(n + 1, np.int64)
    for i in range(n):
        for t in range(cnt[0, i]):
            per[min(i, hj[0, i, t]) + 1] += 1
    for i in range(n):
        per[i + 1] += per[i]
    m = per[n]
    right = np.empty(m, np.int64)
    score = np.empty(m, np.float64)
    fill = per[:n].copy()
    for i in range(n):
        for t in range(cnt[0, i]):
            j = hj[0, i, t]
            a, b = (i, j) if i < j else (j, i)
            p = fill[a]
            right[p] = b
            score[p] = hs[0, i, t]
            fill[a] = p + 1
    left = np.empty(m, np.int64)
    out = 0
    for a in range(n):
        lo, hi = per[a], per[a + 1]
        if hi - lo > 24:
            o = np.argsort(right[lo:hi], kind="mergesort")
            right[lo:hi] = right[lo:hi][o]
            score[lo:hi] = score[lo:hi][o]
        else:
            for p in range(lo + 1, hi):
                r_, s_ = right[p], score[p]
                q = p - 1
                while q >= lo and right[q] > r_:
                    right[q + 1] = right[q]
                    score[q + 1] = score[q]
                    q -= 1
                right[q + 1] = r_
                score[q + 1] = s_
        prev = -1
        for p in range(lo, hi):  # out <= p: compacted in place
            if right[p] != prev:
                prev = right[p]
                left[out] = a
                right[out] = prev
                score[out] = score[p]
                out += 1
    return left[:out].copy(), right[:out].copy(), score[:out].copy()


KERNELS: dict[str, Any] = {
    "topk_groups_serial": topk_groups_serial,
    "topk_groups_parallel": topk_groups_parallel,
    "merge_topk": merge_topk,
    "emit_pairs": emit_pairs,
}
