"""Run a snippet with and without numba's JIT and compare the arrays it saves (test helper)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np


def same_with_and_without_jit(code: str) -> dict[str, np.ndarray]:
    """Run ``code`` twice in subprocesses, with ``NUMBA_DISABLE_JIT`` 0 and 1. The code saves
    its arrays with ``np.savez(OUT, ...)``; they must be equal. Returns the JIT run's arrays."""
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jit_off in ("0", "1"):
            out = os.path.join(tmp, f"jit{jit_off}.npz")
            env = dict(os.environ, NUMBA_DISABLE_JIT=jit_off)
            res = subprocess.run(
                [sys.executable, "-c", f"OUT = {out!r}\n" + code],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert res.returncode == 0, res.stderr[-2000:]
            with np.load(out) as z:
                arrays[jit_off] = {k: z[k] for k in z.files}
    assert arrays["0"].keys() == arrays["1"].keys()
    for k in arrays["0"]:
        assert np.array_equal(arrays["0"][k], arrays["1"][k]), k
    return arrays["0"]
