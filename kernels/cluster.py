"""Clustering and assignment kernels over a scored candidate-pair graph.

Notation: ``N`` records with global indices ``0..N-1``, party ``party[i]``; ``m`` candidate
edges ``(left[e], right[e])`` with similarity ``score[e]`` in ``[0, 1]``.

Kernels
-------
* :func:`greedy_cluster` -- greedy constrained union-find. Edges are visited in a fixed order
  (see :func:`greedy_edge_order`); edge ``e`` merges the clusters ``A`` of ``left[e]`` and ``B``
  of ``right[e]`` iff ``A != B`` and (``dedupe`` or ``mask(A) & mask(B) == 0``), where
  ``mask(C) = OR_{i in C} 2**party[i]``. For two parties this is greedy one-to-one assignment;
  for many parties every cluster holds at most one record per party; with ``dedupe`` it is
  single linkage in score order.
* :func:`greedy_edge_order` (numpy driver) with :func:`sort_score_ties` and
  :func:`rank_then_pair_order` -- the deterministic edge order
  ``(-score, min(left, right), max(left, right), e)`` without a 3-key lexsort.
* :func:`connected_components` -- plain union-find over a subset of edges.
* :func:`lsap_min` -- dense rectangular linear sum assignment (shortest augmenting paths,
  Crouse, IEEE TAES 2016; the algorithm behind ``scipy.optimize.linear_sum_assignment``).
* :func:`match_components` -- maximum-weight one-to-one matching of a bipartite sparse graph,
  component by component, with :func:`lsap_min` on each dense component matrix.

Labels are canonical: records get dense labels ``0..C-1`` in order of first appearance when
scanning records ``0..N-1``; equivalently clusters are numbered by their smallest record index.

Plain-Python references (:func:`greedy_cluster_reference`, :func:`connected_components_reference`,
:func:`max_weight_matching_reference`) live at the end of this module.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------
# union-find primitives
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _find(parent: np.ndarray, i: int) -> int:
    """Root of ``i`` with path halving: ``parent[i] <- parent[parent[i]]`` along the walk."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _dense_labels(parent: np.ndarray) -> np.ndarray:
    """Dense labels from a union-find forest.

    ``label[i] = |{ root(j) : j <= first(root(i)) }| - 1``: clusters numbered 0, 1, ... in order of
    their smallest record index.
    """
    n = parent.shape[0]
    labels = np.empty(n, dtype=np.int64)
    root_label = np.full(n, -1, dtype=np.int64)
    nxt = 0
    for i in range(n):
        r = _find(parent, i)
        lab = root_label[r]
        if lab < 0:
            lab = nxt
            root_label[r] = lab
            nxt += 1
        labels[i] = lab
    return labels


# --------------------------------------------------------------------------------------------
# greedy clustering
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def sort_score_ties(order: np.ndarray, score_sorted: np.ndarray, pairkey: np.ndarray) -> None:
    """In place: within each run of equal ``score_sorted``, put ``order`` in ``(pairkey[e], e)``
    ascending order.

    ``order`` lists the edges by descending score, ties in any order, and ``score_sorted`` is
    ``score[order]``; afterwards ``order`` is sorted by ``(-score[e], pairkey[e], e)``. Runs of up
    to 16 edges use insertion sort, longer ones a sort by ``e`` then a stable sort by key.
    Fast when runs are short (mostly distinct scores).
    """
    m = order.shape[0]
    a = 0
    while a < m:
        b = a + 1
        while b < m and score_sorted[b] == score_sorted[a]:
            b += 1
        if b - a > 16:
            run = np.sort(order[a:b])
            p = np.argsort(pairkey[run], kind="mergesort")
            order[a:b] = run[p]
        elif b - a > 1:
            for i in range(a + 1, b):
                e = order[i]
                k = pairkey[e]
                j = i - 1
                while j >= a and (
                    pairkey[order[j]] > k or (pairkey[order[j]] == k and order[j] > e)
                ):
                    order[j + 1] = order[j]
                    j -= 1
                order[j + 1] = e
        a = b


