"""Dice similarity of packed Bloom filters: candidate pairs, all pairs above a threshold, top-k.

Filters are C-contiguous ``uint64`` arrays of shape ``(n, W)`` (``W = L / 64``). For filters
``x``, ``y`` with popcounts ``|x|``, ``|y|`` and ``c = |x ∧ y|``::

    Dice(x, y) = 2 c / (|x| + |y|)        (0.0 when |x| + |y| = 0)

computed exactly as the float64 expression ``2.0 * c / (|x| + |y|)`` everywhere, so kernels and
references agree bit for bit.

All-pairs scheme (``allpairs_body``): both sides are sorted by popcount; the second operand is
transposed into blocks of ``BLOCK`` = 128 filters, ``bt[k, w, j] = b[k * BLOCK + j, w]``, so that
one row of ``a`` against one block is ``W`` broadcast-and-popcount steps over 16 AVX-512
registers of counts (:func:`block_counts`). Exact pruning:

* popcount window: ``Dice <= 2 min(|x|, |y|) / (|x| + |y|)``, so a row tile only scans the
  blocks of ``b`` whose popcounts lie within the bound (tables ``qlo``/``qhi``);
* count threshold: a pair passes iff ``c >= cmin[|x| + |y|]`` where ``cmin[s]`` is the least
  count whose float64 score reaches ``t``; ``cmin`` is non-decreasing, so one vector max over a
  block's counts rejects the block for that row unless ``max c >= cmin[|x| + min |y|]``.

The drivers :func:`allpairs_dice`, :func:`dedup_dice`, :func:`topk_dice` validate, sort,
transpose, run the kernels over row tiles (serial or ``prange``) and map indices back.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import prange

from linkage.kernels.popcount import popcount64, popcount_rows, serial_and_parallel

__all__ = [
    "BLOCK",
    "KERNELS",
    "TILE_ROWS",
    "allpairs_dice",
    "block_counts",
    "count_threshold_table",
    "dedup_dice",
    "dice_pairs",
    "dice_pairs_parallel",
    "dice_pairs_serial",
    "popcount_window_tables",
    "topk_dice",
    "transpose_blocks",
]

BLOCK = 128
"""Filters of the second operand per transposed block (16 registers of 8 x uint64 counts)."""

TILE_ROWS = 256
"""Rows of the first operand per tile (the unit of parallelism and of overflow retry)."""

_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------------------------
# block_counts: one row against one transposed block, counts kept in vector registers


def _block_counts_py(a: np.ndarray, i: int, bt: np.ndarray, jb: int, cnt: np.ndarray) -> np.uint64:
    """Pure-numpy fallback of :func:`block_counts` (used when ``NUMBA_DISABLE_JIT=1``)."""
    x = a[i][:, None] & bt[jb]
    cnt[:BLOCK] = np.unpackbits(x.view(np.uint8).reshape(x.shape[0], BLOCK, 8), axis=2).sum(
        axis=(0, 2), dtype=np.uint64
    )
    return np.uint64(cnt[:BLOCK].max()) if BLOCK else np.uint64(0)


if getattr(numba.config, "DISABLE_JIT", 0):
    block_counts = _block_counts_py
else:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.core import types as nbtypes
    from numba.extending import intrinsic

    _VW = 8  # uint64 lanes per vector (one zmm register)

    def _is_u64_c(t: Any, ndim: int) -> bool:
        return (
            isinstance(t, nbtypes.Array)
            and t.ndim == ndim
            and t.layout == "C"
            and t.dtype == nbtypes.uint64
        )

    @intrinsic
    def block_counts(typingctx: Any, a: Any, i: Any, bt: Any, jb: Any, cnt: Any) -> Any:
        """cnt[j] = sum_w popcount(a[i, w] & bt[jb, w, j]) for j < BLOCK; returns max_j cnt[j].

        a: (n, W) C uint64; bt: (nblocks, W, BLOCK) C uint64; cnt: C uint64 of length >= BLOCK.
        The BLOCK counts live in BLOCK/8 vectors of <8 x i64> for the whole loop over w;
        bounds are the caller's responsibility (no checks).
        """
        if not (_is_u64_c(a, 2) and _is_u64_c(bt, 3) and _is_u64_c(cnt, 1)):
            return None
        if not (isinstance(i, nbtypes.Integer) and isinstance(jb, nbtypes.Integer)):
            return None
        sig = nbtypes.uint64(a, i, bt, jb, cnt)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aty, ity, btty, jbty, cty = signature.args
            av, iv, btv, jbv, cv = args
            arr_a = context.make_array(aty)(context, builder, av)
            arr_b = context.make_array(btty)(context, builder, btv)
            arr_c = context.make_array(cty)(context, builder, cv)
            i64 = ir.IntType(64)
            i32 = ir.IntType(32)
            vty = ir.VectorType(i64, _VW)
            nvec = BLOCK // _VW
            nw = cgutils.unpack_tuple(builder, arr_a.shape, 2)[1]
            row = context.cast(builder, iv, ity, nbtypes.intp)
            blk = context.cast(builder, jbv, jbty, nbtypes.intp)
            aptr = builder.gep(arr_a.data, [builder.mul(row, nw)])
            bptr = builder.gep(
                arr_b.data, [builder.mul(blk, builder.mul(nw, ir.Constant(i64, BLOCK)))]
            )
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty]), f"llvm.ctpop.v{_VW}i64"
            )
            accs = [cgutils.alloca_once_value(builder, ir.Constant(vty, None)) for _ in range(nvec)]
            with cgutils.for_range(builder, nw) as loop:
                w = loop.index
                aw = builder.load(builder.gep(aptr, [w]))
                undef = ir.Constant(vty, ir.Undefined)
                splat = builder.insert_element(undef, aw, ir.Constant(i32, 0))
                splat = builder.shuffle_vector(
                    splat, undef, ir.Constant(ir.VectorType(i32, _VW), None)
                )
                brow = builder.gep(bptr, [builder.mul(w, ir.Constant(i64, BLOCK))])
                for v in range(nvec):
                    p = builder.bitcast(
                        builder.gep(brow, [ir.Constant(i64, v * _VW)]), vty.as_pointer()
                    )
                    bv = builder.load(p, align=8)
                    c = builder.call(ctpop, [builder.and_(splat, bv)])
                    builder.store(builder.add(builder.load(accs[v]), c), accs[v])
            vals = [builder.load(acc) for acc in accs]
            for v in range(nvec):
                p = builder.bitcast(
                    builder.gep(arr_c.data, [ir.Constant(i64, v * _VW)]), vty.as_pointer()
                )
                builder.store(vals[v], p, align=8)
            # max over the vectors, then over the lanes
            while len(vals) > 1:
                nxt = []
                for k in range(0, len(vals) - 1, 2):
                    x, y = vals[k], vals[k + 1]
                    nxt.append(builder.select(builder.icmp_unsigned(">", x, y), x, y))
                if len(vals) % 2:
                    nxt.append(vals[-1])
                vals = nxt
            m = builder.extract_element(vals[0], ir.Constant(i32, 0))
            for lane in range(1, _VW):
                e = builder.extract_element(vals[0], ir.Constant(i32, lane))
                m = builder.select(builder.icmp_unsigned(">", m, e), m, e)
            return m

        return sig, codegen


# --------------------------------------------------------------------------------------------
# Candidate pairs


def _dice_pairs_body(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, pa: np.ndarray, pb: np.ndarray
) -> np.ndarray:
    """out[k] = 2 c_k / (pa[ia[k]] + pb[ib[k]]), c_k = sum_w popcount(a[ia[k], w] & b[ib[k], w]).

    0.0 where the denominator is 0. No bounds checks (the caller validates).
    """
    m = ia.shape[0]
    nw = a.shape[1]
    out = np.empty(m, dtype=np.float64)
    for k in prange(m):
        x = ia[k]
        y = ib[k]
        c = np.uint64(0)
        for w in range(nw):
            c += popcount64(a[x, w] & b[y, w])
        s = np.int64(pa[x]) + np.int64(pb[y])
        out[k] = 2.0 * np.float64(c) / np.float64(s) if s > 0 else 0.0
    return out


dice_pairs_serial, dice_pairs_parallel = serial_and_parallel(_dice_pairs_body)


# --------------------------------------------------------------------------------------------
# All pairs above a threshold (one tile of rows of `a` per outer iteration)


def _allpairs_body(
    a: np.ndarray,
    pa: np.ndarray,
    perm_a: np.ndarray,
    bt: np.ndarray,
    pb: np.ndarray,
    perm_b: np.ndarray,
    cmin: np.ndarray,
    qlo: np.ndarray,
    qhi: np.ndarray,
    tile_starts: np.ndarray,
    tile_rows: int,
    dedup: bool,
    cap: int,
    counts: np.ndarray,
    out_r: np.ndarray,
    out_c: np.ndarray,
    out_s: np.ndarray,
) -> None:
    """Emit every pair (i, j) with Dice(a[i], b[j]) >= t, tile by tile.

    a (n, W) and pb (m,) are sorted by popcount (pa, pb); bt is b transposed into blocks.
    Pair passes iff c >= cmin[pa[i] + pb[j]]. Tile k covers rows tile_starts[k] ..
    +tile_rows; it writes at most ``cap`` pairs at out_*[k * cap:] as (perm_a[i], perm_b[j],
    score) and sets counts[k] to the number of pairs it found (> cap means it overflowed: the
    caller reruns that tile with capacity counts[k]). With ``dedup`` (a is b), only j > i, and
    the pair is written as (min, max) of the two original indices.
    """
    n = a.shape[0]
    ntiles = tile_starts.shape[0]
    for k in prange(ntiles):
        i0 = tile_starts[k]
        i1 = min(n, i0 + tile_rows)
        base = k * cap
        found = 0
        cnt = np.empty(BLOCK, dtype=np.uint64)
        q0 = np.int64(qlo.shape[0])
        q1 = np.int64(-1)
        for i in range(i0, i1):
            q0 = min(q0, np.int64(qlo[pa[i]]))
            q1 = max(q1, np.int64(qhi[pa[i]]))
        j0 = int(np.searchsorted(pb, q0, side="left"))
        j1 = int(np.searchsorted(pb, q1, side="right"))
        if dedup:
            j0 = max(j0, i0 + 1)
        if j0 < j1:
            for jb in range(j0 // BLOCK, (j1 - 1) // BLOCK + 1):
                jlo = max(jb * BLOCK, j0)
                jhi = min(jb * BLOCK + BLOCK, j1)
                pbmin = np.int64(pb[jlo])
                for i in range(i0, i1):
                    if dedup and jhi <= i + 1:
                        continue
                    p = np.int64(pa[i])
                    mx = block_counts(a, i, bt, jb, cnt)
                    if mx < cmin[p + pbmin]:
                        continue
                    js = max(jlo, i + 1) if dedup else jlo
                    for j in range(js, jhi):
                        c = cnt[j - jb * BLOCK]
                        s = p + np.int64(pb[j])
                        if c >= cmin[s]:
                            if found < cap:
                                pos = base + found
                                x = perm_a[i]
                                y = perm_b[j]
                                if dedup and y < x:
                                    x, y = y, x
                                out_r[pos] = x
                                out_c[pos] = y
                                out_s[pos] = 2.0 * np.float64(c) / np.float64(s) if s > 0 else 0.0
                            found += 1
        counts[k] = found


allpairs_serial, allpairs_parallel = serial_and_parallel(_allpairs_body)


# --------------------------------------------------------------------------------------------
# Top-k per row


def _topk_body(
    a: np.ndarray,
    pa: np.ndarray,
    bt: np.ndarray,
    pb: np.ndarray,
    perm_b: np.ndarray,
    cmin: np.ndarray,
    qlo: np.ndarray,
    qhi: np.ndarray,
    tile_starts: np.ndarray,
    tile_rows: int,
    top_j: np.ndarray,
    top_s: np.ndarray,
) -> None:
    """For each (sorted) row i keep the k best (score, -perm_b[j]) with score >= t.

    top_j (n, k) int64 starts at -1 and top_s (n, k) float64 at -1.0; on return row i holds
    its best pairs by score descending, ties by lower original index perm_b[j], padded with
    -1 / -1.0.
    """
    n = a.shape[0]
    kk = top_j.shape[1]
    ntiles = tile_starts.shape[0]
    for k in prange(ntiles):
        i0 = tile_starts[k]
        i1 = min(n, i0 + tile_rows)
        cnt = np.empty(BLOCK, dtype=np.uint64)
        q0 = np.int64(qlo.shape[0])
        q1 = np.int64(-1)
        for i in range(i0, i1):
            q0 = min(q0, np.int64(qlo[pa[i]]))
            q1 = max(q1, np.int64(qhi[pa[i]]))
        j0 = int(np.searchsorted(pb, q0, side="left"))
        j1 = int(np.searchsorted(pb, q1, side="right"))
        if kk == 0 or j0 >= j1:
            continue
        for jb in range(j0 // BLOCK, (j1 - 1) // BLOCK + 1):
            jlo = max(jb * BLOCK, j0)
            jhi = min(jb * BLOCK + BLOCK, j1)
            pbmin = np.int64(pb[jlo])
            for i in range(i0, i1):
                p = np.int64(pa[i])
                mx = block_counts(a, i, bt, jb, cnt)
                if mx < cmin[p + pbmin]:
                    continue
                for j in range(jlo, jhi):
                    c = cnt[j - jb * BLOCK]
                    s = p + np.int64(pb[j])
                    if c < cmin[s]:
                        continue
                    sc = 2.0 * np.float64(c) / np.float64(s) if s > 0 else 0.0
                    y = perm_b[j]
                    # insertion into the row's sorted list; slot kk-1 is the worst kept
                    last = kk - 1
                    ls = top_s[i, last]
                    lj = top_j[i, last]
                    if lj >= 0 and (sc < ls or (sc == ls and y > lj)):
                        continue
                    pos = last
                    while pos > 0:
                        ps = top_s[i, pos - 1]
                        pj = top_j[i, pos - 1]
                        if pj >= 0 and (ps > sc or (ps == sc and pj < y)):
                            break
                        top_s[i, pos] = ps
                        top_j[i, pos] = pj
                        pos -= 1
                    top_s[i, pos] = sc
                    top_j[i, pos] = y


topk_serial, topk_parallel = serial_and_parallel(_topk_body)


# --------------------------------------------------------------------------------------------
# Tables (exact float64 predicates) and layout helpers


def _passes(c: np.ndarray, s: np.ndarray, t: float) -> np.ndarray:
    """float64 score 2c/s >= t, with score 0.0 where s == 0 (elementwise)."""
    c = np.asarray(c, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(s > 0, 2.0 * c / np.where(s > 0, s, 1.0), 0.0)
    return score >= t


def count_threshold_table(t: float, length: int) -> np.ndarray:
    """cmin[s] for s in 0..2L: least c >= 0 with float64(2c/s) >= t (uint64).

    For s = 0 the score is 0.0 whatever c: cmin[0] = 0 if t <= 0 else 1 (c is always 0 there,
    so 1 never passes, and 1 <= cmin[1] keeps the table non-decreasing). Entries that no count
    reaches (t > 2) are 2^64 - 1.
    """
    s = np.arange(2 * length + 1, dtype=np.int64)
    c = np.maximum(np.floor(t * s / 2.0).astype(np.int64) - 2, 0) if t > 0 else np.zeros_like(s)
    for _ in range(8):
        fail = ~_passes(c, s, t) & (s > 0) & (c <= s)
        if not fail.any():
            break
        c[fail] += 1
    else:  # pragma: no cover - floor(t s / 2) - 2 is within a few counts of the answer
        raise AssertionError("count_threshold_table did not converge")
    out = c.astype(np.uint64)
    out[(s > 0) & ~_passes(c, s, t)] = _U64_MAX
    out[0] = 0 if t <= 0 else 1
    # non-decreasing by construction; make sure of it
    out = np.maximum.accumulate(out)
    return out


def popcount_window_tables(t: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """qlo[p], qhi[p] for p in 0..L: the popcounts q that can reach Dice >= t with p.

    q is feasible iff float64(2 min(p, q) / (p + q)) >= t (score 0.0 for p + q = 0), the
    bound Dice <= 2 min(|x|, |y|) / (|x| + |y|) since c <= min. qlo[p] = least feasible q,
    qhi[p] = greatest (qlo = L + 1, qhi = -1 when none). Exact: every pair that passes has its
    q inside [qlo[p], qhi[p]].
    """
    p = np.arange(length + 1, dtype=np.int64)[:, None]
    q = np.arange(length + 1, dtype=np.int64)[None, :]
    qlo = np.full(length + 1, length + 1, dtype=np.int64)
    qhi = np.full(length + 1, -1, dtype=np.int64)
    step = max(1, (1 << 22) // (length + 1))
    for r0 in range(0, length + 1, step):
        pp = p[r0 : r0 + step]
        feas = _passes(np.minimum(pp, q), pp + q, t)
        anyf = feas.any(axis=1)
        lo = np.argmax(feas, axis=1)
        hi = length - np.argmax(feas[:, ::-1], axis=1)
        qlo[r0 : r0 + step] = np.where(anyf, lo, length + 1)
        qhi[r0 : r0 + step] = np.where(anyf, hi, -1)
    return qlo, qhi


@functools.lru_cache(maxsize=32)
def threshold_tables(t: float, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cmin, qlo, qhi) for (t, L), computed once: many small all-pairs calls (oversize
    blocks) share them. The arrays are read-only."""
    cmin = count_threshold_table(t, length)
    qlo, qhi = popcount_window_tables(t, length)
    for arr in (cmin, qlo, qhi):
        arr.setflags(write=False)
    return cmin, qlo, qhi


