"""Tests for linkage.solve and linkage.kernels.cluster."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import InputError, LinkageError
from linkage.kernels.cluster import (
    connected_components,
    connected_components_reference,
    greedy_cluster,
    greedy_cluster_reference,
    greedy_edge_order,
    lsap_min,
    max_weight_matching_reference,
    rank_then_pair_order,
    sort_score_ties,
)
from linkage.tlu.solver import SolveError, assign_entity_ids, entity_sizes, solve

TIE_SCORES = [0.0, 0.25, 0.5, 0.75, 1.0]


@st.composite
def graphs(
    draw: st.DrawFn,
    max_n: int = 24,
    max_m: int = 60,
    parties: tuple[int, int] = (1, 6),
    min_n: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random scored graph: (left, right, score, party); ties are common."""
    n = draw(st.integers(min_n, max_n))
    p = draw(st.integers(*parties))
    party = np.array(draw(st.lists(st.integers(0, p - 1), min_size=n, max_size=n)), np.int64)
    if n < 2:
        e = np.zeros(0, np.int64)
        return e, e.copy(), np.zeros(0), party
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda t: t[0] != t[1]),
            max_size=max_m,
        )
    )
    tie = draw(st.booleans())
    score_st = st.sampled_from(TIE_SCORES) if tie else st.floats(0.0, 1.0)
    score = np.array(draw(st.lists(score_st, min_size=len(pairs), max_size=len(pairs))), float)
    left = np.array([a for a, _ in pairs], np.int64)
    right = np.array([b for _, b in pairs], np.int64)
    return left, right, score, party


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labelings induce the same partition."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# ------------------------------------------------------------------------------------------------
# kernels vs references
# ------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(graphs(), st.booleans())
def test_greedy_kernel_matches_reference(g, dedupe):
    left, right, score, party = g
    order = greedy_edge_order(left, right, score)
    labels, accepted = greedy_cluster(left, right, party, order, dedupe)
    ref_labels, ref_accepted = greedy_cluster_reference(left, right, score, party, dedupe)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(accepted, ref_accepted)


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_edge_order_is_the_documented_key(g):
    left, right, score, _ = g
    want = sorted(
        range(len(left)),
        key=lambda e: (-score[e], min(left[e], right[e]), max(left[e], right[e]), e),
    )
    np.testing.assert_array_equal(greedy_edge_order(left, right, score), want)
    # both tie-break kernels, whatever the mean tie run length
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    pairkey = (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)
    so = np.argsort(-score, kind="stable")[::-1].copy()  # ties in reverse order
    so = so[np.argsort(-score[so], kind="stable")]
    ss = score[so]
    fixed = so.copy()
    sort_score_ties(fixed, ss, pairkey)
    np.testing.assert_array_equal(fixed, want)
    rank = np.zeros(len(score), np.int64)
    if len(score):
        rank[so] = np.r_[0, np.cumsum(ss[1:] != ss[:-1])]
    pair_order = np.argsort(pairkey, kind="stable")[::-1].copy()
    pair_order = pair_order[np.argsort(pairkey[pair_order], kind="stable")]
    got = rank_then_pair_order(pair_order, pairkey, rank, int(rank.max(initial=0)) + 1)
    np.testing.assert_array_equal(got, want)
    # the lexsort branch for indices >= 2**32 sorts the same way
    big = np.int64(1) << np.int64(33)
    np.testing.assert_array_equal(greedy_edge_order(left + big, right + big, score), want)


@pytest.mark.parametrize("n_scores", [1, 3, 1000])
def test_edge_order_long_tie_runs_and_duplicates(n_scores):
    rng = np.random.default_rng(n_scores)
    m = 800
    left, right = rng.integers(0, 30, m), rng.integers(30, 60, m)  # many duplicate pairs
    score = rng.integers(0, n_scores, m) / max(n_scores - 1, 1)
    want = sorted(
        range(m), key=lambda e: (-score[e], min(left[e], right[e]), max(left[e], right[e]), e)
    )
    np.testing.assert_array_equal(greedy_edge_order(left, right, score), want)
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    pairkey = (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)
    so = np.argsort(-score).astype(np.int64)
    sort_score_ties(so, score[so], pairkey)
    np.testing.assert_array_equal(so, want)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.data())
def test_connected_components_matches_reference(g, data):
    left, right, _, party = g
    use = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(left), max_size=len(left))), dtype=bool
    )
    n = len(party)
    np.testing.assert_array_equal(
        connected_components(left, right, use, n),
        connected_components_reference(left, right, use, n),
    )


