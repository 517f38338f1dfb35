"""Linkage map benchmark (issue 14): adding a 10k-record extract to a 2M-record map vs a
full relink of the same final extracts, in the same run.

Data (built directly, no secret needed): two parties of 1M records each with random
1024-bit filters (about 34% of bits set) and four block keys per record (pools sized for
blocks of about 50 records); 600k of party b's records are noisy copies of party a's (5% of
words re-drawn: Dice ~0.9, same block keys), so the pair graph has 600k true pairs.
The update is a delta of party b with 10k records: 5k noisy copies of party a records not yet
linked (they must link) and 5k unrelated ones. The peer is ``linkage.match`` of a and the
final b with its links written (``LinkageResult.write``, what ``linkage match A B -o
links.parquet`` does: what a TLU without a map runs every month; until 2026-11-30
the peer left the links unwritten, 0.3-0.5 s less, while the update's figures always
included writing its version). Each step runs in its own process
(wall time, CPU time and peak RSS of that process; also the library call alone, imports
excluded); each process ends as ``linkage match`` and ``linkage map create/update`` do, its
exit skipping the garbage collections over numba's objects (``gc.freeze`` at exit). The load
average is recorded before and after the steps: the machine may be shared, and CPU times are
the less load-sensitive figures. The package's bytecode is compiled first (``compileall``), as
a wheel install does: a development checkout run with PYTHONDONTWRITEBYTECODE would otherwise
compile every module from source in every process (about 0.09 s each, update and relink
alike). Each step starts after ``os.sync()``, so the previous step's writes (the 0.8 GB map)
are not still being flushed while it runs. Targets: update <= 10% of the relink's time; peak
RSS <= 8 GB.

Run: ``.venv/bin/python benchmarks/bench_map.py [--records 2000000] [--delta 10000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa

from benchmarks.harness.machine import machine_info
from benchmarks.harness.measure import run_measured_cpu
from benchmarks.harness.results import Figure, report

GB = 10**9
WORDS = 16  # 1024-bit filters
TARGET_RATIO = 0.10
TARGET_RSS = 8 * GB

_CHILD = r"""
import atexit, gc, json, sys, time
atexit.register(gc.freeze)  # as the CLI's match and map commands do: no collections at exit
step, args = sys.argv[1], sys.argv[2:]
from linkage.tlu.linkage_map import map_create, map_update
from linkage.tlu.linker import match
t0, c0 = time.perf_counter(), time.process_time()  # the library call, imports done
if step == "create":
    out = map_create(args[0], args[1:], seed=1)
elif step == "update":
    out = map_update(args[0], [args[1]], delta=True)
elif step == "relink":  # as `linkage match A B -o links.parquet`: the links are its output
    r = match(args[:-1], seed=1)
    tw = time.perf_counter()
    r.write(args[-1])
    out = {"entities": r.stats.entities, "seconds": {**r.stats.seconds,
           "write_links": time.perf_counter() - tw}}
elif step == "check":
    import duckdb
    con = duckdb.connect(args[0], read_only=True)
    out = {"planted_linked": con.sql(
        "SELECT count(*) FROM membership m1 JOIN membership m2 ON m1.entity = m2.entity "
        "JOIN records r ON r.rix = m2.rix WHERE m1.valid_to IS NULL AND m2.valid_to IS NULL "
        "AND m1.rix < m2.rix AND r.valid_from = 2").fetchall()[0][0]}
print(json.dumps({"wall_in_process_s": time.perf_counter() - t0,
                  "cpu_in_process_s": time.process_time() - c0, **out}, default=str))
