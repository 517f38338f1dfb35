"""Encode a CSV with clkhash (run by the .peers venv python; imports nothing from linkage).

usage: clkhash_encode.py CSV SCHEMA_JSON SECRET_FILE OUT_NPY RESULT_JSON [--workers N]

The secret is read from SECRET_FILE (raw bytes), never from argv. Output: OUT_NPY, uint8
array (n, l/8) where bit p of a CLK is byte p//8, bit p%8 (LSB-first, the linkage layout).
RESULT_JSON receives the timings measured inside this process.
"""

import argparse
import json
import multiprocessing
import sys
import time

T_START = time.perf_counter()

import clkhash  # noqa: E402
import numpy as np  # noqa: E402
from clkhash import clk, schema  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("schema")
    p.add_argument("secret_file")
    p.add_argument("out_npy")
    p.add_argument("result_json")
    p.add_argument("--workers", type=int, default=0, help="0: clkhash default (all CPUs)")
    args = p.parse_args()
    t_imported = time.perf_counter()

    with open(args.secret_file, "rb") as fh:
        secret = fh.read()
    with open(args.schema, encoding="utf-8") as fh:
        sch = schema.from_json_file(fh)
    with open(args.csv, encoding="utf-8", newline="") as fh:
        n_lines = sum(1 for _ in fh) - 1
    workers = args.workers or multiprocessing.cpu_count()
    # clkhash itself falls back to one process below 10,000 records (chunk size).
    effective = 1 if n_lines < 10_000 else workers

    t0 = time.perf_counter()
    with open(args.csv, encoding="utf-8", newline="") as fh:
        clks = clk.generate_clk_from_csv(
            fh,
            secret,
            sch,
            validate=True,
            header=True,
            progress_bar=False,
            max_workers=workers,
        )
    seconds = time.perf_counter() - t0

    # Not timed: bitarray (big-endian bit order) -> LSB-first bytes.
    nbytes = sch.l // 8
    raw = np.frombuffer(b"".join(c.tobytes() for c in clks), dtype=np.uint8)
    raw = raw.reshape(len(clks), nbytes)
    lsb = np.packbits(np.unpackbits(raw, axis=1), axis=1, bitorder="little")
    np.save(args.out_npy, lsb)

    n = len(clks)
    result = {
        "tool": "clkhash",
        "version": clkhash.__version__,
        "n": n,
        "seconds": seconds,
        "records_per_s": n / seconds if seconds > 0 else float("inf"),
        "workers": effective,
        "n_bits": sch.l,
        "mean_popcount": float(np.unpackbits(lsb, axis=1).sum(1).mean()) if n else 0.0,
        "import_s": t_imported - T_START,
        "script_s": time.perf_counter() - T_START,
        "note": "times clk.generate_clk_from_csv (CSV read + validate + hash)",
    }
    with open(args.result_json, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
