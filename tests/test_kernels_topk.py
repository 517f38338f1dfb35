"""Per-record top-k block scoring (linkage.kernels.topk, linkage.tlu.topk) vs plain references.

The kernels keep each record's k best partners (score, then the partner's rank) among the
pairs of records sharing a block, in one list per chunk of blocks, merged afterwards; the
pairs kept (by either record) are emitted once, sorted. Checked against a Python reference
for any split into chunks, against the pair pool's cap (``generate`` with and without the
lists), for row-order independence, and with the JIT off.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_parity import same_with_and_without_jit
from test_kernels_blocking import make_filters as blocking_filters

from linkage.kernels.topk import emit_pairs, merge_topk, topk_groups_parallel, topk_groups_serial
from linkage.tlu.blocking import cap_pairs, generate
from linkage.tlu.topk import TOPK_MAX, _chunk_bounds

ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BINS, STRIDE = 10, 3


def dice_ref(x: np.ndarray, y: np.ndarray) -> float:
    c = int(np.bitwise_count(x & y).sum())
    den = int(np.bitwise_count(x).sum()) + int(np.bitwise_count(y).sum())
    return 0.0 if den == 0 else 2.0 * c / den


def groups_of(keys: np.ndarray, owners: np.ndarray, n: int):
    """What the wrapper builds: groups (members of one key, size > 1) in key order."""
    order = np.lexsort((owners, keys))
    sk, members = keys[order], owners[order].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]]) if len(sk) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(sk)].astype(np.int64)[: len(starts)]
    use = ends - starts > 1
    return starts[use].astype(np.int64), ends[use], members


def topk_ref(keys, owners, party, filters, rank, dedupe, t_cross, t_within, k):
    """(left, right, score, records over k, compared, below histogram): plain Python. Pairs
    found in several groups are scored in each (slots numbered over all groups)."""
    n = len(filters)
    starts, ends, members = groups_of(keys, owners, n)
    best: dict[tuple[int, int], float] = {}
    below = np.zeros(BINS, np.int64)
    compared = q = 0
    t_low = min(t_cross, t_within) if dedupe else t_cross
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        g = members[lo:hi].tolist()
        for a in range(len(g)):
            for b in range(a + 1, len(g)):
                i, j = g[a], g[b]
                slot, q = q, q + 1
                same = party[i] == party[j]
                if i == j or (same and not dedupe):
                    continue
                s = dice_ref(filters[i], filters[j])
                compared += 1
                if s >= (t_within if same else t_cross):
                    best[(min(i, j), max(i, j))] = s
                elif s < t_low and slot % STRIDE == 0:
                    below += np.histogram([s], bins=BINS, range=(0.0, 1.0))[0]
    lists: dict[int, list] = defaultdict(list)
    for (i, j), s in best.items():
        lists[i].append((-s, rank[j], j))
        lists[j].append((-s, rank[i], i))
    keep = set()
    over = 0
    for i, lst in lists.items():
        lst.sort()
        over += len(lst) > k
        keep.update((min(i, j), max(i, j)) for _, _, j in lst[:k])
    pairs = sorted(keep)
    return (
        np.array([p[0] for p in pairs], np.int64),
        np.array([p[1] for p in pairs], np.int64),
        np.array([best[p] for p in pairs], np.float64),
        over,
        compared,
        below,
    )


def run_topk(kernel, keys, owners, party, filters, rank, dedupe, tc, tw, k, cuts=(), scratch=8):
    n = filters.shape[0]
    starts, ends, members = groups_of(keys, owners, n)
    g = len(starts)  # chunks may be empty
    bounds = np.array([0, *sorted(min(x, g) for x in cuts), g], np.int64)
    c = len(bounds) - 1
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int64) if n else np.zeros(0, np.int64)
    hj = np.zeros((c, n, k), np.int32)
    hs = np.zeros((c, n, k), np.float64)
    hr = np.zeros((c, n, k), np.int32)
    cnt = np.zeros((c, n), np.int64)
    worst = np.zeros((c, n), np.int64)
    over = np.zeros((c, n), np.bool_)
    compared = np.zeros(c, np.int64)
    below = np.zeros((c, BINS), np.int64)
    kernel(starts, ends, bounds, members, party, filters, pop, rank, dedupe,
           tc, tw, STRIDE, np.linspace(0.0, 1.0, BINS + 1), scratch,
           hj, hs, hr, cnt, worst, over, compared, below)  # fmt: skip
    if c > 1:
        merge_topk(hj, hs, hr, cnt, worst, over)
    assert (cnt[0] <= k).all()
    left, right, score = emit_pairs(hj, hs, cnt)
    return left, right, score, int(over[0].sum()), int(compared.sum()), below.sum(0)


def make_filters(rng: np.random.Generator, n: int, words: int, kind: str) -> np.ndarray:
    """The blocking tests' filters, plus "coarse": few distinct filters (many equal scores,
    ties go by rank)."""
    out = blocking_filters(rng, n, words, "random" if kind == "coarse" else kind)
    if kind == "coarse":
        out = out[rng.integers(0, min(3, n), n)] if n else out
    return out


@st.composite
def keyed(draw: st.DrawFn) -> tuple:
    """(keys, owners, party, filters, rank, chunk cuts): records holding 0-3 keys each."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    words = draw(st.sampled_from([1, 3, 16]))
    n = draw(st.integers(0, 31))
    kind = draw(st.sampled_from(["random", "coarse", "zero", "one"]))
    filters = make_filters(rng, n, words, kind)
    party = rng.integers(0, draw(st.integers(1, 3)), n).astype(np.int32)
    per = rng.integers(0, 4, n)
    owners = np.repeat(np.arange(n, dtype=np.int64), per)
    keys = rng.integers(0, draw(st.integers(1, 9)), len(owners)).astype(np.uint64)
    cuts = draw(st.lists(st.integers(0, 12), max_size=3))
    return keys, owners, party, filters, rng.permutation(n).astype(np.int64), cuts


