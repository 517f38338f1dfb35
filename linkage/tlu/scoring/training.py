"""Training pairs without labels: random pairs (for u) and pairs that agree exactly on one
field (for m), as Splink does on plaintext (u by random sampling; m by EM on pairs blocked on
one field, that field's own m estimated in another session).

Why blocked pairs: among pairs that share a date of birth, the non-matches are otherwise
random people, so their other fields follow the random-pair u exactly and EM with u held
fixed recovers m for those fields (not so among high-Dice candidates, where household
members share surname and address). The TLU finds exact agreement by comparing a field's
segment bits (equal keyed token sets): it learns which records share a field value, never
the value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "exact_groups",
    "random_pairs",
    "segment_keys",
    "value_frequencies",
    "within_group_pairs",
]

_MULT = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    np.uint64,
)


def segment_keys(filters: np.ndarray, words: Sequence[tuple[int, int]]) -> np.ndarray:
    """uint64 key per record of the concatenated word runs ``words`` (equal bits, equal
    key; a 64-bit mix, collisions ~ n^2 / 2^64); 0 where any run is all zero (missing)."""
    n = filters.shape[0]
    key = np.zeros(n, np.uint64)
    present = np.ones(n, bool)
    k = 0
    with np.errstate(over="ignore"):
        for lo, hi in words:
            seg = filters[:, lo:hi]
            present &= seg.any(axis=1)
            for w in range(hi - lo):
                x = seg[:, w] * _MULT[k % 4] + np.uint64(k + 1)
                key = (key ^ x) * _MULT[(k + 1) % 4]
                key ^= key >> np.uint64(29)
                k += 1
    key[~present] = 0
    key[present & (key == 0)] = 1
    return key


def exact_groups(keys: np.ndarray, rank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Records grouped by key (key 0 left out), ordered by ``rank`` within a group (default:
    index): (order int64, group starts int64 incl. end)."""
    idx = np.flatnonzero(keys != 0)
    within = idx if rank is None else np.asarray(rank)[idx]
    order = idx[np.lexsort((within, keys[idx]))]
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, np.int64)
    return order, np.r_[starts, len(order)].astype(np.int64)


def within_group_pairs(
    order: np.ndarray, starts: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Up to ``n_pairs`` record pairs drawn uniformly (with replacement) from all pairs of
    records sharing a group; returns (left, right, total pairs within groups)."""
    size = np.diff(starts)
    pairs_per = size * (size - 1) // 2
    total = int(pairs_per.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    k = min(n_pairs, total)
    g = rng.choice(len(size), size=k, p=pairs_per / total)
    a = rng.integers(0, size[g])
    b = rng.integers(0, size[g] - 1)
    b = b + (b >= a)
    return order[starts[g] + a], order[starts[g] + b], total


def random_pairs(n: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` uniformly random pairs of distinct records among ``n``."""
    a = rng.integers(0, n, n_pairs)
    b = rng.integers(0, n - 1, n_pairs)
    b = b + (b >= a)
    return a, b


def value_frequencies(keys: np.ndarray) -> np.ndarray:
    """float64[n]: the share of records with a non-zero key that have each record's key (0
    where the key is 0, a missing value)."""
    keys = np.asarray(keys, np.uint64)
    out = np.zeros(len(keys), np.float64)
    ok = keys != 0
    present = int(ok.sum())
    if present:
        _, inv, cnt = np.unique(keys[ok], return_inverse=True, return_counts=True)
        out[ok] = cnt[inv.reshape(-1)] / present
    return out
