"""Two-party P-Sig blocking with blocklib (run by the .peers venv; imports nothing from linkage).

usage: blocklib_block.py CSV_A CSV_B BLOCKING_SCHEMA_JSON OUT_NPZ RESULT_JSON

Times generate_candidate_blocks for each party and generate_blocks (K=2) inside this
process (CSV reading is not timed). OUT_NPZ: block membership as flat arrays
a_block, a_row, b_block, b_row (block numbers shared between parties; rows are 0-based data
rows), so the caller can compute pairs completeness and reduction ratio with numpy.
"""

import argparse
import csv
import json
import sys
import time

T_START = time.perf_counter()

import blocklib  # noqa: E402
import numpy as np  # noqa: E402
from blocklib import generate_blocks, generate_candidate_blocks  # noqa: E402


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [tuple(r) for r in rows[1:]]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("csv_a")
    p.add_argument("csv_b")
    p.add_argument("schema")
    p.add_argument("out_npz")
    p.add_argument("result_json")
    args = p.parse_args()
    t_imported = time.perf_counter()

    header_a, data_a = read_csv(args.csv_a)
    header_b, data_b = read_csv(args.csv_b)
    with open(args.schema, encoding="utf-8") as fh:
        schema = json.load(fh)

    t0 = time.perf_counter()
    cand_a = generate_candidate_blocks(data_a, schema, header=header_a)
    cand_b = generate_candidate_blocks(data_b, schema, header=header_b)
    t1 = time.perf_counter()
    filtered_a, filtered_b = generate_blocks([cand_a, cand_b], K=2)
    seconds = time.perf_counter() - t0
    candidate_s = t1 - t0

    # Not timed: flatten the block dicts into shared block numbers.
    keys = {k: i for i, k in enumerate(sorted(set(filtered_a) | set(filtered_b)))}

    def flat(blocks):
        bl, rw = [], []
        for k, rows in blocks.items():
            bl.extend([keys[k]] * len(rows))
            rw.extend(rows)
        return np.asarray(bl, dtype=np.int64), np.asarray(rw, dtype=np.int64)

    a_block, a_row = flat(filtered_a)
    b_block, b_row = flat(filtered_b)
    np.savez(args.out_npz, a_block=a_block, a_row=a_row, b_block=b_block, b_row=b_row)

    size_a = np.bincount(a_block, minlength=len(keys))
    size_b = np.bincount(b_block, minlength=len(keys))
    n = len(data_a) + len(data_b)
    result = {
        "tool": "blocklib",
        "version": getattr(blocklib, "__version__", None),
        "n_a": len(data_a),
        "n_b": len(data_b),
        "blocks": len(keys),
        "comparisons": int((size_a * size_b).sum()),
        "seconds": seconds,
        "candidate_blocks_s": candidate_s,
        "records_per_s": n / seconds if seconds > 0 else float("inf"),
        "import_s": t_imported - T_START,
        "script_s": time.perf_counter() - T_START,
        "note": "times generate_candidate_blocks (both parties) + generate_blocks(K=2)",
    }
    with open(args.result_json, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
