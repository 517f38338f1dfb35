"""Plain numpy / Python references for the kernels (slow, obviously correct; tests only).

Scores are computed as float64 ``2.0 * c / (pa + pb)`` (0.0 when pa + pb = 0), the same
expression the kernels use, so results compare exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "allpairs_ref",
    "ascii_loose_missing_ref",
    "ascii_missing_ref",
    "balance_ref",
    "band_keys_ref",
    "blip_ref",
    "dedup_ref",
    "dice_matrix_ref",
    "dice_pairs_ref",
    "diffusion_ref",
    "distinct_strings_ref",
    "join_strings_ref",
    "popcount64_ref",
    "popcount_rows_ref",
    "rule90_ref",
    "splitmix64_ref",
    "topk_ref",
    "xor_fold_ref",
]

_MASK64 = (1 << 64) - 1


def popcount64_ref(x: int) -> int:
    """Bits set in a 64-bit word (Python's int.bit_count)."""
    return (int(x) & _MASK64).bit_count()


def _bits(a: np.ndarray) -> np.ndarray:
    """(n, W) uint64 -> (n, 64 W) uint8 of bits, bit p = word p // 64, bit p % 64."""
    a = np.ascontiguousarray(a, dtype=np.uint64)
    by = a.astype("<u8").view(np.uint8).reshape(a.shape[0], 8 * a.shape[1])
    return np.unpackbits(by, axis=1, bitorder="little")


def _pack(bits: np.ndarray) -> np.ndarray:
    """(n, 64 W) of 0/1 -> (n, W) uint64, the inverse of :func:`_bits`."""
    bits = np.ascontiguousarray(bits, dtype=np.uint8)
    by = np.packbits(bits, axis=1, bitorder="little")
    words = bits.shape[1] // 64
    return np.ascontiguousarray(by).view("<u8").astype(np.uint64).reshape(bits.shape[0], words)


def popcount_rows_ref(a: np.ndarray) -> np.ndarray:
    """int32[n]: bits set per filter."""
    return _bits(a).sum(axis=1, dtype=np.int64).astype(np.int32)


def _scores(c: npt.ArrayLike, s: npt.ArrayLike) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    out = np.zeros(np.broadcast(c, s).shape, dtype=np.float64)
    nz = np.broadcast_to(s > 0, out.shape)
    cb = np.broadcast_to(c, out.shape)
    sb = np.broadcast_to(s, out.shape)
    out[nz] = 2.0 * cb[nz] / sb[nz]
    return out


def dice_matrix_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 (n, m): Dice of every pair."""
    ba = _bits(a).astype(np.int64)
    bb = _bits(b).astype(np.int64)
    c = ba @ bb.T
    s = ba.sum(axis=1)[:, None] + bb.sum(axis=1)[None, :]
    return _scores(c, s)


def dice_pairs_ref(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """float64[m]: Dice of (a[ia[k]], b[ib[k]])."""
    ba = _bits(a).astype(np.int64)
    bb = _bits(b).astype(np.int64)
    x = ba[np.asarray(ia, dtype=np.int64)]
    y = bb[np.asarray(ib, dtype=np.int64)]
    return _scores((x & y).sum(axis=1), x.sum(axis=1) + y.sum(axis=1))


def allpairs_ref(
    a: np.ndarray, b: np.ndarray, t: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, scores) of all pairs with Dice >= t, sorted by (row, col)."""
    d = dice_matrix_ref(a, b)
    r, c = np.nonzero(d >= t)
    return r.astype(np.int64), c.astype(np.int64), d[r, c]


def dedup_ref(a: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, scores) of pairs i < j within a with Dice >= t, sorted by (i, j)."""
    d = dice_matrix_ref(a, a)
    n = d.shape[0]
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    r, c = np.nonzero((d >= t) & upper)
    return r.astype(np.int64), c.astype(np.int64), d[r, c]


def topk_ref(a: np.ndarray, b: np.ndarray, k: int, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the k best columns with Dice >= t (score desc, then column asc), -1 padded."""
    d = dice_matrix_ref(a, b)
    n = d.shape[0]
    cols = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -1.0, dtype=np.float64)
    for i in range(n):
        ok = np.flatnonzero(d[i] >= t)
        order = ok[np.lexsort((ok, -d[i, ok]))][:k]
        cols[i, : order.size] = order
        scores[i, : order.size] = d[i, order]
    return cols, scores


