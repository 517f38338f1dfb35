"""Run every benchmark and write the summary table ``benchmarks/results/summary.md``.

Each benchmark runs as its own process (so peak RSS and numba thread settings do not leak
between them) and writes ``benchmarks/results/<name>.json``; the summary collects the latest
JSON of each: machine, versions, date, and every figure with the peer's value and the ratio
(>1: linkage better). A benchmark that fails is reported in the summary and makes the exit
status non-zero; the others still run.

Run: ``.venv/bin/python benchmarks/run_all.py [--quick] [--only encode,match,quality]
[--summary-only]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.machine import machine_info
from benchmarks.harness.results import RESULTS_DIR, atomic_write_text, fmt_number

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, str] = {
    "encode": "bench_encode.py",
    "match": "bench_match.py",
    "quality": "bench_quality.py",
    "region": "bench_region.py",
    "kernels": "bench_kernels.py",
    "map": "bench_map.py",
    "peers_baseline": "peers.py",
}
DEFAULT = ("encode", "match", "quality", "region")


def summary_markdown(
    results: Sequence[Mapping[str, Any]],
    machine: Mapping[str, Any],
    failures: Mapping[str, str],
    date: str,
) -> str:
    """The summary table from the results JSON documents (pure; each has ``figures``)."""
    m = machine
    lines = [
        "# linkage benchmark summary",
        "",
        f"Generated {date}. Machine: {m.get('cpu_model')}, {m.get('usable_cpus')} usable CPUs, "
        f"{(m.get('ram_bytes') or 0) / 2**30:.1f} GiB RAM, features "
        f"{', '.join(m.get('cpu_features') or []) or 'n/a'}; {m.get('os')}.",
        f"Software: Python {m.get('python')}, numpy {m.get('numpy')}, numba {m.get('numba')} "
        f"({m.get('numba_mode')}), pyarrow {m.get('pyarrow')}, linkage {m.get('linkage')} "
        f"@ {m.get('git_commit')}. Peers: clkhash 0.18.3, anonlink 0.15.3, blocklib 0.1.11 "
        "(own virtualenv, `.peers/`).",
        "",
        "Ratio > 1 means linkage is better (faster, smaller or more accurate). Each benchmark "
        "measured its peer in the same run on the same data; the load average at the start of "
        "each run is shown (the machine may be shared).",
        "",
        "| benchmark | metric | linkage | unit | peer | peer value | ratio | note |",
        "|---|---|---:|---|---|---:|---:|---|",
    ]
    for doc in results:
        name = doc.get("name", "?")
        mm = doc.get("machine", {})
        quick = " (quick)" if doc.get("extra", {}).get("quick") else ""
        load = mm.get("load_avg_1m")
        load_s = f"{load:.2f}" if isinstance(load, int | float) else "?"
        label = f"{name}{quick}<br>{doc.get('date', '')}<br>load {load_s}"
        for f in doc.get("figures", []):
            ratio = f.get("ratio")
            lines.append(
                f"| {label} | {f['metric']} | {fmt_number(f.get('value'))} | {f.get('unit', '')} | "
                f"{f.get('peer') or '—'} | {fmt_number(f.get('peer_value'))} | "
                f"{'—' if ratio is None else f'{ratio:.2f}×'} | "
                f"{str(f.get('note', '')).replace('|', '/')} |"
            )
            label = ""
    if failures:
        lines += ["", "## Failed benchmarks", ""]
        lines += [f"- **{k}**: {v}" for k, v in failures.items()]
    lines += ["", "Per-benchmark history: `benchmarks/results/<name>.md`; raw: `<name>.json`.", ""]
    return "\n".join(lines)


def load_results(names: Sequence[str], results_dir: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    docs = []
    for n in names:
        p = results_dir / f"{n}.json"
        if p.is_file():
            docs.append(json.loads(p.read_text(encoding="utf-8")))
    return docs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (minutes, not hours)")
    ap.add_argument("--only", default=",".join(DEFAULT), help=f"of {', '.join(BENCHES)}")
    ap.add_argument("--summary-only", action="store_true", help="rebuild summary.md only")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failures: dict[str, str] = {}
    if not args.summary_only:
        for n in names:
            cmd = [sys.executable, str(HERE / BENCHES[n])]
            if args.quick and n in DEFAULT:
                cmd.append("--quick")
            print(f"== {n}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.run(cmd, check=False).returncode
            print(f"== {n}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
            if rc != 0:
                failures[n] = f"exit status {rc} (see its output above)"
    date = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    docs = load_results([n for n in names if n not in failures])
    text = summary_markdown(docs, machine_info(), failures, date)
    out = RESULTS_DIR / "summary.md"
    atomic_write_text(out, text)
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
