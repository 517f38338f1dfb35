"""Field-aware scoring (issue 13) against linkage's Dice defaults, on ``linkage synth`` data.

For each case (people, parties, corruption, seed): synth, encode each party twice with one
secret (the unhardened uk-person template, ``uk_person_unhardened``; and the same template
with the segmented layout, ``linkage.segments.with_segments``; hardening per segment is not
there yet), then ``linkage.match`` with defaults on each (segmented:
field-aware scoring + coherent clusters; record layout: Dice 0.7 one-to-one), and the record
layout with ``dedupe=True``. Cross-party pairwise precision / recall / F1 of the clusters
against truth.csv (``bench_quality.cluster_prf``). No label is used by any method.

Run: ``.venv/bin/python benchmarks/bench_fields.py [--quick] [--region] [--seed S]``;
``--quick``: the 20k medium case only; ``--region``: adds 1.6M people, 2 parties (minutes);
``--region-only``: that case alone, field-aware only; ``--cases 0,3``: those rows of CASES
only; ``--fields-only``: the field-aware method only; ``--seed``: the synth seed (reported
figures use seed 1; choose model changes on another seed). Rows are appended to
``benchmarks/results/fields.json`` (dated, with the load average): encode and match are
timed in this process, peak RSS is this process's (encode + match; synth runs apart).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_quality import Truth, cluster_prf
from benchmarks.linkage_cli import run_synth

CASES = [  # (people, parties, corruption, seed)
    (20_000, 2, "medium", 1),
    (20_000, 2, "high", 1),
    (20_000, 8, "medium", 1),
    (100_000, 2, "medium", 1),
]


def _encode(sdir: Path, layout: str) -> list[Any]:
    from linkage.lab.synthetic import encode_arguments
    from linkage.partner.pipeline import encode
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_unhardened
    from linkage.secret import Secret
    from linkage.segments import with_segments

    doc = uk_person_unhardened()  # the scoring comparison runs unhardened (issue 12)
    schema = Schema.from_dict(with_segments(doc) if layout == "segments" else doc)
    secret = Secret(hashlib.sha256(b"bench_fields, not a real secret").digest())
    man = json.loads((sdir / "manifest.json").read_text(encoding="utf-8"))
    return [
        encode(str(sdir / p["file"]), schema, secret, **encode_arguments(p)) for p in man["parties"]
    ]


def run_case(
    work: Path, people: int, parties: int, corruption: str, seed: int, fields_only: bool = False
) -> list[dict]:
    from linkage.tlu.linker import match
    from linkage.tlu.result import peak_rss

    sdir = work / f"s{people}_{parties}_{corruption}_{seed}"
    run_synth(sdir, people, parties, corruption=corruption, seed=seed)
    truth = Truth(sdir / "truth.csv")
    rows = []
    methods = [
        ("segments", "fields (default, segmented layout)", {}),
        ("record", "dice (default, record layout)", {}),
        ("record", "dice --dedupe", {"dedupe": True}),
    ]
    for layout, label, kw in methods[:1] if fields_only else methods:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        encs = _encode(sdir, layout)
        t1 = time.perf_counter()
        res = match(encs, seed=1, **kw)
        t2 = time.perf_counter()
        del encs
        q = cluster_prf(truth, res.links)
        rows.append({"case": f"{people // 1000}k x {parties}, {corruption}, seed {seed}",
                     "method": label, "precision": q["precision"], "recall": q["recall"],
                     "f1": q["f1"], "encode_s": t1 - t0, "match_s": t2 - t1,
                     "peak_rss_mb": peak_rss() / 2**20,
                     "load_avg_1m_before": round(load0, 2)})  # fmt: skip
        r = rows[-1]
        print(f"{r['case']:<28} {label:<36} P {r['precision']:.4f} R {r['recall']:.4f} "
              f"F1 {r['f1']:.4f}  encode {r['encode_s']:.1f}s match {r['match_s']:.1f}s "
              f"peak RSS {r['peak_rss_mb']:.0f} MB",
              flush=True)  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--region", action="store_true")
    ap.add_argument("--region-only", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", help="comma-separated indices into CASES")
    ap.add_argument("--fields-only", action="store_true")
    args = ap.parse_args(argv)
    cases = [(p, k, c, args.seed) for p, k, c, _ in CASES]
    if args.cases:
        cases = [cases[int(i)] for i in args.cases.split(",")]
    cases = [] if args.region_only else cases[:1] if args.quick else cases
    if args.region or args.region_only:
        cases.append((1_600_000, 2, "medium", args.seed))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            only = args.fields_only or args.region_only or case[0] > 500_000
            rows += run_case(Path(tmp), *case, fields_only=only)
    out = Path(__file__).resolve().parent / "results" / "fields.json"
    old = json.loads(out.read_text(encoding="utf-8")) if out.exists() else []
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load = os.getloadavg()[0]
    old += [{**r, "date": stamp, "load_avg_1m_after": round(load, 2)} for r in rows]
    out.write_text(json.dumps(old, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