def brute_lsap(cost: np.ndarray) -> float:
    r, c = cost.shape
    return min(sum(cost[i, p[i]] for i in range(r)) for p in itertools.permutations(range(c), r))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(0, 3), st.data())
def test_lsap_min_is_optimal(r, extra, data):
    c = r + extra
    vals = (
        st.sampled_from([0.0, -1.0, -0.5, 0.5, 2.0])
        if data.draw(st.booleans())
        else st.floats(-10, 10)
    )
    cost = np.array(data.draw(st.lists(vals, min_size=r * c, max_size=r * c))).reshape(r, c)
    col4row = lsap_min(cost)
    assert len(set(col4row.tolist())) == r
    assert ((col4row >= 0) & (col4row < c)).all()
    got = float(cost[np.arange(r), col4row].sum())
    assert got == pytest.approx(brute_lsap(cost), abs=1e-9)


@pytest.mark.parametrize("fill", [0.0, 1.0, -1.0])
def test_lsap_constant_matrices(fill):
    for r, c in [(1, 1), (3, 3), (2, 7)]:
        col4row = lsap_min(np.full((r, c), fill))
        assert sorted(set(col4row.tolist())) == sorted(col4row.tolist())


# ------------------------------------------------------------------------------------------------
# solve: invariants
# ------------------------------------------------------------------------------------------------


def check_labels(labels: np.ndarray, n: int) -> None:
    assert labels.shape == (n,) and labels.dtype == np.int64
    if n:
        # dense 0..E-1, numbered by smallest record index
        firsts = [int(np.flatnonzero(labels == k)[0]) for k in range(int(labels.max()) + 1)]
        assert firsts == sorted(firsts)


@settings(max_examples=200, deadline=None)
@given(graphs(), st.booleans())
def test_solve_invariants(g, dedupe):
    left, right, score, party = g
    res = solve(left, right, score, party, dedupe=dedupe)
    n = len(party)
    check_labels(res.labels, n)
    np.testing.assert_array_equal(res.pair_mask, res.labels[left] == res.labels[right])
    assert not (res.accepted & ~res.pair_mask).any()
    # accepted edges form a spanning forest of the entities
    assert int(res.accepted.sum()) == n - res.n_entities
    if not dedupe:
        for k in range(res.n_entities):
            members = party[res.labels == k]
            assert len(set(members.tolist())) == len(members)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.booleans(), st.randoms(use_true_random=False))
def test_solve_independent_of_edge_order(g, dedupe, rnd):
    left, right, score, party = g
    res = solve(left, right, score, party, dedupe=dedupe)
    perm = np.arange(len(left))
    rnd.shuffle(perm)
    swap = np.array([rnd.random() < 0.5 for _ in perm], dtype=bool)
    l2 = np.where(swap, right[perm], left[perm])
    r2 = np.where(swap, left[perm], right[perm])
    res2 = solve(l2, r2, score[perm], party, dedupe=dedupe)
    np.testing.assert_array_equal(res.labels, res2.labels)
    np.testing.assert_array_equal(res.pair_mask[perm], res2.pair_mask)
    res3 = solve(left, right, score, party, dedupe=dedupe)
    np.testing.assert_array_equal(res.labels, res3.labels)


@settings(max_examples=150, deadline=None)
@given(graphs(min_n=2), st.booleans(), st.data())
def test_edge_below_all_others_never_splits(g, dedupe, data):
    left, right, score, party = g
    n = len(party)
    a = data.draw(st.integers(0, n - 1))
    b = data.draw(st.integers(0, n - 1).filter(lambda x: x != a))
    if len(score) and float(score.min()) / 2 >= float(score.min()):
        score = 0.5 + score / 2  # min score ~0: make room strictly below it (order preserved)
    low = float(score.min()) / 2 if len(score) else 0.5
    before = solve(left, right, score, party, dedupe=dedupe).labels
    after = solve(np.r_[left, a], np.r_[right, b], np.r_[score, low], party, dedupe=dedupe).labels
    for k in range(int(before.max()) + 1):
        assert len(set(after[before == k].tolist())) == 1


def test_two_party_greedy_is_one_to_one():
    # a0=0, a1=1 (party 0); b0=2, b1=3 (party 1)
    party = np.array([0, 0, 1, 1])
    left = np.array([0, 0, 1, 1])
    right = np.array([2, 3, 2, 3])
    score = np.array([0.9, 0.8, 0.85, 0.1])
    res = solve(left, right, score, party)
    np.testing.assert_array_equal(res.pair_mask, [True, False, False, True])
    np.testing.assert_array_equal(res.accepted, res.pair_mask)
    np.testing.assert_array_equal(res.labels, [0, 1, 0, 1])
    opt = solve(left, right, score, party, solver="optimal")
    # optimal: 0.8 + 0.85 = 1.65 > 0.9 + 0.1
    np.testing.assert_array_equal(opt.pair_mask, [False, True, True, False])
    np.testing.assert_array_equal(opt.labels, [0, 1, 1, 0])


