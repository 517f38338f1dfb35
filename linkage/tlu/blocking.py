"""Candidate generation and scoring: which pairs of records are compared, and their scores.

Strategies (``blocking=``):

- ``none``: every cross-party pair (and every within-party pair with dedupe), scored by the
  all-pairs kernel with exact popcount pruning. Exact; fine up to a few hundred thousand
  records per side.
- ``keys``: records that share any partner block key (the keyed 64-bit ``block_keys``).
- ``lsh``: records that share a Hamming bit-sampling LSH band key; bands x rows are chosen
  from the threshold and a target recall by :func:`linkage.kernels.lsh.choose_bands_rows`;
  positions are drawn from the seed, so runs are deterministic. Bit sampling is selective at
  high thresholds (0.85+); at 0.7 on filters about 35% full it keeps a few percent of all
  pairs, so prefer ``keys`` when the files have block keys.
- ``auto``: ``none`` when the exhaustive comparison count is small, else ``keys`` when
  every file has block keys, else ``lsh``. The choice is reported.

A block larger than ``max_block`` records would explode into quadratic pairs: it is not
dropped but scored by the all-pairs kernel (which keeps only pairs at or above the
threshold), with a warning naming its size.

Memory stays bounded however many records look alike (20,000 identical records per party
would otherwise give 4e8 pairs): the all-pairs comparison runs in row chunks sized from a
probe of the densest rows, and every record keeps at most ``max_candidates`` candidate pairs,
its best by score, ties by record rank (a k-nearest-neighbour cap, as anonlink's ``k``). A
pair stays when it is among the best of *either* of its records. The cap is applied to the
pairs gathered so far whenever they pass a budget, which gives exactly the pairs a cap of
the whole set would keep; it is reported (``--max-candidates`` raises it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from linkage.errors import LinkageError

# The numba kernels (and numba itself, ~0.2 s) are imported where they are called, not here:
# a map update imports this module for its rules and constants and loads numba on a thread
# beside its DuckDB work (linkage.tlu.linkage_map.startup; docs/linkage-map.md, Performance).

STRATEGIES = ("auto", "none", "keys", "lsh")
EXHAUSTIVE_LIMIT = 4e9  # comparisons: about 5-10 s of the all-pairs kernel on one core
DEFAULT_MAX_BLOCK = 5000
DEFAULT_MAX_CANDIDATES = 100  # per record; a cap that normal data never reaches
CHUNK_SLOTS = 8_000_000  # candidate slots scored per chunk (bounds memory)
SCORE_BINS = 100  # score histogram of the match statistics: bins of 0.01 on [0, 1]
SAMPLE_STRIDE = 64  # below the threshold the histogram counts every 64th scored slot (~1% time)

Warn = Callable[[str], None]


@dataclass
class Candidates:
    """Scored pairs at or above the threshold (global record indices, i < j)."""

    left: np.ndarray
    right: np.ndarray
    score: np.ndarray
    strategy: str
    compared: int  # candidate pairs scored (after de-duplication where known)
    possible: int  # pairs an exhaustive comparison would score
    detail: dict[str, object] = field(default_factory=dict)
    below: np.ndarray | None = None  # SCORE_BINS sampled counts (x SAMPLE_STRIDE) below threshold

    @property
    def reduction_ratio(self) -> float:
        return 1.0 - self.compared / self.possible if self.possible else 0.0

    def score_histogram(self) -> dict[str, object]:
        """Counts of candidate scores in SCORE_BINS bins on [0, 1] (never single scores):
        exact for the pairs kept (at or above the threshold), plus, where blocking scored
        them, an estimate for the pairs below it from every SAMPLE_STRIDE-th scored slot
        (times SAMPLE_STRIDE; pairs sharing several blocks count once per block there).
        ``scope`` says which: ``"all candidates"`` or ``"at or above the threshold"``."""
        counts, _ = np.histogram(self.score, bins=SCORE_BINS, range=(0.0, 1.0))
        scope = "at or above the threshold"
        if self.below is not None:
            counts = counts + self.below * SAMPLE_STRIDE
            scope = "all candidates"
        return {
            "edges": np.linspace(0.0, 1.0, SCORE_BINS + 1).tolist(),
            "counts": [int(c) for c in counts],
            "scope": scope,
            "sample_stride": SAMPLE_STRIDE if self.below is not None else 1,
        }


def possible_pairs(sizes: list[int], dedupe: bool) -> int:
    total = sum(sizes)
    cross = (total * total - sum(s * s for s in sizes)) // 2
    within = sum(s * (s - 1) // 2 for s in sizes) if dedupe else 0
    return cross + within


def choose_strategy(sizes: list[int], dedupe: bool, have_keys: bool) -> str:
    if possible_pairs(sizes, dedupe) <= EXHAUSTIVE_LIMIT:
        return "none"
    return "keys" if have_keys else "lsh"


def exhaustive(
    filters: np.ndarray,
    offsets: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
    dedupe_threshold: float | None = None,
    pool: PairPool | None = None,
    index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """All pairs >= threshold across parties (and within, >= dedupe_threshold, with dedupe),
    in row chunks of bounded output (:func:`_chunk_rows`). With ``pool``, pairs go into it
    (as global indices ``index[i]`` when given) and empty arrays are returned."""
    from linkage.kernels.dice import allpairs_dice, dedup_dice

    t_within = threshold if dedupe_threshold is None else dedupe_threshold
    own = pool is None
    pool = pool if pool is not None else PairPool(None, None, unique=True)
    np_ = len(offsets) - 1
    compared = 0

    def emit(r: np.ndarray, c: np.ndarray, s: np.ndarray) -> None:
        if index is not None:
            r, c = index[r], index[c]
            r, c = np.minimum(r, c), np.maximum(r, c)
        pool.add(r, c, s)

    for p in range(np_):
        a0, a1 = int(offsets[p]), int(offsets[p + 1])
        if dedupe and a1 - a0 > 1:
            x = filters[a0:a1]
            step = _chunk_rows(x, x, t_within, parallel)
            if step >= a1 - a0:
                r, c, s = dedup_dice(x, t_within, parallel=parallel)
                emit(r + a0, c + a0, s)
            else:  # rows [i0, i1) against rows [i0, n): the pairs i < j, chunk by chunk
                for i0 in range(0, a1 - a0, step):
                    i1 = min(a1 - a0, i0 + step)
                    r, c, s = allpairs_dice(x[i0:i1], x[i0:], t_within, parallel=parallel)
                    up = c > r
                    emit(r[up] + a0 + i0, c[up] + a0 + i0, s[up])
            compared += (a1 - a0) * (a1 - a0 - 1) // 2
        for q in range(p + 1, np_):
            b0, b1 = int(offsets[q]), int(offsets[q + 1])
            if a1 == a0 or b1 == b0:
                continue
            a, b = filters[a0:a1], filters[b0:b1]
            step = _chunk_rows(a, b, threshold, parallel)
            for i0 in range(0, a1 - a0, step):
                r, c, s = allpairs_dice(a[i0 : i0 + step], b, threshold, parallel=parallel)
                emit(r + a0 + i0, c + b0, s)
            compared += (a1 - a0) * (b1 - b0)
    if not own:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float64), compared
    left, right, score = pool.result()
    return left, right, score, compared


PROBE_ROWS = 256
CHUNK_PAIRS = 1_000_000
"""Target pairs per all-pairs call (the kernel buffers ~250 bytes per pair it returns)."""


def _chunk_rows(a: np.ndarray, b: np.ndarray, threshold: float, parallel: bool) -> int:
    """Rows of ``a`` per all-pairs call so that one call returns about CHUNK_PAIRS pairs at
    most: all of ``a`` when ``len(a) * len(b)`` is that small, else sized from the densest of
    PROBE_ROWS evenly spaced rows (their own pair counts against ``b``)."""
    from linkage.kernels.dice import allpairs_dice

    na, nb = a.shape[0], b.shape[0]
    limit = min(CHUNK_PAIRS, CHUNK_SLOTS)
    if na * nb <= limit:
        return max(na, 1)
    rows = min(na, PROBE_ROWS, max(8, limit // nb))  # the probe's own output is bounded
    probe = a[np.linspace(0, na - 1, rows).astype(np.int64)]
    r, _, _ = allpairs_dice(probe, b, threshold, parallel=parallel)
    densest = int(np.bincount(r).max()) if len(r) else 0
    return int(min(na, max(64, limit // max(densest, 1))))


class PairPool:
    """Candidate pairs gathered chunk by chunk, each record keeping at most ``k`` (None: no
    cap): whenever the pairs held pass a budget they are de-duplicated and capped by
    :func:`cap_pairs`, which keeps exactly the pairs a cap of all of them would (a pair
    beaten ``k`` times at both its records can never come back). ``rank()`` gives the record
    order for ties (called only when a cap bites)."""

    def __init__(
        self,
        k: int | None,
        rank: Callable[[], np.ndarray] | None,
        accept: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        unique: bool = False,
    ) -> None:
        """``unique``: the pairs added never repeat (all-pairs scoring): they keep the order
        they came in; else they are de-duplicated and sorted by (left, right)."""
        self.k, self.rank_fn, self.accept, self.unique = k, rank, accept, unique
        self._rank: np.ndarray | None = None
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.held = 0
        self.budget = 2 * CHUNK_PAIRS
        self.capped: set[int] = set()  # records that had more than k pairs
        self.largest = 0

    def add(self, left: np.ndarray, right: np.ndarray, score: np.ndarray) -> None:
        if self.accept is not None and len(left):
            keep = self.accept(left, right, score)
            left, right, score = left[keep], right[keep], score[keep]
        if len(left) == 0:
            return
        self.parts.append((left, right, score))
        self.held += len(left)
        if self.k is not None and self.held > self.budget:
            self._reduce()
            self.budget = max(2 * CHUNK_PAIRS, 2 * self.held)

    def _reduce(self) -> None:
        left = _cat([p[0] for p in self.parts], np.int64)
        right = _cat([p[1] for p in self.parts], np.int64)
        score = _cat([p[2] for p in self.parts], np.float64)
        self.parts = []
        if len(left) and not self.unique:
            keep = unique_pairs(left, right)
            left, right, score = left[keep], right[keep], score[keep]
        if self.k is not None and len(left):
            degree = pair_degrees(left, right)
            over = np.flatnonzero(degree > self.k)
            if len(over):
                self.capped.update(over.tolist())
                self.largest = max(self.largest, int(degree.max()))
                if self._rank is None and self.rank_fn is not None:
                    self._rank = self.rank_fn()
                keep = cap_pairs(left, right, score, self._rank, self.k, degree)
                left, right, score = left[keep], right[keep], score[keep]
        self.parts = [(left, right, score)]
        self.held = len(left)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pairs, de-duplicated, sorted by (left, right), capped."""
        self._reduce()
        return self.parts[0]

    def warning(self) -> str | None:
        if not self.capped:
            return None
        return cap_warning(len(self.capped), self.k, self.largest)