def splitmix64_ref(z: int) -> int:
    """splitmix64 finaliser on Python ints."""
    x = int(z) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def band_keys_ref(a: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """uint64 (n, bands) band keys, as specified in :mod:`linkage.kernels.lsh` (Python ints)."""
    bits = _bits(a)
    pos = np.asarray(positions, dtype=np.int64)
    nbands, nrows = pos.shape
    bb = (nbands - 1).bit_length()
    width = 64 - bb
    out = np.zeros((bits.shape[0], nbands), dtype=np.uint64)
    for i in range(bits.shape[0]):
        for b in range(nbands):
            sampled = [int(bits[i, p]) for p in pos[b]]
            tag = (b << width) & _MASK64 if bb else 0
            if nrows <= width:
                payload = sum(bit << r for r, bit in enumerate(sampled))
            else:
                h = splitmix64_ref(b + 0x9E3779B97F4A7C15)
                for c0 in range(0, nrows, 64):
                    chunk = sum(bit << r for r, bit in enumerate(sampled[c0 : c0 + 64]))
                    h = splitmix64_ref(h ^ chunk)
                payload = h & ((1 << width) - 1)
            out[i, b] = np.uint64(tag | payload)
    return out


def join_strings_ref(
    strings: list[bytes], rows: np.ndarray, sep: int
) -> tuple[list[bytes], list[bool]]:
    """Per column r of ``rows`` (m, n): ``sep.join(strings[rows[j, r]] for j)``, or b"" and
    False when any index is negative."""
    out, ok = [], []
    for r in range(rows.shape[1]):
        idx = [int(i) for i in rows[:, r]]
        good = all(i >= 0 for i in idx)
        out.append(bytes([sep]).join(strings[i] for i in idx) if good else b"")
        ok.append(good)
    return out, ok


def distinct_strings_ref(strings: list[bytes]) -> tuple[list[int], list[int]]:
    """(ids, first): each string's index among the distinct strings in first-appearance
    order, and the position where each distinct string first appears."""
    seen: dict[bytes, int] = {}
    ids: list[int] = []
    first: list[int] = []
    for i, s in enumerate(strings):
        if s not in seen:
            seen[s] = len(first)
            first.append(i)
        ids.append(seen[s])
    return ids, first


def ascii_missing_ref(strings: list[bytes], sentinels: list[bytes]) -> list[int]:
    """2 for a string with a non-ASCII byte; else 1 if, trimmed of Arrow's ASCII whitespace
    (tab..CR, 0x1C-0x1F, space) and upper-cased, it is empty or a sentinel; else 0."""
    space = bytes([9, 10, 11, 12, 13, 28, 29, 30, 31, 32])
    out = []
    for s in strings:
        if any(b >= 128 for b in s):
            out.append(2)
            continue
        t = s.strip(space).upper()
        out.append(1 if t == b"" or t in sentinels else 0)
    return out


def ascii_loose_missing_ref(strings: list[bytes], keys: list[bytes]) -> list[int]:
    """2 for a string with a non-ASCII byte; else 1 if it has a byte that is not an ASCII
    letter or digit and its letters and digits, upper-cased, are one of ``keys``; else 0."""
    alnum = set(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    out = []
    for s in strings:
        if any(b >= 128 for b in s):
            out.append(2)
            continue
        key = bytes(b for b in s if b in alnum).upper()
        out.append(1 if len(key) < len(s) and key in keys else 0)
    return out


# ------------------------------------------------------------------------------ hardening


def balance_ref(a: np.ndarray, perm: np.ndarray | None = None) -> np.ndarray:
    """(n, 2 W): bits x || (1 - x), then y'[j] = y[perm[j]] if perm is given."""
    bits = _bits(a)
    y = np.concatenate([bits, 1 - bits], axis=1)
    if perm is not None:
        y = y[:, np.asarray(perm, dtype=np.int64)]
    return _pack(y)


def xor_fold_ref(a: np.ndarray) -> np.ndarray:
    """(n, W / 2): y[p] = x[p] XOR x[p + L/2]."""
    bits = _bits(a)
    h = bits.shape[1] // 2
    return _pack(bits[:, :h] ^ bits[:, h:])


def rule90_ref(a: np.ndarray, steps: int = 1) -> np.ndarray:
    """(n, W): ``steps`` times y[p] = x[(p - 1) mod L] XOR x[(p + 1) mod L]."""
    bits = _bits(a)
    for _ in range(steps):
        bits = np.roll(bits, 1, axis=1) ^ np.roll(bits, -1, axis=1)
    return _pack(bits)


def diffusion_ref(a: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """(n, m / 64): y[j] = XOR over r of x[taps[j, r]] (parity of the sum of the tapped bits)."""
    bits = _bits(a).astype(np.int64)
    tp = np.asarray(taps, dtype=np.int64)
    return _pack((bits[:, tp].sum(axis=2) % 2).astype(np.uint8))


def blip_ref(a: np.ndarray, thr: int, seeds: np.ndarray) -> np.ndarray:
    """(n, W): bit p of row i flipped iff coin U_p(seeds[i]) < thr, with (Python ints)
    S = splitmix64(seed), u = splitmix64(S ^ (p >> 1)), U_p = (u >> 32 (p & 1)) & (2^32 - 1)."""
    bits = _bits(a).copy()
    for i in range(bits.shape[0]):
        s = splitmix64_ref(int(seeds[i]))
        for p in range(bits.shape[1]):
            u = splitmix64_ref(s ^ (p >> 1))
            if (u >> (32 * (p & 1))) & 0xFFFFFFFF < thr:
                bits[i, p] ^= 1
    return _pack(bits)
