"""Solving: from a scored candidate-pair graph to entities.

Input is a graph over ``N`` records of several parties: edges ``left[e] -- right[e]`` with
similarity ``score[e]`` in ``[0, 1]`` (global record indices ``0..N-1``) and ``party[i]`` for
each record. :func:`solve` returns one entity label per record:

* ``solver="greedy"`` (default): visit edges by descending score (ties: smaller
  ``min(rank[left], rank[right])`` first, then smaller ``max``), and merge the two clusters
  of an edge if they hold no common party. Two parties: greedy one-to-one assignment. Many
  parties (at most 64): entities with at most one record per party, present in any subset
  of parties.
  ``dedupe``: an edge between two records of the *same* party may also merge (so duplicates
  join an entity through their own edge), while a cross-party edge still never brings a
  second record of a party into an entity: that rule stops chains of household members.
* ``solver="optimal"`` (two parties, no dedupe): maximum total score one-to-one matching,
  solved exactly per connected component of the candidate graph; edges with score 0 are ignored.

``rank`` (int64[N], distinct) orders records for every tie-break and numbers the entities;
:func:`record_rank` derives it from a hash of each record's party and id, so the same
records give the same linkage (and, with the same seed, the same entity ids) in any row order.
Without it, the record index is used (ties then follow row order).

Matched pairs (``SolveResult.pair_mask``) are defined uniformly as the edges whose two
endpoints end in the same entity. For two parties without dedupe these are exactly the
one-to-one assigned pairs (plus exact duplicates of them, if the input holds any); for
clusters they are all candidate edges inside an entity.
"""

from __future__ import annotations

import hashlib
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from linkage.errors import InputError, LinkageError

# The numba kernels (and numba itself, ~0.2 s) are imported where they are called, not here:
# a map update imports this module and loads numba on a thread beside its DuckDB work
# (linkage.tlu.linkage_map.startup; docs/linkage-map.md, Performance).

__all__ = [
    "MAX_PARTIES",
    "SolveError",
    "SolveResult",
    "assign_entity_ids",
    "entity_sizes",
    "record_rank",
    "solve",
]

MAX_PARTIES = 64
"""Party masks are uint64, so party indices must be in ``0..63``."""

Solver = Literal["greedy", "optimal"]


class SolveError(LinkageError):
    """The solver cannot be used with these options (e.g. ``optimal`` with three parties)."""


