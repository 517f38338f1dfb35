"""Per-segment Dice of candidate pairs (field-aware scoring of segmented filters).

Filters are C-contiguous ``uint64`` arrays of shape ``(n, W)``; a segmented layout
(:mod:`linkage.segments`) gives segment ``s`` the words ``bounds[s] .. bounds[s+1]-1``.
For pair ``e`` and comparison ``c`` (segment ``sa[c]`` of record ``left[e]`` against segment
``sb[c]`` of record ``right[e]``), with ``x``, ``y`` those two word runs::

    out[e, c] = 2 |x ∧ y| / (|x| + |y|)    when |x| > 0 and |y| > 0
              = -1.0                        when either segment is empty (a missing value)

computed as the float64 expression, stored as float32. Comparing different segments
(``sa != sb``) serves fields hashed under one shared key (given name against surname).
Reference: :func:`segment_dice_numpy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from linkage.kernels.popcount import popcount64, serial_and_parallel

__all__ = ["KERNELS", "segment_dice", "segment_dice_numpy"]


def _segment_dice_body(
    filters: Any, left: Any, right: Any, bounds: Any, sa: Any, sb: Any, out: Any
) -> None:
    m = left.shape[0]
    nc = sa.shape[0]
    for e in prange(m):
        i = left[e]
        j = right[e]
        for c in range(nc):
            a0 = bounds[sa[c]]
            b0 = bounds[sb[c]]
            width = bounds[sa[c] + 1] - a0
            pa: Any = 0
            pb: Any = 0
            both: Any = 0
            for w in range(width):
                x = filters[i, a0 + w]
                y = filters[j, b0 + w]
                pa += popcount64(x)
                pb += popcount64(y)
                both += popcount64(x & y)
            if pa == 0 or pb == 0:
                out[e, c] = -1.0
            else:
                out[e, c] = 2.0 * both / (pa + pb)


_serial, _parallel = serial_and_parallel(_segment_dice_body)


def segment_dice(
    filters: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    bounds: np.ndarray,
    sa: np.ndarray,
    sb: np.ndarray,
    *,
    parallel: bool = False,
) -> np.ndarray:
    """(m, C) float32 Dice of segment ``sa[c]`` of ``left[e]`` and ``sb[c]`` of ``right[e]``;
    -1 where either is empty. ``bounds``: int64 word boundaries (S+1, ascending, from 0);
    the compared segments of one comparison must have equal widths. Raises ValueError."""
    filters = np.ascontiguousarray(filters, np.uint64)
    left = np.ascontiguousarray(left, np.int64)
    right = np.ascontiguousarray(right, np.int64)
    bounds = np.ascontiguousarray(bounds, np.int64)
    sa = np.ascontiguousarray(sa, np.int64)
    sb = np.ascontiguousarray(sb, np.int64)
    _check(filters, left, right, bounds, sa, sb)
    out = np.empty((len(left), len(sa)), np.float32)
    if len(left) and len(sa):
        (_parallel if parallel else _serial)(filters, left, right, bounds, sa, sb, out)
    return out


def _check(
    filters: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    bounds: np.ndarray,
    sa: np.ndarray,
    sb: np.ndarray,
) -> None:
    if filters.ndim != 2:
        raise ValueError("filters must be (n, W)")
    if left.shape != right.shape or left.ndim != 1:
        raise ValueError("left and right must be 1-d of equal length")
    if sa.shape != sb.shape or sa.ndim != 1:
        raise ValueError("sa and sb must be 1-d of equal length")
    if bounds.ndim != 1 or len(bounds) < 1 or bounds[0] != 0 or (np.diff(bounds) < 0).any():
        raise ValueError("bounds must ascend from 0")
    if bounds[-1] > filters.shape[1]:
        raise ValueError("bounds exceed the filter width")
    nseg = len(bounds) - 1
    if len(sa) and (sa.min() < 0 or sb.min() < 0 or sa.max() >= nseg or sb.max() >= nseg):
        raise ValueError("segment index out of range")
    width = np.diff(bounds)
    if (width[sa] != width[sb]).any():
        raise ValueError("compared segments must have equal widths")
    n = filters.shape[0]
    if len(left) and (min(left.min(), right.min()) < 0 or max(left.max(), right.max()) >= n):
        raise ValueError("record index out of range")


def segment_dice_numpy(
    filters: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    bounds: np.ndarray,
    sa: np.ndarray,
    sb: np.ndarray,
) -> np.ndarray:
    """Plain numpy reference of :func:`segment_dice`."""
    bits = np.unpackbits(
        np.ascontiguousarray(filters, np.uint64).view(np.uint8), axis=1, bitorder="little"
    ).astype(np.int64)
    out = np.empty((len(left), len(sa)), np.float32)
    for c in range(len(sa)):
        a0, a1 = 64 * bounds[sa[c]], 64 * bounds[sa[c] + 1]
        b0, b1 = 64 * bounds[sb[c]], 64 * bounds[sb[c] + 1]
        x = bits[np.asarray(left, np.int64), a0:a1]
        y = bits[np.asarray(right, np.int64), b0:b1]
        pa, pb, both = x.sum(1), y.sum(1), (x & y).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 2.0 * both / (pa + pb)
        out[:, c] = np.where((pa == 0) | (pb == 0), -1.0, d)
    return out


KERNELS: dict[str, Any] = {"segment_dice": _serial, "segment_dice_parallel": _parallel}