def test_multi_party_entities_in_any_subset():
    # parties 0,1,2; records: 0:p0 1:p1 2:p2 3:p0 4:p2 5:p1
    party = np.array([0, 1, 2, 0, 2, 1])
    left = np.array([0, 1, 0, 3, 3, 2])
    right = np.array([1, 2, 3, 4, 1, 5])
    score = np.array([0.95, 0.9, 0.99, 0.7, 0.6, 0.5])
    res = solve(left, right, score, party)
    # 0-3 first (both party 0): rejected; 0-1, 1-2 merge {0,1,2}; 3-4 merges {3,4};
    # 3-1 rejected (party 0 twice); 2-5 rejected (party 1 twice)
    np.testing.assert_array_equal(res.labels, [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(res.pair_mask, [True, True, False, True, False, False])
    dd = solve(left, right, score, party, dedupe=True)
    # dedupe: 0-3 (same party) merges {0,3}; 0-1, 1-2 join; 3-4 and 2-5 are cross-party
    # edges that would bring a second p2 / p1 record in: rejected
    np.testing.assert_array_equal(dd.labels, [0, 0, 0, 0, 1, 2])


def test_single_party_dedupe_and_no_dedupe():
    party = np.zeros(4, np.int64)
    left, right, score = np.array([0, 2]), np.array([1, 3]), np.array([0.9, 0.8])
    np.testing.assert_array_equal(solve(left, right, score, party).labels, [0, 1, 2, 3])
    np.testing.assert_array_equal(
        solve(left, right, score, party, dedupe=True).labels, [0, 0, 1, 1]
    )


@pytest.mark.parametrize("solver", ["greedy", "optimal"])
def test_empty_graphs(solver):
    e = np.zeros(0, np.int64)
    res = solve(e, e, np.zeros(0), e, solver=solver)
    assert res.labels.shape == (0,) and res.pair_mask.shape == (0,) and res.n_entities == 0
    res = solve(e, e, np.zeros(0), np.array([0, 1, 1]), solver=solver)
    np.testing.assert_array_equal(res.labels, [0, 1, 2])


# ------------------------------------------------------------------------------------------------
# optimal solver
# ------------------------------------------------------------------------------------------------


def two_party(g):
    left, right, score, party = g
    return left, right, score, party % 2


@settings(max_examples=200, deadline=None)
@given(graphs(max_n=8, max_m=11, parties=(1, 2)))
def test_optimal_equals_brute_force(g):
    left, right, score, party = g
    res = solve(left, right, score, party, solver="optimal")
    cross = party[left] != party[right]
    want = max_weight_matching_reference(left[cross], right[cross], score[cross])
    got = float(score[res.accepted].sum())
    assert got == pytest.approx(want, abs=1e-9)
    # a matching across parties, one record per party per entity
    ends = np.r_[left[res.accepted], right[res.accepted]]
    assert len(set(ends.tolist())) == len(ends)
    assert (party[left[res.accepted]] != party[right[res.accepted]]).all()
    np.testing.assert_array_equal(
        res.labels, connected_components_reference(left, right, res.accepted, len(party))
    )


@settings(max_examples=100, deadline=None)
@given(graphs(max_n=40, max_m=120, parties=(2, 2)), st.randoms(use_true_random=False))
def test_optimal_at_least_greedy_and_order_free(g, rnd):
    left, right, score, party = g
    opt = solve(left, right, score, party, solver="optimal")
    grd = solve(left, right, score, party)
    assert score[opt.accepted].sum() >= score[grd.accepted].sum() - 1e-9
    perm = np.arange(len(left))
    rnd.shuffle(perm)
    opt2 = solve(right[perm], left[perm], score[perm], party, solver="optimal")
    np.testing.assert_array_equal(opt.labels, opt2.labels)


def test_optimal_oversized_component_falls_back_to_greedy_with_warning():
    party = np.array([0, 0, 1, 1])
    left = np.array([0, 0, 1, 1])
    right = np.array([2, 3, 2, 3])
    score = np.array([0.9, 0.8, 0.85, 0.1])
    with pytest.warns(RuntimeWarning, match="GREEDILY"):
        res = solve(left, right, score, party, solver="optimal", max_component_side=1)
    np.testing.assert_array_equal(res.labels, solve(left, right, score, party).labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve(left, right, score, party, solver="optimal", max_component_side=2)


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------

OK: dict[str, Any] = dict(left=[0, 1], right=[2, 3], score=[0.5, 0.6], party=[0, 0, 1, 1])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(right=[2]), "equal lengths"),
        (dict(score=[0.5]), "equal lengths"),
        (dict(left=[0, 4]), "outside 0..3"),
        (dict(right=[-1, 3]), "outside 0..3"),
        (dict(left=[2, 1]), "to itself"),
        (dict(score=[0.5, np.nan]), "not finite"),
        (dict(score=[0.5, np.inf]), "not finite"),
        (dict(score=[1.5, 0.5]), "outside \\[0, 1\\]"),
        (dict(score=[-0.1, 0.5]), "outside \\[0, 1\\]"),
        (dict(left=[0.0, 1.0]), "integers"),
        (dict(left=[[0, 1]]), "one-dimensional"),
        (dict(score=["a", "b"]), "numeric"),
        (dict(party=[0, 0, -1, 1]), ">= 0"),
        (dict(party=[0, 0, 64, 1]), "at most 64 parties"),
    ],
)
def test_validation_errors(change, match):
    kw = {**OK, **change}
    with pytest.raises(InputError, match=match):
        solve(kw["left"], kw["right"], kw["score"], kw["party"])