@dataclass(frozen=True)
class SolveResult:
    """Outcome of :func:`solve`.

    ``labels``: int64[N], entity index ``0..E-1`` per record, numbered in order of each entity's
    smallest record ``rank`` (so independent of the order of the input edges, and with
    :func:`record_rank`, of the records).
    ``pair_mask``: bool[m], edges whose endpoints share an entity (the matched pairs).
    ``accepted``: bool[m], edges that merged two clusters (a spanning forest of the entities;
    equal to ``pair_mask`` for two parties without duplicate edges).
    """

    labels: NDArray[np.int64]
    pair_mask: NDArray[np.bool_]
    accepted: NDArray[np.bool_]

    @property
    def n_entities(self) -> int:
        """Number of entities ``E`` (singletons included)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0


def _as_index(name: str, a: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _validate(
    left: ArrayLike, right: ArrayLike, score: ArrayLike, party: ArrayLike, dedupe: bool
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    lft = _as_index("left", left)
    rgt = _as_index("right", right)
    prt = _as_index("party", party)
    sc = np.asarray(score)
    if sc.ndim != 1:
        raise InputError(f"score must be one-dimensional, got shape {sc.shape}")
    if sc.size and not (
        np.issubdtype(sc.dtype, np.floating) or np.issubdtype(sc.dtype, np.integer)
    ):
        raise InputError(f"score must be numeric, got dtype {sc.dtype}")
    sc = np.ascontiguousarray(sc, dtype=np.float64)
    m = lft.shape[0]
    if rgt.shape[0] != m or sc.shape[0] != m:
        raise InputError(
            f"left, right and score must have equal lengths, got {m}, {rgt.shape[0]}, {sc.shape[0]}"
        )
    n = prt.shape[0]
    if m:
        for name, arr in (("left", lft), ("right", rgt)):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= n:
                bad = lo if lo < 0 else hi
                raise InputError(
                    f"{name} holds record index {bad}, outside 0..{n - 1} (party has {n} records)"
                )
        same = lft == rgt
        if same.any():
            e = int(np.flatnonzero(same)[0])
            raise InputError(f"edge {e} joins record {int(lft[e])} to itself")
        if not np.isfinite(sc).all():
            e = int(np.flatnonzero(~np.isfinite(sc))[0])
            raise InputError(f"score of edge {e} is not finite")
        out = (sc < 0.0) | (sc > 1.0)
        if out.any():
            e = int(np.flatnonzero(out)[0])
            raise InputError(f"score of edge {e} is {float(sc[e])!r}, outside [0, 1]")
    if n:
        pmin, pmax = int(prt.min()), int(prt.max())
        if pmin < 0:
            raise InputError(f"party indices must be >= 0, got {pmin}")
        if pmax >= MAX_PARTIES:
            raise InputError(
                f"at most {MAX_PARTIES} parties can be linked (party indices 0..63), "
                f"got party index {pmax}"
            )
    return lft, rgt, sc, prt


def solve(
    left: ArrayLike,
    right: ArrayLike,
    score: ArrayLike,
    party: ArrayLike,
    *,
    dedupe: bool = False,
    solver: Solver = "greedy",
    max_component_side: int = 2000,
    rank: ArrayLike | None = None,
) -> SolveResult:
    """Cluster records into entities from scored candidate pairs.

    ``left``, ``right`` (int[m]) are global record indices into ``party`` (int[N], party index
    per record, ``0..63``); ``score`` (float[m]) in ``[0, 1]``; self-edges
    are rejected. ``solver="optimal"`` needs at most two parties (indices 0 and 1) and no
    dedupe; components of the candidate graph with more than ``max_component_side`` records on
    one side are solved greedily instead, with a warning.

    ``rank`` (int64[N], distinct values): the record order for tie-breaks and entity
    numbering (default: the record index); see :func:`record_rank`.

    Deterministic: the result depends only on the set of edges, not their order (except which
    of several identical duplicate edges is flagged in ``accepted``), and with ``rank`` from
    :func:`record_rank`, not on the order of the records either.
    Raises :class:`~linkage.errors.InputError` for malformed input and :class:`SolveError`
    for an unsupported solver/option combination.
    """
    from linkage.kernels.cluster import connected_components, greedy_cluster, greedy_edge_order

    if solver not in ("greedy", "optimal"):
        raise SolveError(f"unknown solver {solver!r}; choose 'greedy' or 'optimal'")
    lft, rgt, sc, prt = _validate(left, right, score, party, dedupe)
    n = prt.shape[0]
    rk = _check_rank(rank, n)
    if solver == "greedy":
        order = greedy_edge_order(lft, rgt, sc, rk)
        labels, accepted = greedy_cluster(lft, rgt, prt, order, dedupe)
    else:
        if dedupe:
            raise SolveError("solver='optimal' does not support dedupe; use solver='greedy'")
        if n and int(prt.max()) > 1:
            raise SolveError(
                f"solver='optimal' links exactly two parties (indices 0 and 1), got party index "
                f"{int(prt.max())}; use solver='greedy' for multi-party clustering"
            )
        accepted = _optimal_two_party(lft, rgt, sc, prt, max_component_side, rk)
        labels = connected_components(lft, rgt, accepted, n)
    if rk is not None:
        labels = _relabel_by_rank(labels, rk)
    pair_mask = labels[lft] == labels[rgt] if lft.size else np.zeros(0, dtype=np.bool_)
    return SolveResult(labels=labels, pair_mask=pair_mask, accepted=accepted)


def _optimal_two_party(
    lft: NDArray[np.int64],
    rgt: NDArray[np.int64],
    sc: NDArray[np.float64],
    prt: NDArray[np.int64],
    max_side: int,
    rank: NDArray[np.int64] | None = None,
) -> NDArray[np.bool_]:
    """Accepted-edge mask of a maximum-weight matching between party 0 and party 1 (records
    ordered by ``rank`` inside each component, so ties do not follow row order)."""
    from linkage.kernels.cluster import (
        connected_components,
        greedy_cluster,
        greedy_edge_order,
        match_components,
    )

    n = prt.shape[0]
    m = lft.shape[0]
    accepted = np.zeros(m, dtype=np.bool_)
    if m == 0:
        return accepted
    use = (prt[lft] != prt[rgt]) & (sc > 0.0)
    comp = connected_components(lft, rgt, use, n)
    eidx = np.flatnonzero(use)
    if eidx.size == 0:
        return accepted
    k_total = int(comp.max()) + 1
    # the side of a component's lowest-rank record gives its rows: with the records in rank
    # order inside each side, the assignment problem (and how it breaks ties between equal
    # optimal matchings) does not depend on which file came first
    side = prt
    if rank is not None:
        by = np.lexsort((rank, comp))
        first = by[np.r_[True, comp[by][1:] != comp[by][:-1]]]
        row_party = np.zeros(k_total, dtype=np.int64)
        row_party[comp[first]] = prt[first]
        side = (prt != row_party[comp]).astype(np.int64)
    # orient every usable edge as (row-side record, column-side record)
    swap = side[lft[eidx]] == 1
    a = np.where(swap, rgt[eidx], lft[eidx])
    b = np.where(swap, lft[eidx], rgt[eidx])
    # group edges by component (stable: duplicates keep input order)
    ecomp = comp[a]
    eo = np.argsort(ecomp, kind="stable")
    eidx, a, b, ecomp = eidx[eo], a[eo], b[eo], ecomp[eo]
    edge_start = np.zeros(k_total + 1, dtype=np.int64)
    np.cumsum(np.bincount(ecomp, minlength=k_total), out=edge_start[1:])
    # local row/column index of each record inside (component, party), by record index
    gkey = comp * 2 + side
    ro = np.argsort(gkey, kind="stable") if rank is None else np.lexsort((rank, gkey))
    key = gkey[ro]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    group_len = np.diff(np.r_[starts, n])
    pos = np.arange(n, dtype=np.int64) - np.repeat(starts, group_len)
    local = np.empty(n, dtype=np.int64)
    local[ro] = pos
    n_a = np.bincount(comp[side == 0], minlength=k_total).astype(np.int64)
    n_b = np.bincount(comp[side == 1], minlength=k_total).astype(np.int64)
    acc_sorted, oversized = match_components(
        a, b, sc[eidx], local, edge_start, n_a, n_b, int(max_side)
    )
    accepted[eidx[acc_sorted]] = True
    if oversized.any():
        big = oversized[ecomp]
        warnings.warn(
            f"solver='optimal': {int(oversized.sum())} candidate-graph component(s) have more "
            f"than {max_side} records on one side ({int(big.sum())} edges); they were solved "
            "GREEDILY, not optimally. Raise the threshold or tighten blocking to split them.",
            RuntimeWarning,
            stacklevel=3,
        )
        sub = eidx[big]
        sub_l, sub_r = lft[sub], rgt[sub]
        order = greedy_edge_order(sub_l, sub_r, sc[sub], rank)
        _, acc_sub = greedy_cluster(sub_l, sub_r, prt, order, False)
        accepted[sub[acc_sub]] = True
    return accepted


def _check_rank(rank: ArrayLike | None, n: int) -> NDArray[np.int64] | None:
    if rank is None:
        return None
    rk = _as_index("rank", rank)
    if rk.shape[0] != n:
        raise InputError(f"rank must have one value per record ({n}), got {rk.shape[0]}")
    if n and (int(rk.min()) < 0 or int(rk.max()) >= n or np.bincount(rk).max() > 1):
        raise InputError("rank must be a permutation of 0..N-1")
    return rk


def _relabel_by_rank(labels: NDArray[np.int64], rank: NDArray[np.int64]) -> NDArray[np.int64]:
    """Labels renumbered in order of each entity's smallest record rank."""
    if labels.size == 0:
        return labels
    e = int(labels.max()) + 1
    first = np.full(e, labels.size, np.int64)
    np.minimum.at(first, labels, rank)
    new = np.empty(e, np.int64)
    new[np.argsort(first)] = np.arange(e, dtype=np.int64)
    return new[labels]


