"""End-to-end quality benchmark: linkage vs clkhash 0.18.3 + anonlink 0.15.3 on synthetic data.

Data: ``linkage synth --corruption medium`` with 2 parties of a 100k-person population
(10k with ``--quick``), and 4 parties for multi-party linkage. Ground truth from truth.csv.

- linkage: the raw partner extracts (own column names, date formats, codings) encoded with the
  ``uk-person`` template (7 fields) through ``linkage encode``, then ``linkage match
  --threshold LOW --pairs``. Greedy one-to-one assignment by descending score has the prefix
  property (the matches at threshold t are exactly the matches scoring >= t of a run at any
  lower threshold), so one run gives the whole threshold sweep.
- peer: the same 7 fields, given basic preprocessing first (column names mapped, dates
  rewritten as ISO from each party's known format, upper-case, trimmed, sex as its first
  letter, spaces removed from postcodes and NHS numbers; clkhash itself does no
  normalisation), encoded by clkhash (v3 schema, bigrams, blakeHash, 100 bits per feature,
  1024 bits, 2 workers), matched by anonlink's exhaustive ``find_candidate_pairs`` at the same
  low threshold plus ``greedy_solve``; same sweep.
- Pairwise precision, recall and F1 over cross-party record pairs (computed here from
  truth.csv, combinatorially), best F1 over thresholds LOW..0.95 step 0.01 (LOW: the
  template's recommended threshold - 0.1).
- 4 parties: ``linkage match`` (multi-party clustering) at several thresholds; pairwise F1 of
  the clusters over all cross-party pairs.

- Splink cases (issue 13's data shapes, synth seed 1: 20k people 2 parties medium and high
  corruption, 20k 8 parties, 100k 2 parties): linkage field-aware scoring (segmented
  uk-person layout, ``linkage.match`` defaults; ``bench_fields.run_case``) against Splink 4
  on the plaintext extracts (``.peers-splink/``, ``make peers-splink``; the model is the
  docstring of ``peer_scripts/splink_link.py``: blocking rules, u by random sampling, m by
  EM, term frequencies, no truth used in training). Splink's cross-party pairwise F1 of its
  scored pairs at its best match-weight threshold, TUNED ON TRUTH (an upper bound for it),
  and at match probability 0.5 (its own default); linkage's F1 is that of its clusters at
  its defaults (not tuned).

Targets: linkage best F1 >= peer's and >= 0.97 (2 parties); 4-party F1 >= 0.95.

Run: ``.venv/bin/python benchmarks/bench_quality.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.machine import machine_info
from benchmarks.harness.measure import run_measured_cpu
from benchmarks.harness.results import Figure, report, write_json
from benchmarks.linkage_cli import linkage_exe, run_synth, synth_encode_cmd, write_secret_file
from benchmarks.peer_configs import clkhash_schema_v3
from benchmarks.peers import (
    PeerFailedError,
    PeerMissingError,
    anonlink_all_pairs,
    clkhash_encode,
    peer_python,
    splink_link,
    splink_python,
)
from linkage.lab.synthetic import TEMPLATE_FIELDS

SECRET = b"benchmark-secret-not-real-0123456789"
FIELDS = tuple(TEMPLATE_FIELDS)  # given_name, surname, date_of_birth, sex, postcode, ...


# ---------------------------------------------------------------------------------------------
# Evaluation against truth.csv (pure numpy / pyarrow)
# ---------------------------------------------------------------------------------------------


class Truth:
    """Person code of every (party, record_id) in truth.csv."""

    def __init__(self, path: Path) -> None:
        t = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in ("party", "record_id", "person_id")}
            ),
        )
        self.key = pc.binary_join_element_wise(t["party"], t["record_id"], "\x1f")
        self.person = np.unique(t["person_id"].to_numpy(zero_copy_only=False), return_inverse=True)[
            1
        ].astype(np.int64)
        self.party = np.unique(t["party"].to_numpy(zero_copy_only=False), return_inverse=True)[
            1
        ].astype(np.int64)

    def lookup(self, party: pa.Array | pa.ChunkedArray, record_id: Any) -> np.ndarray:
        """Row of each (party, record_id) in truth (raises if one is missing)."""
        k = pc.binary_join_element_wise(party, record_id, "\x1f")
        idx = pc.index_in(k, value_set=self.key).to_numpy(zero_copy_only=False)
        if np.isnan(idx.astype(float)).any():
            raise RuntimeError("record ids not found in truth.csv")
        return idx.astype(np.int64)

    def true_cross_pairs(self) -> int:
        return cross_pairs(self.person, self.party)


def cross_pairs(group: np.ndarray, party: np.ndarray) -> int:
    """Sum over groups of the record pairs from different parties: (S^2 - sum_p n_p^2) / 2."""
    if len(group) == 0:
        return 0
    group = np.unique(group, return_inverse=True)[1]  # dense ids keep bincount small
    gp = group.astype(np.int64) * (int(party.max()) + 1) + party
    cells, counts = np.unique(gp, return_counts=True)
    g_of_cell = cells // (int(party.max()) + 1)
    s = np.bincount(g_of_cell, weights=counts.astype(np.float64))
    q = np.bincount(g_of_cell, weights=counts.astype(np.float64) ** 2)
    return round(float(((s * s - q) / 2).sum()))


def sweep(
    same: np.ndarray, score: np.ndarray, n_true: int, thresholds: np.ndarray
) -> list[dict[str, float]]:
    """P/R/F1 at each threshold for matched pairs (``same``: pair is a true match)."""
    order = np.argsort(-score, kind="stable")
    s, tp_cum = score[order], np.cumsum(same[order])
    out = []
    for t in thresholds:
        k = int(np.searchsorted(-s, -t, side="right"))  # pairs with score >= t
        tp = int(tp_cum[k - 1]) if k else 0
        p = tp / k if k else 1.0
        r = tp / n_true if n_true else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.append({"threshold": float(t), "precision": p, "recall": r, "f1": f1, "pairs": k})
    return out


def best(rows: list[dict[str, float]]) -> dict[str, float]:
    return max(rows, key=lambda r: r["f1"])


def cluster_prf(truth: Truth, links: pa.Table) -> dict[str, float]:
    """Pairwise cross-party P/R/F1 of a clustering (links: entity_id, party, record_id)."""
    rows = truth.lookup(links["party"], links["record_id"])
    ent = np.unique(links["entity_id"].to_numpy(zero_copy_only=False), return_inverse=True)[1]
    party = truth.party[rows]
    pred = cross_pairs(ent, party)
    n_ent = int(ent.max()) + 1 if len(ent) else 1
    tp = cross_pairs(ent.astype(np.int64) + n_ent * truth.person[rows], party)
    n_true = truth.true_cross_pairs()
    p = tp / pred if pred else 1.0
    r = tp / n_true if n_true else 1.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "predicted_pairs": pred,
        "true_pairs": n_true,
        "tp": tp,
    }


# ---------------------------------------------------------------------------------------------
# Sides
# ---------------------------------------------------------------------------------------------


def linkage_side(
    work: Path, sdir: Path, manifest: dict[str, Any], *, threshold: float, blocking: str, tag: str
) -> dict[str, Any]:
    from linkage.schema_template import template_json

    schema = work / "schema.json"
    schema.write_text(template_json(TEMPLATE), encoding="utf-8")
    secret = write_secret_file(work / "secret.key", SECRET)
    files, enc_s, enc_cpu = [], 0.0, 0.0
    for p in manifest["parties"]:
        out = work / f"{tag}_{p['name']}.parquet"
        run, cpu = run_measured_cpu(synth_encode_cmd(sdir, p, schema, secret, out), timeout_s=3600)
        if run.returncode != 0:
            raise RuntimeError(f"linkage encode failed: {run.stderr.strip()}")
        enc_s += run.wall_s
        enc_cpu += cpu
        files.append(out)
    return {"files": files, "encode_s": enc_s, "encode_cpu_s": enc_cpu}


def linkage_match(
    files: list[Path],
    out: Path,
    threshold: float,
    blocking: str,
    pairs: bool,
    dedupe: bool = False,
) -> tuple[dict[str, Any], pa.Table, pa.Table | None]:
    cmd: list[str | os.PathLike[str]] = [linkage_exe(), "match", *files, "-o", out, "--seed", "1"]
    cmd += ["--threshold", str(threshold), "--blocking", blocking]
    if dedupe:
        cmd.append("--dedupe")
    if pairs:
        cmd += ["--pairs", out.with_suffix(".pairs.parquet")]
    run, cpu = run_measured_cpu(cmd, timeout_s=3600)
    if run.returncode != 0:
        raise RuntimeError(f"linkage match failed: {run.stderr.strip()[-2000:]}")
    info = {
        "seconds": run.wall_s,
        "cpu_s": cpu,
        "peak_rss_bytes": run.peak_rss_bytes,
        "summary": run.stderr.strip().splitlines()[-6:],
    }
    ptab = pq.read_table(out.with_suffix(".pairs.parquet")) if pairs else None
    return info, pq.read_table(out), ptab


def peer_preprocess(sdir: Path, party: dict[str, Any], out: Path) -> Path:
    """The party's extract as a common-header CSV with basic normalisation (see module doc)."""
    import csv

    src = sdir / party["file"]
    with open(src, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    t = pacsv.read_csv(  # every column as a string (ids like 0123 must keep their zeros)
        src,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in header}, strings_can_be_null=True
        ),
    )
    cols = party["columns"]
    out_cols: dict[str, Any] = {"record_id": t[party["record_id_column"]]}
    for fname, sfield in TEMPLATE_FIELDS.items():
        v = pc.utf8_trim_whitespace(t[cols[sfield]])
        if sfield == "dob":
            d = pc.strptime(v, format=party["date_format"], unit="s", error_is_null=True)
            v = pc.strftime(d, format="%Y-%m-%d")
        elif sfield == "sex":
            v = pc.utf8_upper(pc.utf8_slice_codeunits(v, 0, 1))
        elif sfield in ("postcode", "nhs"):
            v = pc.utf8_upper(pc.replace_substring(v, " ", ""))
        else:
            v = pc.utf8_upper(v)
        out_cols[fname] = pc.fill_null(v, "")
    pacsv.write_csv(pa.table(out_cols), out)
    return out