def cap_warning(records: int, k: int | None, largest: int | None) -> str:
    """The warning of a cap that bit (``largest``: the most pairs a record had, if known)."""
    most = f"largest at least {largest}: " if largest else ""
    return (
        f"{records} record(s) had more than {k} candidate pairs at or above the threshold "
        f"({most}many near-identical records); each kept its {k} best (by score, then record "
        "order). Raise --max-candidates to keep more, or raise --threshold"
    )


def cap_candidates(
    cand: Candidates, k: int | None, rank: Callable[[], np.ndarray] | None, warn: Warn
) -> Candidates:
    """``cand`` with each record keeping at most ``k`` pairs (as :class:`PairPool`), the
    same pairs the in-process engine keeps; unchanged (same order) when no record has more."""
    if k is None or len(cand.left) == 0:
        return cand
    n = int(max(cand.left.max(), cand.right.max())) + 1
    degree = np.bincount(cand.left, minlength=n) + np.bincount(cand.right, minlength=n)
    if degree.max() <= k:
        return cand
    pool = PairPool(k, rank, unique=True)  # candidates are unique pairs: order kept
    pool.add(cand.left, cand.right, cand.score)
    left, right, score = pool.result()
    note = pool.warning()
    if note:
        warn(note)
    detail = dict(cand.detail, capped_records=len(pool.capped), max_candidates=k)
    return dataclasses.replace(cand, left=left, right=right, score=score, detail=detail)