def siphash_batch(
    k0: np.uint64, k1: np.uint64, data: np.ndarray, offs: np.ndarray, out: np.ndarray
) -> None:
    """:func:`linkage.kernels.siphash.siphash_batch`, imported at the first call."""
    from linkage.kernels.siphash import siphash_batch as kernel

    kernel(k0, k1, data, offs, out)


RANK_KEY = b"linkage record order v1"
"""Fixed (public) key of the record-order hash: ties must not depend on row order, and must
not change with the secret or the seed either."""


def record_rank(
    party_names: Sequence[str], record_ids: Sequence[pa.Array | pa.ChunkedArray]
) -> NDArray[np.int64]:
    """int64[N]: each record's position when all records (parties concatenated in the given
    order) are sorted by SipHash-2-4 of the record id under a key derived from the fixed
    :data:`RANK_KEY` and the party name (colliding hashes by party name, then id). Depends
    only on the records, never on their order in an extract or the order of the files;
    pseudo-random, so no id range is favoured in ties. About 0.3 s for 2M records."""
    from linkage.kernels.siphash import key_words

    hashes = []
    for name, ids in zip(party_names, record_ids, strict=True):
        arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        arr = pa.concat_arrays([arr.cast(pa.string()).fill_null("")])  # offset 0, no nulls
        n = len(arr)
        offs = np.frombuffer(arr.buffers()[1], np.int32)[: n + 1].astype(np.int64)
        buf = arr.buffers()[2]
        data = np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)
        key = hashlib.blake2b(name.encode("utf-8"), key=RANK_KEY, digest_size=16).digest()
        k0, k1 = key_words(key)
        h = np.empty(n, np.uint64)
        with np.errstate(over="ignore"):  # wrapping arithmetic when NUMBA_DISABLE_JIT=1
            siphash_batch(k0, k1, data, offs, h)
        hashes.append(h)
    if not hashes:
        return np.zeros(0, np.int64)
    h = np.concatenate(hashes)
    n = len(h)
    order = np.argsort(h)
    hs = h[order]
    dup = np.flatnonzero(hs[1:] == hs[:-1])
    if len(dup):  # 64-bit collisions (~N^2 / 2^65): those records by (party, id)
        names = [(p, str(r)) for p, ids in zip(party_names, record_ids, strict=True)
                 for r in ids.to_pylist()]  # fmt: skip
        order = np.array(sorted(range(n), key=lambda i: (int(h[i]), names[i])), np.int64)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    return rank


