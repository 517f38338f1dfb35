"""The low-weight tuple search of homomorphism-based graph matching (``kernels/tuples.py``)
equals its itertools reference on empty, all-zero, all-one, sparse and odd-sized inputs, and
finds the tuples that linearity (a diffusion of the filters) preserves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_kernels_dice import SETTINGS

from linkage.kernels import harden as hk
from linkage.kernels.tuples import (
    lowest_weight_tuples,
    lowest_weight_tuples_reference,
    tuple_counts,
    tuple_counts_reference,
)


@st.composite
def small_filters(draw: st.DrawFn) -> np.ndarray:
    """Up to 9 rows of 1-3 words: random sparse, all-zero, all-one, duplicated rows."""
    n = draw(st.integers(0, 9))
    w = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["sparse", "zero", "one", "mixed", "dups"]))
    rng = np.random.default_rng(seed)
    bits = rng.random((n, 64 * w)) < draw(st.sampled_from([0.02, 0.1, 0.5]))
    if kind == "zero":
        bits[:] = False
    elif kind == "one":
        bits[:] = True
    elif kind == "mixed" and n:
        bits[rng.random(n) < 0.3] = False
        bits[rng.random(n) < 0.3] = True
    elif kind == "dups" and n > 1:
        bits[rng.integers(0, n, n // 2)] = bits[0]
    return np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()


@SETTINGS
@given(small_filters(), st.integers(0, 200), st.sampled_from([2, 3, 4]))
def test_tuple_counts_equal_reference(x, max_weight, max_size) -> None:  # type: ignore[no-untyped-def]
    member, counts = tuple_counts(x, max_weight, max_size)
    rm, rc = tuple_counts_reference(x, max_weight, max_size)
    np.testing.assert_array_equal(member, rm)
    np.testing.assert_array_equal(counts, rc)


@SETTINGS
@given(small_filters(), st.integers(0, 150), st.sampled_from([2, 3, 4]))
def test_lowest_weight_tuples_equal_reference(x, top, max_size) -> None:  # type: ignore[no-untyped-def]
    t, w = lowest_weight_tuples(x, top, max_size)
    rt, rw = lowest_weight_tuples_reference(x, top, max_size)
    np.testing.assert_array_equal(w, rw)
    np.testing.assert_array_equal(t, rt)
    assert t.dtype == np.int64 and t.shape == (len(w), 4)


def test_all_one_rows_cancel_in_pairs_and_fours() -> None:
    x = np.full((5, 2), np.uint64(2**64 - 1))
    member, counts = tuple_counts(x, 0)
    assert member.all()
    assert counts.tolist() == [10, 0, 5]  # C(5,2) pairs and C(5,4) fours cancel; triples do not


def test_linear_diffusion_keeps_a_cancelling_four() -> None:
    """x0 ^ x1 ^ x2 ^ x3 = 0 (two records changing the same token): diffused, still 0."""
    rng = np.random.default_rng(1)
    bits = rng.random((40, 1024)) < 0.1
    d = rng.random(1024) < 0.01
    bits[1] = bits[0] ^ d
    bits[3] = bits[2] ^ d
    x = np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()
    taps = hk.diffusion_taps(b"k" * 32, 1024, 2048, 8)
    y = hk.diffusion(x, taps)
    t, w = lowest_weight_tuples(y, 1)
    assert t.tolist() == [[0, 1, 2, 3]] and w.tolist() == [0]


def test_validation() -> None:
    with pytest.raises(ValueError, match="uint64"):
        tuple_counts(np.zeros((2, 2), np.int64), 1)
    with pytest.raises(ValueError, match="max_size"):
        tuple_counts(np.zeros((2, 2), np.uint64), 1, 5)
    with pytest.raises(ValueError, match="top"):
        lowest_weight_tuples(np.zeros((2, 2), np.uint64), -1)
    t, w = lowest_weight_tuples(np.zeros((0, 2), np.uint64), 5)
    assert t.shape == (0, 4) and w.shape == (0,)