@SETTINGS
@given(
    keyed(),
    st.booleans(),
    st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    st.sampled_from([0.0, 0.6, 1.0]),
    st.integers(1, 5),
    st.sampled_from([0, 3, 512]),
)
def test_topk_matches_reference(data, dedupe, tc, tw, k, scratch):
    """Any chunking; blocks scored through the scratch matrix (scratch >= block size), by
    scoring each pair twice (scratch 0), or a mix (3)."""
    keys, owners, party, filters, rank, cuts = data
    want = topk_ref(keys, owners, party, filters, rank, dedupe, tc, tw, k)
    for kernel, c in ((topk_groups_serial, cuts), (topk_groups_serial, ()),
                      (topk_groups_parallel, cuts)):  # fmt: skip
        got = run_topk(kernel, keys, owners, party, filters, rank, dedupe, tc, tw, k, c, scratch)
        for g, w in zip(got[:3], want[:3], strict=True):
            np.testing.assert_array_equal(g, w)  # scores exact: the same float64 formula
        assert got[3:5] == want[3:5]
        np.testing.assert_array_equal(got[5], want[5])


def test_topk_empty_and_all_equal():
    z = np.zeros(0, np.int64)
    got = run_topk(topk_groups_serial, z.astype(np.uint64), z, np.zeros(0, np.int32),
                   np.zeros((0, 2), np.uint64), z, True, 0.5, 0.5, 3)  # fmt: skip
    assert all(len(a) == 0 for a in got[:3]) and got[3:5] == (0, 0)
    n = 9  # identical all-one filters sharing two keys, two parties: every score 1.0
    filters = np.full((n, 2), ONES, np.uint64)
    party = (np.arange(n) % 2).astype(np.int32)
    rank = np.arange(n)[::-1].copy()
    owners = np.repeat(np.arange(n), 2)
    keys = np.tile(np.array([5, 2], np.uint64), n)
    left, right, score, over, compared, _ = run_topk(
        topk_groups_serial, keys, owners, party, filters, rank, False, 0.5, 0.5, 2
    )
    assert over == n and compared == 2 * 4 * 5 and (score == 1.0).all()  # each pair twice
    # each record keeps the two highest-index records of the other party (lowest rank)
    want = topk_ref(keys, owners, party, filters, rank, False, 0.5, 0.5, 2)
    np.testing.assert_array_equal(left, want[0])
    np.testing.assert_array_equal(right, want[1])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 61), st.integers(1, 40), st.booleans())
def test_emit_pairs_matches_numpy(seed, n, k, hub):
    """Every listed pair once, left < right, sorted; long rows (a hub listed by many) too."""
    rng = np.random.default_rng(seed)
    hj = np.zeros((1, n, k), np.int32)
    hs = np.zeros((1, n, k), np.float64)
    cnt = np.zeros((1, n), np.int64)
    score = rng.integers(0, 9, (n, n)) / 8.0
    score = np.maximum(score, score.T)  # one score per pair, whichever record lists it
    for i in range(n):
        others = np.delete(np.arange(n), i)
        m = min(len(others), int(rng.integers(0, k + 1)))
        js = rng.choice(others, m, replace=False) if m else others[:0]
        if hub and i and 0 not in js and m:
            js[0] = 0  # record 0's row collects many entries
        cnt[0, i] = m
        hj[0, i, :m] = js
        hs[0, i, :m] = score[i, js]
    left, right, got = emit_pairs(hj, hs, cnt)
    lst = [(min(i, int(j)), max(i, int(j))) for i in range(n) for j in hj[0, i, : cnt[0, i]]]
    want = np.array(sorted(set(lst)), np.int64).reshape(-1, 2)
    np.testing.assert_array_equal(np.c_[left, right], want)
    np.testing.assert_array_equal(got, score[want[:, 0], want[:, 1]])
    assert left.dtype == right.dtype == np.int64 and got.dtype == np.float64


