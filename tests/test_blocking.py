"""Candidate generation (linkage.tlu.blocking.generate) against brute-force all-pairs Dice.

``none`` must equal brute force exactly; ``keys`` and ``lsh`` must equal brute force restricted
to pairs that share a key (so every pair they report is a true pair with the same score);
oversize blocks are scored, not dropped; ``auto`` picks ``none`` for small inputs; LSH is
deterministic per seed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.errors import LinkageError
from linkage.tlu.blocking import (
    DEFAULT_MAX_BLOCK,
    EXHAUSTIVE_LIMIT,
    Candidates,
    choose_strategy,
    generate,
    lsh_keys,
    possible_pairs,
)

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


# -- data and references ----------------------------------------------------------------------
def population(
    seed: int, sizes: list[int], words: int = 16, entities: int = 40, noise: float = 0.04
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Filters of records grouped by party: noisy copies of a few base entities (so pairs near
    and above 0.8 exist), plus an all-zero and an all-one record where there is room.

    Returns (filters, offsets, party, entity).
    """
    rng = np.random.default_rng(seed)
    nbits = 64 * words
    base = rng.random((entities, nbits)) < rng.uniform(0.2, 0.45, (entities, 1))
    n = sum(sizes)
    ent = rng.integers(0, entities, n)
    flip = rng.random((n, nbits)) < rng.choice([0.0, noise / 2, noise, 2 * noise], (n, 1))
    bits = base[ent] ^ flip
    filters = np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()
    if n >= 4:
        filters[n // 2] = 0
        filters[n - 1] = ONES
        ent[n // 2] = ent[n - 1] = -1
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    party = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    return filters, offsets, party, ent


def dice_matrix(filters: np.ndarray) -> np.ndarray:
    inter = np.bitwise_count(filters[:, None, :] & filters[None, :, :]).sum(-1).astype(np.int64)
    pop = np.bitwise_count(filters).sum(-1).astype(np.int64)
    den = pop[:, None] + pop[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den == 0, 0.0, 2.0 * inter / np.maximum(den, 1))


def brute_force(
    filters: np.ndarray,
    party: np.ndarray,
    threshold: float,
    dedupe: bool,
    dedupe_threshold: float | None = None,
) -> dict[tuple[int, int], float]:
    """{(i, j): score} for i < j: different parties with Dice >= threshold; with dedupe also
    one party with Dice >= dedupe_threshold (default: threshold)."""
    d = dice_matrix(filters)
    n = len(filters)
    t_within = threshold if dedupe_threshold is None else dedupe_threshold
    same = party[:, None] == party[None, :]
    ok = np.triu(np.ones((n, n), bool), 1)
    ok &= np.where(same, dedupe & (d >= t_within), d >= threshold)
    i, j = np.nonzero(ok)
    return {(int(a), int(b)): float(d[a, b]) for a, b in zip(i, j, strict=True)}


def as_dict(c: Candidates) -> dict[tuple[int, int], float]:
    assert len(c.left) == len(c.right) == len(c.score)
    assert (c.left < c.right).all()
    pairs = list(zip(c.left.tolist(), c.right.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs), "a pair is reported twice"
    return dict(zip(pairs, c.score.tolist(), strict=True))


def sharing(keys: np.ndarray, owners: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (i < j) of records holding a common key (plain Python)."""
    by_key: dict[int, set[int]] = {}
    for k, o in zip(keys.tolist(), owners.tolist(), strict=True):
        by_key.setdefault(k, set()).add(o)
    out = set()
    for members in by_key.values():
        ms = sorted(members)
        for a in range(len(ms)):
            for b in range(a + 1, len(ms)):
                out.add((ms[a], ms[b]))
    return out


def random_block_keys(seed: int, ent: np.ndarray, space: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """1-3 keys per record: mostly derived from its entity (true pairs tend to share one),
    some random; now and then a record holds the same key twice."""
    rng = np.random.default_rng(seed)
    keys, owners = [], []
    for r, e in enumerate(ent.tolist()):
        for _ in range(int(rng.integers(1, 4))):
            k = (
                (e * 7 + int(rng.integers(0, 2))) % space
                if rng.random() < 0.7
                else rng.integers(0, space)
            )
            keys.append(int(k) * 0x9E3779B97F4A7C15 % 2**64)
            owners.append(r)
        if rng.random() < 0.1:
            keys.append(keys[-1])
            owners.append(r)
    return np.array(keys, np.uint64), np.array(owners, np.int64)


def run(
    filters: np.ndarray,
    offsets: np.ndarray,
    party: np.ndarray,
    threshold: float,
    strategy: str,
    *,
    dedupe: bool = False,
    block_keys: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    parallel: bool = False,
    max_block: int = DEFAULT_MAX_BLOCK,
    warnings: list[str] | None = None,
    dedupe_threshold: float | None = None,
    max_candidates: int | None = None,
) -> Candidates:
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int64)
    sink = warnings if warnings is not None else []
    return generate(
        np.ascontiguousarray(filters),
        offsets,
        party,
        pop,
        threshold,
        strategy=strategy,
        dedupe=dedupe,
        block_keys=block_keys,
        seed=seed,
        parallel=parallel,
        max_block=max_block,
        dedupe_threshold=dedupe_threshold,
        warn=sink.append,
        max_candidates=max_candidates,  # uncapped: these compare with brute force, capless
    )


@st.composite
def setups(draw: st.DrawFn) -> tuple:
    seed = draw(st.integers(0, 2**31))
    sizes = draw(st.lists(st.integers(0, 40), min_size=1, max_size=4))
    words = draw(st.sampled_from([8, 16, 32]))
    threshold = draw(st.sampled_from([0.0, 0.5, 0.8, 0.9, 1.0]) | st.floats(0.0, 1.0))
    dedupe = draw(st.booleans())
    parallel = draw(st.booleans())
    return seed, sizes, words, threshold, dedupe, parallel


# -- none ------------------------------------------------------------------------------------
@SETTINGS
@given(setups())
def test_none_equals_brute_force(setup):
    seed, sizes, words, threshold, dedupe, parallel = setup
    filters, offsets, party, _ = population(seed, sizes, words)
    c = run(filters, offsets, party, threshold, "none", dedupe=dedupe, parallel=parallel)
    assert c.strategy == "none"
    assert as_dict(c) == brute_force(filters, party, threshold, dedupe)  # same scores, exactly
    assert c.possible == possible_pairs(sizes, dedupe)
    assert c.compared == c.possible and c.reduction_ratio == 0.0


@pytest.mark.parametrize("dedupe", [False, True])
def test_none_many_parties_finds_true_pairs(dedupe):
    sizes = [60, 45, 70, 30]
    filters, offsets, party, _ = population(1, sizes)
    want = brute_force(filters, party, 0.8, dedupe)
    assert len(want) > 100  # the test data has plenty of pairs above the threshold
    for parallel in (False, True):
        c = run(filters, offsets, party, 0.8, "none", dedupe=dedupe, parallel=parallel)
        assert as_dict(c) == want
    if dedupe:
        assert any(party[i] == party[j] for i, j in want)  # within-party pairs are included


def test_possible_pairs_counts():
    assert possible_pairs([3, 4], False) == 12
    assert possible_pairs([3, 4], True) == 12 + 3 + 6
    assert possible_pairs([5], False) == 0
    assert possible_pairs([5], True) == 10
    assert possible_pairs([2, 3, 4], False) == 6 + 8 + 12


# -- keys -------------------------------------------------------------------------------------
@SETTINGS
@given(setups())
def test_keys_are_brute_force_pairs_sharing_a_key(setup):
    seed, sizes, words, threshold, dedupe, parallel = setup
    filters, offsets, party, ent = population(seed, sizes, words)
    bk = random_block_keys(seed, ent)
    c = run(
        filters, offsets, party, threshold, "keys", dedupe=dedupe, block_keys=bk, parallel=parallel
    )
    assert c.strategy == "keys"
    got = as_dict(c)
    truth = brute_force(filters, party, threshold, dedupe)
    for pair, score in got.items():  # subset property: a true pair with the same score
        assert truth[pair] == score
    share = sharing(*bk)
    assert got == {p: s for p, s in truth.items() if p in share}


def test_keys_need_block_keys():
    filters, offsets, party, _ = population(0, [5, 5])
    with pytest.raises(LinkageError, match="block keys"):
        run(filters, offsets, party, 0.8, "keys", block_keys=None)


def test_unknown_strategy():
    filters, offsets, party, _ = population(0, [5, 5])
    with pytest.raises(LinkageError, match="unknown blocking"):
        run(filters, offsets, party, 0.8, "magic")


# -- lsh --------------------------------------------------------------------------------------
@SETTINGS
@given(setups())
def test_lsh_pairs_are_brute_force_pairs_sharing_a_band(setup):
    seed, sizes, words, threshold, dedupe, parallel = setup
    filters, offsets, party, _ = population(seed, sizes, words)
    c = run(filters, offsets, party, threshold, "lsh", dedupe=dedupe, seed=seed, parallel=parallel)
    assert c.strategy == "lsh"
    got = as_dict(c)
    truth = brute_force(filters, party, threshold, dedupe)
    for pair, score in got.items():
        assert truth[pair] == score
    keys, owners, _ = lsh_keys(filters, threshold, seed, 0.995, False)
    share = sharing(keys, owners)
    assert got == {p: s for p, s in truth.items() if p in share}


def test_lsh_recall_and_reduction():
    """At t = 0.8 LSH (target recall 0.995) finds nearly every true pair, comparing far fewer."""
    sizes = [400, 400]
    filters, offsets, party, _ = population(7, sizes, entities=300, noise=0.03)
    truth = brute_force(filters, party, 0.8, False)
    assert len(truth) > 200
    c = run(filters, offsets, party, 0.8, "lsh", seed=3)
    got = as_dict(c)
    assert set(got) <= set(truth)
    assert len(got) / len(truth) >= 0.97
    assert c.compared < c.possible
    assert 0.0 < c.reduction_ratio < 1.0
    assert int(c.detail["bands"]) >= 1 and int(c.detail["rows"]) >= 1  # type: ignore[call-overload]


def test_lsh_deterministic_per_seed():
    filters, offsets, party, _ = population(5, [80, 90])
    a = run(filters, offsets, party, 0.7, "lsh", seed=42)
    b = run(filters, offsets, party, 0.7, "lsh", seed=42, parallel=True)
    for x, y in ((a.left, b.left), (a.right, b.right), (a.score, b.score)):
        np.testing.assert_array_equal(x, y)
    assert a.compared == b.compared
    ka = lsh_keys(filters, 0.7, 42, 0.995, False)
    kb = lsh_keys(filters, 0.7, 43, 0.995, False)
    assert not np.array_equal(ka[0], kb[0])  # the seed drives the sampled positions


# -- oversize blocks --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("strategy", "threshold", "max_block"),
    # lsh: few enough oversize blocks to stay fast (each costs one all-pairs call)
    [("keys", 0.8, 2), ("lsh", 0.95, 6)],
)
@pytest.mark.parametrize("dedupe", [False, True])
def test_oversize_blocks_are_scored_not_dropped(strategy, threshold, max_block, dedupe):
    sizes = [20, 15, 10]
    filters, offsets, party, ent = population(2, sizes, entities=8)
    bk = random_block_keys(2, ent, space=8) if strategy == "keys" else None
    big_w: list[str] = []
    big = run(
        filters, offsets, party, threshold, strategy, dedupe=dedupe, block_keys=bk, warnings=big_w
    )
    assert big_w == [] and big.detail["oversize_blocks"] == 0
    assert len(as_dict(big)) >= 10
    for parallel in (False, True):
        small_w: list[str] = []
        small = run(
            filters,
            offsets,
            party,
            threshold,
            strategy,
            dedupe=dedupe,
            block_keys=bk,
            max_block=max_block,
            parallel=parallel,
            warnings=small_w,
        )
        assert as_dict(small) == as_dict(big)
        assert int(small.detail["oversize_blocks"]) > 0  # type: ignore[call-overload]
        # one summary warning: how many blocks, the limit, and that they are not dropped
        assert len(small_w) == 1
        assert f"{small.detail['oversize_blocks']} block(s)" in small_w[0]
        assert f"--max-block {max_block}" in small_w[0] and "not dropped" in small_w[0]


def test_one_giant_block_keeps_all_pairs():
    """Every record holds the same key: the single block is scored, == exhaustive."""
    sizes = [40, 40]
    filters, offsets, party, _ = population(9, sizes)
    n = sum(sizes)
    bk = (np.full(n, 12345, np.uint64), np.arange(n, dtype=np.int64))
    warns: list[str] = []
    c = run(filters, offsets, party, 0.8, "keys", block_keys=bk, max_block=10, warnings=warns)
    assert as_dict(c) == brute_force(filters, party, 0.8, False)
    assert len(warns) == 1 and "1 block(s)" in warns[0] and "largest 80 records" in warns[0]


# -- auto -------------------------------------------------------------------------------------
def test_auto_small_inputs_choose_none():
    filters, offsets, party, ent = population(4, [50, 60])
    bk = random_block_keys(4, ent)
    for keys in (None, bk):
        c = run(filters, offsets, party, 0.8, "auto", block_keys=keys)
        assert c.strategy == "none"
        assert as_dict(c) == brute_force(filters, party, 0.8, False)


def test_choose_strategy_by_size_and_keys():
    small = [1000, 1000]
    large = [1_000_000, 1_000_000]
    assert possible_pairs(large, False) > EXHAUSTIVE_LIMIT >= possible_pairs(small, True)
    assert choose_strategy(small, False, True) == "none"
    assert choose_strategy(small, True, False) == "none"
    assert choose_strategy(large, False, True) == "keys"
    assert choose_strategy(large, False, False) == "lsh"
    assert choose_strategy([100_000], True, False) == "lsh"  # one file, dedupe: 5e9 pairs


# -- threshold monotonicity -------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["none", "keys"])
def test_threshold_monotone(strategy):
    """Pairs >= t shrink as t rises (LSH is left out: its bands depend on t)."""
    filters, offsets, party, ent = population(6, [60, 70, 50])
    bk = random_block_keys(6, ent)
    prev: set[tuple[int, int]] | None = None
    for t in (0.5, 0.7, 0.8, 0.9, 0.95, 1.0):
        c = run(filters, offsets, party, t, strategy, block_keys=bk)
        cur = set(as_dict(c))
        assert (c.score >= t).all()
        if prev is not None:
            assert cur <= prev
        prev = cur


# -- dedupe_threshold (within-party pairs) ---------------------------------------------------
def _check_split_thresholds(strategy: str, seed: int, threshold: float, t_within: float) -> None:
    sizes = [40, 35, 30]
    filters, offsets, party, ent = population(seed, sizes, entities=15)
    bk = random_block_keys(seed, ent, space=12)
    truth = brute_force(filters, party, threshold, True, t_within)
    assert any(party[i] == party[j] for i, j in truth)
    for parallel in (False, True):
        # the oversize path too (keys only: many LSH blocks would be oversize, each slow)
        for max_block in (DEFAULT_MAX_BLOCK, 8) if strategy == "keys" else (DEFAULT_MAX_BLOCK,):
            c = run(
                filters,
                offsets,
                party,
                threshold,
                strategy,
                dedupe=True,
                block_keys=bk,
                seed=seed,
                parallel=parallel,
                max_block=max_block,
                dedupe_threshold=t_within,
            )
            got = as_dict(c)
            if strategy == "none":
                assert got == truth
                continue
            if strategy == "keys":
                share = sharing(*bk)
            else:
                keys, owners, _ = lsh_keys(filters, threshold, seed, 0.995, False)
                share = sharing(keys, owners)
            assert got == {p: s for p, s in truth.items() if p in share}


@pytest.mark.parametrize("strategy", ["none", "keys", "lsh"])
@pytest.mark.parametrize(("threshold", "t_within"), [(0.7, 0.9), (0.8, 0.8), (0.6, 0.85)])
def test_dedupe_threshold_at_or_above_threshold(strategy, threshold, t_within):
    """Cross-party pairs >= threshold, within-party pairs >= dedupe_threshold."""
    _check_split_thresholds(strategy, 12, threshold, t_within)


def test_dedupe_threshold_below_threshold_exhaustive():
    _check_split_thresholds("none", 13, 0.9, 0.7)


@pytest.mark.parametrize("strategy", ["keys", "lsh"])
def test_dedupe_threshold_below_threshold_blocked(strategy):
    _check_split_thresholds(strategy, 13, 0.9, 0.7)


def test_disable_jit_agrees():
    """NUMBA_DISABLE_JIT=1: every strategy (with oversize blocks) still matches brute force."""
    code = textwrap.dedent(
        """
        import tests.test_blocking as T
        filters, offsets, party, ent = T.population(3, [15, 12, 10], words=8)
        bk = T.random_block_keys(3, ent)
        for strategy in ("none", "keys", "lsh"):
            for dedupe in (False, True):
                c = T.run(filters, offsets, party, 0.7, strategy, dedupe=dedupe,
                          block_keys=bk, seed=2, max_block=4)
                truth = T.brute_force(filters, party, 0.7, dedupe)
                got = T.as_dict(c)
                assert got and all(truth[p] == s for p, s in got.items())
                if strategy == "none":
                    assert got == truth
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


def test_lsh_scores_each_oversize_member_set_once() -> None:
    # every record identical: every LSH band is one oversize block with the same members;
    # scoring each band's copy again made a 5,000-per-party run never finish
    rng = np.random.default_rng(5)
    row = rng.integers(0, 2**63, size=16, dtype=np.int64).astype(np.uint64)
    n = 300
    filters = np.tile(row, (2 * n, 1))
    offsets = np.array([0, n, 2 * n], np.int64)
    party = np.repeat(np.arange(2, dtype=np.int64), n)
    notes: list[str] = []
    cand = run(filters, offsets, party, 0.8, "lsh", dedupe=True, max_block=50, warnings=notes)
    bands = int(cand.detail["bands"])  # type: ignore[call-overload]
    assert bands > 1 and cand.detail["oversize_blocks"] == bands  # one per band, all alike
    assert cand.detail["oversize_repeats_skipped"] == bands - 1
    m = 2 * n
    assert cand.detail["compared_with_repeats"] == m * (m - 1) // 2  # one set, scored once
    assert len(cand.left) == m * (m - 1) // 2  # every pair found, as without blocking
    assert any("exceed --max-block" in w for w in notes)


def test_oversize_blocks_with_different_members_are_all_scored() -> None:
    rng = np.random.default_rng(6)
    rows = rng.integers(0, 2**63, size=(2, 16), dtype=np.int64).astype(np.uint64)
    filters = np.repeat(rows, 60, axis=0)  # two groups of 60 identical records, each mixed
    party = np.tile(np.repeat(np.arange(2, dtype=np.int64), 30), 2)
    order = np.argsort(party, kind="stable")
    filters, party = filters[order], party[order]
    offsets = np.array([0, 60, 120], np.int64)
    cand = run(filters, offsets, party, 0.8, "lsh", max_block=20)
    brute = run(filters, offsets, party, 0.8, "none")
    got = set(zip(cand.left.tolist(), cand.right.tolist(), strict=True))
    assert got == set(zip(brute.left.tolist(), brute.right.tolist(), strict=True))
    assert int(cand.detail["oversize_blocks"]) >= 2  # type: ignore[call-overload]
    assert cand.detail["compared_with_repeats"] == 2 * 30 * 30  # each group once


def test_capped_summary_says_records_lost_candidates() -> None:
    from linkage.report.text import blocking_detail_words

    rng = np.random.default_rng(7)
    row = rng.integers(0, 2**63, size=16, dtype=np.int64).astype(np.uint64)
    filters = np.tile(row, (40, 1))
    offsets = np.array([0, 20, 40], np.int64)
    party = np.repeat(np.arange(2, dtype=np.int64), 20)
    cand = run(filters, offsets, party, 0.8, "lsh", max_candidates=3)
    assert cand.detail["capped_records"] == 40 and cand.detail["max_candidates"] == 3
    words = blocking_detail_words(cand.detail)
    assert "40 records had more than 3 candidate pairs; their weakest were dropped" in words
    assert "--max-candidates" in words and "max candidates 3" not in words