def peer_side(work: Path, sdir: Path, manifest: dict[str, Any], threshold: float) -> dict[str, Any]:
    """clkhash + anonlink on the 2-party extracts; matched pairs with scores."""
    schema = write_json(
        work / "clkhash_schema.json", clkhash_schema_v3(FIELDS, bits_per_feature=100)
    )
    t0 = time.perf_counter()
    csvs = [peer_preprocess(sdir, p, work / f"peer_{p['name']}.csv") for p in manifest["parties"]]
    prep_s = time.perf_counter() - t0
    npys, ids, enc_s, rps = [], [], 0.0, []
    for p, c in zip(manifest["parties"], csvs, strict=True):
        r = clkhash_encode(c, schema, SECRET, work / f"peer_{p['name']}.npy", workers=2)
        enc_s += r["seconds"]
        rps.append(r["records_per_s"])
        npys.append(Path(r["out_path"]))
        ids.append(
            pacsv.read_csv(
                c,
                convert_options=pacsv.ConvertOptions(
                    column_types={"record_id": pa.string()}, include_columns=["record_id"]
                ),
            )["record_id"]
        )
    m = anonlink_all_pairs(npys[0], npys[1], threshold, work / "peer_m.npz", solve=True)
    # score of each greedy match, looked up among the candidates
    nb = max(int(m["b"].max()) + 1 if len(m["b"]) else 1, 1)
    ck = m["a"].astype(np.int64) * nb + m["b"]
    order = np.argsort(ck)
    mk = m["match_a"].astype(np.int64) * nb + m["match_b"]
    pos = order[np.searchsorted(ck, mk, sorter=order)]
    score = m["similarity"][pos]
    return {
        "prep_s": prep_s,
        "encode_s": enc_s,
        "encode_records_per_s": rps,
        "match_s": m["seconds"],
        "solve_s": m["solve_seconds"],
        "candidates": m["candidates"],
        "ids": ids,
        "match_a": m["match_a"],
        "match_b": m["match_b"],
        "score": score,
    }


