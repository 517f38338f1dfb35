"""Hardening of packed Bloom filters: balancing, XOR-folding, Rule 90, BLIP and diffusion.

Filters are C-contiguous ``uint64`` arrays of shape ``(n, W)``, ``L = 64 W`` bits; bit ``p`` of
a filter is bit ``p % 64`` of word ``p // 64`` (as :mod:`linkage.kernels.encode` sets them).
Write ``x_p`` for bit ``p`` of filter ``x``. Each step maps one filter to one filter, row by row
(a record's output never depends on other records or on row order):

* balance (Schnell & Borgs, "Randomized response and balanced Bloom filters for privacy
  preserving record linkage", ICDM workshops 2016; Berger codes): ``y = x || ~x`` (``2L``
  bits), optionally permuted, ``y'_j = y_{perm[j]}``. Every output has popcount exactly ``L``.
* XOR-folding (Schnell, Borgs & Encarnação 2016): ``y_p = x_p XOR x_{p + L/2}`` for
  ``p < L/2`` (``W`` even).
* Rule 90 (Wolfram's elementary cellular automaton; Schnell & Borgs, "Protecting record
  linkage identifiers using cellular automata and language models for patient names", ICDM
  workshops 2018): ``y_p = x_{(p - 1) mod L} XOR x_{(p + 1) mod L}``, cyclic, applied ``steps``
  times. (Rule 90 ignores the centre cell: neighbourhoods 111,110,...,000 -> 0,1,0,1,1,0,1,0.)
* BLIP, randomised response (Alaggan, Gambs & Kermarrec, "BLIP: non-interactive
  differentially-private similarity computation on Bloom filters", SSS 2012; applied to PPRL by
  Schnell & Borgs 2016): each bit is flipped independently with probability ``f``,
  ``y_p = x_p XOR [U_p < f]``. Flipping with ``f = 1 / (1 + e^(eps / k))`` makes the filter of a
  set eps-differentially private when adding or removing one element changes at most ``k``
  bits (:func:`blip_flip_probability`). Schnell & Borgs' "permanent randomised response" with
  parameter ``F`` (set to 1 w.p. F/2, to 0 w.p. F/2, keep w.p. 1 - F) is ``f = F / 2``.
* diffusion (Armknecht, Heng & Schnell, "Strengthening privacy-preserving record linkage using
  diffusion", PoPETs 2023(2)): ``y_j = XOR_{r < t} x_{taps[j, r]}`` for ``j < m``, a fixed
  linear map over GF(2) whose ``m x t`` taps are drawn once per project from the secret
  (:func:`diffusion_taps`: ``t`` distinct input positions per output bit).

Keyed randomness comes from the caller: permutations and taps from a 32-byte key through
:func:`key_words` (SHAKE-256, so both partners derive the same taps on any platform and numpy
version), and BLIP's coins from one ``uint64`` seed per record (a keyed hash of the record id),
so the noise of a record depends on (key, record) only. BLIP coin of bit ``p`` of a record
with seed ``s``::

    S = splitmix64(s);  u = splitmix64(S XOR (p >> 1));  U_p = (u >> (32 (p & 1))) & (2^32 - 1)
    bit p flipped iff U_p < thr,   thr = round(f 2^32)   (rate exactly thr / 2^32)

Diffusion (and permuted balancing) run bit-sliced: 64 records are transposed so that one
``uint64`` holds one input bit of all 64, each output bit is then ``t`` word XORs for the 64
records at once, and the result is transposed back (``64 x 64`` bit transposes in six
swap stages).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.lsh import splitmix64
from linkage.kernels.popcount import serial_and_parallel

__all__ = [
    "KERNELS",
    "balance",
    "blip",
    "blip_flip_probability",
    "blip_threshold",
    "diffusion",
    "diffusion_taps",
    "key_permutation",
    "key_words",
    "rule90",
    "transpose64",
    "xor_fold",
]

_M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# 64 x 64 bit transpose (bit-slicing 64 records)


@njit(cache=True, nogil=True)
def transpose64(a: np.ndarray, base: int) -> None:
    """In place on a[base : base + 64] (uint64): afterwards bit r of a[base + c] is the old
    bit c of a[base + r], for r, c < 64.

    Stage j (32, 16, ..., 1) swaps (row k, bit c + j) with (row k + j, bit c) for every k, c
    with k & j = c & j = 0, i.e. it exchanges bit j of the row and column indices where they
    differ; after all six stages (r, c) has moved to (c, r).
    """
    j = 32
    m = np.uint64(0x00000000FFFFFFFF)
    while j > 0:
        sj = np.uint64(j)
        for k0 in range(base, base + 64, 2 * j):
            for k in range(k0, k0 + j):
                t = ((a[k] >> sj) ^ a[k + j]) & m
                a[k + j] ^= t
                a[k] ^= t << sj
        j >>= 1
        m ^= m << np.uint64(j)


@njit(cache=True, nogil=True)
def _load_block(x: np.ndarray, i0: int, rows: int, sl: np.ndarray) -> None:
    """Bit-slice rows i0 .. i0 + rows - 1 of x (rows <= 64): bit r of sl[p] = bit p of
    x[i0 + r]; records r >= rows read as zero."""
    for w in range(x.shape[1]):
        base = 64 * w
        for r in range(rows):
            sl[base + r] = x[i0 + r, w]
        for r in range(rows, 64):
            sl[base + r] = np.uint64(0)
        transpose64(sl, base)


@njit(cache=True, nogil=True)
def _store_block(so: np.ndarray, out: np.ndarray, i0: int, rows: int) -> None:
    """Inverse of :func:`_load_block` (destroys ``so``): out[i0 + r] bit p = bit r of so[p]."""
    for w in range(out.shape[1]):
        base = 64 * w
        transpose64(so, base)
        for r in range(rows):
            out[i0 + r, w] = so[base + r]


# --------------------------------------------------------------------------------------------
# Kernel bodies (compiled serial and parallel)


def _diffusion_body(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """out[i] bit j = XOR_{r < t} x[i] bit taps[j, r], for j < m = taps.shape[0] (m % 64 == 0).

    Taps must lie in 0 .. 64 W - 1 (not checked here). Bit-sliced per block of 64 records.
    """
    n = x.shape[0]
    nbits = 64 * x.shape[1]
    m = taps.shape[0]
    t = taps.shape[1]
    out = np.empty((n, m // 64), dtype=np.uint64)
    for b in prange((n + 63) // 64):
        i0 = 64 * b
        rows = min(64, n - i0)
        sl = np.empty(nbits, dtype=np.uint64)
        so = np.empty(m, dtype=np.uint64)
        _load_block(x, i0, rows, sl)
        for j in range(m):
            acc = np.uint64(0)
            for r in range(t):
                acc ^= sl[taps[j, r]]
            so[j] = acc
        _store_block(so, out, i0, rows)
    return out


diffusion_serial, diffusion_parallel = serial_and_parallel(_diffusion_body, nogil=True)


def _balance_body(x: np.ndarray) -> np.ndarray:
    """out[i] = x[i] || ~x[i]: words 0..W-1 are x[i], words W..2W-1 its complement."""
    n = x.shape[0]
    nw = x.shape[1]
    out = np.empty((n, 2 * nw), dtype=np.uint64)
    for i in prange(n):
        for w in range(nw):
            out[i, w] = x[i, w]
            out[i, nw + w] = ~x[i, w]
    return out


balance_serial, balance_parallel = serial_and_parallel(_balance_body, nogil=True)


def _xor_fold_body(x: np.ndarray) -> np.ndarray:
    """out[i, w] = x[i, w] XOR x[i, w + W/2] for w < W/2 (W even, not checked here)."""
    n = x.shape[0]
    h = x.shape[1] // 2
    out = np.empty((n, h), dtype=np.uint64)
    for i in prange(n):
        for w in range(h):
            out[i, w] = x[i, w] ^ x[i, w + h]
    return out


xor_fold_serial, xor_fold_parallel = serial_and_parallel(_xor_fold_body, nogil=True)


def _rule90_body(x: np.ndarray) -> np.ndarray:
    """One Rule 90 step: out[i] bit p = x[i] bit (p - 1) mod L XOR x[i] bit (p + 1) mod L.

    Per word: left = (x_w << 1) | (x_{w-1} >> 63), right = (x_w >> 1) | (x_{w+1} << 63), word
    indices mod W (W = 1 gives the 64-bit rotations).
    """
    n = x.shape[0]
    nw = x.shape[1]
    out = np.empty((n, nw), dtype=np.uint64)
    one = np.uint64(1)
    s63 = np.uint64(63)
    for i in prange(n):
        for w in range(nw):
            prev = x[i, w - 1] if w > 0 else x[i, nw - 1]
            nxt = x[i, w + 1] if w + 1 < nw else x[i, 0]
            left = (x[i, w] << one) | (prev >> s63)
            right = (x[i, w] >> one) | (nxt << s63)
            out[i, w] = left ^ right
    return out


rule90_serial, rule90_parallel = serial_and_parallel(_rule90_body, nogil=True)


def _blip_body(x: np.ndarray, thr: Any, seeds: np.ndarray) -> np.ndarray:
    """out[i] bit p = x[i] bit p XOR [U_p(seeds[i]) < thr] (U_p as in the module docstring;
    thr in 0 .. 2^32 as a uint64)."""
    n = x.shape[0]
    nw = x.shape[1]
    out = np.empty((n, nw), dtype=np.uint64)
    m32 = np.uint64(_M32)
    s32 = np.uint64(32)
    one = np.uint64(1)
    for i in prange(n):
        s = splitmix64(seeds[i])
        for w in range(nw):
            mask = np.uint64(0)
            for h in range(32):
                u = splitmix64(s ^ np.uint64(32 * w + h))
                if (u & m32) < thr:
                    mask |= one << np.uint64(2 * h)
                if (u >> s32) < thr:
                    mask |= one << np.uint64(2 * h + 1)
            out[i, w] = x[i, w] ^ mask
    return out


blip_serial, blip_parallel = serial_and_parallel(_blip_body, nogil=True)


# --------------------------------------------------------------------------------------------
# Keyed randomness (deterministic from a key the caller derives from the secret)


def key_words(key: bytes, count: int) -> np.ndarray:
    """``count`` uint64 words: SHAKE-256(key) read as little-endian 64-bit words.

    A standard XOF, so every partner gets the same words on every platform.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    raw = hashlib.shake_256(bytes(key)).digest(8 * count)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def _words_from(key: bytes, start: int) -> Iterator[int]:
    """The words of :func:`key_words` (key, .) from index ``start`` on, without end (SHAKE
    output of a longer length extends the shorter one)."""
    have, chunk = start, 256
    while True:
        yield from (int(v) for v in key_words(key, have + chunk)[have:])
        have += chunk
        chunk *= 2


