"""Hamming bit-sampling LSH band keys for packed Bloom filters, and choosing (bands, rows).

A band is ``rows`` sampled bit positions. Two filters collide in a band iff they agree on all
its sampled bits. Band key of filter ``x`` in band ``b`` (``bb = bit_length(bands - 1)`` high
bits hold the band index, so keys of different bands never collide)::

    payload = sum_r bit(x, pos[b, r]) << r                     if rows <= 64 - bb
            = H(b, chunks of 64 sampled bits)                  otherwise (splitmix64 chain)
    key     = (b << (64 - bb)) | (payload & (2^(64 - bb) - 1))

Packed payloads are collision-free within a band; hashed ones collide with probability about
2^-(64 - bb) per pair. Sampled positions come from :func:`sample_positions` (explicit seed).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import serial_and_parallel

__all__ = [
    "KERNELS",
    "band_collision_probability",
    "band_keys",
    "band_keys_parallel",
    "band_keys_serial",
    "choose_bands_rows",
    "expected_candidate_rate",
    "sample_positions",
    "splitmix64",
]

_MASK64 = (1 << 64) - 1


def _splitmix64_body(z: Any) -> Any:
    """splitmix64 finaliser of a uint64 (wrapping arithmetic); a bijection of 64-bit words.

    z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31.
    """
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _splitmix64_py(z: Any) -> np.uint64:
    """Pure-Python splitmix64 (Python ints masked to 64 bits); see :func:`_splitmix64_body`."""
    x = int(z) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return np.uint64(x ^ (x >> 31))


if getattr(numba.config, "DISABLE_JIT", 0):
    splitmix64: Any = _splitmix64_py
else:
    splitmix64 = njit(cache=True)(_splitmix64_body)


def _band_keys_body(a: Any, positions: Any) -> Any:
    """keys[i, b] as in the module docstring; a (n, W) uint64, positions (bands, rows) int64.

    Positions must lie in 0..64 W - 1 (not checked here).
    """
    n = a.shape[0]
    nbands = positions.shape[0]
    nrows = positions.shape[1]
    out = np.empty((n, nbands), dtype=np.uint64)
    bb = 0
    while (1 << bb) < nbands:
        bb += 1
    width = 64 - bb
    packed = nrows <= width
    pmask = np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(bb)
    one = np.uint64(1)
    for i in prange(n):
        for b in range(nbands):
            tag = np.uint64(b) << np.uint64(width) if bb > 0 else np.uint64(0)
            if packed:
                v = np.uint64(0)
                for r in range(nrows):
                    pos = positions[b, r]
                    bit = (a[i, pos >> 6] >> np.uint64(pos & 63)) & one
                    v |= bit << np.uint64(r)
                out[i, b] = tag | v
            else:
                h = splitmix64(np.uint64(b) + np.uint64(0x9E3779B97F4A7C15))
                v = np.uint64(0)
                for r in range(nrows):
                    pos = positions[b, r]
                    bit = (a[i, pos >> 6] >> np.uint64(pos & 63)) & one
                    v |= bit << np.uint64(r & 63)
                    if (r & 63) == 63 or r == nrows - 1:
                        h = splitmix64(h ^ v)
                        v = np.uint64(0)
                out[i, b] = tag | (h & pmask)
    return out


band_keys_serial, band_keys_parallel = serial_and_parallel(_band_keys_body)


def sample_positions(filter_length: int, bands: int, rows: int, seed: int) -> np.ndarray:
    """(bands, rows) int64 bit positions drawn uniformly with replacement from 0..L-1.

    Deterministic in ``seed`` (``np.random.default_rng(seed)``); with replacement, as the model
    of :func:`band_collision_probability` assumes.
    """
    if filter_length < 1 or bands < 1 or rows < 1:
        raise ValueError(
            f"filter_length, bands and rows must be >= 1 (got {filter_length}, {bands}, {rows})"
        )
    rng = np.random.default_rng(seed)
    return rng.integers(0, filter_length, size=(bands, rows), dtype=np.int64)


def band_keys(a: np.ndarray, positions: np.ndarray, *, parallel: bool = False) -> np.ndarray:
    """Validated wrapper: uint64 band keys (n, bands) of filters ``a`` (n, W) uint64."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64 or a.ndim != 2:
        raise ValueError("a must be a 2-D numpy uint64 array of packed filters (n, L/64)")
    pos = np.ascontiguousarray(positions, dtype=np.int64)
    if pos.ndim != 2 or pos.shape[0] < 1 or pos.shape[1] < 1:
        raise ValueError("positions must be a non-empty 2-D array (bands, rows)")
    length = a.shape[1] * 64
    if pos.min() < 0 or pos.max() >= length:
        raise ValueError(f"positions must lie in 0..{length - 1} for {length}-bit filters")
    kernel = band_keys_parallel if parallel else band_keys_serial
    return kernel(np.ascontiguousarray(a), pos)