# ---------------------------------------------------------------------------------------------


def two_party(
    work: Path,
    people: int,
    low: float,
    blocking: str,
    peer: bool,
    seed: int,
    peer_low: float = 0.7,
    dedupe_thresholds: tuple[float, ...] = (0.62, 0.64, 0.66, 0.68, 0.7, 0.72, 0.74, 0.76),
) -> tuple[list[Figure], dict[str, Any]]:
    sdir = work / "synth2"
    manifest, srun = run_synth(sdir, people, 2, corruption="medium", seed=seed)
    truth = Truth(sdir / "truth.csv")
    n_true = truth.true_cross_pairs()
    # one-to-one matching finds at most min(n_a, n_b) of a person's n_a * n_b true pairs
    cells = truth.person * 2 + truth.party
    c = np.bincount(cells, minlength=2 * (int(truth.person.max()) + 1)).reshape(-1, 2)
    recall_ceiling = float(c.min(axis=1).sum()) / n_true if n_true else 1.0
    ths = np.round(np.arange(low, 0.9501, 0.01), 2)
    names = [p["name"] for p in manifest["parties"]]

    ls = linkage_side(work, sdir, manifest, threshold=low, blocking=blocking, tag="q2")
    minfo, _, ptab = linkage_match(ls["files"], work / "q2_links.parquet", low, blocking, True)
    assert ptab is not None
    ra = truth.lookup(ptab["party_a"], ptab["record_id_a"])
    rb = truth.lookup(ptab["party_b"], ptab["record_id_b"])
    lsweep = sweep(truth.person[ra] == truth.person[rb], ptab["score"].to_numpy(), n_true, ths)
    lbest = best(lsweep)
    extra: dict[str, Any] = {
        "people": people,
        "records": [p["records"] for p in manifest["parties"]],
        "true_cross_pairs": n_true,
        "one_to_one_recall_ceiling": recall_ceiling,
        "synth_s": srun.wall_s,
        "linkage": {
            "encode_s": ls["encode_s"],
            "encode_cpu_s": ls["encode_cpu_s"],
            "match": minfo,
            "best": lbest,
            "sweep": lsweep,
        },
    }
    # linkage with --dedupe: within-party duplicates may join, so recall is not capped
    drows = []
    for t in dedupe_thresholds:
        dinfo, dlinks, _ = linkage_match(
            ls["files"], work / f"q2d_links_{t}.parquet", t, blocking, False, dedupe=True
        )
        drows.append({"threshold": t, **cluster_prf(truth, dlinks), "match_s": dinfo["seconds"]})
    dbest = max(drows, key=lambda r: r["f1"])
    extra["linkage_dedupe"] = {"best": dbest, "rows": drows}
    pths = ths[ths >= peer_low - 1e-9]
    pbest: dict[str, float] | None = None
    why = "skipped (--no-peer)"
    if peer and peer_python() is not None:
        try:
            ps = peer_side(work, sdir, manifest, peer_low)
            pa_ = pa.array(np.asarray(ps["ids"][0].to_numpy(zero_copy_only=False))[ps["match_a"]])
            pb_ = pa.array(np.asarray(ps["ids"][1].to_numpy(zero_copy_only=False))[ps["match_b"]])
            ra = truth.lookup(pa.array([names[0]] * len(pa_)), pa_)
            rb = truth.lookup(pa.array([names[1]] * len(pb_)), pb_)
            psweep = sweep(truth.person[ra] == truth.person[rb], ps["score"], n_true, pths)
            pbest = best(psweep)
            extra["peer"] = {
                k: v for k, v in ps.items() if k not in ("ids", "match_a", "match_b", "score")
            }
            extra["peer"].update({"best": pbest, "sweep": psweep})
            why = ""
        except (PeerMissingError, PeerFailedError) as exc:
            why = str(exc)
    elif peer:
        why = "peer missing (make peers)"
    n_rec = sum(extra["records"])
    lm = minfo["seconds"]
    figs = [
        Figure(
            f"best F1, 2 parties, {people:,} people, medium corruption",
            lbest["f1"],
            "F1",
            peer="clkhash 0.18.3 + anonlink 0.15.3" if pbest else None,
            peer_value=pbest["f1"] if pbest else None,
            note=f"target >= 0.97 and >= peer; linkage t={lbest['threshold']:.2f} "
            f"P={lbest['precision']:.4f} R={lbest['recall']:.4f}"
            + (
                f"; peer t={pbest['threshold']:.2f} P={pbest['precision']:.4f} "
                f"R={pbest['recall']:.4f}"
                if pbest
                else f"; {why}"
            )
            + f"; one-to-one recall ceiling {recall_ceiling:.4f} (within-party duplicates)",
        ),
        Figure(
            f"best F1 with --dedupe, 2 parties, {people:,} people, medium corruption",
            dbest["f1"],
            "F1",
            peer="clkhash 0.18.3 + anonlink 0.15.3 (one-to-one)" if pbest else None,
            peer_value=pbest["f1"] if pbest else None,
            note=f"cross-party pairs of entities; t={dbest['threshold']:.2f} "
            f"P={dbest['precision']:.4f} R={dbest['recall']:.4f}; target >= 0.97",
        ),
        Figure(
            "quality run: encode both parties",
            ls["encode_s"],
            "s",
            peer="clkhash 0.18.3" if pbest else None,
            peer_value=extra["peer"]["encode_s"] if pbest else None,
            higher_is_better=False,
            note=f"{n_rec:,} records; linkage CLI wall incl. start-up; clkhash in-process "
            "(its preprocessing not counted"
            + (f", {extra['peer']['prep_s']:.1f} s)" if pbest else ")"),
        ),
        Figure(
            f"quality run: match at t={low}",
            lm,
            "s",
            peer="anonlink 0.15.3" if pbest else None,
            peer_value=extra["peer"]["match_s"] + extra["peer"]["solve_s"] if pbest else None,
            higher_is_better=False,
            note=f"linkage CLI --blocking {blocking} (read, score, solve, write); "
            "anonlink exhaustive candidates + greedy, in-process",
        ),
    ]
    return figs, extra


