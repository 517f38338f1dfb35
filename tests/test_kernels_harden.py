"""Hardening kernels vs the numpy references, and the property that defines each step."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_parity import same_with_and_without_jit

from linkage.kernels import reference as ref
from linkage.kernels.harden import (
    balance,
    blip,
    blip_flip_probability,
    blip_threshold,
    diffusion,
    diffusion_taps,
    key_permutation,
    key_words,
    rule90,
    transpose64,
    xor_fold,
)
from linkage.kernels.popcount import popcount_rows

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def filters(seed: int, n: int, words: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return np.zeros((n, words), dtype=np.uint64)
    if kind == "one":
        return np.full((n, words), ONES, dtype=np.uint64)
    bits = rng.random((n, 64 * words)) < rng.uniform(0, 1, (n, 1))
    return np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()


def bit(p: int, words: int) -> np.ndarray:
    """One filter with only bit p set."""
    x = np.zeros((1, words), dtype=np.uint64)
    x[0, p // 64] = np.uint64(1) << np.uint64(p % 64)
    return x


common = {
    "seed": st.integers(0, 2**32 - 1),
    "n": st.sampled_from([0, 1, 2, 7, 63, 64, 65, 130]),
    "kind": st.sampled_from(["random", "zero", "one"]),
    "parallel": st.booleans(),
}


def test_transpose64_matches_numpy():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**64, size=128, dtype=np.uint64)
    b = a.copy()
    transpose64(b, 64)
    np.testing.assert_array_equal(b[:64], a[:64])
    bits = ref._bits(a[64:].reshape(64, 1))  # (64 rows, 64 bits)
    np.testing.assert_array_equal(ref._bits(b[64:].reshape(64, 1)), bits.T)
    transpose64(b, 64)
    np.testing.assert_array_equal(b, a)


# ------------------------------------------------------------------------------ balance


@SETTINGS
@given(words=st.sampled_from([1, 2, 3, 16]), permuted=st.booleans(), **common)
def test_balance_matches_reference_and_popcount_is_constant(
    seed, n, words, kind, parallel, permuted
):
    x = filters(seed, n, words, kind)
    perm = key_permutation(seed.to_bytes(4, "little"), 128 * words) if permuted else None
    got = balance(x, perm, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, 2 * words)
    np.testing.assert_array_equal(got, ref.balance_ref(x, perm))
    assert (popcount_rows(got) == 64 * words).all()  # exactly L of the 2L bits set
    if perm is None:
        np.testing.assert_array_equal(got[:, :words], x)
        np.testing.assert_array_equal(got[:, words:], ~x)


def test_balance_identity_permutation_and_validation():
    x = filters(1, 5, 4, "random")
    np.testing.assert_array_equal(balance(x, np.arange(512)), balance(x))
    with pytest.raises(ValueError, match="permutation"):
        balance(x, np.arange(511))
    with pytest.raises(ValueError, match="permutation"):
        balance(x, np.zeros(512, dtype=np.int64))
    with pytest.raises(ValueError, match="uint64"):
        balance(x.astype(np.int64))


# ------------------------------------------------------------------------------ XOR-folding


@SETTINGS
@given(words=st.sampled_from([2, 4, 16]), **common)
def test_xor_fold_matches_reference_and_halves_length(seed, n, words, kind, parallel):
    x = filters(seed, n, words, kind)
    got = xor_fold(x, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, words // 2)
    np.testing.assert_array_equal(got, ref.xor_fold_ref(x))
    h = words // 2
    # folding y || y gives zero, folding y || 0 gives y
    y = x[:, :h]
    assert not xor_fold(np.hstack([y, y])).any()
    np.testing.assert_array_equal(xor_fold(np.hstack([y, np.zeros_like(y)])), y)


def test_xor_fold_needs_even_words():
    with pytest.raises(ValueError, match="even"):
        xor_fold(np.zeros((2, 3), dtype=np.uint64))


# ------------------------------------------------------------------------------ Rule 90


@SETTINGS
@given(words=st.sampled_from([1, 2, 3, 16]), steps=st.integers(0, 3), **common)
def test_rule90_matches_reference(seed, n, words, kind, parallel, steps):
    x = filters(seed, n, words, kind)
    got = rule90(x, steps, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, words)
    np.testing.assert_array_equal(got, ref.rule90_ref(x, steps))
    if kind == "one":  # every cell has two live neighbours: all die
        assert not rule90(x).any() or n == 0


@pytest.mark.parametrize("words", [1, 2, 5])
def test_rule90_definition_on_single_bits(words):
    """y_p = x_{p-1} XOR x_{p+1} (cyclic): bit p alone gives bits p - 1 and p + 1."""
    length = 64 * words
    for p in sorted({0, 1, 62, 63, 64 % length, length - 2, length - 1}):
        expect = bit((p - 1) % length, words) ^ bit((p + 1) % length, words)
        np.testing.assert_array_equal(rule90(bit(p, words)), expect)


# ------------------------------------------------------------------------------ diffusion


@SETTINGS
@given(
    words=st.sampled_from([1, 2, 3, 16]),
    out_words=st.sampled_from([1, 2, 3]),
    t=st.integers(1, 9),
    **common,
)
def test_diffusion_matches_reference(seed, n, words, out_words, t, kind, parallel):
    x = filters(seed, n, words, kind)
    taps = diffusion_taps(seed.to_bytes(4, "little"), 64 * words, 64 * out_words, t)
    got = diffusion(x, taps, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, out_words)
    np.testing.assert_array_equal(got, ref.diffusion_ref(x, taps))
    if kind == "one":  # each output bit is the parity of t ones
        assert (got == (ONES if t % 2 else 0)).all()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(1, 10), parallel=st.booleans())
def test_diffusion_is_a_fixed_linear_map(seed, t, parallel):
    """D(x XOR y) = D(x) XOR D(y), D(0) = 0, and D(e_p) has bit j iff p is a tap of j."""
    taps = diffusion_taps(b"key" + seed.to_bytes(4, "little"), 1024, 512, t)
    x = filters(seed, 70, 16, "random")
    y = filters(seed + 1, 70, 16, "random")
    dx, dy = diffusion(x, taps, parallel=parallel), diffusion(y, taps, parallel=parallel)
    np.testing.assert_array_equal(diffusion(x ^ y, taps, parallel=parallel), dx ^ dy)
    assert not diffusion(np.zeros((3, 16), dtype=np.uint64), taps).any()
    for p in (0, 511, 1023):
        got = ref._bits(diffusion(bit(p, 16), taps))[0]
        np.testing.assert_array_equal(got, (taps == p).any(axis=1).astype(np.uint8))


def test_diffusion_taps_keyed_distinct_and_in_range():
    a = diffusion_taps(b"k" * 32, 1024, 1024, 8)
    assert a.shape == (1024, 8) and a.dtype == np.int64
    assert a.min() >= 0 and a.max() < 1024
    assert all(len(set(row)) == 8 for row in a.tolist())
    np.testing.assert_array_equal(a, diffusion_taps(b"k" * 32, 1024, 1024, 8))
    b = diffusion_taps(b"K" * 32, 1024, 1024, 8)
    assert (a != b).mean() > 0.99
    # input bits are used about Poisson(m t / L = 8) times: e^-8 L = 0.3 unused expected
    counts = np.bincount(a.ravel(), minlength=1024)
    assert (counts == 0).sum() <= 3 and counts.max() < 25
    # t close to the input length still gives distinct taps
    c = diffusion_taps(b"x", 64, 64, 60)
    assert all(len(set(row)) == 60 for row in c.tolist())
    with pytest.raises(ValueError):
        diffusion_taps(b"x", 64, 64, 65)


def test_key_words_and_permutation_are_fixed_by_the_key():
    """The stream is SHAKE-256 of the key: a published function, the same on every platform."""
    import hashlib

    w = key_words(b"abc", 3)
    assert w.tolist() == [
        int.from_bytes(hashlib.shake_256(b"abc").digest(24)[8 * i : 8 * i + 8], "little")
        for i in range(3)
    ]
    np.testing.assert_array_equal(key_words(b"abc", 10)[:3], w)
    p = key_permutation(b"abc", 2048)
    np.testing.assert_array_equal(np.sort(p), np.arange(2048))
    assert not np.array_equal(p, key_permutation(b"abd", 2048))


def test_diffusion_validation():
    x = np.zeros((2, 2), dtype=np.uint64)
    with pytest.raises(ValueError, match="lie in"):
        diffusion(x, np.full((64, 2), 128))
    with pytest.raises(ValueError, match="multiple of 64"):
        diffusion(x, np.zeros((63, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="t >= 1"):
        diffusion(x, np.zeros((64, 0), dtype=np.int64))


# ------------------------------------------------------------------------------ BLIP


@SETTINGS
@given(
    words=st.sampled_from([1, 2, 3]),
    f=st.sampled_from([0.0, 0.01, 0.1, 0.25, 0.5]),
    **common,
)
def test_blip_matches_reference(seed, n, words, kind, parallel, f):
    n = min(n, 20)  # the reference is pure Python
    x = filters(seed, n, words, kind)
    seeds = np.random.default_rng(seed).integers(0, 2**64, size=n, dtype=np.uint64)
    got = blip(x, f, seeds, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, words)
    np.testing.assert_array_equal(got, ref.blip_ref(x, blip_threshold(f), seeds))


@pytest.mark.parametrize("f", [0.01, 0.05, 0.2, 0.5])
def test_blip_flips_at_the_stated_rate(f):
    """Flipped bits over 300 x 1024 bits lie within 5 binomial standard deviations."""
    x = filters(7, 300, 16, "random")
    seeds = np.arange(300, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    flips = int(popcount_rows(blip(x, f, seeds) ^ x).sum())
    total = x.size * 64
    mean, sd = total * f, math.sqrt(total * f * (1 - f))
    assert abs(flips - mean) < 5 * sd, (flips, mean, sd)
    # and per bit position: no position is flipped far more than the others
    per_pos = ref._bits(blip(x, f, seeds) ^ x).sum(axis=0)
    assert per_pos.max() <= 300 * f + 6 * math.sqrt(300 * f * (1 - f)) + 1


def test_blip_deterministic_row_order_free_and_keyed():
    x = filters(9, 100, 16, "random")
    seeds = np.random.default_rng(1).integers(0, 2**64, size=100, dtype=np.uint64)
    a = blip(x, 0.1, seeds)
    np.testing.assert_array_equal(a, blip(x, 0.1, seeds, parallel=True))
    perm = np.random.default_rng(2).permutation(100)
    np.testing.assert_array_equal(blip(x[perm], 0.1, seeds[perm]), a[perm])
    # the noise depends on the seed only, not on the filter
    np.testing.assert_array_equal(a ^ x, blip(np.zeros_like(x), 0.1, seeds))
    other = blip(x, 0.1, seeds ^ np.uint64(1))
    assert (popcount_rows(a ^ other) > 0).all()
    np.testing.assert_array_equal(blip(x, 0.0, seeds), x)


def test_blip_parameters():
    assert blip_flip_probability(math.log(3), 1) == pytest.approx(0.25)
    assert blip_flip_probability(2.0, 20) == pytest.approx(1 / (1 + math.exp(0.1)))
    assert blip_threshold(0.5) == 2**31
    assert blip_threshold(0.0) == 0
    with pytest.raises(ValueError, match="flip probability"):
        blip_threshold(0.6)
    with pytest.raises(ValueError, match="epsilon"):
        blip_flip_probability(0.0, 3)
    x = np.zeros((2, 1), dtype=np.uint64)
    with pytest.raises(ValueError, match="one seed per filter"):
        blip(x, 0.1, np.zeros(3, dtype=np.uint64))


# ------------------------------------------------------------------------------ JIT parity


def test_same_with_and_without_jit():
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels import harden as h
        rng = np.random.default_rng(5)
        x = rng.integers(0, 2**64, size=(67, 4), dtype=np.uint64)
        x[3] = 0; x[4] = np.uint64(2**64 - 1)
        seeds = rng.integers(0, 2**64, size=67, dtype=np.uint64)
        taps = h.diffusion_taps(b"key", 256, 128, 5)
        perm = h.key_permutation(b"perm", 512)
        res = {}
        for par in (False, True):
            res[f"bal{par}"] = h.balance(x, parallel=par)
            res[f"balp{par}"] = h.balance(x, perm, parallel=par)
            res[f"fold{par}"] = h.xor_fold(x, parallel=par)
            res[f"r90{par}"] = h.rule90(x, 2, parallel=par)
            res[f"blip{par}"] = h.blip(x[:9], 0.2, seeds[:9], parallel=par)
            res[f"diff{par}"] = h.diffusion(x, taps, parallel=par)
        np.savez(OUT, **res)
        """
    )
    jit = same_with_and_without_jit(code)
    assert jit["diffFalse"].any() and jit["blipTrue"].any()
