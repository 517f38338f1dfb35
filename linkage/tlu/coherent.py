"""Coherent clustering: a record joins an entity only if it agrees with the entity as a whole.

Greedy average linkage (Sokal & Michener 1958; for record linkage: Hassanzadeh et al.,
"Framework for evaluating clustering algorithms in duplicate detection", PVLDB 2009): edges
are visited by descending match weight; the clusters of an edge merge when the mean match
probability over *all* record pairs across the two clusters (a pair without a candidate edge
counts 0) reaches ``threshold``. One weak edge cannot chain two people together: a record
must be likely to match most of an entity's records, not one of them.

Records of one party may share an entity (duplicates within a party are linked when the
evidence supports it). With ``one_to_one`` (two parties' classic one-to-one linkage, and its
many-party form), two clusters holding a common party never merge. The merging runs in a
numba kernel (:func:`linkage.kernels.coherent.coherent_roots`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from linkage.kernels.coherent import coherent_roots

__all__ = ["coherent_clusters"]


def coherent_clusters(
    left: NDArray[np.int64],
    right: NDArray[np.int64],
    prob: NDArray[np.float64],
    weight: NDArray[np.float64],
    party: NDArray[np.int64],
    *,
    threshold: float = 0.5,
    one_to_one: bool = False,
    rank: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Entity label per record (int64[N], numbered by each entity's smallest record rank).

    ``left``, ``right``: record indices of candidate pairs (int[m]); ``prob``: their match
    probabilities in [0, 1]; ``weight``: the order of visiting (descending; ties by smaller
    record indices), usually the match weight; ``party``: int[N]. Pairs with ``prob <
    threshold`` never start a merge but count towards the mean. ``rank`` (int64[N],
    distinct; default the record index; :func:`linkage.tlu.solver.record_rank`) breaks ties
    and numbers entities, so the result depends on the records and pairs, not their order."""
    n = len(party)
    lft = np.asarray(left, np.int64)
    rgt = np.asarray(right, np.int64)
    rk = np.arange(n, dtype=np.int64) if rank is None else np.asarray(rank, np.int64)
    lo, hi = np.minimum(lft, rgt), np.maximum(lft, rgt)
    pr = np.asarray(prob, np.float64)
    rl, rh = rk[lo], rk[hi]
    order = np.lexsort((np.maximum(rl, rh), np.minimum(rl, rh), -np.asarray(weight, np.float64)))
    roots = coherent_roots(n, lo, hi, pr, order, np.asarray(party, np.int64), threshold, one_to_one)
    # number entities by their smallest record rank
    best = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(best, roots, rk)
    used = np.flatnonzero(best != np.iinfo(np.int64).max)
    label_of_root = np.empty(n, np.int64)
    label_of_root[used[np.argsort(best[used], kind="stable")]] = np.arange(len(used))
    return label_of_root[roots]