def multi_party(
    work: Path, people: int, parties: int, thresholds: list[float], blocking: str, seed: int
) -> tuple[list[Figure], dict[str, Any]]:
    sdir = work / f"synth{parties}"
    manifest, _ = run_synth(sdir, people, parties, corruption="medium", seed=seed)
    truth = Truth(sdir / "truth.csv")
    ls = linkage_side(work, sdir, manifest, threshold=0.0, blocking=blocking, tag=f"q{parties}")
    rows = []
    for t in thresholds:
        info, links, _ = linkage_match(
            ls["files"], work / f"q{parties}_links_{t}.parquet", t, blocking, False, dedupe=True
        )
        prf = cluster_prf(truth, links)
        rows.append({"threshold": t, **prf, "match_s": info["seconds"], "cpu_s": info["cpu_s"]})
    b = max(rows, key=lambda r: r["f1"])
    fig = Figure(
        f"multi-party F1, {parties} parties, {people:,} people, medium corruption",
        b["f1"],
        "F1",
        note=f"target >= 0.95; t={b['threshold']} P={b['precision']:.4f} R={b['recall']:.4f}; "
        f"match {b['match_s']:.1f} s; {sum(p['records'] for p in manifest['parties']):,} records",
    )
    return [fig], {
        "records": [p["records"] for p in manifest["parties"]],
        "runs": rows,
        "encode_s": ls["encode_s"],
    }


