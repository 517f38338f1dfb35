"""Coherent (greedy average-linkage) clustering of a scored candidate-pair graph.

Notation: ``N`` records, party ``party[i]`` in ``0..P-1``; ``m`` candidate edges
``(lo[e], hi[e])`` with match probability ``prob[e]`` in ``[0, 1]``, visited in the given
``order`` (a permutation of ``0..m-1``). Visiting edge ``e`` with ``prob[e] >= threshold``
merges the clusters ``A`` of ``lo[e]`` and ``B`` of ``hi[e]`` iff ``A != B``, (without
``one_to_one``, or no party holds records in both) and::

    sum_{edges f between A and B} prob[f]  >=  threshold * |A| * |B|

(the mean probability over all record pairs across the two clusters, a pair without an edge
counting 0: Sokal & Michener 1958; Hassanzadeh et al., PVLDB 2009). The sum is gathered at
merge time from the edges of the smaller cluster's records (CSR adjacency), so the cost per
visited edge is the smaller cluster's degree. Probabilities and the threshold are summed in
fixed point (units of 2^-32, int64), so a sum does not depend on the order of its terms and
the clusters do not depend on the order of the records. Returns each record's root
(int64[N]). Reference: :func:`coherent_roots_reference` (a dict of cluster-pair sums, merged
as clusters merge).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["KERNELS", "coherent_roots", "coherent_roots_reference", "fixed_point"]

SCALE = 2.0**32


def fixed_point(x: Any) -> Any:
    """int64 units of 2^-32 (rounded) of probabilities in [0, 1]."""
    return np.round(np.asarray(x, np.float64) * SCALE).astype(np.int64)


@njit(cache=True)
def _find(root: Any, x: int) -> int:
    while root[x] != x:
        root[x] = root[root[x]]
        x = root[x]
    return x


@njit(cache=True)
def _coherent_roots(
    n: int,
    lo: Any,
    hi: Any,
    prob: Any,
    order: Any,
    party: Any,
    n_parties: int,
    threshold: int,
    one_to_one: bool,
) -> Any:
    m = lo.shape[0]
    # CSR adjacency: each edge listed at both records
    deg = np.zeros(n + 1, np.int64)
    for e in range(m):
        deg[lo[e] + 1] += 1
        deg[hi[e] + 1] += 1
    for i in range(n):
        deg[i + 1] += deg[i]
    fill = deg[:-1].copy()
    nbr = np.empty(2 * m, np.int64)
    pw = np.empty(2 * m, np.int64)
    for e in range(m):
        a, b = lo[e], hi[e]
        nbr[fill[a]] = b
        pw[fill[a]] = prob[e]
        fill[a] += 1
        if a != b:
            nbr[fill[b]] = a
            pw[fill[b]] = prob[e]
            fill[b] += 1
    root = np.arange(n)
    size = np.ones(n, np.int64)
    nxt = np.full(n, -1, np.int64)  # members of a cluster: a list from its root
    last = np.arange(n)
    seen = np.zeros(max(n_parties, 1), np.bool_)
    for k in range(m):
        e = order[k]
        if not prob[e] >= threshold:
            continue
        a = _find(root, lo[e])
        b = _find(root, hi[e])
        if a == b:
            continue
        if size[a] < size[b]:
            a, b = b, a
        if one_to_one:
            clash = False
            x = b
            while x >= 0:
                seen[party[x]] = True
                x = nxt[x]
            x = a
            while x >= 0:
                if seen[party[x]]:
                    clash = True
                x = nxt[x]
            x = b
            while x >= 0:
                seen[party[x]] = False
                x = nxt[x]
            if clash:
                continue
        total = 0
        x = b  # the smaller cluster's records and their edges into a
        while x >= 0:
            for j in range(deg[x], fill[x]):
                y = nbr[j]
                if y != x and _find(root, y) == a:
                    total += pw[j]
            x = nxt[x]
        if float(total) < float(threshold) * float(size[a]) * float(size[b]):
            continue
        root[b] = a
        size[a] += size[b]
        nxt[last[a]] = b
        last[a] = last[b]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = _find(root, i)
    return out


def coherent_roots(
    n: int,
    lo: np.ndarray,
    hi: np.ndarray,
    prob: np.ndarray,
    order: np.ndarray,
    party: np.ndarray,
    threshold: float,
    one_to_one: bool,
) -> np.ndarray:
    """Root record of each record's cluster (int64[n]) after visiting the edges ``lo[e] <=
    hi[e]`` (int64[m], record indices) in ``order``; see the module docstring. Raises
    ValueError on mismatched shapes or indices out of range."""
    lo = np.ascontiguousarray(lo, np.int64)
    hi = np.ascontiguousarray(hi, np.int64)
    prob = np.ascontiguousarray(fixed_point(prob), np.int64)
    order = np.ascontiguousarray(order, np.int64)
    party = np.ascontiguousarray(party, np.int64)
    if not (lo.shape == hi.shape == prob.shape == order.shape) or lo.ndim != 1:
        raise ValueError("lo, hi, prob and order must be 1-d of equal length")
    if party.shape != (n,):
        raise ValueError("party must have one entry per record")
    if len(lo) and (min(lo.min(), hi.min()) < 0 or max(lo.max(), hi.max()) >= n):
        raise ValueError("record index out of range")
    if n and party.min() < 0:
        raise ValueError("party must be >= 0")
    n_parties = int(party.max()) + 1 if n else 0
    thr = int(fixed_point(threshold))
    return np.asarray(_coherent_roots(n, lo, hi, prob, order, party, n_parties, thr, one_to_one))


def coherent_roots_reference(
    n: int,
    lo: np.ndarray,
    hi: np.ndarray,
    prob: np.ndarray,
    order: np.ndarray,
    party: np.ndarray,
    threshold: float,
    one_to_one: bool,
) -> np.ndarray:
    """Plain-Python reference of :func:`coherent_roots`: cluster-pair sums kept in dicts and
    merged as clusters merge; roots compared up to relabelling."""
    fp = [int(v) for v in fixed_point(prob)]
    thr = int(fixed_point(threshold))
    links: dict[int, dict[int, int]] = {}
    for e in range(len(lo)):
        a, b = int(lo[e]), int(hi[e])
        if a == b:
            continue
        links.setdefault(a, {})[b] = links.get(a, {}).get(b, 0) + fp[e]
        links.setdefault(b, {})[a] = links.get(b, {}).get(a, 0) + fp[e]
    root = list(range(n))
    size = [1] * n
    parties = [{int(p)} for p in party]

    def find(x: int) -> int:
        while root[x] != x:
            x = root[x]
        return x

    for e in order:
        if not fp[e] >= thr:
            continue
        a, b = find(int(lo[e])), find(int(hi[e]))
        if a == b or (one_to_one and parties[a] & parties[b]):
            continue
        if float(links.get(a, {}).get(b, 0)) < float(thr) * float(size[a]) * float(size[b]):
            continue
        if size[a] < size[b]:
            a, b = b, a
        root[b] = a
        size[a] += size[b]
        parties[a] |= parties[b]
        la, lb = links.setdefault(a, {}), links.pop(b, {})
        la.pop(b, None)
        for c, s in lb.items():
            if c == a:
                continue
            la[c] = la.get(c, 0) + s
            lc = links[c]
            lc[a] = lc.get(a, 0.0) + lc.pop(b)
    return np.array([find(i) for i in range(n)], np.int64)


KERNELS: dict[str, Any] = {"coherent_roots": _coherent_roots}
