"""Hardening benchmark (issue 12): each hardening configuration's privacy risk (``linkage
audit``, every attack, worst case over the attack's settings and 25/50/100% overlap) and its
linkage quality cost (synthetic data drawn with seeds the template was never tuned on: 2 and 8
parties, medium and high corruption), in one table.

    .venv/bin/python benchmarks/bench_hardening.py --configs none,diffusion_t4 [--people 5000]
    .venv/bin/python benchmarks/bench_hardening.py --table          # rewrite the table only
    .venv/bin/python benchmarks/bench_hardening.py --configs default --audit-people 50000 \
        --quality-people 0                                           # the 50k confirmation

Quality, at the same scoring as the template (record-level Dice, greedy solver, the default
``auto`` blocking): for 2 parties, one match at a low threshold with pairs, then the best F1
over thresholds (greedy one-to-one has the prefix property, so one run gives the sweep) and
the F1 at the configuration's recommended threshold; for 8 parties, pairwise F1 of the
clusters of one multi-party match at the recommended threshold.

Results are merged per configuration into benchmarks/results/hardening.json (so configurations
can be measured in several short runs) and the table is rewritten to
benchmarks/results/hardening.md.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import linkage  # noqa: E402
from linkage.lab.synthetic import encode_arguments  # noqa: E402
from linkage.schema_template import uk_person_template, uk_person_unhardened  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SEED = 2027  # held out: the template was tuned on seeds 0..10
LOW = 0.5  # the 2-party sweep runs from here to 0.95
NAMES = ("given_name", "surname")
TEXT = ("given_name", "surname", "postcode", "address")
YOB = {"field": "date_of_birth", "transform": "year"}

Config = Callable[[dict[str, Any]], dict[str, Any]]


def _steps(*steps: dict[str, Any], threshold: float | None = None) -> Config:
    def make(doc: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        out["hardening"] = [dict(s) for s in steps]
        if threshold is not None:
            out["match"] = {"threshold": threshold}
        return out

    return make


def _salted(inner: Config, fields: tuple[str, ...] = NAMES, salt: Any = YOB) -> Config:
    def make(doc: dict[str, Any]) -> dict[str, Any]:
        out = inner(doc)
        for f in out["fields"]:
            if f["name"] in fields:
                f["salt"] = copy.deepcopy(salt)
        return out

    return make


def _sparse(inner: Config, scale: float = 0.5) -> Config:
    """Bits per token (and bit budgets) scaled by ``scale``: a sparser filter before diffusion
    keeps true pairs' distances small while unrelated pairs' stay near 1/2."""

    def make(doc: dict[str, Any]) -> dict[str, Any]:
        out = inner(doc)
        for f in out["fields"]:
            for key in ("bits_per_token", "bit_budget"):
                if f.get(key) is not None:
                    f[key] = max(1, round(f[key] * scale))
        return out

    return make


def _drop_key(doc: dict[str, Any], name: str) -> dict[str, Any]:
    doc["block_keys"] = [b for b in doc["block_keys"] if b["name"] != name]
    return doc


def _diff(t: int, m: int = 1024) -> dict[str, Any]:
    return {"type": "diffusion", "taps": t, "output_bits": m}


CONFIGS: dict[str, Config] = {
    "none": lambda d: copy.deepcopy(d),
    "salt_yob": _salted(lambda d: copy.deepcopy(d)),
    "balance": _steps({"type": "balance"}),
    "xor_fold": _steps({"type": "xor_fold"}),
    "rule90": _steps({"type": "rule90"}),
    "blip_0.05": _steps({"type": "blip", "flip_probability": 0.05}),
    "diffusion_t2": _steps(_diff(2)),
    "diffusion_t3": _steps(_diff(3)),
    "diffusion_t3_2048": _steps(_diff(3, 2048)),
    "diffusion_t4": _steps(_diff(4)),
    "diffusion_t5": _steps(_diff(5)),
    "diffusion_t8": _steps(_diff(8)),
    "diffusion_t4_2048": _steps(_diff(4, 2048)),
    "diffusion_t5_2048": _steps(_diff(5, 2048)),
    "salt_yob+diffusion_t3": _salted(_steps(_diff(3))),
    "salt_yob+diffusion_t4": _salted(_steps(_diff(4))),
    "salt_yob+diffusion_t3_2048": _salted(_steps(_diff(3, 2048))),
    "salt_yob_text+diffusion_t3_2048": _salted(_steps(_diff(3, 2048)), TEXT),
    "balance+diffusion_t4": _steps({"type": "balance"}, _diff(4, 2048)),
    "sparse+diffusion_t4_2048": _sparse(_steps(_diff(4, 2048))),
    "sparse+diffusion_t5_2048": _sparse(_steps(_diff(5, 2048))),
    "sparse+diffusion_t6_2048": _sparse(_steps(_diff(6, 2048))),
    "sparse+diffusion_t8_2048": _sparse(_steps(_diff(8, 2048))),
    "sparse35+diffusion_t6_2048": _sparse(_steps(_diff(6, 2048)), 0.35),
    "sparse35+diffusion_t8_2048": _sparse(_steps(_diff(8, 2048)), 0.35),
    "sparse25+diffusion_t8_2048": _sparse(_steps(_diff(8, 2048)), 0.25),
    "sparse25+diffusion_t6_2048": _sparse(_steps(_diff(6, 2048)), 0.25),
    "default": lambda d: uk_person_template(),
    "default-names_soundex": lambda d: _drop_key(uk_person_template(), "names_soundex"),
}


def config_doc(name: str) -> dict[str, Any]:
    """The schema document of configuration ``name`` (built on the unhardened template)."""
    if name not in CONFIGS:
        raise SystemExit(f"unknown configuration {name!r} (one of {', '.join(CONFIGS)})")
    return CONFIGS[name](uk_person_unhardened())


def _secret() -> linkage.Secret:
    return linkage.Secret(hashlib.sha256(b"bench_hardening throwaway secret").digest())


def _synth(work: Path, people: int, parties: int, corruption: str) -> tuple[Path, dict[str, Any]]:
    sdir = work / f"synth-{people}-{parties}-{corruption}"
    if not sdir.exists():
        linkage.synth(sdir, people, parties, corruption=corruption, seed=SEED, fmt="parquet")
    return sdir, json.loads((sdir / "manifest.json").read_text(encoding="utf-8"))


def _encode(doc: dict[str, Any], sdir: Path, manifest: dict[str, Any]) -> list[Any]:
    schema, secret = linkage.Schema.from_dict(doc), _secret()
    return [
        linkage.encode(sdir / p["file"], schema, secret, **encode_arguments(p))
        for p in manifest["parties"]
    ]


def recommended(doc: dict[str, Any]) -> float:
    """The configuration's match threshold: the schema's ``match.threshold``, else 0.7."""
    return float(doc.get("match", {}).get("threshold", 0.7))


def _recommended(doc: dict[str, Any], results: dict[str, Any], name: str) -> float:
    """The schema's threshold, else the best 2p-medium threshold measured for ``name``."""
    if "match" in doc:
        return recommended(doc)
    q = results.get(name, {}).get("quality", {}).get("2p-medium", {})
    return float(q.get("best_threshold") or recommended(doc))