@njit(cache=True)
def rank_then_pair_order(
    pair_order: np.ndarray, pairkey: np.ndarray, rank: np.ndarray, n_ranks: int
) -> np.ndarray:
    """Edges sorted by ``(rank[e], pairkey[e], e)`` ascending.

    ``pair_order`` must list the edges by ``pairkey`` ascending, ties in any order. Runs of equal
    ``pairkey`` (duplicate edges) are first put in ascending ``e``; a stable counting sort on
    ``rank`` (values ``0..n_ranks-1``) then keeps that order within each rank: O(m + n_ranks).
    """
    m = pair_order.shape[0]
    po = pair_order.copy()
    a = 0
    while a < m:
        b = a + 1
        while b < m and pairkey[po[b]] == pairkey[po[a]]:
            b += 1
        if b - a > 1:
            po[a:b] = np.sort(po[a:b])
        a = b
    start = np.zeros(n_ranks + 1, dtype=np.int64)
    for k in range(m):
        start[rank[k] + 1] += 1
    for r in range(n_ranks):
        start[r + 1] += start[r]
    out = np.empty(m, dtype=np.int64)
    for k in range(m):
        e = po[k]
        r = rank[e]
        out[start[r]] = e
        start[r] += 1
    return out


def greedy_edge_order(
    left: np.ndarray, right: np.ndarray, score: np.ndarray, key: np.ndarray | None = None
) -> np.ndarray:
    """Edge visiting order for :func:`greedy_cluster` (numpy sorts + a tie-break kernel).

    Sort key, lexicographic: ``(-score[e], min(k[left[e]], k[right[e]]), max(...), e)`` with
    ``k = key`` (int64[N], distinct per record; default the record index), so the order is
    fully deterministic; it depends on the input order only among exact duplicate edges.
    A ``key`` that depends only on the records (e.g. a hash of their ids) makes ties, and so
    the clustering, independent of the order of the records. An unstable (SIMD) argsort
    by score, then ties are broken by
    :func:`sort_score_ties` when most scores are distinct, or else by a dense score rank and
    :func:`rank_then_pair_order` (argsort by packed pair, stable counting sort by rank).
    """
    m = score.shape[0]
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    if key is not None:
        left, right = key[left], key[right]
    lo = np.minimum(left, right)
    hi = np.maximum(left, right)
    if int(hi.max()) >= (1 << 32):
        return np.lexsort((hi, lo, -score)).astype(np.int64)
    pairkey = (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)
    so = np.argsort(-score).astype(np.int64)
    ss = score[so]
    rank_sorted = np.empty(m, dtype=np.int64)
    rank_sorted[0] = 0
    np.cumsum(ss[1:] != ss[:-1], out=rank_sorted[1:])
    n_ranks = int(rank_sorted[-1]) + 1
    if n_ranks * TIE_RUN_SWITCH >= m:
        sort_score_ties(so, ss, pairkey)
        return so
    rank = np.empty(m, dtype=np.int64)
    rank[so] = rank_sorted
    pair_order = np.argsort(pairkey).astype(np.int64)
    return rank_then_pair_order(pair_order, pairkey, rank, n_ranks)


TIE_RUN_SWITCH = 8
"""Mean run of tied scores above which :func:`greedy_edge_order` uses the counting-sort path."""


