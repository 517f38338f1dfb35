"""Blocking kernels: score every pair of records that share a block.

Blocks come from keyed block keys or LSH band keys. Records are grouped by key (a sort
outside the kernels); a group is a run ``members[lo:hi]`` of global record indices. Pairs of a
group are scored in place and only pairs at or above the threshold are kept, so candidate
pairs never have to be held in memory all at once.

Pair slot of (a, b), 0 <= a < b < s, in a group of s members:  a (2s - a - 1) / 2 + (b - a - 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import popcount64, serial_and_parallel


@njit(cache=True, nogil=True)
def group_bounds(sorted_keys: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal keys in ``sorted_keys``, plus the end (int64[G+1])."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(1, np.int64)
    count = 1
    for i in range(1, n):
        if sorted_keys[i] != sorted_keys[i - 1]:
            count += 1
    out = np.empty(count + 1, np.int64)
    out[0] = 0
    g = 1
    for i in range(1, n):
        if sorted_keys[i] != sorted_keys[i - 1]:
            out[g] = i
            g += 1
    out[count] = n
    return out


def _score_groups_body(
    starts: np.ndarray,
    ends: np.ndarray,
    slot_off: np.ndarray,
    members: np.ndarray,
    party: np.ndarray,
    filters: np.ndarray,
    pop: np.ndarray,
    dedupe: bool,
    out_i: np.ndarray,
    out_j: np.ndarray,
    out_s: np.ndarray,
) -> None:
    """For group g = members[starts[g]:ends[g]], for each member pair (a, b), a < b, write
    (min, max) global indices and the Dice score at slot ``slot_off[g] + slot(a, b)``.

    Pairs of one party (unless ``dedupe``) and self pairs get score -1.0 (not a candidate).
    Dice(x, y) = 2|x & y| / (|x| + |y|), 0.0 when both are empty; float64 as in dice.py.
    """
    ng = starts.shape[0]
    w = filters.shape[1]
    for g in prange(ng):
        lo = starts[g]
        s = ends[g] - lo
        base = slot_off[g]
        k = base
        for a in range(s):
            i = members[lo + a]
            pi = party[i]
            for b in range(a + 1, s):
                j = members[lo + b]
                if i == j or (not dedupe and party[j] == pi):
                    out_i[k] = min(i, j)
                    out_j[k] = max(i, j)
                    out_s[k] = -1.0
                    k += 1
                    continue
                c = 0
                for t in range(w):
                    c += popcount64(filters[i, t] & filters[j, t])
                den = pop[i] + pop[j]
                out_i[k] = min(i, j)
                out_j[k] = max(i, j)
                out_s[k] = 0.0 if den == 0 else 2.0 * c / den
                k += 1


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
score_groups_serial, score_groups_parallel = serial_and_parallel(_score_groups_body, nogil=True)


@njit(cache=True, nogil=True)
def dedupe_sorted_pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mask keeping the first of each run of equal (i, j) in pairs sorted by (i, j)."""
    n = i.shape[0]
    keep = np.ones(n, np.bool_)
    for k in range(1, n):
        if i[k] == i[k - 1] and j[k] == j[k - 1]:
            keep[k] = False
    return keep


KERNELS: dict[str, Any] = {
    "group_bounds": group_bounds,
    "score_groups_serial": score_groups_serial,
    "score_groups_parallel": score_groups_parallel,
    "dedupe_sorted_pairs": dedupe_sorted_pairs,
}