def quality(
    doc: dict[str, Any], work: Path, people: int, parties: int, corr: str, thr: float
) -> dict:
    """F1 at threshold ``thr`` (and, for 2 parties, the best F1 over thresholds)."""
    sdir, manifest = _synth(work, people, parties, corr)
    truth = sdir / "truth.csv"
    t0 = time.perf_counter()
    encs = _encode(doc, sdir, manifest)
    out: dict[str, Any] = {"recommended_threshold": thr}
    if parties == 2:
        res = linkage.match(encs, threshold=LOW, seed=1)
        ev = linkage.evaluate(res.links, truth, pairs=res.pairs, sweep=(LOW, 0.95, 0.01))
        best = ev.best or {}
        at = min(ev.sweep or [], key=lambda r: abs(r["threshold"] - thr), default={})
        out.update(
            best_f1=best.get("f1"), best_threshold=best.get("threshold"),
            best_precision=best.get("precision"), best_recall=best.get("recall"),
            f1=at.get("f1"), precision=at.get("precision"), recall=at.get("recall"),
        )  # fmt: skip
    else:
        res = linkage.match(encs, threshold=thr, seed=1)
        ev = linkage.evaluate(res.links, truth)
        c = ev.cross
        out.update(f1=c.f1, precision=c.precision, recall=c.recall)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def blocking_recall(doc: dict[str, Any], work: Path, people: int, corr: str, thr: float) -> dict:
    """Pairs completeness of key blocking relative to exhaustive scoring, at the configuration's
    threshold: true matched pairs found with keys / true matched pairs found exhaustively."""
    sdir, manifest = _synth(work, people, 2, corr)
    encs = _encode(doc, sdir, manifest)
    found = {}
    for strategy in ("none", "keys"):
        res = linkage.match(encs, threshold=thr, blocking=strategy, seed=1)
        ev = linkage.evaluate(res.links, sdir / "truth.csv", pairs=res.pairs)
        found[strategy] = (ev.pairs or {}).get("tp", 0)
    return {
        "exhaustive_tp": found["none"],
        "keys_tp": found["keys"],
        "recall_vs_exhaustive": found["keys"] / max(found["none"], 1),
    }


