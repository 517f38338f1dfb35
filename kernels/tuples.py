"""Tuples of records whose XOR has low weight: the search of homomorphism-based graph matching.

Diffusion (Armknecht, Heng & Schnell, PoPETs 2023) is a keyed *linear* map D over GF(2), so
``D(x1) ^ D(x2) ^ ... = D(x1 ^ x2 ^ ...)``: when the token sets of 2, 3 or 4 records cancel
up to a few tokens, the XOR of their Bloom filters is sparse and so is the XOR of their
diffused encodings. Armknecht & Schäfer ("Breaking BAD? Better Call SAUL!", PoPETs 2026) find
such tuples on both sides (plaintext token sets, encodings), build one relationship graph per
side from them and match the graphs (their Homomorphism-based Graph Matching Attack). These
kernels are the search, brute force over i < j < k < l (O(n^4 W) word operations; n is a
sample of a few hundred records):

    weight(T) = sum_w popcount( XOR_{r in T} x[r, w] ),   T a 2-, 3- or 4-subset of rows.

Filters are C-contiguous ``uint64`` arrays of shape (n, W). A tuple is written as four row
indices ``i < j < k < l`` with -1 for the unused places of a 2- or 3-tuple. Results do not
depend on the number of threads. Numpy references: :func:`tuple_counts_reference`,
:func:`lowest_weight_tuples_reference`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import popcount64

__all__ = [
    "KERNELS",
    "LANES",
    "lowest_weight_tuples",
    "lowest_weight_tuples_reference",
    "tuple_counts",
    "tuple_counts_reference",
]

LANES = 16  # fixed work split of lowest_weight_tuples (not the thread count: determinism)


def _check(x: Any, max_size: int) -> np.ndarray:
    x = np.ascontiguousarray(x)
    if x.dtype != np.uint64 or x.ndim != 2:
        raise ValueError(f"filters must be a 2-d uint64 array, got {x.dtype} {x.shape}")
    if max_size not in (2, 3, 4):
        raise ValueError(f"max_size must be 2, 3 or 4, got {max_size}")
    return x


def tuple_counts(
    x: np.ndarray, max_weight: int, max_size: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Which rows are in a low-weight tuple, and how many tuples there are.

    ``x``: (n, W) uint64. Returns ``member`` (n,) bool: row r belongs to at least one 2..
    ``max_size``-subset T with weight(T) <= ``max_weight``; and ``counts`` (3,) int64: the
    number of such subsets of size 2, 3 and 4 (0 beyond ``max_size``). ValueError for a
    non-uint64 or non-2-d ``x`` or a ``max_size`` outside 2..4."""
    x = _check(x, max_size)
    member, counts, _w, _t, _s = _scan(x, int(max_weight), 0, int(max_size))
    return member, counts.sum(axis=0)


@njit(cache=True, inline="always")
def _after(w1: int, t1: np.ndarray, w2: int, t2: np.ndarray) -> bool:
    """(w1, t1) > (w2, t2), lexicographic on (weight, i, j, k, l)."""
    if w1 != w2:
        return w1 > w2
    for c in range(4):
        if t1[c] != t2[c]:
            return t1[c] > t2[c]
    return False


@njit(cache=True, inline="always")
def _swap(hw: np.ndarray, ht: np.ndarray, a: int, b: int) -> None:
    tw = hw[a]
    hw[a] = hw[b]
    hw[b] = tw
    for q in range(4):
        tq = ht[a, q]
        ht[a, q] = ht[b, q]
        ht[b, q] = tq


@njit(cache=True)
def _sift_down(hw: np.ndarray, ht: np.ndarray, size: int) -> None:
    r = 0
    while True:
        c = 2 * r + 1
        if c >= size:
            return
        if c + 1 < size and _after(hw[c + 1], ht[c + 1], hw[c], ht[c]):
            c += 1
        if not _after(hw[c], ht[c], hw[r], ht[r]):
            return
        _swap(hw, ht, r, c)
        r = c


@njit(cache=True)
def _sift_up(hw: np.ndarray, ht: np.ndarray, c: int) -> None:
    while c > 0:
        p = (c - 1) // 2
        if not _after(hw[c], ht[c], hw[p], ht[p]):
            return
        _swap(hw, ht, p, c)
        c = p


@njit(cache=True)
def _offer(hw: np.ndarray, ht: np.ndarray, size: int, top: int, w: int,
           t0: int, t1: int, t2: int, t3: int) -> int:  # fmt: skip
    """Offer a tuple to a max-heap of the ``top`` smallest; returns the new size."""
    cand = np.empty(4, np.int64)
    cand[0] = t0
    cand[1] = t1
    cand[2] = t2
    cand[3] = t3
    if size < top:
        hw[size] = w
        ht[size, :] = cand
        _sift_up(hw, ht, size)
        return size + 1
    if not _after(hw[0], ht[0], w, cand):
        return size
    hw[0] = w
    ht[0, :] = cand
    _sift_down(hw, ht, size)
    return size