def test_chunk_bounds_balance_slots():
    sizes = np.array([2, 100, 3, 3, 50, 2, 2], np.int64)
    b = _chunk_bounds(sizes, 2)
    assert b[0] == 0 and b[-1] == len(sizes) and (np.diff(b) > 0).all()
    assert _chunk_bounds(sizes, 1).tolist() == [0, len(sizes)]
    assert _chunk_bounds(np.zeros(0, np.int64), 4).tolist() == [0, 0]


def _setup(seed: int, n: int = 400, words: int = 3):
    rng = np.random.default_rng(seed)
    filters = make_filters(rng, n, words, "random")
    filters[n // 2 : n // 2 + 60] = filters[:60]  # near-identical across the parties
    filters[n // 2 : n // 2 + 60, 0] ^= rng.integers(0, 2**20, 60).astype(np.uint64)
    offsets = np.array([0, n // 2, n], np.int64)
    party = np.repeat(np.arange(2, dtype=np.int32), [n // 2, n - n // 2])
    keys = rng.integers(0, 12, 3 * n).astype(np.uint64)
    owners = np.repeat(np.arange(n, dtype=np.int64), 3)
    return filters, offsets, party, keys, owners, rng.permutation(n).astype(np.int64)


def _gen(filters, offsets, party, keys, owners, rank, k, dedupe, parallel, max_block=5000):
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int64)
    return generate(filters, offsets, party, pop, 0.4, strategy="keys", dedupe=dedupe,
                    block_keys=(keys, owners), seed=0, parallel=parallel, warn=lambda m: None,
                    max_candidates=k, rank=lambda: rank, dedupe_threshold=0.55 if dedupe else None,
                    max_block=max_block)  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**31), st.booleans(), st.booleans(), st.integers(1, TOPK_MAX))
def test_generate_lists_equal_the_pool_cap(seed, dedupe, parallel, k):
    """The lists keep exactly the pairs the pool's cap keeps (cap_pairs over all pairs)."""
    filters, offsets, party, keys, owners, rank = _setup(seed)
    got = _gen(filters, offsets, party, keys, owners, rank, k, dedupe, parallel)
    full = _gen(filters, offsets, party, keys, owners, rank, None, dedupe, parallel)
    keep = cap_pairs(full.left, full.right, full.score, rank, k)
    np.testing.assert_array_equal(got.left, full.left[keep])
    np.testing.assert_array_equal(got.right, full.right[keep])
    np.testing.assert_array_equal(got.score, full.score[keep])
    assert got.compared == full.compared
    np.testing.assert_array_equal(got.below, full.below)
    small = _gen(filters, offsets, party, keys, owners, rank, k, dedupe, parallel, max_block=10)
    np.testing.assert_array_equal(small.left, got.left)  # oversize blocks: the same pairs
    np.testing.assert_array_equal(small.right, got.right)


def test_generate_lists_independent_of_row_order():
    filters, offsets, party, keys, owners, rank = _setup(3)
    n = len(filters)
    base = _gen(filters, offsets, party, keys, owners, rank, 4, True, True)
    # shuffle rows within each party (party order stays; records keep their rank)
    perm = np.concatenate([np.random.default_rng(1).permutation(np.arange(a, b))
                           for a, b in ((0, n // 2), (n // 2, n))])  # fmt: skip
    inv = np.argsort(perm)
    got = _gen(filters[perm], offsets, party[perm], keys, inv[owners], rank[perm], 4, True, True)
    a = set(zip(base.left.tolist(), base.right.tolist(), strict=True))
    b = {
        (min(perm[i], perm[j]), max(perm[i], perm[j]))
        for i, j in zip(got.left, got.right, strict=True)
    }
    assert a == {(int(i), int(j)) for i, j in b}


def test_topk_same_without_jit():
    same_with_and_without_jit(
        "import numpy as np\n"
        "from linkage.tlu.topk import topk_blocks\n"
        "rng = np.random.default_rng(5)\n"
        "n = 60\n"
        "f = rng.integers(0, 2**63, (n, 2), dtype=np.uint64)\n"
        "f[30:] = f[:30]; f[40:, 0] ^= np.uint64(0xFFFF)\n"
        "party = np.repeat(np.arange(2, dtype=np.int32), 30)\n"
        "pop = np.bitwise_count(f).sum(1).astype(np.int64)\n"
        "keys = rng.integers(0, 4, 2 * n).astype(np.uint64)\n"
        "owners = np.repeat(np.arange(n), 2)\n"
        "below = np.zeros(10, np.int64)\n"
        "l, r, s, st, over = topk_blocks(keys, owners, f, pop, party, rng.permutation(n),\n"
        "    t_cross=0.4, t_within=0.6, dedupe=True, k=3, parallel=True, max_block=8,\n"
        "    warn=lambda m: None, below=below, stride=2, scratch=20)\n"
        "np.savez(OUT, l=l, r=r, s=s, below=below, over=np.array([over]))\n"
    )
