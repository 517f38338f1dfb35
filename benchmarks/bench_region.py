"""Region benchmark (issue 5, "One machine"): the whole region end to end on this machine.

(a) ``linkage synth`` 1.6M people, 2 parties, medium corruption (160k with ``--quick``);
    ``linkage encode`` both (CLI); ``linkage match`` (blocking auto, seed 1); ``linkage
    evaluate`` against truth.csv, all with today's defaults (the hardened uk-person template,
    its recommended threshold, the candidate cap). Wall time, CPU seconds and peak RSS per
    stage; targets (issues 5 and 13): encode + match <= 120 s and peak RSS <= 8 GB.
(b) Likewise 8 parties of about 200k records each (25k with ``--quick``).
(c) The match of (a) as a library call in a child process, in-process (``linkage.match``)
    vs on a Dask LocalCluster of 2 single-threaded workers (``linkage.distributed``); the
    cluster start is timed apart. Target: Dask within 1.3x of in-process. Links and pairs
    must be identical (checked).

(d) Scaling for docs/scale.md: about 200k x 200k records (25k x 25k with ``--quick``), blocking
    keys, on a LocalCluster of 1 and of 2 single-threaded workers (library call, cluster start
    apart; candidates+scoring seconds reported separately from solving in the client).

Run: ``.venv/bin/python benchmarks/bench_region.py [--quick] [--parts abcd] [--template T]
[--name N]`` (``--template uk-person-unhardened --name region_unhardened`` for the hardening A/B)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.machine import machine_info
from benchmarks.harness.measure import run_measured, run_measured_cpu
from benchmarks.harness.results import Figure, report
from benchmarks.linkage_cli import linkage_exe, run_synth, synth_encode_cmd, write_secret_file

GB = 10**9
SECRET = b"benchmark-secret-not-real-0123456789"
TARGET_S = 120.0
TARGET_RSS = 8 * GB
TARGET_DASK = 1.3

# A child process that runs one match as a library call and prints timings as JSON.
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
mode, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
from linkage.tlu.linker import match
res = {"import_s": time.perf_counter() - t0}
if mode == "dask":
    from linkage.dask_session import open_scheduler
    from linkage.tlu.dask_match import warm_worker
    t = time.perf_counter()
    with open_scheduler("local:2", warm=warm_worker) as s:
        res["cluster_start_s"] = time.perf_counter() - t
        t = time.perf_counter()
        r = match(files, scheduler=s, blocking="auto", seed=1)
        res["match_s"] = time.perf_counter() - t
else:
    t = time.perf_counter()
    r = match(files, blocking="auto", seed=1)
    res["match_s"] = time.perf_counter() - t
r.write(out + "_links.parquet", out + "_pairs.parquet")
res["stages"] = r.stats["seconds"]
res["strategy"] = r.stats["blocking"]
res["pairs"] = len(r.pairs)
print(json.dumps(res))
"""


def _stage(cmd: list[Any], timeout_s: float = 3600) -> dict[str, Any]:
    run, cpu = run_measured_cpu(cmd, timeout_s=timeout_s)
    if run.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    return {
        "seconds": run.wall_s,
        "cpu_seconds": cpu,
        "peak_rss_bytes": run.peak_rss_bytes,
        "stdout": run.stdout,
        "stderr": run.stderr,  # the CLI's summary lines
    }


_F1 = re.compile(r"F1[^\d]*([\d.]+)")


