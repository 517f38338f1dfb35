"""A small synthetic linkage run (synth -> encode -> match -> evaluate) for report tests and
docs/make_screenshots.py. Everything is synthetic; nothing here is a real person."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import linkage
from linkage.schema import Schema, uk_person_template

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
    out: Path, people: int = 2000, threshold: float = 0.55, parties: int = 3, seed: int = 3
) -> Scenario:
    """Synthetic extracts of ``people`` persons, encoded (files and summaries), matched at a
    low threshold (so the evaluation can sweep upwards from it) and evaluated."""
    from linkage.secret import Secret

    out.mkdir(parents=True, exist_ok=True)
    data = out / "synth"
    if not data.exists():
        linkage.synth(data, people, parties, seed=seed)
    schema = Schema.from_dict(uk_person_template())
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