def risk(doc: dict[str, Any], people: int, graph_sample: int) -> dict[str, Any]:
    res = linkage.audit(doc, people=people, graph_sample=graph_sample, seed=0)
    out: dict[str, Any] = {"people": people, "graph_sample": graph_sample, "rates": res.rates()}
    out["worst"] = res.worst
    out["detail"] = {
        a.name: {k: v.get("reidentified") for k, v in a.per_field.items()}
        for a in res.attacks
        if a.per_field
    }
    out["leaks"] = next((a.metrics for a in res.attacks if a.name == "leaks"), {})
    out["seconds"] = round(res.seconds, 1)
    return out


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def table(results: dict[str, Any]) -> str:
    attacks = ("frequency", "patterns", "graph")
    head = ["configuration", "audit n"] + [f"{a} re-id" for a in attacks]
    head += ["graph 100/50/25%", "block keys worst"]
    qcols = ("2p-medium", "2p-high", "8p-medium", "8p-high")
    head += ["threshold"] + [f"F1 {q}" for q in qcols]
    head += ["best F1 2p-medium (t)", "best F1 2p-high (t)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        suffix = name[name.find(" (") :] if " (" in name else ""  # compare like with like
        base = results.get("none" + suffix, {}).get("quality", {})
        a = r.get("risk", {})
        rates = a.get("rates", {})
        g = a.get("detail", {}).get("graph", {})
        gs = "/".join(_pct(v) for v in g.values()) if g else "-"
        fr = {k: v for k, v in a.get("detail", {}).get("frequency", {}).items()
              if k.startswith("block_key")}  # fmt: skip
        bk = max(fr.values(), default=None)
        q = r.get("quality", {})
        row = [name, str(a.get("people", "-"))] + [_pct(rates.get(x)) for x in attacks]
        row += [gs, _pct(bk), _f(q.get("2p-medium", {}).get("recommended_threshold"))]
        for c in qcols:
            f1 = q.get(c, {}).get("f1")
            b1 = base.get(c, {}).get("f1")
            skip = f1 is None or b1 is None or name.startswith("none")
            delta = "" if skip else f" ({f1 - b1:+.3f})"
            row.append(_f(f1) + delta)
        for c in ("2p-medium", "2p-high"):
            bm, b0 = q.get(c, {}), base.get(c, {}).get("best_f1")
            f1 = bm.get("best_f1")
            skip = f1 is None or b0 is None or name.startswith("none")
            delta = "" if skip else f" {f1 - b0:+.3f}"
            row.append(f"{_f(f1)}{delta} (t {_f(bm.get('best_threshold'))})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--configs", default="none", help="comma-separated names: " + ", ".join(CONFIGS)
    )
    ap.add_argument("--audit-people", type=int, default=5000)
    ap.add_argument("--graph-sample", type=int, default=2000)
    ap.add_argument("--quality-people", type=int, default=5000, help="0: skip quality")
    ap.add_argument("--blocking-people", type=int, default=0, help="key-blocking recall (0: no)")
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--table", action="store_true", help="only rewrite the table")
    ap.add_argument("--out", default=str(RESULTS / "hardening.json"))
    args = ap.parse_args(argv)
    path = Path(args.out)
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if not args.table:
        with tempfile.TemporaryDirectory(prefix="bench-hardening-") as tmp:
            work = Path(tmp)
            for name in args.configs.split(","):
                doc = config_doc(name)
                r = results.setdefault(name, {})
                r["schema"] = {k: doc[k] for k in ("hardening", "match") if k in doc}
                r["salted"] = {f["name"]: f["salt"] for f in doc["fields"] if f.get("salt")}
                t0 = time.perf_counter()
                if not args.no_audit:
                    r["risk"] = risk(doc, args.audit_people, args.graph_sample)
                    print(name, "risk", json.dumps(r["risk"]["rates"]), flush=True)
                if args.quality_people:
                    q = r.setdefault("quality", {})
                    thr = recommended(doc)
                    for parties in (2, 8):
                        for corr in ("medium", "high"):
                            key = f"{parties}p-{corr}"
                            q[key] = quality(doc, work, args.quality_people, parties, corr, thr)
                            if key == "2p-medium" and "match" not in doc:
                                # no recommendation: the best threshold on 2p-medium
                                thr = q[key]["best_threshold"]
                                q[key] = quality(doc, work, args.quality_people, 2, corr, thr)
                            print(name, key, json.dumps(q[key]), flush=True)
                if args.blocking_people:
                    thr = _recommended(doc, results, name)
                    r["blocking"] = blocking_recall(doc, work, args.blocking_people, "medium", thr)
                    print(name, "blocking", json.dumps(r["blocking"]), flush=True)
                print(name, f"{time.perf_counter() - t0:.0f} s", flush=True)
                path.parent.mkdir(parents=True, exist_ok=True)
                latest = json.loads(path.read_text()) if path.exists() else {}
                latest[name] = r  # other runs may have saved other configurations meanwhile
                results = {**latest, **{k: v for k, v in results.items() if k not in latest}}
                path.write_text(json.dumps(results, indent=1) + "\n")
    md = RESULTS / "hardening.md"
    md.write_text(
        "# Hardening: re-identification (linkage audit, worst case) and F1\n\n"
        "Produced by benchmarks/bench_hardening.py; see docs/privacy.md.\n\n" + table(results)
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
