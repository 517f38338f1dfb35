"""Dice kernels vs the plain numpy references (linkage.kernels.reference)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.kernels import reference as ref
from linkage.kernels.dice import (
    BLOCK,
    TILE_ROWS,
    allpairs_dice,
    count_threshold_table,
    dedup_dice,
    dice_pairs,
    popcount_window_tables,
    topk_dice,
    transpose_blocks,
)
from linkage.kernels.popcount import _popcount64_swar, popcount_rows

WORDS = st.sampled_from([8, 16, 32, 64])  # 512, 1024, 2048, 4096 bits
THRESHOLDS = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.8]), st.floats(0.0, 1.0, allow_nan=False))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_filters(seed: int, n: int, words: int, kind: str, dup_of: np.ndarray | None = None):
    """n filters of 64*words bits: random fill, all-zero, all-one, or a mix with special rows.

    With dup_of, the first half are noisy copies of dup_of rows (so high Dice pairs exist).
    """
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return np.zeros((n, words), dtype=np.uint64)
    if kind == "one":
        return np.full((n, words), np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    dens = rng.uniform(0.0, 1.0, size=(n, 1))
    bits = rng.random((n, 64 * words)) < dens
    if dup_of is not None and n and dup_of.shape[0]:
        src = ref._bits(dup_of).astype(bool)
        for i in range(n // 2):
            row = src[rng.integers(src.shape[0])].copy()
            flip = rng.random(row.shape) < rng.choice([0.0, 0.01, 0.05])
            bits[i] = row ^ flip
    out = np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()
    if kind == "mixed" and n:
        out[rng.integers(n)] = 0
        out[rng.integers(n)] = np.uint64(0xFFFFFFFFFFFFFFFF)
    return out


@st.composite
def filter_pair(draw, max_n: int = 40):
    words = draw(WORDS)
    seed = draw(st.integers(0, 2**32 - 1))
    kind_a = draw(st.sampled_from(["random", "mixed", "zero", "one"]))
    kind_b = draw(st.sampled_from(["random", "mixed", "zero", "one"]))
    na = draw(st.integers(0, max_n))
    nb = draw(st.integers(0, max_n))
    a = make_filters(seed, na, words, kind_a)
    b = make_filters(seed + 1, nb, words, kind_b, dup_of=a)
    return a, b


# ------------------------------------------------------------------------------ popcount


@settings(deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_swar_popcount_matches_bit_count(x):
    assert int(_popcount64_swar(x)) == ref.popcount64_ref(x)


@settings(deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=20), st.sampled_from([1, 3, 8]))
def test_popcount_rows_words(values, words):
    n = len(values) // words
    a = np.array(values[: n * words], dtype=np.uint64).reshape(n, words)
    got = popcount_rows(a)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref.popcount_rows_ref(a))


@SETTINGS
@given(filter_pair())
def test_popcount_rows(ab):
    a, _ = ab
    np.testing.assert_array_equal(popcount_rows(a), ref.popcount_rows_ref(a))


# ------------------------------------------------------------------------------ pairs


@SETTINGS
@given(filter_pair(), st.integers(0, 2**32 - 1), st.booleans())
def test_dice_pairs(ab, seed, parallel):
    a, b = ab
    rng = np.random.default_rng(seed)
    m = 0 if a.shape[0] == 0 or b.shape[0] == 0 else int(rng.integers(0, 60))
    ia = rng.integers(0, max(a.shape[0], 1), m)
    ib = rng.integers(0, max(b.shape[0], 1), m)
    got = dice_pairs(a, b, ia, ib, parallel=parallel)
    np.testing.assert_array_equal(got, ref.dice_pairs_ref(a, b, ia, ib))


def test_dice_of_two_empty_filters_is_zero():
    z = np.zeros((2, 16), dtype=np.uint64)
    assert dice_pairs(z, z, np.array([0]), np.array([1]))[0] == 0.0
    rows, _, _ = allpairs_dice(z, z, 0.0)
    assert rows.size == 4  # t = 0 admits score 0.0
    assert allpairs_dice(z, z, 1e-9)[0].size == 0


# ------------------------------------------------------------------------------ all pairs


def assert_triples_equal(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@SETTINGS
@given(filter_pair(), THRESHOLDS, st.integers(1, 6))
def test_allpairs_matches_reference_serial_and_parallel(ab, t, cap):
    a, b = ab
    want = ref.allpairs_ref(a, b, t)
    serial = allpairs_dice(a, b, t, parallel=False, capacity=cap)
    parallel = allpairs_dice(a, b, t, parallel=True, capacity=cap)
    assert_triples_equal(serial, want)
    assert_triples_equal(parallel, want)


@SETTINGS
@given(filter_pair(), THRESHOLDS, st.integers(1, 6))
def test_dedup_matches_reference(ab, t, cap):
    a, _ = ab
    want = ref.dedup_ref(a, t)
    assert_triples_equal(dedup_dice(a, t, parallel=False, capacity=cap), want)
    assert_triples_equal(dedup_dice(a, t, parallel=True, capacity=cap), want)


@pytest.mark.parametrize("words", [8, 16, 32, 64])
@pytest.mark.parametrize("t", [0.0, 0.6, 0.9, 1.0])
def test_allpairs_many_blocks_and_tiles(words, t):
    """Sizes that span several B blocks and A tiles, odd remainders, duplicate clusters."""
    na, nb = TILE_ROWS + 37, 2 * BLOCK + 5
    a = make_filters(7, na, words, "mixed")
    b = make_filters(8, nb, words, "mixed", dup_of=a)
    if t == 0.0:
        a, b = a[:150], b[:140]
    want = ref.allpairs_ref(a, b, t)
    assert_triples_equal(allpairs_dice(a, b, t, parallel=False, capacity=2), want)
    assert_triples_equal(allpairs_dice(a, b, t, parallel=True), want)
    d = np.concatenate([a, b])
    assert_triples_equal(dedup_dice(d, t, parallel=True, capacity=3), ref.dedup_ref(d, t))


# ------------------------------------------------------------------------------ top-k


@SETTINGS
@given(filter_pair(), THRESHOLDS, st.integers(0, 5), st.booleans())
def test_topk_matches_reference(ab, t, k, parallel):
    a, b = ab
    cols, scores = topk_dice(a, b, k, t, parallel=parallel)
    wc, ws = ref.topk_ref(a, b, k, t)
    np.testing.assert_array_equal(cols, wc)
    np.testing.assert_array_equal(scores, ws)


def test_topk_ties_break_to_lower_index():
    x = make_filters(3, 1, 16, "random")
    b = np.concatenate([x, x, x, make_filters(4, 200, 16, "random"), x])
    cols, scores = topk_dice(x, b, 3, 0.5)
    np.testing.assert_array_equal(cols[0], [0, 1, 2])
    np.testing.assert_array_equal(scores[0], [1.0, 1.0, 1.0])


# ------------------------------------------------------------------------------ tables


@pytest.mark.parametrize("t", [0.0, 1e-9, 0.1, 1 / 3, 0.5, 0.8, 0.85, 0.999, 1.0])
def test_count_threshold_table_is_exact(t):
    length = 128
    cmin = count_threshold_table(t, length)
    s = np.arange(2 * length + 1)[:, None]
    c = np.arange(length + 1)[None, :]
    feasible = c <= s // 2
    passes = ref._scores(c, s) >= t
    assert np.all(np.diff(cmin.astype(np.float64)) >= 0)
    got = c.astype(np.uint64) >= cmin[:, None]
    np.testing.assert_array_equal(got[np.broadcast_to(feasible, got.shape)], passes[feasible])


@pytest.mark.parametrize("t", [0.0, 0.3, 0.8, 1.0])
def test_popcount_window_contains_every_passing_pair(t):
    length = 64
    qlo, qhi = popcount_window_tables(t, length)
    for p in range(length + 1):
        for q in range(length + 1):
            best = ref._scores(min(p, q), p + q)
            inside = qlo[p] <= q <= qhi[p]
            assert inside == bool(best >= t), (p, q)


def test_transpose_blocks_layout():
    b = make_filters(1, BLOCK + 3, 8, "random")
    bt = transpose_blocks(b)
    assert bt.shape == (2, 8, BLOCK) and bt.flags.c_contiguous
    np.testing.assert_array_equal(bt[1, :, 2], b[BLOCK + 2])
    assert not bt[1, :, 3:].any()


# ------------------------------------------------------------------------------ validation


def test_validation_errors():
    a = np.zeros((3, 16), dtype=np.uint64)
    with pytest.raises(ValueError, match="threshold"):
        allpairs_dice(a, a, 1.5)
    with pytest.raises(ValueError, match="threshold"):
        dedup_dice(a, float("nan"))
    with pytest.raises(ValueError, match="filter lengths differ"):
        allpairs_dice(a, np.zeros((3, 8), dtype=np.uint64), 0.5)
    with pytest.raises(ValueError, match="uint64"):
        allpairs_dice(a.astype(np.int64), a, 0.5)
    with pytest.raises(ValueError, match="outside"):
        dice_pairs(a, a, np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="k must"):
        topk_dice(a, a, -1, 0.5)
    with pytest.raises(ValueError, match="capacity"):
        allpairs_dice(a, a, 0.5, capacity=0)


def test_disable_jit_fallbacks_agree():
    """NUMBA_DISABLE_JIT=1 runs the pure-Python paths (SWAR popcount, numpy block counts)."""
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels import reference as ref
        from linkage.kernels.dice import allpairs_dice, dedup_dice, dice_pairs, topk_dice
        from linkage.kernels.popcount import popcount_rows
        from linkage.kernels.lsh import band_keys, sample_positions
        rng = np.random.default_rng(5)
        bits = rng.random((30, 512)) < rng.uniform(0, 1, (30, 1))
        a = np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()
        a[1] = a[2]; a[3] = 0
        assert (popcount_rows(a) == ref.popcount_rows_ref(a)).all()
        for t in (0.0, 0.55, 1.0):
            for g, w in zip(allpairs_dice(a, a[::-1].copy(), t), ref.allpairs_ref(a, a[::-1], t)):
                assert np.array_equal(g, w)
            for g, w in zip(dedup_dice(a, t), ref.dedup_ref(a, t)):
                assert np.array_equal(g, w)
            for g, w in zip(topk_dice(a, a, 2, t), ref.topk_ref(a, a, 2, t)):
                assert np.array_equal(g, w)
        ia = rng.integers(0, 30, 50)
        ib = ia[::-1].copy()
        assert np.array_equal(dice_pairs(a, a, ia, ib), ref.dice_pairs_ref(a, a, ia, ib))
        for rows in (5, 70):
            pos = sample_positions(512, 3, rows, 1)
            assert np.array_equal(band_keys(a, pos), ref.band_keys_ref(a, pos))
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