def pair_degrees(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """int64[max index + 1]: how many of the pairs (left[e], right[e]) each record is in."""
    n = int(max(left.max(), right.max())) + 1 if len(left) else 0
    return np.bincount(left, minlength=n) + np.bincount(right, minlength=n)


PACK_LIMIT = 3_000_000_000  # records: left * n + right stays below 2**63


def unique_pairs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """int64 positions of the first of each distinct (left, right), in (left, right) order.

    One stable sort of the packed key ``left * n + right`` (about twice as fast as a
    two-key lexsort); a lexsort beyond :data:`PACK_LIMIT` records."""
    if len(left) == 0:
        return np.zeros(0, np.int64)
    n = int(max(left.max(), right.max())) + 1
    if n <= PACK_LIMIT:
        key = left * n + right
        o = np.argsort(key, kind="stable")
        key = key[o]
        first = np.empty(len(o), bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        return o[first]
    from linkage.kernels.blocking import dedupe_sorted_pairs

    o = np.lexsort((right, left))
    return o[dedupe_sorted_pairs(left[o], right[o])]


def cap_pairs(
    left: np.ndarray,
    right: np.ndarray,
    score: np.ndarray,
    rank: np.ndarray | None,
    k: int,
    degree: np.ndarray | None = None,
) -> np.ndarray:
    """bool[m]: pairs among the ``k`` best of either of their records (best: higher score,
    then lower ``rank`` of the other record). ``rank``: int64[N], distinct per record (None:
    the record index); ``degree``: :func:`pair_degrees` of the pairs when known.

    A record with at most ``k`` pairs keeps them all, so only the pairs of records with
    more are ranked (a sort of those records' pairs, not of all pairs)."""
    m = len(left)
    if m == 0:
        return np.zeros(0, bool)
    if degree is None:
        degree = pair_degrees(left, right)
    over = degree > k
    over_l, over_r = over[left], over[right]
    keep = ~(over_l & over_r)  # one of its records keeps every pair it has
    el, er = np.flatnonzero(over_l), np.flatnonzero(over_r)
    pair = np.concatenate([el, er])  # (record, pair) entries of the records over k
    node = np.concatenate([left[el], right[er]])
    other = np.concatenate([right[el], left[er]])
    del el, er, over_l, over_r
    o = np.lexsort((other if rank is None else rank[other], -score[pair], node))
    del other
    node = node[o]
    e = len(node)
    start = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    pos = np.arange(e) - np.repeat(start, np.diff(np.r_[start, e]))
    keep[pair[o[pos < k]]] = True
    return keep


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def score_blocks(
    keys: np.ndarray,
    owners: np.ndarray,
    filters: np.ndarray,
    pop: np.ndarray,
    party: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
    max_block: int,
    warn: Warn,
    below: np.ndarray | None = None,
    pool: PairPool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Score all pairs of records sharing a key; keep pairs >= threshold, de-duplicated.

    Oversize blocks (more than ``max_block`` records) are scored by the all-pairs kernel, each
    distinct member set once: with many identical records every LSH band yields the same
    block, and scoring each copy again found no new pair at bands x block^2 / 2 cost.

    ``keys[k]`` is a block key held by record ``owners[k]``. ``below`` (int64[SCORE_BINS]):
    adds the bin counts of every SAMPLE_STRIDE-th scored slot under the threshold.
    """
    from linkage.kernels.blocking import group_bounds, score_groups_parallel, score_groups_serial

    pool = pool if pool is not None else PairPool(None, None)  # with a cap: pairs per record
    order = np.lexsort((owners, keys))
    skeys = keys[order]
    members = np.ascontiguousarray(owners[order], dtype=np.int64)
    bounds = group_bounds(skeys)
    starts, ends = bounds[:-1], bounds[1:]
    sizes = ends - starts
    multi = sizes > 1
    big = multi & (sizes > max_block)
    small = multi & ~big
    stats = {"blocks": len(sizes), "blocks_scored": int(small.sum()), "oversize_blocks": 0}
    s_starts, s_ends = starts[small], ends[small]
    slots = (sizes[small] * (sizes[small] - 1)) // 2
    kernel = score_groups_parallel if parallel else score_groups_serial
    compared = 0
    buf_i = buf_j = np.zeros(0, np.int64)
    buf_s = np.zeros(0, np.float64)
    g = 0
    while g < len(s_starts):
        # a chunk of whole groups with at most CHUNK_SLOTS slots (at least one group)
        cum = np.cumsum(slots[g:])
        stop = g + max(1, int(np.searchsorted(cum, CHUNK_SLOTS, side="right")))
        c_slots = slots[g:stop]
        off = np.zeros(len(c_slots), np.int64)
        np.cumsum(c_slots[:-1], out=off[1:])
        total = int(c_slots.sum())
        if total > len(buf_s):  # one set of buffers for every chunk: no fresh pages per chunk
            buf_i, buf_j = np.empty(total, np.int64), np.empty(total, np.int64)
            buf_s = np.empty(total, np.float64)
        oi, oj, os_ = buf_i[:total], buf_j[:total], buf_s[:total]
        kernel(
            s_starts[g:stop], s_ends[g:stop], off, members, party, filters, pop, dedupe, oi, oj, os_
        )
        compared += int((os_ >= 0).sum())
        if below is not None:
            sampled = os_[::SAMPLE_STRIDE]
            sampled = sampled[(sampled >= 0) & (sampled < threshold)]
            below += np.histogram(sampled, bins=SCORE_BINS, range=(0.0, 1.0))[0]
        keep = os_ >= threshold
        pool.add(oi[keep], oj[keep], os_[keep])
        g = stop
    big_idx = np.flatnonzero(big)
    if len(big_idx):
        warn(
            f"{len(big_idx)} block(s) exceed --max-block {max_block} (largest "
            f"{int(sizes[big_idx].max())} records); they are scored with the all-pairs kernel, "
            "not dropped"
        )
    seen: set[bytes] = set()  # member sets already scored: LSH bands repeat a block whole
    for gi in big_idx:
        idx = np.unique(members[starts[gi] : ends[gi]])
        stats["oversize_blocks"] += 1
        digest = idx.tobytes()  # exact (no hash collisions); as large as the block itself
        if digest in seen:  # the same records: the same pairs, already in the pool
            stats["oversize_repeats_skipped"] = stats.get("oversize_repeats_skipped", 0) + 1
            continue
        seen.add(digest)
        compared += _allpairs_subset(idx, filters, party, threshold, dedupe, parallel, pool)
    left, right, score = pool.result()
    stats["compared_with_repeats"] = compared
    return left, right, score, stats


def _allpairs_subset(
    idx: np.ndarray,
    filters: np.ndarray,
    party: np.ndarray,
    threshold: float,
    dedupe: bool,
    parallel: bool,
    pool: PairPool,
) -> int:
    """Score every pair of the records ``idx`` (an oversize block) into ``pool``; returns the
    comparisons made."""
    idx = np.unique(idx)
    sub_party = party[idx]
    order = np.argsort(sub_party, kind="stable")
    idx = idx[order]
    sub_party = sub_party[order]
    _parties, starts = np.unique(sub_party, return_index=True)
    offsets = np.append(starts, len(idx)).astype(np.int64)
    sub = np.ascontiguousarray(filters[idx])
    return exhaustive(sub, offsets, threshold, dedupe, parallel, pool=pool, index=idx)[3]


def bands_rows(threshold: float, target_recall: float, length: int, fill: float) -> tuple[int, int]:
    """LSH (bands, rows) for the threshold (:func:`linkage.kernels.lsh.choose_bands_rows`);
    raises :class:`LinkageError` naming the option when no setting reaches the recall."""
    from linkage.kernels.lsh import choose_bands_rows

    try:
        return choose_bands_rows(threshold, target_recall, length, fill=fill)
    except ValueError as exc:
        raise LinkageError(f"--blocking lsh at --threshold {threshold}: {exc}") from None


def lsh_keys(
    filters: np.ndarray,
    threshold: float,
    seed: int,
    target_recall: float,
    parallel: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(keys, owners) of every record's LSH band keys."""
    from linkage.kernels.lsh import band_keys, sample_positions

    length = filters.shape[1] * 64
    fill = float(np.bitwise_count(filters).sum()) / max(1, filters.size * 64)
    fill = min(max(fill, 0.05), 0.95)
    bands, rows = bands_rows(threshold, target_recall, length, fill)
    pos = sample_positions(length, bands, rows, seed)
    bk = band_keys(filters, pos, parallel=parallel)  # (n, bands)
    n = filters.shape[0]
    keys = bk.reshape(-1)
    owners = np.repeat(np.arange(n, dtype=np.int64), bands)
    return keys, owners, {"bands": bands, "rows": rows, "fill": round(fill, 3)}


def generate(
    filters: np.ndarray,
    offsets: np.ndarray,
    party: np.ndarray,
    pop: np.ndarray,
    threshold: float,
    *,
    strategy: str,
    dedupe: bool,
    block_keys: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
    parallel: bool,
    max_block: int = DEFAULT_MAX_BLOCK,
    target_recall: float = 0.995,
    dedupe_threshold: float | None = None,
    warn: Warn,
    max_candidates: int | None = DEFAULT_MAX_CANDIDATES,
    rank: Callable[[], np.ndarray] | None = None,
    warn_cap: bool = True,
) -> Candidates:
    """Scored pairs >= threshold between parties and, with dedupe, >= dedupe_threshold
    (default: threshold) within a party; each record keeps at most ``max_candidates`` pairs
    (None: all), ties by ``rank()`` (int64[N] record order; default the record index).
    A cap that bites is in ``detail`` (``capped_records``, ``max_candidates``) and, with
    ``warn_cap``, warned about."""
    from linkage.tlu.topk import TOPK_MAX, topk_blocks

    sizes = [int(offsets[p + 1] - offsets[p]) for p in range(len(offsets) - 1)]
    possible = possible_pairs(sizes, dedupe)
    if strategy == "auto":
        strategy = choose_strategy(sizes, dedupe, block_keys is not None)
    t0 = time.perf_counter()
    t_cross, t_in = threshold, threshold if dedupe_threshold is None else dedupe_threshold

    def accept(lft: np.ndarray, rgt: np.ndarray, sc: np.ndarray) -> np.ndarray:
        return np.where(party[lft] == party[rgt], sc >= t_in, sc >= t_cross)

    pool = PairPool(max_candidates, rank, accept if dedupe else None, unique=strategy == "none")
    if strategy == "none":
        _, _, _, compared = exhaustive(
            filters, offsets, threshold, dedupe, parallel, dedupe_threshold, pool=pool
        )
        left, right, score = pool.result()
        detail: dict[str, object] = {}
    elif strategy in ("keys", "lsh"):
        if strategy == "keys":
            if block_keys is None:
                raise LinkageError(
                    "--blocking keys needs block keys in every file (the schema defines none); "
                    "use --blocking lsh"
                )
            keys, owners = block_keys
            detail = {}
        else:
            keys, owners, detail = lsh_keys(filters, threshold, seed, target_recall, parallel)
        t_low = threshold
        if dedupe and dedupe_threshold is not None:
            t_low = min(threshold, dedupe_threshold)
        below = np.zeros(SCORE_BINS, np.int64)
        if max_candidates is not None and max_candidates <= TOPK_MAX:  # lists, not a pool
            left, right, score, stats, capped = topk_blocks(
                keys, owners, filters, pop, party,
                np.arange(len(filters)) if rank is None else rank(),
                t_cross=t_cross, t_within=t_in if dedupe else t_cross, dedupe=dedupe,
                k=max_candidates, parallel=parallel, max_block=max_block, warn=warn,
                below=below, stride=SAMPLE_STRIDE,
            )  # fmt: skip
            if capped:
                if warn_cap:
                    warn(cap_warning(capped, max_candidates, None))
                detail.update(capped_records=capped, max_candidates=max_candidates)
        else:
            left, right, score, stats = score_blocks(
                keys, owners, filters, pop, party, t_low, dedupe, parallel, max_block, warn,
                below, pool=pool,
            )  # fmt: skip
        detail.update(stats)
        compared = int(stats["compared_with_repeats"])
        if dedupe and dedupe_threshold is not None and dedupe_threshold != threshold:
            within = party[left] == party[right]
            keep = np.where(within, score >= dedupe_threshold, score >= threshold)
            left, right, score = left[keep], right[keep], score[keep]
    else:
        raise LinkageError(f"unknown blocking {strategy!r} (choose {', '.join(STRATEGIES)})")
    note = pool.warning()
    if note:
        if warn_cap:
            warn(note)
        detail["capped_records"] = len(pool.capped)
        detail["max_candidates"] = max_candidates
    detail["seconds"] = round(time.perf_counter() - t0, 3)
    return Candidates(
        left, right, score, strategy, min(compared, possible), possible, detail,
        below=below if strategy in ("keys", "lsh") else None,
    )  # fmt: skip