# issue 13's data shapes: (people, parties, corruption); synth seed 1 (bench_fields' held-out)
SPLINK_CASES = {
    "20k-medium": (20_000, 2, "medium"),
    "20k-high": (20_000, 2, "high"),
    "20k-8": (20_000, 8, "medium"),
    "100k": (100_000, 2, "medium"),
}


def splink_case(
    work: Path, people: int, parties: int, corruption: str, seed: int, threads: int
) -> tuple[list[Figure], dict[str, Any]]:
    """linkage field-aware (its defaults) and Splink (best threshold on truth; p >= 0.5) on
    one synth output."""
    from benchmarks.bench_fields import run_case

    row = run_case(work, people, parties, corruption, seed, fields_only=True)[0]
    sdir = work / f"s{people}_{parties}_{corruption}_{seed}"  # bench_fields.run_case's
    if not (sdir / "truth.csv").is_file():
        raise RuntimeError(f"{sdir}: bench_fields.run_case wrote its synth elsewhere")
    truth = Truth(sdir / "truth.csv")
    n_true = truth.true_cross_pairs()
    label = f"{people:,} people, {parties} parties, {corruption}"
    info: dict[str, Any] = {"linkage_fields": row, "true_cross_pairs": n_true}
    sp = None
    try:
        sp = splink_link(sdir, work / "splink_pairs.parquet", threads=threads, seed=1)
    except (PeerMissingError, PeerFailedError) as exc:
        info["splink_error"] = str(exc)
    if sp is not None:
        pairs = pq.read_table(work / "splink_pairs.parquet")
        ra = truth.lookup(pairs["party_a"], pairs["record_id_a"])
        rb = truth.lookup(pairs["party_b"], pairs["record_id_b"])
        same = truth.person[ra] == truth.person[rb]
        w = pairs["match_weight"].to_numpy()
        ths = np.round(np.arange(sp["min_weight"], 30.0001, 0.25), 2)
        rows = sweep(same, w, n_true, ths)
        sbest = best(rows)
        at_half = sweep(same, w, n_true, np.array([0.0]))[0]  # weight 0 <=> probability 0.5
        sbest["match_probability"] = 1.0 / (1.0 + 2.0 ** -sbest["threshold"])
        sp.update({"best": sbest, "at_probability_0.5": at_half})
        sp["recall_of_written_pairs"] = float(same.sum()) / n_true if n_true else 1.0
        sp["total_s"] = sp["prep_s"] + sp["train_s"] + sp["predict_s"]
        info["splink"] = sp
    peer = f"Splink {sp['splink_version']} (plaintext)" if sp else None
    lnote = f"linkage field-aware at its defaults P={row['precision']:.4f} R={row['recall']:.4f}"
    figs = [
        Figure(
            f"F1 vs Splink tuned on truth, {label}",
            row["f1"],
            "F1",
            peer=peer and peer + ", best threshold tuned on truth",
            peer_value=sp["best"]["f1"] if sp else None,
            note=lnote
            + (
                f"; Splink match weight >= {sp['best']['threshold']:.2f} "
                f"(p >= {sp['best']['match_probability']:.3f}) P={sp['best']['precision']:.4f} "
                f"R={sp['best']['recall']:.4f}"
                if sp
                else f"; {info.get('splink_error', '')[:200]}"
            ),
        ),
        Figure(
            f"F1 vs Splink at p >= 0.5, {label}",
            row["f1"],
            "F1",
            peer=peer and peer + ", match probability >= 0.5",
            peer_value=sp["at_probability_0.5"]["f1"] if sp else None,
            note=(
                f"Splink P={sp['at_probability_0.5']['precision']:.4f} "
                f"R={sp['at_probability_0.5']['recall']:.4f}"
                if sp
                else ""
            ),
        ),
        Figure(
            f"time, {label}",
            row["encode_s"] + row["match_s"],
            "s",
            peer=peer,
            peer_value=sp["total_s"] if sp else None,
            higher_is_better=False,
            note=f"linkage in-process encode {row['encode_s']:.1f} s + match "
            f"{row['match_s']:.1f} s"
            + (
                f"; Splink in-process standardise {sp['prep_s']:.1f} s + train "
                f"{sp['train_s']:.1f} s (u {sp['u_s']:.1f} s) + predict {sp['predict_s']:.1f} s, "
                f"{sp['threads']} DuckDB threads, peak RSS {sp['peak_rss_bytes'] / 2**30:.1f} GiB"
                if sp
                else ""
            ),
        ),
    ]
    return figs, info