def scenario(
    work: Path, label: str, people: int, parties: int, overlap: float, template: str = "uk-person"
) -> dict[str, Any]:
    """synth -> encode each party (schema: ``template``) -> match -> evaluate; time and peak RSS
    per stage."""
    from linkage.schema_template import template_json

    sdir = work / f"synth_{label}"
    manifest, srun = run_synth(sdir, people, parties, overlap=overlap, seed=1)
    schema = work / "schema.json"
    schema.write_text(template_json(template), encoding="utf-8")
    secret = write_secret_file(work / "secret.key", SECRET)
    info: dict[str, Any] = {
        "people": people,
        "parties": parties,
        "template": template,
        "records": [p["records"] for p in manifest["parties"]],
        "synth": {"seconds": srun.wall_s, "peak_rss_bytes": srun.peak_rss_bytes},
        "encode": [],
    }
    files = []
    for p in manifest["parties"]:
        out = work / f"{label}_{p['name']}.parquet"
        st = _stage(synth_encode_cmd(sdir, p, schema, secret, out))  # absent fields included
        st.pop("stdout"), st.pop("stderr")
        info["encode"].append({"party": p["name"], "records": p["records"], **st})
        files.append(out)
    links, pairs = work / f"{label}_links.parquet", work / f"{label}_pairs.parquet"
    mcmd: list[Any] = [linkage_exe(), "match", *files, "-o", links, "--pairs", pairs, "--seed", "1"]
    st = _stage(mcmd)
    info["match"] = {
        "seconds": st["seconds"],
        "cpu_seconds": st["cpu_seconds"],
        "peak_rss_bytes": st["peak_rss_bytes"],
        "summary": (st["stdout"] + st["stderr"]).strip().splitlines(),
    }
    truth = sdir / "truth.csv"
    ev = _stage([linkage_exe(), "evaluate", links, "--truth", truth, "--pairs", pairs, "--json"])
    try:
        report = json.loads(ev["stdout"])
    except json.JSONDecodeError:
        report = {"raw": ev["stdout"][-2000:]}
    info["evaluate"] = {
        "seconds": ev["seconds"],
        "peak_rss_bytes": ev["peak_rss_bytes"],
        "report": _headline(report),
    }
    enc_s = sum(e["seconds"] for e in info["encode"])
    info["encode_match_s"] = enc_s + info["match"]["seconds"]
    info["peak_rss_bytes"] = max(
        [e["peak_rss_bytes"] for e in info["encode"]]
        + [info["match"]["peak_rss_bytes"], info["evaluate"]["peak_rss_bytes"]]
    )
    info["files"] = [str(f) for f in files]
    return info


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """The cross-party pairwise figures of an evaluate --json report (whatever its nesting)."""
    out: dict[str, Any] = {}

    def walk(d: Any, path: str) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif (
            isinstance(d, int | float)
            and any(w in path.lower() for w in ("precision", "recall", "f1"))
            and path.count(".") <= 2
        ):
            out[path] = d

    walk(report, "")
    return out


def figures_for(label: str, info: dict[str, Any]) -> list[Figure]:
    recs = sum(info["records"])
    enc_s = sum(e["seconds"] for e in info["encode"])
    enc_cpu = sum(e["cpu_seconds"] for e in info["encode"])
    enc_rss = max(e["peak_rss_bytes"] for e in info["encode"]) / GB
    note = (
        f"{info['parties']} parties, {recs:,} records from {info['people']:,} people; "
        f"{enc_cpu:.1f} CPU-s, peak RSS {enc_rss:.2f} GB"
    )
    m = info["match"]
    figs = [
        Figure(f"{label}: encode (all parties, CLI)", enc_s, "s", note=note),
        Figure(
            f"{label}: match (CLI, auto)",
            m["seconds"],
            "s",
            note=f"{m['cpu_seconds']:.1f} CPU-s, peak RSS {m['peak_rss_bytes'] / GB:.2f} GB; "
            + "; ".join(m["summary"][-5:-1]),
        ),
        Figure(
            f"{label}: encode + match",
            info["encode_match_s"],
            "s",
            note=f"target <= {TARGET_S:.0f} s: "
            + ("met" if info["encode_match_s"] <= TARGET_S else "MISSED"),
        ),
        Figure(
            f"{label}: peak RSS (max over encode, match, evaluate)",
            info["peak_rss_bytes"] / GB,
            "GB",
            note=f"target <= 8 GB: {'met' if info['peak_rss_bytes'] <= TARGET_RSS else 'MISSED'}; "
            f"match {info['match']['peak_rss_bytes'] / GB:.2f} GB",
        ),
        Figure(f"{label}: evaluate (CLI)", info["evaluate"]["seconds"], "s"),
    ]
    f1 = {k: v for k, v in info["evaluate"]["report"].items() if k.lower().endswith("f1")}
    if f1:
        k, v = sorted(f1.items())[0]
        figs.append(Figure(f"{label}: {k}", float(v), "", note="vs truth.csv"))
    return figs


def dask_vs_inprocess(work: Path, files: list[str]) -> tuple[list[Figure], dict[str, Any]]:
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for mode in ("inproc", "dask"):
        prefix = str(work / f"c_{mode}")
        run = run_measured([sys.executable, "-c", _CHILD, mode, prefix, *files], timeout_s=3600)
        if run.returncode != 0:
            raise RuntimeError(f"{mode} match failed: {run.stderr.strip()[-2000:]}")
        res = json.loads(run.stdout.strip().splitlines()[-1])
        res.update({"wall_s": run.wall_s, "peak_rss_bytes": run.peak_rss_bytes})
        out[mode] = res
    same = all(
        pq.read_table(str(work / f"c_inproc_{t}.parquet")).equals(
            pq.read_table(str(work / f"c_dask_{t}.parquet"))
        )
        for t in ("links", "pairs")
    )
    out["identical"] = same
    ratio = out["dask"]["match_s"] / out["inproc"]["match_s"]
    figs = [
        Figure("dask: in-process match (library)", out["inproc"]["match_s"], "s"),
        Figure(
            "dask: LocalCluster(2) match (library)",
            out["dask"]["match_s"],
            "s",
            note=f"cluster start {out['dask']['cluster_start_s']:.2f} s apart; "
            f"links+pairs identical: {same}",
        ),
        Figure(
            "dask: LocalCluster(2) / in-process time",
            ratio,
            "x",
            note=f"target <= {TARGET_DASK}: {'met' if ratio <= TARGET_DASK else 'MISSED'}",
        ),
    ]
    return figs, out


