"""Audit benchmark (issue 11): the run time of a 50k-record audit and a validation table of
our attacks against the published ones on the same kinds of encoding.

    .venv/bin/python benchmarks/bench_audit.py [--people 50000] [--small 5000] [--only a,b]
        [--graph-sample N]
    .venv/bin/python benchmarks/bench_audit.py --only clk_like_graph_5k   # 5,000 encoded per
        # overlap from 20,000 people (lists up to 20,000): the issue's ">= 5k records" row
    .venv/bin/python benchmarks/bench_audit.py --graph-diagnose 2000   # partial-overlap study

Writes benchmarks/results/audit.json (each run label's latest result, dated) and appends to
benchmarks/results/audit.md.
``--graph-diagnose N`` (issue 11, graph matching at partial overlap) writes
benchmarks/results/audit_graph_diagnose.json instead: on the clkhash-like CLK with N encoded
records at 100 / 50 / 25% overlap, (a) the attack as the audit runs it, (b) how far each node
feature of a true pair moves between the two graphs, (c) the seed-propagation stage alone
started from k right seeds. (b) and (c) use the truth to *diagnose* the attack; they are not
attack results.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import linkage  # noqa: E402
from linkage.schema_template import uk_person_template, uk_person_unhardened  # noqa: E402

PUBLISHED = {
    "graph_clk_100": "99.8% (Schäfer et al. 2024, NCVR 100k)",
    "graph_clk_50": "98.7%",
    "graph_clk_25": "79%",
    "hgma_bad": "up to 91.6% of BAD encodings (1,000 name records; Armknecht & Schafer 2026)",
    "patterns_unhardened": "surname ~80%, given name ~60% (independent run, ~38k)",
    "patterns_salted": "0% (independent run; Chen et al. 2022)",
    "patterns_field": "up to 20.7% of values (IJPDS 2018, NCVR 222k)",
}


def clk_like() -> dict:
    """clkhash-style record-level CLK (Schäfer et al.'s target; the audit's own definition)."""
    from linkage.lab.audit.scenario import clkhash_like_schema

    return clkhash_like_schema()


def salted() -> dict:
    doc = uk_person_unhardened()
    for f in doc["fields"]:
        if f["name"] in ("given_name", "surname"):
            f["salt"] = {"field": "date_of_birth", "transform": "year"}
    return doc


def field_level() -> dict:
    doc = uk_person_unhardened()
    doc["fields"] = [copy.deepcopy(f) for f in doc["fields"] if f["name"] == "surname"]
    doc["fields"][0]["bits_per_token"] = 20
    doc["block_keys"] = []
    doc.pop("min_evidence", None)
    return doc


def names_only() -> dict:
    """Given name and surname only, 20 bits per token, no diffusion: the kind of record the
    homomorphism attack was published on (names), for the hgma validation row."""
    doc = copy.deepcopy(uk_person_unhardened())
    doc["fields"] = [f for f in doc["fields"] if f["name"] in ("given_name", "surname")]
    for f in doc["fields"]:
        f["bits_per_token"] = 20
        f.pop("bit_budget", None)
    doc["block_keys"] = []
    doc.pop("min_evidence", None)
    return doc


def diffusion_paper(taps: int, length: int, bits: int) -> dict:
    """The diffusion paper's own target (Armknecht, Heng & Schnell, PoPETs 2023, artifact
    youzheheng/2022_PoPETS): names, sex, day and month of birth as unpadded bigrams, ``bits``
    per token, ``length`` bits diffused to ``length`` with ``taps`` taps."""
    from linkage.lab.audit.scenario import diffusion_paper_schema

    return diffusion_paper_schema(taps, length, bits)


def default_taps(taps: int) -> dict:
    """The hardened default with fewer diffusion taps (is t = 8 needed?)."""
    from linkage.lab.audit.scenario import with_diffusion_taps

    return with_diffusion_taps(uk_person_template(), taps)


def run(label: str, schema: dict, people: int, **kw: object) -> dict:
    t = time.perf_counter()
    r = linkage.audit(schema, people=people, progress=lambda m: print(f"  [{label}] {m}",
                      file=sys.stderr, flush=True), **kw)  # fmt: skip
    out = {"label": label, "people": people, "seconds": round(time.perf_counter() - t, 1),
           "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
           "result": r.to_dict()}  # fmt: skip
    print(f"{label}: {json.dumps(r.rates())} in {out['seconds']} s", flush=True)
    return out


def graph_diagnose(n: int) -> dict:
    """The partial-overlap study (see the module doc); ~1-3 min at n = 2000 on 2 cores."""
    import numpy as np

    from linkage.lab.audit import graph
    from linkage.lab.audit.plaintext import simulate_filters, unpack
    from linkage.lab.audit.runner import graph_lists
    from linkage.lab.audit.scenario import synthetic_scenario

    s = linkage.Schema.from_dict(clk_like())
    sc = synthetic_scenario(s, n, seed=0, reference_people=3 * n + 1)
    x = unpack(sc.filters)
    out: dict = {"records": n, "overlaps": {}}
    for ov in (1.0, 0.5, 0.25):
        t = time.perf_counter()
        rows, lst, ident = graph_lists(sc, ov, n, 0)
        a, e = simulate_filters(lst, s, 1), x[rows]
        lid = lst.identity()
        pos = {v: i for i, v in enumerate(lid)}
        truth = np.array([pos[i] for i in ident])
        fe, fa = graph.graph_features(e, a)
        m = graph.match_graphs(e, a, feats=(fe, fa), pool_nodes=1500, seeds=50)
        shift = (fe - fa[truth]).mean(0) / (fa.std(0) + 1e-9)
        ge, ga = graph.Graph(e), graph.Graph(a)
        rng = np.random.default_rng(0)
        seeded = {}
        for k in (20, 50, 200):
            sel = rng.choice(len(e), k, replace=False)
            mk, _ = graph._anchor_match(ge, ga, np.stack([sel, truth[sel]], 1))
            seeded[k] = float((mk == truth).mean())
        r = {
            "list": int(lst.n),
            "attack_reidentified": float((m == truth).mean()),
            "feature_shift_sd": {
                k: round(float(v), 2) for k, v in zip(FEATURE_NAMES, shift, strict=True)
            },
            "one_round_from_right_seeds": seeded,
            "popcount_mean_encoded_vs_list": [float(e.sum(1).mean()), float(a.sum(1).mean())],
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(f"overlap {ov:.0%}: {json.dumps(r)}", flush=True)
        out["overlaps"][f"{ov:.2f}"] = r
    return out


FEATURE_NAMES = ["popcount", "q0.5", "q0.9", "top1", "top2", "top3", "top5", "top10",
                 ">=q.99", ">=q.995", ">=q.999", ">=q.9995", ">=q.9999"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=50_000)
    ap.add_argument("--small", type=int, default=5_000)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated run labels (default: all)")
    ap.add_argument("--graph-sample", type=int, default=0,
                    help="encoded records per graph-matching run (default: --small)")  # fmt: skip
    ap.add_argument("--graph-diagnose", type=int, default=0, metavar="N",
                    help="run only the partial-overlap graph study on N records")  # fmt: skip
    a = ap.parse_args()
    if a.graph_diagnose:
        d = graph_diagnose(a.graph_diagnose)
        d["date"] = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
        d["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        res = ROOT / "benchmarks" / "results"
        tmp = res / ".audit_graph_diagnose.json.partial"
        tmp.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, res / "audit_graph_diagnose.json")
        return
    only = {x for x in a.only.split(",") if x}
    runs: list[dict] = []

    def run_(label: str, schema: dict, people: int, **kw: object) -> None:
        if not only or label in only:
            runs.append(run(label, schema, people, **kw))

    g = {"graph_sample": a.graph_sample or a.small}
    run_("clk_like_graph", clk_like(), a.small, attacks=("graph",), **g)
    run_("unhardened_graph", uk_person_unhardened(), a.small, attacks=("graph",), **g)
    p = {"attacks": ("patterns",)}
    run_("field_level_patterns", field_level(), a.small, **p)
    run_("unhardened_patterns", uk_person_unhardened(), a.small, **p)
    run_("salted_patterns", salted(), a.small, **p)
    run_("default_patterns", uk_person_template(), a.small, **p)
    run_("default_graph", uk_person_template(), a.small, attacks=("graph",), **g)
    run_("default_t2_graph", default_taps(2), a.small, attacks=("graph",), **g)
    run_("default_t4_graph", default_taps(4), a.small, attacks=("graph",), **g)
    # the diffusion paper's own encoding (names, sex, day and month, t = 4), 2,000 records:
    # its committed results' filter (1,000 bits, 5 hash functions) and its example call's (500, 15)
    d4 = {"attacks": ("graph",), "graph_sample": 2000}
    run_("diffusion_paper_t4_graph", diffusion_paper(4, 1024, 5), 2000, **d4)
    run_("diffusion_paper_dense_t4_graph", diffusion_paper(4, 512, 15), 2000, **d4)
    run_("diffusion_paper_k10_t4_graph", diffusion_paper(4, 1024, 10), 2000, **d4)  # its other
    h = {"attacks": ("hgma",)}  # an extract of 400 with duplicates (mode b), bound
    run_("default_hgma", uk_person_template(), 2000, **h)
    run_("unhardened_hgma", uk_person_unhardened(), 2000, **h)
    run_("names_only_hgma", names_only(), 2000, **h)
    if "clk_like_graph_5k" in only:  # ~15-20 min: only when named
        run_("clk_like_graph_5k", clk_like(), 20_000, attacks=("graph",), graph_sample=5000)
    if "default_t4_graph_5k" in only:  # 5,000 encoded per overlap, 100 / 50%: only when named
        run_("default_t4_graph_5k", default_taps(4), 20_000, attacks=("graph",),
             graph_sample=5000, overlaps=(1.0, 0.5))  # fmt: skip
    if not a.skip_big:
        run_("unhardened_full_audit", uk_person_unhardened(), a.people)
        run_("default_full_audit", uk_person_template(), a.people)
    doc = {
        "name": "audit",
        "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "published": PUBLISHED,
        "runs": runs,
    }
    res = ROOT / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    if only and (res / "audit.json").exists():  # keep the other runs' latest results
        old = json.loads((res / "audit.json").read_text(encoding="utf-8")).get("runs", [])
        doc["runs"] = [r for r in old if r["label"] not in only] + runs
    tmp = res / ".audit.json.partial"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, res / "audit.json")
    with open(res / "audit.md", "a", encoding="utf-8") as fh:
        fh.write(f"\n## {doc['date']} ({os.cpu_count()} CPUs)\n\n")
        for r in runs:
            fh.write(f"- {r['label']} ({r['people']:,} people, {r['seconds']} s): "
                     f"{json.dumps(r['result']['rates'])}\n")  # fmt: skip


if __name__ == "__main__":
    main()