def key_permutation(key: bytes, size: int) -> np.ndarray:
    """A permutation of 0 .. size - 1 (int64) drawn from ``key``: the stable argsort of
    :func:`key_words` (key, size) (uniform over permutations when the words are distinct)."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    return np.argsort(key_words(key, size), kind="stable").astype(np.int64)


def diffusion_taps(key: bytes, input_bits: int, output_bits: int, t: int) -> np.ndarray:
    """(output_bits, t) int64 taps from ``key``: t distinct input positions per output bit.

    Word stream w = :func:`key_words`. Row j first takes ``w[j t + r] mod input_bits`` for
    r < t; in a row with repeats, each later repeat (in row order) is replaced by the next
    word of the overflow stream (words ``output_bits t`` onwards, mod input_bits) that is not
    yet in the row. The bias of ``mod`` is below input_bits / 2^64.
    """
    if input_bits < 1 or output_bits < 0 or t < 1:
        raise ValueError(
            f"need input_bits >= 1, output_bits >= 0, t >= 1 (got {input_bits}, {output_bits}, {t})"
        )
    if t > input_bits:
        raise ValueError(f"t = {t} distinct taps cannot come from {input_bits} input bits")
    m = output_bits * t
    words = key_words(key, m)
    taps = (words % np.uint64(input_bits)).astype(np.int64).reshape(output_bits, t)
    srt = np.sort(taps, axis=1)
    bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
    if bad.size:
        more = _words_from(key, m)
        for j in bad:
            seen: set[int] = set()
            for r in range(t):
                v = int(taps[j, r])
                while v in seen:
                    v = next(more) % input_bits
                seen.add(v)
                taps[j, r] = v
    return taps


def blip_flip_probability(epsilon: float, k: int) -> float:
    """BLIP's flip probability for eps-differential privacy: f = 1 / (1 + e^(eps / k)), where
    one element of the encoded set sets at most ``k`` bits (Alaggan, Gambs & Kermarrec 2012)."""
    if not epsilon > 0 or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    return 1.0 / (1.0 + math.exp(epsilon / k))


def blip_threshold(flip_prob: float) -> int:
    """thr = round(f 2^32) for 0 <= f <= 1/2: a bit flips iff its 32-bit coin is below thr."""
    f = float(flip_prob)
    if not 0.0 <= f <= 0.5:
        raise ValueError(f"flip probability must be within [0, 0.5], got {flip_prob!r}")
    return round(f * 2.0**32)


# --------------------------------------------------------------------------------------------
# Validated wrappers


def _check_filters(x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint64 or x.ndim != 2:
        raise ValueError("filters must be a 2-D numpy uint64 array of packed filters (n, L/64)")
    return np.ascontiguousarray(x)


def balance(
    filters: np.ndarray, perm: np.ndarray | None = None, *, parallel: bool = False
) -> np.ndarray:
    """(n, 2W): each filter followed by its complement, bits then permuted by ``perm`` if
    given (output bit j = bit perm[j] of x || ~x; perm a permutation of 0 .. 128 W - 1)."""
    x = _check_filters(filters)
    y = (balance_parallel if parallel else balance_serial)(x)
    if perm is None:
        return y
    p = np.ascontiguousarray(perm, dtype=np.int64)
    size = y.shape[1] * 64
    if p.shape != (size,) or not np.array_equal(np.sort(p), np.arange(size)):
        raise ValueError(f"perm must be a permutation of 0..{size - 1}")
    return (diffusion_parallel if parallel else diffusion_serial)(y, p.reshape(size, 1))


def xor_fold(filters: np.ndarray, *, parallel: bool = False) -> np.ndarray:
    """(n, W/2): first half of each filter XOR its second half (W must be even)."""
    x = _check_filters(filters)
    if x.shape[1] % 2:
        raise ValueError(
            f"XOR-folding needs an even number of 64-bit words; filters have {x.shape[1]}"
        )
    return (xor_fold_parallel if parallel else xor_fold_serial)(x)


def rule90(filters: np.ndarray, steps: int = 1, *, parallel: bool = False) -> np.ndarray:
    """(n, W): ``steps`` applications of cyclic Rule 90 (y_p = x_{p-1} XOR x_{p+1})."""
    x = _check_filters(filters)
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    kernel = rule90_parallel if parallel else rule90_serial
    for _ in range(int(steps)):
        x = kernel(x)
    return x.copy() if x is filters else x


def blip(
    filters: np.ndarray, flip_prob: float, seeds: np.ndarray, *, parallel: bool = False
) -> np.ndarray:
    """(n, W): each bit flipped with probability ``flip_prob`` (<= 1/2), coins from the
    per-record ``seeds`` (uint64[n], e.g. a keyed hash of the record id)."""
    x = _check_filters(filters)
    s = np.ascontiguousarray(seeds)
    if s.dtype != np.uint64 or s.shape != (x.shape[0],):
        raise ValueError("seeds must be a uint64 array with one seed per filter")
    thr = np.uint64(blip_threshold(flip_prob))
    return (blip_parallel if parallel else blip_serial)(x, thr, s)


def diffusion(filters: np.ndarray, taps: np.ndarray, *, parallel: bool = False) -> np.ndarray:
    """(n, m/64): output bit j = XOR of input bits taps[j, 0..t-1]; taps (m, t) integers in
    0 .. 64 W - 1, m a multiple of 64, t >= 1."""
    x = _check_filters(filters)
    tp = np.ascontiguousarray(taps, dtype=np.int64)
    if tp.ndim != 2 or tp.shape[1] < 1 or tp.shape[0] % 64:
        raise ValueError("taps must be a 2-D array (m, t) with t >= 1 and m a multiple of 64")
    nbits = 64 * x.shape[1]
    if tp.size and (tp.min() < 0 or tp.max() >= nbits):
        raise ValueError(f"taps must lie in 0..{nbits - 1} for {nbits}-bit filters")
    return (diffusion_parallel if parallel else diffusion_serial)(x, tp)


KERNELS: dict[str, Any] = {
    "transpose64": transpose64,
    "balance_serial": balance_serial,
    "balance_parallel": balance_parallel,
    "xor_fold_serial": xor_fold_serial,
    "xor_fold_parallel": xor_fold_parallel,
    "rule90_serial": rule90_serial,
    "rule90_parallel": rule90_parallel,
    "blip_serial": blip_serial,
    "blip_parallel": blip_parallel,
    "diffusion_serial": diffusion_serial,
    "diffusion_parallel": diffusion_parallel,
}
