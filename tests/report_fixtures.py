"""A small synthetic linkage run (synth -> encode -> match -> evaluate) for report tests and
docs/make_screenshots.py. Everything is synthetic; nothing here is a real person."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import linkage
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened

SECRET = hashlib.sha256(b"report-fixture-secret").digest()  # 32 random-looking bytes

# column maps of the synthetic partner extracts (linkage synth writes each party differently)
PARTY_COLUMNS: dict[str, tuple[str, dict[str, str]]] = {
    "council_a": (
        "record_id",
        {
            "given_name": "forename",
            "date_of_birth": "dob",
            "sex": "gender",
            "address": "address_line_1",
            "postcode": "post_code",
            "nhs_number": "nhs_no",
        },
    ),
    "council_b": (
        "id",
        {
            "given_name": "first_name",
            "surname": "last_name",
            "date_of_birth": "birth_date",
            "address": "street_address",
        },
    ),
    "nhs": ("ref", {"surname": "family_name"}),
}


@dataclass
class Scenario:
    dir: Path
    schema: Schema
    extracts: dict[str, Path]
    encoded: dict[str, Any] = field(default_factory=dict)  # party -> EncodedTable
    summaries: dict[str, Any] = field(default_factory=dict)  # party -> EncodeSummary
    result: Any = None  # LinkageResult
    evaluation: Any = None  # EvaluationReport
    links: Path | None = None
    truth: Path | None = None
    record_ids: set[str] = field(default_factory=set)


def make_scenario(
    out: Path,
    people: int = 2000,
    threshold: float = 0.55,
    parties: int = 3,
    seed: int = 3,
    segmented: bool = False,
) -> Scenario:
    """Synthetic extracts of ``people`` persons, encoded (files and summaries), matched at a
    low threshold (so the evaluation can sweep upwards from it) and evaluated. ``segmented``:
    the segmented layout (``with_segments``), so the match scores field-aware
    (``result.field_scores``)."""
    from linkage.secret import Secret
    from linkage.segments import with_segments

    out.mkdir(parents=True, exist_ok=True)
    data = out / "synth"
    if not data.exists():
        linkage.synth(data, people, parties, seed=seed)
    doc = uk_person_unhardened()
    schema = Schema.from_dict(with_segments(doc) if segmented else doc)
    secret = Secret(SECRET)
    extracts = {p.stem: p for p in sorted(data.glob("*.csv")) if p.stem in PARTY_COLUMNS}
    sc = Scenario(out, schema, extracts, truth=data / "truth.csv")
    for old in [*out.glob("*.parquet")]:  # outputs refuse to overwrite
        old.unlink()
    for party, path in extracts.items():
        id_col, cols = PARTY_COLUMNS[party]
        enc_path = out / f"{party}.parquet"
        sc.summaries[party] = linkage.encode_file(
            path, enc_path, schema, secret, party=party, id_column=id_col, columns=cols
        )
        sc.encoded[party] = linkage.read_encoded(enc_path)
        sc.record_ids.update(sc.encoded[party].record_ids.to_pylist())
    sc.result = linkage.match(
        [out / f"{p}.parquet" for p in extracts], threshold=threshold, seed=1, dedupe=True
    )
    sc.links = out / "links.parquet"
    pairs = out / "pairs.parquet"
    sc.result.write(sc.links, pairs)
    sc.evaluation = linkage.evaluate(sc.links, sc.truth, pairs=pairs, sweep=(threshold, 0.98, 0.01))
    return sc


def audit_result() -> Any:
    """An AuditResult shaped like `linkage audit --people 5000` on the uk-person template
    (figures made up but of the sizes a real run gives; one rate rests on 4 records, a small
    count the report must not show)."""
    from linkage.lab.audit.results import AttackResult, AuditResult

    def graph_sweep(ov: float, rates: tuple[float, float]) -> list[dict[str, Any]]:
        return [
            {"settings": {"overlap": ov, "seeds": s, "pool_nodes": p}, "reidentified": r,
             "precision": min(1.0, r * 1.05), "guesses": 1990.0}
            for (s, p), r in zip(((50, 1500), (100, 3000)), rates, strict=True)
        ]  # fmt: skip

    leaks = AttackResult(
        "leaks", "Leak statistics (Vidanage et al., ACM TOPS 2023)", None, None, 5000, 3.1,
        metrics={"records": 5000.0, "mean_density": 0.37, "bit_freq_min": 0.11,
                 "bit_freq_max": 0.93, "bit_freq_cv": 0.39, "bit_freq_excess": 5.98,
                 "cooc_max_phi": 0.70, "cooc_pairs_over_0.3": 2346.0, "identical_share": 0.0008,
                 "largest_identical_group": 3.0, "popcount_vs_tokens_r": 0.72,
                 "similarity_r": 0.70, "neighbour_overlap_at_10": 0.45},
    )  # fmt: skip
    freq = AttackResult(
        "frequency", "Frequency alignment of whole filters and block keys", 0.034, 0.41, 5000,
        0.9, settings={"top": 100, "min_gap": 0.0},
        per_field={
            "whole_filter": {"reidentified": 0.0, "precision": 0.0, "guesses": 0.0},
            "block_key:surname_soundex_yob": {"reidentified": 0.034, "precision": 0.41,
                                              "guesses": 415.0},
            "block_key:district_initial": {"reidentified": 0.0008, "precision": 0.02,
                                           "guesses": 199.0},
        },
        sweep=tuple({"settings": {"top": t, "min_gap": g}, "reidentified": r, "precision": 0.4}
                    for t, g, r in ((20, 0.0, 0.012), (100, 0.0, 0.034), (500, 0.2, 0.02))),
        note="block keys: share of records whose key's plaintext is revealed",
    )  # fmt: skip
    patterns = AttackResult(
        "patterns", "Pattern mining and value re-identification (Christen et al., PAKDD 2018)",
        0.0, 0.0, 5000, 41.5, settings={"min_support": 0.005, "max_candidates": 1},
        per_field={f: {"reidentified": 0.0, "precision": 0.0, "guesses": 0.0}
                   for f in ("given_name", "surname", "postcode", "address")},
        sweep=({"settings": {"min_support": 0.005, "max_candidates": 1}, "reidentified": 0.0,
                "precision": 0.0},),
        sampled=False,
    )  # fmt: skip
    graph = AttackResult(
        "graph", "Graph matching (Vidanage et al., CIKM 2020; Schäfer et al., ACSAC 2024)",
        0.235, 0.24, 2000, 96.0, settings={"seeds": 100, "pool_nodes": 3000},
        per_field={
            "overlap 100% (2,000 of 2,000)": {"reidentified": 0.235, "precision": 0.24,
                                              "guesses": 1990.0},
            "overlap 50% (2,000 of 4,000)": {"reidentified": 0.05, "precision": 0.05,
                                             "guesses": 2000.0},
            "overlap 25% (2,000 of 8,000)": {"reidentified": 0.002, "precision": 0.002,
                                             "guesses": 2000.0},
        },
        sweep=tuple(graph_sweep(1.0, (0.225, 0.235)) + graph_sweep(0.5, (0.05, 0.041))
                    + graph_sweep(0.25, (0.002, 0.0015))),
        sampled=True, note="on a sample of at most 2,000 encoded records per overlap",
    )  # fmt: skip
    return AuditResult("593de5d2" * 8, "schema", 5000, 7000, 0,
                       (leaks, freq, patterns, graph), 142.0)  # fmt: skip


def make_map(sc: Scenario, out: Path) -> Path:
    """A linkage map of the scenario's files (version 1) and a second version in which the
    first party's extract lost its first 200 records (retired)."""
    from linkage.encoded import EncodedTable
    from linkage.tlu.linkage_map import map_create, map_update

    path = out / "map.duckdb"
    encs = [sc.encoded[p] for p in sorted(sc.encoded)]
    map_create(path, encs, seed=1, dedupe=True, threshold=0.7, force=True)
    first = encs[0]
    rest = first.table.slice(200)
    map_update(path, [EncodedTable(rest, {**first.meta, "record_count": str(rest.num_rows)})])
    return path
