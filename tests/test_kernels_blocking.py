"""Blocking kernels (linkage.kernels.blocking) vs plain Python/numpy references written here.

group_bounds: run starts of a sorted key array. score_groups_serial/parallel: every member pair
of every group, at the slot a (2s - a - 1) / 2 + (b - a - 1) after the group's offset, with
Dice or -1.0 (self pair, or same party without dedupe). dedupe_sorted_pairs: first of each run
of equal (i, j).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.kernels.blocking import (
    KERNELS,
    dedupe_sorted_pairs,
    group_bounds,
    score_groups_parallel,
    score_groups_serial,
)

ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- references -------------------------------------------------------------------------------
def group_bounds_ref(keys: np.ndarray) -> np.ndarray:
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return np.array([*starts, len(keys)] if len(keys) else [0], dtype=np.int64)


def dice_ref(x: np.ndarray, y: np.ndarray) -> float:
    c = int(np.bitwise_count(x & y).sum())
    den = int(np.bitwise_count(x).sum()) + int(np.bitwise_count(y).sum())
    return 0.0 if den == 0 else 2.0 * c / den


def score_groups_ref(
    starts: np.ndarray,
    ends: np.ndarray,
    members: np.ndarray,
    party: np.ndarray,
    filters: np.ndarray,
    dedupe: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(slot offsets, i, j, score) in group order, pair (a, b) of a group in row-major a < b."""
    oi: list[int] = []
    oj: list[int] = []
    os_: list[float] = []
    offs: list[int] = []
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        offs.append(len(oi))
        g = members[lo:hi].tolist()
        for a in range(len(g)):
            for b in range(a + 1, len(g)):
                i, j = g[a], g[b]
                oi.append(min(i, j))
                oj.append(max(i, j))
                if i == j or (not dedupe and party[i] == party[j]):
                    os_.append(-1.0)
                else:
                    os_.append(dice_ref(filters[i], filters[j]))
    return (
        np.array(offs, np.int64),
        np.array(oi, np.int64),
        np.array(oj, np.int64),
        np.array(os_, np.float64),
    )


