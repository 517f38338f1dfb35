"""All-pairs Dice candidate generation + greedy solve with anonlink (run by the .peers venv).

usage: anonlink_match.py A_NPY B_NPY THRESHOLD OUT_NPZ RESULT_JSON [--k K] [--no-solve]

A_NPY/B_NPY: uint8 arrays (n, l/8), LSB-first filters. They are converted to bitarrays
before timing starts. OUT_NPZ: similarity, a, b (candidate pairs, anonlink's order) and
match_a, match_b (one-to-one pairs from greedy_solve). RESULT_JSON: timings from inside.
"""

import argparse
import json
import sys
import time

T_START = time.perf_counter()

import anonlink  # noqa: E402
import numpy as np  # noqa: E402
from anonlink import candidate_generation, solving  # noqa: E402
from anonlink.similarities import dice_coefficient_accelerated  # noqa: E402
from bitarray import bitarray  # noqa: E402


def to_bitarrays(a: np.ndarray) -> list:
    out = []
    for row in a:
        b = bitarray(endian="little")
        b.frombytes(row.tobytes())
        out.append(b)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("a_npy")
    p.add_argument("b_npy")
    p.add_argument("threshold", type=float)
    p.add_argument("out_npz")
    p.add_argument("result_json")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--no-solve", action="store_true")
    args = p.parse_args()
    t_imported = time.perf_counter()

    a = np.load(args.a_npy)
    b = np.load(args.b_npy)
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 2 or b.ndim != 2:
        raise SystemExit("inputs must be 2-d uint8 arrays")
    fa, fb = to_bitarrays(a), to_bitarrays(b)

    t0 = time.perf_counter()
    cands = candidate_generation.find_candidate_pairs(
        [fa, fb], dice_coefficient_accelerated, args.threshold, k=args.k
    )
    cand_s = time.perf_counter() - t0
    sims, dset_i, rec_i = cands
    n_cand = len(sims)

    solve_s = 0.0
    match_a = np.empty(0, np.int64)
    match_b = np.empty(0, np.int64)
    if not args.no_solve:
        t1 = time.perf_counter()
        groups = solving.greedy_solve(cands)
        solve_s = time.perf_counter() - t1
        pairs = []
        for g in groups:
            if len(g) == 2:
                (d0, r0), (d1, r1) = sorted(g)
                if d0 == 0 and d1 == 1:
                    pairs.append((r0, r1))
        if pairs:
            arr = np.array(pairs, dtype=np.int64)
            match_a, match_b = arr[:, 0], arr[:, 1]

    # Candidate arrays in dataset order (a-side first).
    d0 = np.asarray(dset_i[0], dtype=np.int64)
    r0 = np.asarray(rec_i[0], dtype=np.int64)
    r1 = np.asarray(rec_i[1], dtype=np.int64)
    swap = d0 != 0
    ca = np.where(swap, r1, r0)
    cb = np.where(swap, r0, r1)
    np.savez(
        args.out_npz,
        similarity=np.asarray(sims, dtype=np.float64),
        a=ca,
        b=cb,
        match_a=match_a,
        match_b=match_b,
    )

    n_pairs = a.shape[0] * b.shape[0]
    result = {
        "tool": "anonlink",
        "version": getattr(anonlink, "__version__", None),
        "n_a": int(a.shape[0]),
        "n_b": int(b.shape[0]),
        "n_bits": int(a.shape[1] * 8),
        "threshold": args.threshold,
        "k": args.k,
        "candidates": int(n_cand),
        "matches": int(match_a.size),
        "seconds": cand_s,
        "pairs_per_s": n_pairs / cand_s if cand_s > 0 else float("inf"),
        "solve_seconds": solve_s,
        "import_s": t_imported - T_START,
        "script_s": time.perf_counter() - T_START,
        "note": "times find_candidate_pairs(dice_coefficient_accelerated), single thread",
    }
    with open(args.result_json, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
