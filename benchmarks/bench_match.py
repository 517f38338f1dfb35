"""Matching benchmark: linkage vs anonlink 0.15.3, whole ``linkage match`` runs, and blocked
linkage at scale.

(a) All-pairs Dice kernel, 20k x 20k 1024-bit filters, per-filter fill U(20%, 40%), 300 planted
    near-duplicates, t = 0.8 (data and popcount-only ceiling loop from bench_kernels.py):
    linkage one thread vs anonlink's ``find_candidate_pairs`` (single-threaded, timed inside its
    process; target >= 5x), linkage two threads vs one (target >= 1.7x), and linkage one thread
    vs the popcount-only loop over the same data (target >= 0.8).
(b) Whole ``linkage match`` CLI runs (read, score, solve, write; interpreter start-up
    included) on two ~20k-record files made by ``linkage synth`` + ``linkage encode``, blocking
    ``none`` (exhaustive, exact), 1 and 2 threads; the peer is anonlink's candidate generation
    plus ``greedy_solve`` on the same filters, timed inside its process (I/O and start-up
    excluded, which favours anonlink).
(c) Blocked linkage at scale: ``linkage synth`` ~N people per party x 2 parties (N = 1,000,000;
    100,000 with ``--quick``), both encoded with the CLI, then ``linkage match --blocking
    auto|keys|lsh`` (wall, CPU, peak RSS; targets <= 180 s and <= 4 GiB at 1M). Recall of
    each blocking vs exhaustive matching at the same threshold on the first 100k records per
    party: pairs >= t found (every blocked pair is an exhaustive pair with the same score, so
    this is a ratio of counts, checked as a set) and matched pairs after solving (target
    >= 0.99).

Run: ``.venv/bin/python benchmarks/bench_match.py [--quick] [--parts abc]``
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.machine import machine_info
from benchmarks.harness.measure import run_measured_cpu
from benchmarks.harness.results import Figure, report
from benchmarks.linkage_cli import linkage_exe, run_synth, synth_encode_cmd, write_secret_file
from benchmarks.peers import PeerFailedError, PeerMissingError, anonlink_all_pairs, peer_python

GiB = 2**30
SECRET = b"benchmark-secret-not-real-0123456789"
THRESHOLD = 0.8


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _anonlink(
    work: Path, a8: np.ndarray, b8: np.ndarray, repeat: int, solve: bool
) -> tuple[dict[str, Any] | None, str]:
    """Best of ``repeat`` anonlink runs on uint8 filters, or (None, why)."""
    if peer_python() is None:
        return None, "peer missing (make peers)"
    np.save(work / "pa.npy", a8)
    np.save(work / "pb.npy", b8)
    runs = []
    try:
        for _ in range(repeat):
            r = anonlink_all_pairs(
                work / "pa.npy", work / "pb.npy", THRESHOLD, work / "pm.npz", solve=solve
            )
            for k in ("similarity", "a", "b", "match_a", "match_b"):
                r.pop(k, None)
            runs.append(r)
    except (PeerMissingError, PeerFailedError) as exc:
        return None, str(exc)
    return min(runs, key=lambda r: r["seconds"] + r["solve_seconds"]), ""


# ---------------------------------------------------------------------------------------------
# (a) kernel
# ---------------------------------------------------------------------------------------------


def part_a(work: Path, n: int, repeat: int, peer: bool) -> tuple[list[Figure], dict[str, Any]]:
    import numba

    from benchmarks.bench_kernels import ceiling_loop, make_filters
    from linkage.kernels.dice import allpairs_dice, transpose_blocks

    a, b = make_filters(n, 1024, min(300, n // 10), seed=42)
    pairs = float(n) * float(n)
    max_threads = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    allpairs_dice(a[:300], b[:300], THRESHOLD, parallel=False)  # warm up / cache load
    allpairs_dice(a[:300], b[:300], THRESHOLD, parallel=True)
    bt = transpose_blocks(b)
    ceiling_loop(a[:10], bt[:2])

    best: dict[str, tuple[float, float]] = {}
    found = 0

    def keep(name: str, wc: tuple[float, float]) -> None:
        old = best.get(name, (float("inf"), float("inf")))
        best[name] = (min(old[0], wc[0]), min(old[1], wc[1]))

    def one() -> None:
        nonlocal found
        found = len(allpairs_dice(a, b, THRESHOLD, parallel=False)[0])

    for _ in range(repeat):  # interleaved: each variant sees the same machine load
        numba.set_num_threads(1)
        keep("ceiling", _timed(lambda: ceiling_loop(a, bt)))
        keep("one", _timed(one))
        if max_threads >= 2:
            numba.set_num_threads(2)
            keep("two", _timed(lambda: allpairs_dice(a, b, THRESHOLD, parallel=True)))
    numba.set_num_threads(max_threads)

    al, why = (None, "skipped (--no-peer)")
    if peer:
        al, why = _anonlink(work, a.view(np.uint8), b.view(np.uint8), repeat, solve=False)
    t1, c1 = best["one"]
    tc, cc = best["ceiling"]
    figs = [
        Figure(
            f"all-pairs Dice {n // 1000}k x {n // 1000}k, t={THRESHOLD}, 1 thread",
            pairs / t1,
            "pairs/s",
            peer="anonlink 0.15.3" if al else None,
            peer_value=al["pairs_per_s"] if al else None,
            note=f"target >= 5x; linkage {t1:.3f} s wall, {c1:.3f} CPU-s, {found} pairs; "
            + (f"anonlink {al['seconds']:.2f} s, {al['candidates']} pairs" if al else why)
            + f"; best of {repeat}",
        ),
        Figure(
            "all-pairs Dice vs popcount-only loop, 1 thread",
            pairs / t1,
            "pairs/s",
            peer="popcount-only loop (linkage)",
            peer_value=pairs / tc,
            note=f"target >= 0.8; loop {tc:.3f} s wall, {cc:.3f} CPU-s",
        ),
    ]
    extra: dict[str, Any] = {
        "n": n,
        "best_wall_cpu_s": best,
        "pairs_found": found,
        "anonlink": al,
        "anonlink_note": why,
    }
    if "two" in best:
        t2, c2 = best["two"]
        figs.append(
            Figure(
                "all-pairs Dice, 2 threads vs 1 thread",
                pairs / t2,
                "pairs/s",
                peer="linkage 1 thread",
                peer_value=pairs / t1,
                note=f"target >= 1.7x; {t2:.3f} s wall, {c2:.3f} CPU-s",
            )
        )
    return figs, extra


# ---------------------------------------------------------------------------------------------
# Shared: synth + encode
# ---------------------------------------------------------------------------------------------


def synth_and_encode(
    work: Path, per_party: int, seed: int, label: str
) -> tuple[list[Path], dict[str, Any]]:
    """Two parties of about ``per_party`` records each (overlap 0.85), encoded by the CLI."""
    from linkage.schema_template import template_json

    sdir = work / f"synth_{label}"
    people = max(10, round(per_party / 0.85))
    manifest, srun = run_synth(sdir, people, 2, overlap=0.85, seed=seed)
    schema = work / "schema.json"
    if not schema.exists():
        schema.write_text(template_json("uk-person"), encoding="utf-8")
    secret = write_secret_file(work / "secret.key", SECRET)
    outs, enc_runs = [], []
    for p in manifest["parties"]:
        out = work / f"{label}_{p['name']}.parquet"
        run, cpu = run_measured_cpu(synth_encode_cmd(sdir, p, schema, secret, out), timeout_s=3600)
        if run.returncode != 0:
            raise RuntimeError(f"linkage encode failed: {run.stderr.strip()}")
        enc_runs.append(
            {
                "party": p["name"],
                "records": p["records"],
                "seconds": run.wall_s,
                "cpu_s": cpu,
                "peak_rss_bytes": run.peak_rss_bytes,
            }
        )
        outs.append(out)
    info = {
        "people": people,
        "records": [p["records"] for p in manifest["parties"]],
        "synth_s": srun.wall_s,
        "synth_peak_rss_bytes": srun.peak_rss_bytes,
        "encode": enc_runs,
    }
    return outs, info


_SUMMARY = re.compile(r"blocking (\w+): (\d+) candidate pairs scored")
_ABOVE = re.compile(r"(\d+) pairs >= threshold [\d.]+; (\d+) matched pairs")


def cli_match(
    files: list[Path], out: Path, *, blocking: str, threads: int | None, timeout_s: float
) -> dict[str, Any]:
    cmd: list[str | os.PathLike[str]] = [linkage_exe(), "match", *files, "-o", out]
    cmd += ["--threshold", str(THRESHOLD), "--blocking", blocking, "--seed", "1"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    run, cpu = run_measured_cpu(cmd, timeout_s=timeout_s)
    if run.timed_out:
        return {
            "blocking": blocking,
            "threads": threads,
            "timed_out": True,
            "seconds": run.wall_s,
            "cpu_s": cpu,
            "peak_rss_bytes": run.peak_rss_bytes,
        }
    if run.returncode != 0:
        raise RuntimeError(f"linkage match failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    res: dict[str, Any] = {
        "blocking": blocking,
        "threads": threads,
        "seconds": run.wall_s,
        "cpu_s": cpu,
        "peak_rss_bytes": run.peak_rss_bytes,
        "summary": run.stderr.strip().splitlines()[-8:],
    }
    if m := _SUMMARY.search(run.stderr):
        res["strategy"], res["candidates"] = m.group(1), int(m.group(2))
    if m := _ABOVE.search(run.stderr):
        res["pairs_above"], res["matched"] = int(m.group(1)), int(m.group(2))
    return res


# ---------------------------------------------------------------------------------------------
# (b) whole CLI runs
# ---------------------------------------------------------------------------------------------


def part_b(work: Path, n: int, repeat: int, peer: bool) -> tuple[list[Figure], dict[str, Any]]:
    from linkage.encoded import read_encoded

    files, info = synth_and_encode(work, n, seed=7, label="b")
    na, nb = info["records"]
    comps = float(na) * float(nb)
    runs: dict[int, dict[str, Any]] = {}
    for _ in range(repeat):
        for th in (1, 2):
            r = cli_match(
                files, work / "b_links.parquet", blocking="none", threads=th, timeout_s=900
            )
            if th not in runs or r["seconds"] < runs[th]["seconds"]:
                runs[th] = r
    al, why = (None, "skipped (--no-peer)")
    if peer:
        a8, b8 = (np.asarray(read_encoded(f).filters).view(np.uint8) for f in files)
        al, why = _anonlink(work, a8, b8, repeat, solve=True)
    al_s = al["seconds"] + al["solve_seconds"] if al else None
    figs = []
    for th, r in runs.items():
        figs.append(
            Figure(
                f"whole `linkage match` {na:,} x {nb:,}, exhaustive, {th} thread(s)",
                comps / r["seconds"],
                "comparisons/s",
                peer="anonlink 0.15.3 (candidates + greedy, in-process)" if al else None,
                peer_value=comps / al_s if al_s else None,
                note=f"linkage {r['seconds']:.2f} s wall incl. start-up/read/write, "
                f"{r['cpu_s']:.2f} CPU-s, {r.get('matched')} matched; "
                + (f"anonlink {al_s:.2f} s, {al['matches']} matched" if al else why),
            )
        )
    return figs, {"data": info, "linkage": runs, "anonlink": al, "anonlink_note": why}


# ---------------------------------------------------------------------------------------------
# (c) blocked linkage at scale + recall on a subset
# ---------------------------------------------------------------------------------------------


def _recall(files: list[Path], n_sub: int, strategies: list[str]) -> dict[str, Any]:
    from linkage.encoded import EncodedTable, read_encoded
    from linkage.tlu.linker import match

    encs = []
    for f in files:
        e = read_encoded(f)
        encs.append(EncodedTable(e.table.slice(0, min(n_sub, len(e))), e.meta))
    sizes = [len(e) for e in encs]

    def pairset(res: Any) -> set[tuple[str, str]]:
        p = res.pairs
        return set(
            zip(
                p.column("record_id_a").to_pylist(),
                p.column("record_id_b").to_pylist(),
                strict=True,
            )
        )

    t0 = time.perf_counter()
    ref = match(encs, threshold=THRESHOLD, blocking="none", seed=1)
    out: dict[str, Any] = {
        "sizes": sizes,
        "none": {
            "seconds": time.perf_counter() - t0,
            "pairs_above": ref.stats["pairs_above_threshold"],
            "matched": ref.stats["matched_pairs"],
        },
    }
    ref_pairs = pairset(ref)
    for s in strategies:
        t0 = time.perf_counter()
        res = match(encs, threshold=THRESHOLD, blocking=s, seed=1)
        got = pairset(res)
        above_ref = int(ref.stats["pairs_above_threshold"])  # type: ignore[call-overload]
        above = int(res.stats["pairs_above_threshold"])  # type: ignore[call-overload]
        out[s] = {
            "seconds": time.perf_counter() - t0,
            "strategy": res.stats["blocking"],
            "candidates": res.stats["candidates"],
            "reduction_ratio": res.stats["reduction_ratio"],
            "pairs_above": above,
            "pairs_above_recall": above / above_ref if above_ref else 1.0,
            "matched": res.stats["matched_pairs"],
            "matched_recall": len(got & ref_pairs) / len(ref_pairs) if ref_pairs else 1.0,
            "matched_precision_vs_exhaustive": len(got & ref_pairs) / len(got) if got else 1.0,
        }
    return out


def part_c(
    work: Path, n: int, n_sub: int, strategies: list[str], timeout_s: float
) -> tuple[list[Figure], dict[str, Any]]:
    files, info = synth_and_encode(work, n, seed=11, label="c")
    na, nb = info["records"]
    figs: list[Figure] = []
    for e in info["encode"]:
        figs.append(
            Figure(
                f"encode synth party {e['records']:,} records (CLI)",
                e["records"] / e["seconds"],
                "records/s",
                note=f"{e['seconds']:.1f} s wall, {e['cpu_s']:.1f} CPU-s, "
                f"peak RSS {e['peak_rss_bytes'] / GiB:.2f} GiB",
            )
        )
    runs = {}
    for s in strategies:
        r = cli_match(
            files, work / f"c_links_{s}.parquet", blocking=s, threads=None, timeout_s=1800
        )
        runs[s] = r
        if r.get("timed_out"):
            figs.append(
                Figure(
                    f"`linkage match --blocking {s}` {na:,} x {nb:,}",
                    None,
                    "s",
                    higher_is_better=False,
                    note=f"timed out after {r['seconds']:.0f} s (--timeout)",
                )
            )
            continue
        ok = r["seconds"] <= 180 and r["peak_rss_bytes"] <= 4 * GiB
        figs.append(
            Figure(
                f"`linkage match --blocking {s}` {na:,} x {nb:,}",
                r["seconds"],
                "s",
                higher_is_better=False,
                note=f"picked {r.get('strategy')}; {r.get('candidates')} candidates, "
                f"{r.get('matched')} matched; {r['cpu_s']:.1f} CPU-s; peak RSS "
                f"{r['peak_rss_bytes'] / GiB:.2f} GiB; targets <= 180 s, <= 4 GiB"
                + (" (PASS)" if ok else " (FAIL at 1M scale)" if n >= 1_000_000 else ""),
            )
        )
    rec = _recall(files, n_sub, [s for s in strategies if s != "auto"] + ["auto"])
    for s in strategies:
        x = rec[s]
        figs.append(
            Figure(
                f"recall of --blocking {s} vs exhaustive, "
                f"{rec['sizes'][0]:,} x {rec['sizes'][1]:,}",
                x["pairs_above_recall"],
                "fraction",
                note=f"target >= 0.99; pairs >= t: {x['pairs_above']} of "
                f"{rec['none']['pairs_above']}; matched-pair recall {x['matched_recall']:.4f}; "
                f"reduction ratio {x['reduction_ratio']:.6f} ({x['strategy']})",
            )
        )
    return figs, {"data": info, "match": runs, "recall": rec}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run each")
    ap.add_argument("--parts", default="abc", help="which parts to run (subset of 'abc')")
    ap.add_argument("--n-kernel", type=int, help="(a) filters per side (20,000; 10,000 quick)")
    ap.add_argument("--n-cli", type=int, help="(b) records per party (20,000; 5,000 quick)")
    ap.add_argument("--n-scale", type=int, help="(c) records per party (1M; 100k quick)")
    ap.add_argument("--n-recall", type=int, default=100_000, help="(c) recall subset per party")
    ap.add_argument("--blocking", default="auto,keys,lsh", help="(c) strategies, comma-separated")
    ap.add_argument("--timeout", type=float, default=1200, help="(c) seconds per match run")
    ap.add_argument("--repeat", type=int, help="best of N for (a) and (b) (3; 1 quick)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--name", default="match")
    args = ap.parse_args(argv)
    q = args.quick
    repeat = args.repeat or (1 if q else 3)
    machine = machine_info()
    figs: list[Figure] = []
    extra: dict[str, Any] = {"quick": q, "repeat": repeat, "threshold": THRESHOLD}
    with tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:
        work = Path(tmp)
        if "a" in args.parts:
            f, e = part_a(
                work, args.n_kernel or (10_000 if q else 20_000), repeat, not args.no_peer
            )
            figs += f
            extra["a"] = e
        if "b" in args.parts:
            f, e = part_b(work, args.n_cli or (5_000 if q else 20_000), repeat, not args.no_peer)
            figs += f
            extra["b"] = e
        if "c" in args.parts:
            strategies = [s.strip() for s in args.blocking.split(",") if s.strip()]
            n = args.n_scale or (100_000 if q else 1_000_000)
            f, e = part_c(work, n, args.n_recall, strategies, args.timeout)
            figs += f
            extra["c"] = e
    return report(args.name, "match", figs, extra, machine)


if __name__ == "__main__":
    sys.exit(main())