@njit(cache=True, inline="always")
def _found(lw: np.ndarray, lt: np.ndarray, size: int, top: int, cnt: np.ndarray,
           member: np.ndarray, s: int, i: int, j: int, k: int, m: int,
           bound: int) -> tuple[int, int]:  # fmt: skip
    """A tuple at or under the lane's ``bound``. Counting (``top`` == 0): count it by size and
    flag its rows; else offer it to the lane's heap, whose largest weight becomes the bound
    once it is full. Returns (the heap's size, the bound)."""
    if top > 0:
        size = _offer(lw, lt, size, top, s, i, j, k, m)
        return size, (lw[0] if size == top else bound)
    c = 0
    member[i] = True
    member[j] = True
    if k >= 0:
        member[k] = True
        c += 1
    if m >= 0:
        member[m] = True
        c += 1
    cnt[c] += 1
    return size, bound


@njit(cache=True, parallel=True)
def _scan(
    x: np.ndarray, max_weight: int, top: int, max_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every 2..``max_size``-subset i < j < k < l in lane ``i % LANES``: with ``top`` == 0,
    those of weight <= ``max_weight`` are counted per lane and size and their rows flagged;
    with ``top`` > 0, each lane keeps its ``top`` smallest by (weight, i, j, k, l) in a heap
    (once full, its largest weight is the bound). -> member, counts (LANES, 3), heap weights,
    heap tuples, heap sizes."""
    n, nw = x.shape
    keep = max(top, 1)
    hw = np.zeros((LANES, keep), np.int64)
    ht = np.full((LANES, keep, 4), -1, np.int64)
    sizes = np.zeros(LANES, np.int64)
    counts = np.zeros((LANES, 3), np.int64)
    member = np.zeros(n, np.bool_)
    for lane in prange(LANES):
        a = np.empty(nw, np.uint64)
        b = np.empty(nw, np.uint64)
        lw = hw[lane]
        lt = ht[lane]
        cnt = counts[lane]
        size = 0
        bound = max_weight
        for i in range(lane, n, LANES):
            for j in range(i + 1, n):
                s = np.int64(0)
                for w in range(nw):
                    a[w] = x[i, w] ^ x[j, w]
                    s += np.int64(popcount64(a[w]))
                    if max_size < 3 and s > bound:  # pairs only: the XOR is not reused
                        break
                if s <= bound:
                    size, bound = _found(lw, lt, size, top, cnt, member, s, i, j, -1, -1, bound)
                if max_size < 3:
                    continue
                for k in range(j + 1, n):
                    s = np.int64(0)
                    for w in range(nw):
                        b[w] = a[w] ^ x[k, w]
                        s += np.int64(popcount64(b[w]))
                    if s <= bound:
                        size, bound = _found(lw, lt, size, top, cnt, member, s, i, j, k, -1, bound)
                    if max_size < 4:
                        continue
                    for m in range(k + 1, n):
                        s = np.int64(0)
                        for w in range(nw):
                            s += np.int64(popcount64(b[w] ^ x[m, w]))
                            if s > bound:
                                break
                        if s <= bound:
                            size, bound = _found(
                                lw, lt, size, top, cnt, member, s, i, j, k, m, bound
                            )
        sizes[lane] = size
    return member, counts, hw, ht, sizes


def lowest_weight_tuples(
    x: np.ndarray, top: int, max_size: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` 2..``max_size``-subsets of rows with the smallest weight (the encoded side of
    the attack: it cannot know a threshold, so it takes as many tuples as the plaintext gave).

    Returns (tuples (m, 4) int64, rows ascending, -1 padded; weights (m,) int64), m = min(top,
    number of subsets), sorted by (weight, i, j, k, l); ties broken by that order, so the
    result is exactly the first ``top`` subsets in it. ValueError as :func:`tuple_counts`, or
    for ``top`` < 0."""
    x = _check(x, max_size)
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    if top == 0 or x.shape[0] < 2:
        return np.zeros((0, 4), np.int64), np.zeros(0, np.int64)
    _m, _c, hw, ht, sizes = _scan(x, 1 << 62, int(top), int(max_size))
    w = np.concatenate([hw[q, : sizes[q]] for q in range(LANES)])
    t = np.concatenate([ht[q, : sizes[q]] for q in range(LANES)])
    order = np.lexsort((t[:, 3], t[:, 2], t[:, 1], t[:, 0], w))[:top]
    return t[order], w[order]


def _subsets(n: int, max_size: int) -> list[tuple[int, ...]]:
    return [c for size in range(2, max_size + 1) for c in itertools.combinations(range(n), size)]


def _weight_ref(x: np.ndarray, c: tuple[int, ...]) -> int:
    acc = np.bitwise_xor.reduce(x[list(c)], axis=0)
    return int(np.bitwise_count(acc).sum())


def tuple_counts_reference(
    x: np.ndarray, max_weight: int, max_size: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy/itertools :func:`tuple_counts` (small n only)."""
    n = x.shape[0]
    member = np.zeros(n, bool)
    counts = np.zeros(3, np.int64)
    for c in _subsets(n, max_size):
        if _weight_ref(x, c) <= max_weight:
            counts[len(c) - 2] += 1
            member[list(c)] = True
    return member, counts


def lowest_weight_tuples_reference(
    x: np.ndarray, top: int, max_size: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy/itertools :func:`lowest_weight_tuples` (small n only)."""
    rows = []
    for c in _subsets(x.shape[0], max_size):
        rows.append((_weight_ref(x, c), *(list(c) + [-1] * (4 - len(c)))))
    rows.sort()
    rows = rows[:top]
    t = np.array([r[1:] for r in rows], np.int64).reshape(-1, 4)
    w = np.array([r[0] for r in rows], np.int64)
    return t, w


KERNELS: dict[str, Any] = {
    "tuple_scan": _scan,
}
