"""Stable entity ids: which clusters keep which ids after a re-clustering, and why.

After an update re-solves the affected components, each new cluster is matched to the
entities its records belonged to before (a record is identified by party and record id, so a
record whose encoding changed still counts as the same record). The rules:

1. An old entity's *heir* is the new cluster holding most of its remaining records (ties:
   the cluster of the smallest record rank, below).
2. A cluster that is the heir of one or more old entities keeps the id of the oldest of them
   (smallest first version), then the largest (most records before the update), then the
   smallest id. Every other entity it is heir of is recorded as ``merged`` into it.
3. A cluster that is nobody's heir gets a fresh id (``created``). Records that came from an
   old entity whose heir is another cluster are recorded as a ``split`` of that entity
   (``related`` = the cluster's id), whether the cluster is new or an existing entity.
4. An old entity with no remaining records is ``retired``.

So an entity keeps its id while its records stay together; on a merge the older (then
larger) entity's id survives; on a split the part with the most original records keeps it.
Every change of a record's entity id is explained by a ``merged`` or ``split`` event.

Fresh ids are random 64-bit integers (shown as 16 hex digits), never 0, never one issued
before in the same map: from ``numpy.random.default_rng([seed, version, attempt])`` when
the map has a seed, else from :mod:`secrets`. They go to the clusters in the order of each
cluster's smallest record rank (:func:`linkage.tlu.solver.record_rank`: a hash of the party
name and record id), never in map order, so a map created or updated from the same records
in another row or file order gets the same ids (with the same seed).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class IdAssignment:
    """``cluster_ids[c]``: the id of new cluster ``c``; ``events``: (change, entity,
    related or 0, records) tuples; ``fresh``: ids issued now; ``ended``: entity -> (fate,
    successor or 0)."""

    cluster_ids: np.ndarray
    events: list[tuple[str, int, int, int]] = field(default_factory=list)
    fresh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    ended: dict[int, tuple[str, int]] = field(default_factory=dict)


def new_ids(
    count: int,
    taken: Callable[[np.ndarray], np.ndarray],
    seed: int | None,
    version: int,
) -> np.ndarray:
    """``count`` distinct fresh uint64 ids (nonzero); ``taken(ids)`` -> bool mask of ids
    already issued in the map."""
    out = np.zeros(0, np.uint64)
    attempt = 0
    while len(out) < count:
        need = count - len(out) + 8
        if seed is None:
            cand = np.frombuffer(secrets.token_bytes(8 * need), np.uint64).copy()
        else:
            rng = np.random.default_rng([seed, version, attempt])
            cand = rng.integers(1, np.iinfo(np.uint64).max, need, np.uint64, endpoint=True)
        cand = cand[cand != 0]
        cand = np.unique(cand[~np.isin(cand, out)])
        if len(cand):
            cand = cand[~taken(cand)]
        out = np.concatenate([out, cand])[:count]
        attempt += 1
    return out


def cluster_keys(labels: np.ndarray, rank: np.ndarray, n_clusters: int) -> np.ndarray:
    """int64[C]: each cluster's smallest record rank (an order-independent cluster key)."""
    key = np.full(n_clusters, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(key, labels, np.asarray(rank, np.int64))
    return key


def by_rank(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``labels`` renumbered 0..C-1 in the order of each cluster's smallest record rank."""
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    relabel = np.empty(n_clusters, np.int64)
    relabel[np.argsort(cluster_keys(labels, rank, n_clusters), kind="stable")] = np.arange(
        n_clusters
    )
    return relabel[labels]


def assign(
    labels: np.ndarray,
    prev: np.ndarray,
    touched: np.ndarray,
    first_version: np.ndarray,
    old_size: np.ndarray,
    fresh: Callable[[int], np.ndarray],
    *,
    rank: np.ndarray,
) -> IdAssignment:
    """Apply the rules above.

    ``labels`` (int64[k]): new cluster 0..C-1 of each affected record;
    ``prev`` (uint64[k]): the entity each record belonged to before (0: a new record);
    ``touched`` (uint64[t]): every old entity of the affected components (including
    entities whose records were all retired), with ``first_version`` and ``old_size``
    (int64[t], records before the update); ``fresh(n)``: n new ids; ``rank`` (int64[k],
    distinct): each record's rank (:func:`linkage.tlu.solver.record_rank`), which breaks
    heir ties and orders the fresh ids, so neither follows the records' order.
    """
    k = len(labels)
    n_clusters = int(labels.max()) + 1 if k else 0
    t_index = {int(e): i for i, e in enumerate(touched)}
    # overlap counts (old entity, cluster)
    has = prev != 0
    ent = np.array([t_index[int(e)] for e in prev[has]], np.int64)
    clu = labels[has]
    key = cluster_keys(labels, rank, n_clusters)
    heir = np.full(len(touched), -1, np.int64)
    if len(ent):
        pair = ent * max(n_clusters, 1) + clu
        uniq, counts = np.unique(pair, return_counts=True)
        pe, pc_ = uniq // max(n_clusters, 1), uniq % max(n_clusters, 1)
        # best cluster per entity: most records, then the smallest record rank
        order = np.lexsort((key[pc_], -counts, pe))
        pe_s, pc_s = pe[order], pc_[order]
        firsts = np.r_[True, pe_s[1:] != pe_s[:-1]]
        heir[pe_s[firsts]] = pc_s[firsts]
    else:
        pe = pc_ = counts = np.zeros(0, np.int64)
    cluster_ids = np.zeros(n_clusters, np.uint64)
    result = IdAssignment(cluster_ids)
    claims: dict[int, list[int]] = {}
    for ti in np.flatnonzero(heir >= 0):
        claims.setdefault(int(heir[ti]), []).append(int(ti))
    overlap = {(int(a), int(b)): int(n) for a, b, n in zip(pe, pc_, counts, strict=True)}
    for c, tis in claims.items():
        tis.sort(key=lambda i: (int(first_version[i]), -int(old_size[i]), int(touched[i])))
        survivor = int(touched[tis[0]])
        cluster_ids[c] = survivor
        for tj in tis[1:]:
            e = int(touched[tj])
            result.events.append(("merged", e, survivor, overlap[(tj, c)]))
            result.ended[e] = ("merged", survivor)
    unclaimed = np.flatnonzero(cluster_ids == 0)
    unclaimed = unclaimed[np.argsort(key[unclaimed], kind="stable")]  # fresh ids by rank
    ids = fresh(len(unclaimed))
    cluster_ids[unclaimed] = ids
    result.fresh = ids
    size = np.bincount(labels, minlength=n_clusters)
    for cu in unclaimed.tolist():
        result.events.append(("created", int(cluster_ids[cu]), 0, int(size[cu])))
    # parts of an entity that went to a cluster other than its heir: splits
    for ti, c, n in zip(pe.tolist(), pc_.tolist(), counts.tolist(), strict=True):
        if heir[ti] != c:
            result.events.append(("split", int(touched[ti]), int(cluster_ids[c]), int(n)))
    for ti in np.flatnonzero(heir < 0):
        e = int(touched[ti])
        result.events.append(("retired", e, 0, int(old_size[ti])))
        result.ended[e] = ("retired", 0)
    return result