def entity_sizes(labels: ArrayLike) -> NDArray[np.int64]:
    """Number of records in each entity: ``sizes[k] = |{i : labels[i] == k}|`` (int64[E])."""
    lab = _as_index("labels", labels)
    if lab.size and int(lab.min()) < 0:
        raise InputError("labels must be >= 0")
    return np.bincount(lab).astype(np.int64)


def assign_entity_ids(labels: ArrayLike, seed: int | None = None) -> NDArray[np.str_]:
    """Opaque random 128-bit ids (32 lowercase hex characters), one per entity.

    Returns an array of length ``E = labels.max() + 1``; ``ids[labels]`` gives each record its
    entity id. With ``seed=None`` the ids come from :mod:`secrets` (unpredictable, different on
    every call); with an integer seed from ``numpy.random.default_rng(seed)`` (reproducible).
    Ids depend only on the entity count and the seed, never on record content.
    """
    lab = _as_index("labels", labels)
    if lab.size and int(lab.min()) < 0:
        raise InputError("labels must be >= 0")
    n_ent = int(lab.max()) + 1 if lab.size else 0
    if n_ent == 0:
        return np.zeros(0, dtype="<U32")
    if seed is None:
        raw = secrets.token_bytes(16 * n_ent)
    else:
        rng = np.random.default_rng(seed)
        raw = rng.integers(
            0, np.iinfo(np.uint64).max, size=2 * n_ent, dtype=np.uint64, endpoint=True
        ).tobytes()
    ids = np.frombuffer(raw.hex().encode("ascii"), dtype="S32").astype("<U32")
    if np.unique(ids).size != n_ent:  # probability ~ E^2 / 2^129
        raise RuntimeError("entity id collision; call assign_entity_ids again")
    return ids
