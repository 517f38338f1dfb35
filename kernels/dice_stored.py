"""Dice of candidate pairs against a large stored filter array, reading only the rows scored.

The linkage map scores an update's new records against the stored filters of the current
records that share a block key with them: a memory-mapped array of every stored record
(2M rows, 256 MB in the benchmark), of which a delta touches a scattered subset.
:func:`linkage.kernels.dice.dice_pairs` needs the popcount of every row of both operands,
which is a pass over the whole stored array; here the stored row's popcount is counted with
the pair (it is in cache then), so only the rows scored are read, and pairs given in stored-row
order read the array nearly sequentially. Same arithmetic as ``dice_pairs``:
``2 c / (pa + pb)`` in float64 (0.0 where both filters are empty), so the scores are equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from linkage.kernels.dice import _check_indexed_pairs
from linkage.kernels.popcount import popcount64, popcount_rows, serial_and_parallel

__all__ = ["KERNELS", "dice_stored", "dice_stored_reference"]


def _dice_stored_body(
    a: np.ndarray, pa: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray
) -> np.ndarray:
    """out[k] = 2 c_k / (pa[ia[k]] + |b[ib[k]]|), c_k = sum_w popcount(a[ia[k], w] & b[ib[k], w]),
    |y| = sum_w popcount(y[w]). 0.0 where the denominator is 0. No bounds checks."""
    m = ia.shape[0]
    nw = a.shape[1]
    out = np.empty(m, dtype=np.float64)
    for k in prange(m):
        x = ia[k]
        y = ib[k]
        c = np.uint64(0)
        q = np.uint64(0)
        for w in range(nw):
            v = b[y, w]
            c += popcount64(a[x, w] & v)
            q += popcount64(v)
        s = np.int64(pa[x]) + np.int64(q)
        out[k] = 2.0 * np.float64(c) / np.float64(s) if s > 0 else 0.0
    return out


dice_stored_serial, dice_stored_parallel = serial_and_parallel(_dice_stored_body, nogil=True)


def dice_stored(
    a: np.ndarray,
    b: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    *,
    parallel: bool = False,
) -> np.ndarray:
    """Dice of the pairs ``(a[ia[k]], b[ib[k]])`` as float64[m], equal to
    ``dice_pairs(a, b, ia, ib)``; ``b`` (a large, possibly memory-mapped array) is read only
    at the rows ``ib`` names. Raises ValueError on bad shapes or indices."""
    a, b, ia, ib = _check_indexed_pairs(a, b, ia, ib)
    if not ia.size:
        return np.zeros(0, np.float64)
    kernel = dice_stored_parallel if parallel else dice_stored_serial
    return kernel(a, popcount_rows(a), b, ia, ib)


def dice_stored_reference(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray
) -> np.ndarray:
    """The same in plain numpy (the tests' reference)."""
    x, y = a[ia], b[ib]
    c = np.bitwise_count(x & y).sum(axis=1, dtype=np.int64)
    s = np.bitwise_count(x).sum(axis=1, dtype=np.int64) + np.bitwise_count(y).sum(
        axis=1, dtype=np.int64
    )
    out = np.zeros(len(ia), np.float64)
    nz = s > 0
    out[nz] = 2.0 * c[nz].astype(np.float64) / s[nz].astype(np.float64)
    return out


KERNELS: dict[str, Any] = {
    "dice_stored_serial": dice_stored_serial,
    "dice_stored_parallel": dice_stored_parallel,
}