# --------------------------------------------------------------------------------------------
# Choosing (bands, rows): pure Python


def _hamming_at_dice(dice: float, filter_length: int, fill: float) -> float:
    """Hamming distance of two filters of popcount p = fill L each at Dice D: d = 2 p (1 - D)."""
    return 2.0 * fill * filter_length * (1.0 - dice)


def band_collision_probability(
    dice: float, bands: int, rows: int, filter_length: int, fill: float = 0.3
) -> float:
    """P(two filters with Dice ``dice`` share at least one band key) under the model.

    Model: both filters have the typical popcount p = fill L, so c = D p and the Hamming
    distance is d = 2 p (1 - D); one sampled position (uniform, with replacement) agrees with
    probability 1 - d / L, a band of r positions with s = (1 - d / L)^r, and at least one of b
    independent bands with 1 - (1 - s)^b.
    """
    d = _hamming_at_dice(dice, filter_length, fill)
    s = max(0.0, 1.0 - d / filter_length) ** rows
    return 1.0 - (1.0 - s) ** bands


def expected_candidate_rate(bands: int, rows: int, filter_length: int, fill: float = 0.3) -> float:
    """Expected band collisions per unrelated pair: b (1 - d0 / L)^r with d0 = 2 L f (1 - f).

    d0 is the expected Hamming distance of two independent filters of fill f; the sum over bands
    (not the union) counts every band comparison the caller must deduplicate.
    """
    d0 = 2.0 * filter_length * fill * (1.0 - fill)
    return bands * (1.0 - d0 / filter_length) ** rows


def choose_bands_rows(
    threshold: float,
    target_recall: float,
    filter_length: int,
    *,
    fill: float = 0.3,
    max_bands: int = 64,
    max_rows: int | None = None,  # default 256
) -> tuple[int, int]:
    """(bands, rows) reaching ``target_recall`` at Dice ``threshold`` with fewest candidates.

    Under the model of :func:`band_collision_probability` (typical popcount fill L: Hamming
    distance at Dice D is 2 fill L (1 - D), band agreement (1 - d / L)^rows), a pair at exactly
    the threshold is found with probability >= target_recall (pairs above it are found more
    often). Among the (bands <= max_bands, rows <= max_rows) that do this, return the one
    minimising :func:`expected_candidate_rate` (bands x the chance that an unrelated pair
    agrees on a band), ties to fewer bands then fewer rows. For each rows the least sufficient
    bands is ceil(log(1 - R) / log(1 - s)).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    if not 0.0 < target_recall < 1.0:
        raise ValueError(f"target_recall must be within (0, 1), got {target_recall!r}")
    if filter_length < 1:
        raise ValueError(f"filter_length must be >= 1, got {filter_length!r}")
    if not 0.0 < fill < 1.0:
        raise ValueError(f"fill must be within (0, 1), got {fill!r}")
    if max_bands < 1:
        raise ValueError(f"max_bands must be >= 1, got {max_bands!r}")
    top_rows = max_rows if max_rows is not None else 256
    best: tuple[float, int, int] | None = None
    d = _hamming_at_dice(threshold, filter_length, fill)
    for rows in range(1, top_rows + 1):
        s = max(0.0, 1.0 - d / filter_length) ** rows
        if s <= 0.0:
            break
        if s >= 1.0:
            bands = 1
        else:
            need = math.log1p(-target_recall) / math.log1p(-s)
            if need > max_bands + 1:
                break  # s falls as rows grow, so every larger rows needs even more bands
            bands = max(1, math.ceil(need - 1e-9))
            while bands <= max_bands and (
                band_collision_probability(threshold, bands, rows, filter_length, fill)
                < target_recall
            ):
                bands += 1
            if bands > max_bands:
                continue
        cost = expected_candidate_rate(bands, rows, filter_length, fill)
        key = (cost, bands, rows)
        if best is None or key < best:
            best = key
    if best is None:
        raise ValueError(
            f"no (bands <= {max_bands}, rows) reaches recall {target_recall} at Dice "
            f"{threshold}; raise max_bands or lower target_recall"
        )
    return best[1], best[2]


KERNELS: dict[str, Any] = {
    "band_keys_serial": band_keys_serial,
    "band_keys_parallel": band_keys_parallel,
}