def dedupe_sorted_pairs_ref(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    seen = set()
    keep = []
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        keep.append((a, b) not in seen)
        seen.add((a, b))
    return np.array(keep, dtype=bool)


# -- data -------------------------------------------------------------------------------------
def make_filters(rng: np.random.Generator, n: int, words: int, kind: str) -> np.ndarray:
    if kind == "zero":
        return np.zeros((n, words), np.uint64)
    if kind == "one":
        return np.full((n, words), ONES, np.uint64)
    bits = rng.random((n, 64 * words)) < rng.uniform(0.0, 1.0, (n, 1))
    out = np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()
    if kind == "mixed" and n >= 3:
        out[0] = 0
        out[1] = ONES
        out[2] = out[min(3, n - 1)]  # an exact duplicate -> Dice 1.0
    return out


@st.composite
def grouped(draw: st.DrawFn) -> tuple:
    """Random groups over n records: (starts, ends, members, party, filters)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    words = draw(st.sampled_from([8, 16, 32]))
    n = draw(st.integers(0, 30))
    kind = draw(st.sampled_from(["random", "mixed", "zero", "one"]))
    n_parties = draw(st.integers(1, 4))
    filters = make_filters(rng, n, words, kind)
    party = rng.integers(0, n_parties, n).astype(np.int32)
    sizes = draw(st.lists(st.integers(0, 8), max_size=8)) if n else []
    members_l: list[int] = []
    starts_l: list[int] = []
    for s in sizes:
        starts_l.append(len(members_l))
        # mostly distinct members; sometimes a repeated record (a self pair)
        g = rng.choice(n, size=min(s, n), replace=False).tolist()
        if g and draw(st.booleans()):
            g.append(g[0])
        members_l.extend(g)
    ends_l = [*starts_l[1:], len(members_l)] if starts_l else []
    return (
        np.array(starts_l, np.int64),
        np.array(ends_l, np.int64),
        np.array(members_l, np.int64),
        party,
        filters,
    )


def run_kernel(kernel, starts, ends, members, party, filters, dedupe, slot_off=None):
    sizes = ends - starts
    slots = sizes * (sizes - 1) // 2
    if slot_off is None:
        slot_off = np.zeros(len(slots), np.int64)
        if len(slots):
            np.cumsum(slots[:-1], out=slot_off[1:])
    total = int(slots.sum()) if len(slots) else 0
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int64)
    oi = np.full(total, -7, np.int64)
    oj = np.full(total, -7, np.int64)
    os_ = np.full(total, -7.0, np.float64)
    kernel(starts, ends, slot_off, members, party, filters, pop, dedupe, oi, oj, os_)
    return slot_off, oi, oj, os_


# -- group_bounds -----------------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.integers(0, 5), max_size=60), st.sampled_from([np.uint64, np.int64]))
def test_group_bounds_matches_reference(values, dtype):
    keys = np.sort(np.array(values, dtype=dtype))
    got = group_bounds(keys)
    want = group_bounds_ref(keys)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # every run holds one key and neighbouring runs differ
    for lo, hi in itertools.pairwise(got.tolist()):
        assert hi > lo and (keys[lo:hi] == keys[lo]).all()


def test_group_bounds_edges():
    np.testing.assert_array_equal(group_bounds(np.zeros(0, np.uint64)), [0])
    np.testing.assert_array_equal(group_bounds(np.array([7], np.uint64)), [0, 1])
    np.testing.assert_array_equal(group_bounds(np.array([3, 3, 3], np.uint64)), [0, 3])
    big = np.array([0, 2**63, 2**64 - 1, 2**64 - 1], np.uint64)  # full uint64 range
    np.testing.assert_array_equal(group_bounds(big), [0, 1, 2, 4])


# -- score_groups -----------------------------------------------------------------------------
@SETTINGS
@given(grouped(), st.booleans())
def test_score_groups_matches_reference(data, dedupe):
    starts, ends, members, party, filters = data
    ref_off, ri, rj, rs = score_groups_ref(starts, ends, members, party, filters, dedupe)
    for kernel in (score_groups_serial, score_groups_parallel):
        off, oi, oj, os_ = run_kernel(kernel, starts, ends, members, party, filters, dedupe)
        np.testing.assert_array_equal(off, ref_off)
        np.testing.assert_array_equal(oi, ri)
        np.testing.assert_array_equal(oj, rj)
        np.testing.assert_array_equal(os_, rs)  # exact: same float64 formula


@SETTINGS
@given(grouped())
def test_score_groups_slot_formula(data):
    """Pair (a, b) of a group of s lands at offset + a (2s - a - 1) / 2 + (b - a - 1)."""
    starts, ends, members, party, filters = data
    _, oi, oj, _ = run_kernel(score_groups_serial, starts, ends, members, party, filters, True)
    k = 0
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        s = hi - lo
        for a in range(s):
            for b in range(a + 1, s):
                slot = k + a * (2 * s - a - 1) // 2 + (b - a - 1)
                x, y = members[lo + a], members[lo + b]
                assert (oi[slot], oj[slot]) == (min(x, y), max(x, y))
        k += s * (s - 1) // 2


def test_score_groups_writes_only_its_slots():
    """Non-contiguous slot offsets: slots outside the groups are left untouched."""
    rng = np.random.default_rng(3)
    filters = make_filters(rng, 6, 16, "random")
    party = np.array([0, 1, 0, 1, 2, 2], np.int32)
    starts = np.array([0, 3], np.int64)
    ends = np.array([3, 6], np.int64)
    members = np.array([0, 1, 2, 3, 4, 5], np.int64)
    off = np.array([2, 10], np.int64)  # gaps before, between and after
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int64)
    for kernel in (score_groups_serial, score_groups_parallel):
        oi = np.full(15, -7, np.int64)
        oj = np.full(15, -7, np.int64)
        os_ = np.full(15, -7.0)
        kernel(starts, ends, off, members, party, filters, pop, False, oi, oj, os_)
        untouched = np.ones(15, bool)
        untouched[2:5] = untouched[10:13] = False
        assert (oi[untouched] == -7).all() and (os_[untouched] == -7.0).all()
        assert oi[2:5].tolist() == [0, 0, 1] and oj[2:5].tolist() == [1, 2, 2]
        assert os_[3] == -1.0  # records 0 and 2: same party
        assert os_[12] == -1.0  # records 4 and 5: same party
        assert os_[2] == dice_ref(filters[0], filters[1])


def test_score_groups_same_party_and_self_pairs():
    filters = np.full((3, 8), ONES, np.uint64)
    party = np.array([0, 0, 1], np.int32)
    starts = np.array([0], np.int64)
    ends = np.array([4], np.int64)
    members = np.array([0, 1, 2, 2], np.int64)  # record 2 twice: a self pair
    for dedupe, want in ((False, [-1.0, 1.0, 1.0, 1.0, 1.0, -1.0]),
                         (True, [1.0, 1.0, 1.0, 1.0, 1.0, -1.0])):  # fmt: skip
        for kernel in (score_groups_serial, score_groups_parallel):
            _, oi, oj, os_ = run_kernel(kernel, starts, ends, members, party, filters, dedupe)
            assert os_.tolist() == want
            assert oi.tolist() == [0, 0, 0, 1, 1, 2] and oj.tolist() == [1, 2, 2, 2, 2, 2]


def test_score_groups_all_zero_and_all_one():
    party = np.array([0, 1, 2], np.int32)
    starts, ends = np.array([0], np.int64), np.array([3], np.int64)
    members = np.arange(3, dtype=np.int64)
    for fill, want in ((np.uint64(0), 0.0), (ONES, 1.0)):
        for words in (8, 16, 32):
            filters = np.full((3, words), fill, np.uint64)
            for kernel in (score_groups_serial, score_groups_parallel):
                _, _, _, os_ = run_kernel(kernel, starts, ends, members, party, filters, False)
                assert os_.tolist() == [want] * 3


def test_score_groups_empty_and_singletons():
    filters = make_filters(np.random.default_rng(1), 4, 8, "random")
    party = np.zeros(4, np.int32)
    for starts, ends in (
        (np.zeros(0, np.int64), np.zeros(0, np.int64)),  # no groups
        (np.array([0, 1, 2], np.int64), np.array([1, 2, 3], np.int64)),  # single members
    ):
        for kernel in (score_groups_serial, score_groups_parallel):
            _, oi, _, _ = run_kernel(
                kernel, starts, ends, np.arange(3, dtype=np.int64), party, filters, True
            )
            assert oi.size == 0


# -- dedupe_sorted_pairs ----------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=50))
def test_dedupe_sorted_pairs_matches_reference(pairs):
    arr = np.array(sorted(pairs), np.int64).reshape(-1, 2)
    i, j = arr[:, 0].copy(), arr[:, 1].copy()
    got = dedupe_sorted_pairs(i, j)
    np.testing.assert_array_equal(got, dedupe_sorted_pairs_ref(i, j))
    kept = list(zip(i[got].tolist(), j[got].tolist(), strict=True))
    assert kept == sorted(set(pairs))


def test_dedupe_sorted_pairs_edges():
    e = np.zeros(0, np.int64)
    assert dedupe_sorted_pairs(e, e).size == 0
    one = np.array([5], np.int64)
    assert dedupe_sorted_pairs(one, one).tolist() == [True]
    i = np.array([1, 1, 1, 2], np.int64)
    j = np.array([2, 2, 3, 3], np.int64)  # (1,2) twice; same i different j; same j different i
    assert dedupe_sorted_pairs(i, j).tolist() == [True, False, True, True]


def test_kernel_registry():
    assert KERNELS["group_bounds"] is group_bounds
    assert KERNELS["score_groups_serial"] is score_groups_serial
    assert KERNELS["score_groups_parallel"] is score_groups_parallel
    assert KERNELS["dedupe_sorted_pairs"] is dedupe_sorted_pairs


# -- NUMBA_DISABLE_JIT ------------------------------------------------------------------------
def test_disable_jit_agrees():
    """The pure-Python paths (NUMBA_DISABLE_JIT=1) give the same results as the references."""
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.blocking import (
            dedupe_sorted_pairs, group_bounds, score_groups_parallel, score_groups_serial)
        import tests.test_kernels_blocking as T
        rng = np.random.default_rng(11)
        keys = np.sort(rng.integers(0, 6, 40).astype(np.uint64))
        assert np.array_equal(group_bounds(keys), T.group_bounds_ref(keys))
        filters = T.make_filters(rng, 12, 16, "mixed")
        party = rng.integers(0, 3, 12).astype(np.int32)
        starts = np.array([0, 5, 6], np.int64)
        ends = np.array([5, 6, 12], np.int64)
        members = np.concatenate([rng.permutation(12)[:11], [3]]).astype(np.int64)
        for dedupe in (False, True):
            want = T.score_groups_ref(starts, ends, members, party, filters, dedupe)
            for k in (score_groups_serial, score_groups_parallel):
                got = T.run_kernel(k, starts, ends, members, party, filters, dedupe)
                for g, w in zip(got, want):
                    assert np.array_equal(g, w), (g, w)
        i = np.array([0, 0, 1, 1, 1], np.int64); j = np.array([1, 1, 2, 2, 3], np.int64)
        assert np.array_equal(dedupe_sorted_pairs(i, j), T.dedupe_sorted_pairs_ref(i, j))
        print("ok")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=root)
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=root
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
