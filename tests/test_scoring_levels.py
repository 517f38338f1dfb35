"""``to_levels`` / ``field_levels`` against the broadcast reference (every edge at once):
float32 and float64 Dice, values on and next to the edges, missing (-1), empty input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.tlu.scoring.levels import DEFAULT_EDGES, FIELD_EDGES, field_levels, to_levels


def ref_levels(dice: np.ndarray, edges) -> np.ndarray:  # type: ignore[no-untyped-def]
    d = np.asarray(dice, np.float64)
    lv = (d[..., None] < np.asarray(edges, np.float64)).sum(-1).astype(np.int8)
    lv[d < 0] = -1
    return lv


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:  # type: ignore[no-untyped-def]
    edges = np.array(sorted({*DEFAULT_EDGES, *FIELD_EDGES["date_of_birth"], 0.0, 1.0}))
    near = np.concatenate([edges, np.nextafter(edges, 2), np.nextafter(edges, -2)])
    pool = np.concatenate([near, np.nextafter(near.astype(np.float32), np.float32(2)), [-1.0]])
    d = np.where(rng.random(shape) < 0.5, rng.choice(pool, shape), rng.random(shape))
    return d.astype(dtype)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 9), st.integers(1, 5),
       st.sampled_from([np.float32, np.float64]))  # fmt: skip
def test_levels_match_broadcast_reference(seed, m, f, dtype):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    d = _values(rng, (m, f), dtype)
    got = to_levels(d)
    assert got.dtype == np.int8 and got.shape == d.shape
    np.testing.assert_array_equal(got, ref_levels(d, DEFAULT_EDGES))
    fields = ["given_name", "date_of_birth", "surname", "postcode", "sex"][:f]
    want = ref_levels(d, DEFAULT_EDGES)
    if "date_of_birth" in fields:
        want[:, 1] = ref_levels(d[:, 1], FIELD_EDGES["date_of_birth"])
    np.testing.assert_array_equal(field_levels(d, fields), want)


def test_levels_edge_cases():
    assert to_levels(np.zeros((0, 3))).shape == (0, 3)
    assert (to_levels(np.full((2, 2), -1.0)) == -1).all()
    assert (to_levels(np.ones(3, np.float32)) == 0).all()  # exact
    assert (to_levels(np.zeros(3)) == len(DEFAULT_EDGES)).all()  # disagree
    # a float32 Dice just under an edge stays under it (compared in float64)
    x = np.float32(0.8)
    assert to_levels(np.array([x]))[0] == (1 if np.float64(x) >= 0.8 else 2)
    d = np.array([0.99], np.float32)
    assert to_levels(d)[0] == ref_levels(d, DEFAULT_EDGES)[0]
