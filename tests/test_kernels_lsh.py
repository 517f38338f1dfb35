"""LSH band keys vs the Python reference; the (bands, rows) chooser on its own."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.kernels import reference as ref
from linkage.kernels.lsh import (
    band_collision_probability,
    band_keys,
    choose_bands_rows,
    expected_candidate_rate,
    sample_positions,
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def filters(seed: int, n: int, words: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return np.zeros((n, words), dtype=np.uint64)
    if kind == "one":
        return np.full((n, words), np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    bits = rng.random((n, 64 * words)) < rng.uniform(0, 1, (n, 1))
    return np.packbits(bits, axis=1, bitorder="little").view(np.uint64).copy()


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 12),
    words=st.sampled_from([8, 16, 32, 64]),
    kind=st.sampled_from(["random", "zero", "one"]),
    bands=st.sampled_from([1, 2, 3, 8, 33]),
    rows=st.sampled_from([1, 7, 58, 63, 64, 65, 130]),
    parallel=st.booleans(),
)
def test_band_keys_match_reference(seed, n, words, kind, bands, rows, parallel):
    """Covers the packed path (rows <= 64 - band bits) and the hashed path (more rows)."""
    a = filters(seed, n, words, kind)
    pos = sample_positions(64 * words, bands, rows, seed)
    got = band_keys(a, pos, parallel=parallel)
    assert got.dtype == np.uint64 and got.shape == (n, bands)
    np.testing.assert_array_equal(got, ref.band_keys_ref(a, pos))


@pytest.mark.parametrize("rows", [10, 100])
def test_bands_never_collide_and_equal_bits_collide(rows):
    a = filters(1, 50, 16, "random")
    a[1] = a[0]
    bands = 6
    keys = band_keys(a, sample_positions(1024, bands, rows, 3))
    # the band index sits in the top 3 bits
    assert ((keys >> np.uint64(61)) == np.arange(bands, dtype=np.uint64)[None]).all()
    np.testing.assert_array_equal(keys[0], keys[1])
    for b1, b2 in itertools.combinations(range(bands), 2):
        assert not np.intersect1d(keys[:, b1], keys[:, b2]).size


def test_packed_keys_are_the_sampled_bits():
    a = np.zeros((1, 8), dtype=np.uint64)
    a[0, 1] = np.uint64(1) << np.uint64(3)  # bit 67
    pos = np.array([[0, 67, 67, 5]], dtype=np.int64)
    assert int(band_keys(a, pos)[0, 0]) == 0b0110


def test_sample_positions_deterministic_and_in_range():
    p1 = sample_positions(1024, 20, 30, 7)
    p2 = sample_positions(1024, 20, 30, 7)
    p3 = sample_positions(1024, 20, 30, 8)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)
    assert p1.shape == (20, 30) and p1.min() >= 0 and p1.max() < 1024


def test_band_keys_validation():
    a = np.zeros((2, 8), dtype=np.uint64)
    with pytest.raises(ValueError, match="positions must lie"):
        band_keys(a, np.array([[512]]))
    with pytest.raises(ValueError, match="uint64"):
        band_keys(a.astype(np.int64), np.array([[1]]))
    with pytest.raises(ValueError, match="non-empty"):
        band_keys(a, np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError):
        sample_positions(1024, 0, 5, 1)


def test_collision_rate_matches_model():
    """Empirical band agreement of pairs at Hamming distance d is (1 - d/L)^r."""
    rng = np.random.default_rng(11)
    length, d, rows, n = 1024, 154, 8, 400
    bits = rng.random((n, length)) < 0.3
    other = bits.copy()
    for i in range(n):
        flip = rng.choice(length, d, replace=False)
        other[i, flip] ^= True
    pack = lambda x: np.packbits(x, axis=1, bitorder="little").view(np.uint64)  # noqa: E731
    pos = sample_positions(length, 200, rows, 5)
    ka, kb = band_keys(pack(bits), pos), band_keys(pack(other), pos)
    rate = (ka == kb).mean()
    expected = (1 - d / length) ** rows
    assert abs(rate - expected) < 0.03, (rate, expected)


# ------------------------------------------------------------------------------ chooser


@pytest.mark.parametrize(
    ("t", "recall", "length", "fill"),
    [
        (0.8, 0.99, 1024, 0.3),
        (0.9, 0.95, 1024, 0.5),
        (0.7, 0.999, 512, 0.3),
        (0.85, 0.9, 2048, 0.2),
    ],
)
def test_choose_bands_rows_meets_recall_and_is_optimal(t, recall, length, fill):
    max_bands, max_rows = 40, 80
    bands, rows = choose_bands_rows(
        t, recall, length, fill=fill, max_bands=max_bands, max_rows=max_rows
    )
    assert 1 <= bands <= max_bands and 1 <= rows <= max_rows
    assert band_collision_probability(t, bands, rows, length, fill) >= recall
    # brute force over every admissible (bands, rows)
    best = min(
        (expected_candidate_rate(b, r, length, fill), b, r)
        for b in range(1, max_bands + 1)
        for r in range(1, max_rows + 1)
        if band_collision_probability(t, b, r, length, fill) >= recall
    )
    assert (bands, rows) == (best[1], best[2])


def test_collision_probability_model_values():
    # d = 2 * 0.3 * 1024 * 0.2 = 122.88; s = (1 - d/L)^r
    s = (1 - 122.88 / 1024) ** 10
    assert math.isclose(band_collision_probability(0.8, 4, 10, 1024, 0.3), 1 - (1 - s) ** 4)
    assert band_collision_probability(1.0, 1, 50, 1024) == 1.0
    assert expected_candidate_rate(3, 0, 1024) == 3.0


def test_higher_recall_needs_more_work():
    lo = choose_bands_rows(0.8, 0.9, 1024)
    hi = choose_bands_rows(0.8, 0.999, 1024)
    assert expected_candidate_rate(*hi, 1024) >= expected_candidate_rate(*lo, 1024)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 1.2, "target_recall": 0.9, "filter_length": 1024},
        {"threshold": 0.8, "target_recall": 1.0, "filter_length": 1024},
        {"threshold": 0.8, "target_recall": 0.9, "filter_length": 0},
        {"threshold": 0.8, "target_recall": 0.9, "filter_length": 1024, "fill": 0.0},
        {"threshold": 0.8, "target_recall": 0.9, "filter_length": 1024, "max_bands": 0},
        {"threshold": 0.2, "target_recall": 0.9999, "filter_length": 1024, "max_bands": 1},
    ],
)
def test_choose_bands_rows_rejects(kwargs):
    with pytest.raises(ValueError):
        choose_bands_rows(**kwargs)