@njit(cache=True)
def greedy_cluster(
    left: np.ndarray, right: np.ndarray, party: np.ndarray, order: np.ndarray, dedupe: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy party-constrained clustering.

    For ``k = 0..m-1`` with ``e = order[k]``: let ``A = root(left[e])``, ``B = root(right[e])``.
    If ``A != B`` and (``mask[A] & mask[B] == 0`` or (``dedupe`` and the edge joins two
    records of one party)), merge ``A`` and ``B`` (``mask`` of the new root is
    ``mask[A] | mask[B]``) and set ``accepted[e] = True``. Initially ``mask[i] = 2**party[i]``
    (needs ``0 <= party < 64``). So with dedupe, duplicates join through their own
    within-party edge, while a cross-party edge still never puts a second record of a party
    into an entity (which would chain household members together).

    Returns ``(labels int64[N], accepted bool[m])`` with canonical dense labels. The accepted
    edges form a spanning forest of the clusters.
    """
    n = party.shape[0]
    m = order.shape[0]
    parent = np.arange(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    mask = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    for i in range(n):
        mask[i] = one << np.uint64(party[i])
    accepted = np.zeros(left.shape[0], dtype=np.bool_)
    for k in range(m):
        e = order[k]
        a = _find(parent, left[e])
        b = _find(parent, right[e])
        if a == b:
            continue
        if (mask[a] & mask[b]) != 0 and not (dedupe and party[left[e]] == party[right[e]]):
            continue
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        mask[a] |= mask[b]
        accepted[e] = True
    return _dense_labels(parent), accepted


@njit(cache=True)
def connected_components(
    left: np.ndarray, right: np.ndarray, use: np.ndarray, n: int
) -> np.ndarray:
    """Canonical dense labels of the connected components of ``({0..n-1}, {e : use[e]})``."""
    parent = np.arange(n, dtype=np.int64)
    for e in range(left.shape[0]):
        if use[e]:
            a = _find(parent, left[e])
            b = _find(parent, right[e])
            if a != b:
                if a < b:
                    parent[b] = a
                else:
                    parent[a] = b
    return _dense_labels(parent)


# --------------------------------------------------------------------------------------------
# optimal two-party matching
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def lsap_min(cost: np.ndarray) -> np.ndarray:
    """Rectangular linear sum assignment, minimising.

    For a finite ``cost`` of shape ``(r, c)`` with ``r <= c``, returns ``col4row`` (int64[r],
    distinct columns) minimising ``sum_i cost[i, col4row[i]]``. Shortest augmenting paths with
    dual variables ``u, v`` (Crouse 2016): one Dijkstra-like search per row, O(r * r * c) worst
    case. Ties between columns prefer an unassigned column, then the lowest remaining slot.
    """
    nr = cost.shape[0]
    nc = cost.shape[1]
    u = np.zeros(nr)
    v = np.zeros(nc)
    spc = np.empty(nc)
    path = np.full(nc, -1, dtype=np.int64)
    col4row = np.full(nr, -1, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    sr = np.zeros(nr, dtype=np.bool_)
    sc = np.zeros(nc, dtype=np.bool_)
    remaining = np.empty(nc, dtype=np.int64)
    inf = np.inf
    for cur in range(nr):
        min_val = 0.0
        i = cur
        num_rem = nc
        for it in range(nc):
            remaining[it] = nc - it - 1
        sr[:] = False
        sc[:] = False
        spc[:] = inf
        sink = -1
        while sink == -1:
            index = -1
            lowest = inf
            sr[i] = True
            for it in range(num_rem):
                j = remaining[it]
                r = min_val + cost[i, j] - u[i] - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            num_rem -= 1
            remaining[index] = remaining[num_rem]
        u[cur] += min_val
        for i2 in range(nr):
            if sr[i2] and i2 != cur:
                u[i2] += min_val - spc[col4row[i2]]
        for j2 in range(nc):
            if sc[j2]:
                v[j2] -= min_val - spc[j2]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur:
                break
    return col4row


@njit(cache=True)
def match_components(
    rec_a: np.ndarray,
    rec_b: np.ndarray,
    score: np.ndarray,
    local: np.ndarray,
    edge_start: np.ndarray,
    n_a: np.ndarray,
    n_b: np.ndarray,
    max_side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight one-to-one matching, one connected component at a time.

    Edges ``e`` join ``rec_a[e]`` (side A) and ``rec_b[e]`` (side B), weight ``score[e] > 0``,
    and are grouped by component: component ``k`` owns edges ``edge_start[k]:edge_start[k+1]``,
    has ``n_a[k]`` A-records and ``n_b[k]`` B-records, and ``local[i]`` is record ``i``'s row
    (or column) within its component. For each component with ``max(n_a, n_b) <= max_side`` we
    fill ``W[local a, local b] = max score`` (0 for non-edges), solve
    ``max sum W[i, s(i)]`` over injections ``s`` from the smaller side with :func:`lsap_min`
    on ``-W``, and accept the edge behind each assigned cell that is an edge. A full
    assignment of ``-W`` restricted to edges is a maximum-weight matching because every
    weight is positive and non-edges weigh 0.

    Returns ``(accepted bool[m], oversized bool[K])``, ``accepted`` indexed like the (grouped)
    input edge arrays; oversized components are left unsolved.
    """
    m = rec_a.shape[0]
    k_total = n_a.shape[0]
    accepted = np.zeros(m, dtype=np.bool_)
    oversized = np.zeros(k_total, dtype=np.bool_)
    for k in range(k_total):
        s = edge_start[k]
        t = edge_start[k + 1]
        if t == s:
            continue
        na = n_a[k]
        nb = n_b[k]
        if na > max_side or nb > max_side:
            oversized[k] = True
            continue
        if t - s == 1:
            accepted[s] = True
            continue
        transpose = na > nb
        nr = nb if transpose else na
        nc = na if transpose else nb
        w = np.zeros((nr, nc))
        idx = np.full((nr, nc), -1, dtype=np.int64)
        for e in range(s, t):
            r = local[rec_a[e]]
            c = local[rec_b[e]]
            if transpose:
                r, c = c, r
            if idx[r, c] < 0 or score[e] > w[r, c]:
                w[r, c] = score[e]
                idx[r, c] = e
        col4row = lsap_min(-w)
        for r in range(nr):
            e = idx[r, col4row[r]]
            if e >= 0:
                accepted[e] = True
    return accepted, oversized


# --------------------------------------------------------------------------------------------
# plain-Python references (slow, obviously correct; used by the tests)
# --------------------------------------------------------------------------------------------


def _canonical(clusters_of: list[int]) -> np.ndarray:
    """Dense relabel in order of first appearance."""
    seen: dict[int, int] = {}
    return np.array([seen.setdefault(c, len(seen)) for c in clusters_of], dtype=np.int64)


def greedy_cluster_reference(
    left: np.ndarray,
    right: np.ndarray,
    score: np.ndarray,
    party: np.ndarray,
    dedupe: bool,
    key: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference for ``greedy_cluster(..., greedy_edge_order(..., key), dedupe)`` with sets."""
    n = len(party)
    member: dict[int, set[int]] = {i: {i} for i in range(n)}  # cluster id -> records
    cluster_of = list(range(n))
    accepted = np.zeros(len(left), dtype=bool)
    k = np.arange(n) if key is None else np.asarray(key)
    edges = sorted(
        range(len(left)),
        key=lambda e: (
            -float(score[e]),
            min(k[left[e]], k[right[e]]),
            max(k[left[e]], k[right[e]]),
            e,
        ),
    )
    for e in edges:
        a, b = cluster_of[int(left[e])], cluster_of[int(right[e])]
        if a == b:
            continue
        pa = {int(party[i]) for i in member[a]}
        pb = {int(party[i]) for i in member[b]}
        within = int(party[int(left[e])]) == int(party[int(right[e])])
        if pa & pb and not (dedupe and within):
            continue
        for i in member[b]:
            cluster_of[i] = a
        member[a] |= member.pop(b)
        accepted[e] = True
    return _canonical(cluster_of), accepted


def connected_components_reference(
    left: np.ndarray, right: np.ndarray, use: np.ndarray, n: int
) -> np.ndarray:
    """Reference for :func:`connected_components` by repeated graph search."""
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b, u in zip(left, right, use, strict=True):
        if u:
            adj[int(a)].add(int(b))
            adj[int(b)].add(int(a))
    comp = [-1] * n
    for i in range(n):
        if comp[i] < 0:
            stack = [i]
            comp[i] = i
            while stack:
                x = stack.pop()
                for y in adj[x]:
                    if comp[y] < 0:
                        comp[y] = i
                        stack.append(y)
    return _canonical(comp)


def max_weight_matching_reference(left: np.ndarray, right: np.ndarray, score: np.ndarray) -> float:
    """Brute-force maximum total score of a set of edges with no shared endpoint (tiny graphs)."""
    edges = [(int(a), int(b), float(s)) for a, b, s in zip(left, right, score, strict=True)]

    def best(k: int, used: frozenset[int]) -> float:
        if k == len(edges):
            return 0.0
        a, b, s = edges[k]
        skip = best(k + 1, used)
        if a in used or b in used or a == b:
            return skip
        return max(skip, s + best(k + 1, used | {a, b}))

    return best(0, frozenset())
