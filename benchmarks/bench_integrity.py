"""Cost of the encoded-file checksums (issue 10 item 10): read 2M records with and without
verifying, beside the time a match of them takes.

Usage: .venv/bin/python benchmarks/bench_integrity.py [--records 2000000]
Writes two parties of random 1024-bit filters (6 block keys each) with ``write_encoded``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from linkage.encoded import EncodedTable, filters_to_arrow, make_meta, read_encoded, write_encoded
from linkage.integrity import digests_of_slices


def _file(path: Path, n: int, party: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    filters = rng.integers(0, 2**63, (n, 16), dtype=np.uint64)
    ids = pa.array([f"{party}{i:09d}" for i in range(n)])
    keys = rng.integers(0, 2**63, n * 6, dtype=np.uint64)
    bk = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * 6), pa.array(keys))
    table = pa.table({"record_id": ids, "clk": filters_to_arrow(filters), "block_keys": bk})
    meta = make_meta(fingerprint="f" * 64, key_check="k" * 16, party=party, filter_length=1024,
                     record_count=n)  # fmt: skip
    write_encoded(EncodedTable(table, meta), path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.parquet"
        _file(p, args.records, "a", 1)
        for _ in range(3):
            t0 = time.perf_counter()
            table = pq.read_table(p)
            t_read = time.perf_counter() - t0
            pf = pq.ParquetFile(p)
            rows = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
            t0 = time.perf_counter()
            digests_of_slices(table, rows)
            t_sum = time.perf_counter() - t0
            t0 = time.perf_counter()
            read_encoded(p)
            t_all = time.perf_counter() - t0
            print(
                f"{args.records} records, {table.nbytes / 1e6:.0f} MB: "
                f"parquet read {t_read:.2f} s, "
                f"checksums {t_sum:.2f} s, read_encoded (read + checks) {t_all:.2f} s"
            )


if __name__ == "__main__":
    main()