def test_party_indices_up_to_63_with_or_without_dedupe():
    for dedupe in (False, True):
        with pytest.raises(InputError, match="at most 64 parties"):
            solve([0], [1], [0.9], [100, 200], dedupe=dedupe)
    res = solve([0], [1], [0.9], [63, 0])
    np.testing.assert_array_equal(res.labels, [0, 0])


def test_solver_option_errors():
    with pytest.raises(SolveError, match="unknown solver"):
        solve(OK["left"], OK["right"], OK["score"], OK["party"], solver="magic")  # type: ignore[arg-type]
    with pytest.raises(SolveError, match="dedupe"):
        solve(OK["left"], OK["right"], OK["score"], OK["party"], solver="optimal", dedupe=True)
    with pytest.raises(SolveError, match="two parties"):
        solve(OK["left"], OK["right"], OK["score"], [0, 1, 2, 1], solver="optimal")
    assert issubclass(SolveError, LinkageError)


# ------------------------------------------------------------------------------------------------
# entity ids and sizes
# ------------------------------------------------------------------------------------------------


def test_entity_sizes():
    np.testing.assert_array_equal(entity_sizes(np.array([0, 1, 0, 2, 0])), [3, 1, 1])
    assert entity_sizes(np.zeros(0, np.int64)).shape == (0,)
    with pytest.raises(InputError):
        entity_sizes([-1, 0])


def test_assign_entity_ids():
    labels = np.array([0, 1, 0, 2, 3, 3])
    a = assign_entity_ids(labels, seed=7)
    assert a.shape == (4,)
    assert all(len(x) == 32 and int(x, 16) >= 0 and x == x.lower() for x in a.tolist())
    assert len(set(a.tolist())) == 4
    np.testing.assert_array_equal(a, assign_entity_ids(labels, seed=7))
    assert not np.array_equal(a, assign_entity_ids(labels, seed=8))
    s1, s2 = assign_entity_ids(labels), assign_entity_ids(labels)
    assert s1.shape == (4,) and not np.array_equal(s1, s2)
    assert assign_entity_ids(np.zeros(0, np.int64), seed=1).shape == (0,)
    # ids depend on the entity count and seed only
    np.testing.assert_array_equal(assign_entity_ids(np.array([3, 2, 1, 0]), seed=7), a)


# ------------------------------------------------------------------------------------------------
# pure-Python mode
# ------------------------------------------------------------------------------------------------


def test_kernels_work_without_jit():
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.tlu.solver import solve
        from linkage.kernels.cluster import greedy_cluster_reference
        rng = np.random.default_rng(1)
        n, m = 30, 80
        party = rng.integers(0, 3, n)
        l, r = rng.integers(0, n, m), rng.integers(0, n, m)
        keep = l != r
        l, r = l[keep], r[keep]
        s = rng.choice([0.3, 0.6, 0.9], l.size)
        res = solve(l, r, s, party)
        ref, acc = greedy_cluster_reference(l, r, s, party, False)
        assert (res.labels == ref).all() and (res.accepted == acc).all()
        opt = solve(l, r, s, party % 2, solver="optimal")
        assert s[opt.accepted].sum() >= s[solve(l, r, s, party % 2).accepted].sum() - 1e-9
        print("ok")
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
