"""``dice_stored`` (Dice against a large stored array, its popcounts counted per pair) equals
``dice_pairs`` and its numpy reference, in any pair order, serial and parallel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_kernels_dice import SETTINGS, filter_pair

from linkage.kernels import reference as ref
from linkage.kernels.dice import dice_pairs
from linkage.kernels.dice_stored import dice_stored, dice_stored_reference


@SETTINGS
@given(filter_pair(), st.integers(0, 2**32 - 1), st.booleans())
def test_dice_stored_equals_dice_pairs(ab, seed, parallel) -> None:  # type: ignore[no-untyped-def]
    a, b = ab
    rng = np.random.default_rng(seed)
    m = 0 if a.shape[0] == 0 or b.shape[0] == 0 else int(rng.integers(0, 60))
    ia = rng.integers(0, max(a.shape[0], 1), m)
    ib = np.sort(rng.integers(0, max(b.shape[0], 1), m))  # stored-row order, as the map gives
    got = dice_stored(a, b, ia, ib, parallel=parallel)
    assert got.dtype == np.float64 and got.shape == (m,)
    np.testing.assert_array_equal(got, dice_pairs(a, b, ia, ib))
    np.testing.assert_array_equal(got, ref.dice_pairs_ref(a, b, ia, ib))
    np.testing.assert_array_equal(got, dice_stored_reference(a, b, ia, ib))


def test_dice_stored_reads_a_memory_map(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    b = rng.integers(0, 2**64, (50, 8), np.uint64, endpoint=False)
    path = tmp_path / "f"
    path.write_bytes(b"\0" * 64 + b.tobytes())
    mm = np.asarray(np.memmap(path, np.uint64, "r", 64, b.shape))
    a = b[:5] ^ np.uint64(1)
    ia, ib = np.array([0, 4, 2]), np.array([0, 4, 49])
    np.testing.assert_array_equal(dice_stored(a, mm, ia, ib), dice_pairs(a, b, ia, ib))


def test_dice_stored_empty_filters_and_validation() -> None:
    z = np.zeros((2, 4), np.uint64)
    assert dice_stored(z, z, np.array([0, 1]), np.array([1, 0])).tolist() == [0.0, 0.0]
    assert dice_stored(z, z, np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="ib holds indices"):
        dice_stored(z, z, np.array([0]), np.array([2]))
    with pytest.raises(ValueError, match="ia holds indices"):
        dice_stored(z, z, np.array([-1]), np.array([0]))
    with pytest.raises(ValueError, match="filter lengths differ"):
        dice_stored(z, np.zeros((2, 8), np.uint64), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="equal length"):
        dice_stored(z, z, np.array([0, 1]), np.array([0]))


def test_dice_stored_without_jit() -> None:
    """NUMBA_DISABLE_JIT=1 runs the pure-Python path (SWAR popcount): the same scores."""
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.dice_stored import dice_stored, dice_stored_reference
        rng = np.random.default_rng(5)
        a = rng.integers(0, 2**64, (20, 8), np.uint64, endpoint=False)
        b = rng.integers(0, 2**64, (30, 8), np.uint64, endpoint=False)
        a[3] = 0; b[4] = 0
        ia = rng.integers(0, 20, 40); ib = rng.integers(0, 30, 40); ia[0] = 3; ib[0] = 4
        for par in (False, True):
            got = dice_stored(a, b, ia, ib, parallel=par)
            assert np.array_equal(got, dice_stored_reference(a, b, ia, ib)), par
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