TEMPLATE = "uk-person"  # the schema template measured (--template)


def recommended_threshold(template: str) -> float:
    """The template's recommended match threshold (hardened templates carry one), else 0.7."""
    from linkage.schema import Schema
    from linkage.schema_template import TEMPLATES

    t = Schema.from_dict(TEMPLATES[template]()).match_threshold
    return 0.7 if t is None else float(t)


def around(centre: float, offsets: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(centre + o, 2) for o in offsets)


def main(argv: list[str] | None = None) -> int:
    global TEMPLATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--template",
        default="uk-person",
        help="schema template to measure (the sweeps are placed around its recommended "
        "threshold: hardened filters score unrelated pairs near 0.5)",
    )
    ap.add_argument("--quick", action="store_true", help="10k people")
    ap.add_argument("--people", type=int, help="population (100,000; 10,000 quick)")
    ap.add_argument(
        "--low",
        type=float,
        help="lowest threshold of linkage's sweep [recommended threshold - 0.1]",
    )
    ap.add_argument(
        "--peer-low",
        type=float,
        default=0.7,
        help="lowest threshold of the peer's sweep (anonlink keeps every pair above it in memory)",
    )
    ap.add_argument("--blocking", default="auto")
    ap.add_argument("--parties", type=int, default=4, help="multi-party run (0 skips)")
    ap.add_argument(
        "--multi-thresholds",
        help="comma-separated multi-party thresholds [recommended threshold -0.08..+0.05]",
    )
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument(
        "--splink-cases",
        help=f"comma-separated Splink cases ({', '.join(SPLINK_CASES)}; 'none'); "
        "default all, quick 20k-medium",
    )
    ap.add_argument("--splink-only", action="store_true", help="only the Splink cases")
    ap.add_argument("--splink-threads", type=int, default=2, help="DuckDB threads")
    ap.add_argument("--name", default="quality")
    args = ap.parse_args(argv)
    TEMPLATE = args.template
    rec = recommended_threshold(TEMPLATE)
    low = args.low if args.low is not None else round(rec - 0.1, 2)
    multi = (
        [float(x) for x in args.multi_thresholds.split(",")]
        if args.multi_thresholds
        else list(around(rec, (-0.08, -0.05, -0.02, 0.0, 0.02, 0.05)))
    )
    people = args.people or (10_000 if args.quick else 100_000)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        figs, extra = [], {}
        if not args.splink_only:
            figs, extra = two_party(
                work,
                people,
                low,
                args.blocking,
                not args.no_peer,
                args.seed,
                peer_low=args.peer_low,
                dedupe_thresholds=around(rec, (-0.08, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06)),
            )
        if args.parties > 2 and not args.splink_only:
            f, e = multi_party(work, people, args.parties, multi, args.blocking, args.seed + 1)
            figs += f
            extra["multi"] = e
        cases = (
            args.splink_cases.split(",")
            if args.splink_cases
            else ["20k-medium"]
            if args.quick
            else list(SPLINK_CASES)
        )
        cases = [] if args.no_peer or cases == ["none"] else cases
        if cases and splink_python() is None:
            print("Splink peer missing: run `make peers-splink` (cases skipped)", file=sys.stderr)
            extra["splink_cases"] = "skipped: .peers-splink missing"
            cases = []
        for key in cases:
            people_c, parties_c, corruption = SPLINK_CASES[key]
            t0 = time.perf_counter()
            cwork = work / f"splink_{key}"
            cwork.mkdir()
            f, e = splink_case(cwork, people_c, parties_c, corruption, 1, args.splink_threads)
            e["wall_s"] = time.perf_counter() - t0
            figs += f
            extra.setdefault("splink_cases", {})[key] = e
    extra["quick"] = args.quick
    extra["template"] = TEMPLATE
    extra["recommended_threshold"] = rec
    return report(args.name, "quality", figs, extra, machine)


if __name__ == "__main__":
    sys.exit(main())