"""


def _random_filters(rng: np.random.Generator, n: int) -> np.ndarray:
    w = lambda: rng.integers(0, 2**64, size=(n, WORDS), dtype=np.uint64, endpoint=False)  # noqa: E731
    return (w() & w()) | (w() & w() & w())


def _noisy(rng: np.random.Generator, f: np.ndarray) -> np.ndarray:
    out = f.copy()
    mask = rng.random(f.shape) < 0.05
    out[mask] = _random_filters(rng, f.shape[0])[mask]
    return out


def _write(path: Path, party: str, ids: list[str], filters: np.ndarray, keys: np.ndarray) -> None:
    from linkage.encoded import EncodedTable, filters_to_arrow, make_meta, write_encoded

    n = len(ids)
    meta = make_meta(fingerprint="b" * 64, key_check="c" * 16, party=party,
                     filter_length=WORDS * 64, record_count=n)  # fmt: skip
    bk = pa.ListArray.from_arrays(pa.array(np.arange(0, 4 * n + 1, 4, dtype=np.int32)),
                                  pa.array(keys.reshape(-1)))  # fmt: skip
    t = pa.table({"record_id": pa.array(ids), "clk": filters_to_arrow(filters), "block_keys": bk})
    write_encoded(EncodedTable(t, meta), path)


def build(d: Path, records: int, delta: int, seed: int = 1) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    half = records // 2
    planted = int(half * 0.6)
    pools = np.array([records // 50] * 4, np.uint64)
    salt = rng.integers(0, 2**62, size=4, dtype=np.uint64)
    a_keys = (
        rng.integers(0, pools, size=(half, 4), dtype=np.uint64) * np.uint64(4)
        + np.arange(4, dtype=np.uint64)
        + salt
    )
    a_f = _random_filters(rng, half)
    b_f = _random_filters(rng, half)
    b_keys = (
        rng.integers(0, pools, size=(half, 4), dtype=np.uint64) * np.uint64(4)
        + np.arange(4, dtype=np.uint64)
        + salt
    )
    b_f[:planted] = _noisy(rng, a_f[:planted])
    b_keys[:planted] = a_keys[:planted]
    # delta: copies of a's unlinked records (planted..) and unrelated records
    k_copy = delta // 2
    src = planted + np.arange(k_copy)
    d_f = np.concatenate([_noisy(rng, a_f[src]), _random_filters(rng, delta - k_copy)])
    d_keys = np.concatenate(
        [
            a_keys[src],
            rng.integers(0, pools, size=(delta - k_copy, 4), dtype=np.uint64) * np.uint64(4)
            + np.arange(4, dtype=np.uint64)
            + salt,
        ]
    )
    paths = {k: d / f"{k}.parquet" for k in ("a", "b", "delta", "b_final")}
    _write(paths["a"], "a", [f"a{i}" for i in range(half)], a_f, a_keys)
    _write(paths["b"], "b", [f"b{i}" for i in range(half)], b_f, b_keys)
    d_ids = [f"n{i}" for i in range(delta)]
    _write(paths["delta"], "b", d_ids, d_f, d_keys)
    _write(paths["b_final"], "b", [f"b{i}" for i in range(half)] + d_ids,
           np.concatenate([b_f, d_f]), np.concatenate([b_keys, d_keys]))  # fmt: skip
    return paths


LOADS: dict[str, float] = {}


def _step(step: str, *args: str | Path) -> tuple[dict, float, int]:
    os.sync()  # the previous step's writes are flushed, not competing with this one's reads
    r, cpu = run_measured_cpu([sys.executable, "-c", _CHILD, step, *map(str, args)])
    if r.returncode != 0:
        raise SystemExit(f"{step} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["cpu_process_s"] = cpu  # user + system of the whole process (start-up included)
    LOADS[step] = os.getloadavg()[0]
    return out, r.wall_s, r.peak_rss_bytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--delta", type=int, default=10_000)
    opts = ap.parse_args()
    machine = machine_info()
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "linkage"),
                    str(root / "kernels")], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        paths = build(d, opts.records, opts.delta)
        m = d / "map.duckdb"
        create, create_s, create_rss = _step("create", m, paths["a"], paths["b"])
        upd, upd_s, upd_rss = _step("update", m, paths["delta"])
        rel, rel_s, rel_rss = _step("relink", paths["a"], paths["b_final"], d / "links.parquet")
        chk, _, _ = _step("check", m)
        map_bytes = m.stat().st_size
    upd_core = float(upd["wall_in_process_s"])  # the library call (imports excluded)
    rel_core = float(rel["wall_in_process_s"])
    load = f"load {machine.get('load_avg_1m', 0):.1f} -> {LOADS.get('relink', 0):.1f}"
    figures = [
        Figure("update: add 10k to a 2M map (process wall)", upd_s, "s", "full relink",
               rel_s, higher_is_better=False,
               note=f"target <= {TARGET_RATIO:.0%} of relink; {load}"),
        Figure("update (in-process call)", upd_core, "s", "full relink (in-process call)",
               rel_core, higher_is_better=False),
        Figure("update CPU (process, user+sys)", upd["cpu_process_s"], "s",
               "full relink CPU (process)", rel["cpu_process_s"], higher_is_better=False,
               note="less sensitive to machine load than wall time"),
        Figure("update CPU (in-process call)", upd["cpu_in_process_s"], "s",
               "full relink CPU (in-process call)", rel["cpu_in_process_s"],
               higher_is_better=False),
        Figure("update peak RSS", upd_rss / GB, "GB", "full relink", rel_rss / GB,
               higher_is_better=False, note="target <= 8 GB"),
        Figure("map create (2M records, process wall)", create_s, "s",
               note=f"peak {create_rss / GB:.2f} GB"),
        Figure("map file size", map_bytes / GB, "GB"),
        Figure("planted delta records linked", float(chk["planted_linked"]), "records",
               note=f"of {opts.delta // 2} planted"),
    ]  # fmt: skip
    extra = {"records": opts.records, "delta": opts.delta, "update": upd, "relink": rel,
             "create": create, "update_over_relink": upd_s / rel_s,
             "update_over_relink_in_process": upd_core / rel_core,
             "update_over_relink_cpu": upd["cpu_process_s"] / rel["cpu_process_s"],
             "load_avg_1m_after": dict(LOADS)}  # fmt: skip
    return report("map", "Linkage map", figures, extra, machine)


if __name__ == "__main__":
    sys.exit(main())