_SCALE_CHILD = r"""
import json, sys, time
n, files = int(sys.argv[1]), sys.argv[2:]
from linkage.dask_session import open_scheduler
from linkage.tlu.dask_match import warm_worker
from linkage.tlu.linker import match
t = time.perf_counter()
with open_scheduler(f"local:{n}", warm=warm_worker) as s:
    start = time.perf_counter() - t
    t = time.perf_counter()
    r = match(files, scheduler=s, blocking="keys", seed=1)
    total = time.perf_counter() - t
print(json.dumps({"workers": n, "cluster_start_s": start, "match_s": total,
                  "stages": r.stats["seconds"], "candidates": r.stats["candidates"],
                  "records": sum(r.stats["records_per_party"].values())}))
"""


def scaling(work: Path, per_party: int) -> tuple[list[Figure], dict[str, Any]]:
    info = scenario(work, "d", round(per_party / 0.7), 2, overlap=0.7)
    out: dict[str, Any] = {"records": info["records"]}
    for n in (1, 2):
        run = run_measured([sys.executable, "-c", _SCALE_CHILD, str(n), *info["files"]])
        if run.returncode != 0:
            raise RuntimeError(f"scaling run failed: {run.stderr.strip()[-2000:]}")
        out[str(n)] = json.loads(run.stdout.strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    score1 = one["stages"]["candidates+scoring"]
    score2 = two["stages"]["candidates+scoring"]
    recs = " x ".join(f"{r:,}" for r in info["records"])
    figs = [
        Figure(f"scale: {recs} keys, 1 worker, scoring", score1, "s", note="LocalCluster(1)"),
        Figure(f"scale: {recs} keys, 2 workers, scoring", score2, "s", note="LocalCluster(2)"),
        Figure(
            "scale: speed-up of scoring, 2 vs 1 worker",
            score1 / score2,
            "x",
            note=f"whole match {one['match_s']:.2f} s -> {two['match_s']:.2f} s; "
            f"client solve {two['stages']['solve']:.2f} s",
        ),
    ]
    return figs, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="160k people; 8 x 25k records")
    ap.add_argument("--parts", default="abcd", help="which parts to run (subset of 'abcd')")
    ap.add_argument("--people", type=int, help="(a) people (1,600,000; 160,000 quick)")
    ap.add_argument("--per-party", type=int, help="(b) records per party (200,000; 25,000 quick)")
    ap.add_argument("--name", default="region")
    ap.add_argument("--template", default="uk-person",
                    help="schema template for (a) and (b), e.g. uk-person-unhardened for the "
                    "hardening A/B (default: the hardened uk-person)")  # fmt: skip
    args = ap.parse_args(argv)
    q = args.quick
    machine = machine_info()
    figs: list[Figure] = []
    extra: dict[str, Any] = {"quick": q}
    with tempfile.TemporaryDirectory(prefix="bench-region-") as tmp:
        work = Path(tmp)
        a_info = None
        if "a" in args.parts or "c" in args.parts:
            people = args.people or (160_000 if q else 1_600_000)
            a_info = scenario(work, "a", people, 2, overlap=0.7, template=args.template)
            figs += figures_for("2 parties", a_info)
            extra["a"] = a_info
        if "b" in args.parts:
            per = args.per_party or (25_000 if q else 200_000)
            # with 8 parties each person appears in a party with probability about overlap
            b_info = scenario(work, "b", round(per / 0.7), 8, overlap=0.7, template=args.template)
            figs += figures_for("8 parties", b_info)
            extra["b"] = b_info
        if "c" in args.parts and a_info is not None:
            f, e = dask_vs_inprocess(work, a_info["files"])
            figs += f
            extra["c"] = e
        if "d" in args.parts:
            f, e = scaling(work, 25_000 if q else 200_000)
            figs += f
            extra["d"] = e
    return report(args.name, "region", figs, extra, machine)


if __name__ == "__main__":
    raise SystemExit(main())