def transpose_blocks(b: np.ndarray) -> np.ndarray:
    """bt[k, w, j] = b[k * BLOCK + j, w]; zero filters pad the last block.

    Shape (ceil(m / BLOCK), W, BLOCK), C-contiguous uint64.
    """
    m, nw = b.shape
    nblk = -(-m // BLOCK)
    pad = np.zeros((nblk * BLOCK, nw), dtype=np.uint64)
    pad[:m] = b
    return np.ascontiguousarray(pad.reshape(nblk, BLOCK, nw).transpose(0, 2, 1))


# --------------------------------------------------------------------------------------------
# Drivers (validation, sorting, overflow retry)


def _check_filters(x: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint64 or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D numpy uint64 array of packed filters (n, L/64)")
    return np.ascontiguousarray(x)


def _check_threshold(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {t!r}")
    return t


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"filter lengths differ: {a.shape[1] * 64} bits vs {b.shape[1] * 64} bits")


def _check_indexed_pairs(a: Any, b: Any, ia: Any, ib: Any) -> tuple[np.ndarray, ...]:
    """(a, b, ia, ib) checked for the pair kernels (one filter length, rows in range)."""
    a = _check_filters(a, "a")
    b = _check_filters(b, "b")
    _check_pair(a, b)
    ia, ib = (np.ascontiguousarray(v, dtype=np.int64) for v in (ia, ib))
    if ia.shape != ib.shape or ia.ndim != 1:
        raise ValueError("ia and ib must be 1-D index arrays of equal length")
    if ia.size and (ia.min() < 0 or ia.max() >= a.shape[0]):
        raise ValueError(f"ia holds indices outside 0..{a.shape[0] - 1}")
    if ib.size and (ib.min() < 0 or ib.max() >= b.shape[0]):
        raise ValueError(f"ib holds indices outside 0..{b.shape[0] - 1}")
    return a, b, ia, ib


class _Sorted:
    """One operand sorted by popcount: filters, popcounts (int32), permutation (int64)."""

    def __init__(self, x: np.ndarray) -> None:
        p = popcount_rows(x) if x.shape[0] else np.zeros(0, dtype=np.int32)
        self.perm = np.argsort(p, kind="stable").astype(np.int64)
        self.x = np.ascontiguousarray(x[self.perm])
        self.p = np.ascontiguousarray(p[self.perm])


def _tile_order(n: int, tile_rows: int, parallel: bool) -> np.ndarray:
    """Tile start rows; with ``parallel``, interleaved so that static chunks balance threads."""
    starts = np.arange(0, n, tile_rows, dtype=np.int64)
    if parallel and starts.shape[0] > 1:
        nt = max(1, numba.get_num_threads())
        starts = np.concatenate([starts[r::nt] for r in range(nt)])
    return starts


def _run_allpairs(
    sa: _Sorted,
    sb: _Sorted,
    t: float,
    dedup: bool,
    parallel: bool,
    capacity: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, nw = sa.x.shape
    length = nw * 64
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if n == 0 or sb.x.shape[0] == 0:
        return empty
    cmin, qlo, qhi = threshold_tables(t, length)
    bt = transpose_blocks(sb.x)
    kernel = allpairs_parallel if parallel else allpairs_serial
    starts = _tile_order(n, TILE_ROWS, parallel)
    cap = int(capacity) if capacity is not None else 4096
    if cap < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity!r}")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while starts.shape[0]:
        nt = starts.shape[0]
        counts = np.zeros(nt, dtype=np.int64)
        out_r = np.empty(nt * cap, dtype=np.int64)
        out_c = np.empty(nt * cap, dtype=np.int64)
        out_s = np.empty(nt * cap, dtype=np.float64)
        kernel(
            sa.x, sa.p, sa.perm, bt, sb.p, sb.perm, cmin, qlo, qhi,
            starts, TILE_ROWS, dedup, cap, counts, out_r, out_c, out_s,
        )  # fmt: skip
        ok = counts <= cap
        keep = np.flatnonzero(ok)
        if keep.size:
            idx = (keep[:, None] * cap + np.arange(cap)[None, :])[
                np.arange(cap)[None, :] < counts[keep][:, None]
            ]
            parts.append((out_r[idx], out_c[idx], out_s[idx]))
        starts = starts[~ok]
        if starts.shape[0]:
            cap = int(counts[~ok].max())
    rows = np.concatenate([p[0] for p in parts]) if parts else empty[0]
    cols = np.concatenate([p[1] for p in parts]) if parts else empty[1]
    scores = np.concatenate([p[2] for p in parts]) if parts else empty[2]
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], scores[order]


def allpairs_dice(
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    *,
    parallel: bool = True,
    capacity: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i, j) with Dice(a[i], b[j]) >= threshold, sorted by (i, j).

    Returns (rows int64, cols int64, scores float64). ``capacity`` is the initial number of
    pairs buffered per tile of ``TILE_ROWS`` rows (tiles that overflow are rerun with the exact
    size they need).
    """
    a = _check_filters(a, "a")
    b = _check_filters(b, "b")
    _check_pair(a, b)
    t = _check_threshold(threshold)
    return _run_allpairs(_Sorted(a), _Sorted(b), t, False, parallel, capacity)


def dedup_dice(
    a: np.ndarray,
    threshold: float,
    *,
    parallel: bool = True,
    capacity: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i < j within one set with Dice(a[i], a[j]) >= threshold, sorted by (i, j)."""
    a = _check_filters(a, "a")
    t = _check_threshold(threshold)
    s = _Sorted(a)
    return _run_allpairs(s, s, t, True, parallel, capacity)


def topk_dice(
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    threshold: float,
    *,
    parallel: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a, the k best rows of b with Dice >= threshold.

    Returns (cols int64 (n, k), scores float64 (n, k)), each row by score descending, ties by
    lower column index, padded with -1 and -1.0.
    """
    a = _check_filters(a, "a")
    b = _check_filters(b, "b")
    _check_pair(a, b)
    t = _check_threshold(threshold)
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    k = int(k)
    n, nw = a.shape
    top_j = np.full((n, k), -1, dtype=np.int64)
    top_s = np.full((n, k), -1.0, dtype=np.float64)
    if n == 0 or b.shape[0] == 0 or k == 0:
        return top_j, top_s
    sa, sb = _Sorted(a), _Sorted(b)
    length = nw * 64
    kernel = topk_parallel if parallel else topk_serial
    kernel(
        sa.x, sa.p, transpose_blocks(sb.x), sb.p, sb.perm,
        *threshold_tables(t, length),
        _tile_order(n, TILE_ROWS, parallel), TILE_ROWS, top_j, top_s,
    )  # fmt: skip
    out_j = np.empty_like(top_j)
    out_s = np.empty_like(top_s)
    out_j[sa.perm] = top_j
    out_s[sa.perm] = top_s
    return out_j, out_s


def dice_pairs(
    a: np.ndarray,
    b: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    pa: np.ndarray | None = None,
    pb: np.ndarray | None = None,
    *,
    parallel: bool = False,
) -> np.ndarray:
    """Dice of candidate pairs (a[ia[k]], b[ib[k]]) as float64[m]; validated wrapper.

    pa, pb (popcounts of a and b) are computed when not given.
    """
    a, b, ia, ib = _check_indexed_pairs(a, b, ia, ib)
    pa = popcount_rows(a) if pa is None else np.ascontiguousarray(pa, dtype=np.int32)
    pb = popcount_rows(b) if pb is None else np.ascontiguousarray(pb, dtype=np.int32)
    if pa.shape != (a.shape[0],) or pb.shape != (b.shape[0],):
        raise ValueError("pa and pb must hold one popcount per filter of a and b")
    kernel = dice_pairs_parallel if parallel else dice_pairs_serial
    return kernel(a, b, ia, ib, pa, pb)


KERNELS: dict[str, Any] = {
    "block_counts": block_counts,
    "dice_pairs_serial": dice_pairs_serial,
    "dice_pairs_parallel": dice_pairs_parallel,
    "allpairs_serial": allpairs_serial,
    "allpairs_parallel": allpairs_parallel,
    "topk_serial": topk_serial,
    "topk_parallel": topk_parallel,
}
