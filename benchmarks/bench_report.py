"""How long writing the HTML match and encode reports takes at region size (issue 15).

    .venv/bin/python benchmarks/bench_report.py [--records 1000000]

Builds a LinkageResult shaped like a 1M-record, three-party match (links for every record,
~400k matched pairs with scores, typed MatchStats with the binned scores of every
candidate, memory per stage and stub records) and a 1M-row encode (1024-bit filters,
summary, field profile of a 1M-row extract), then times write_match_report and
write_encode_report in a fresh process (chart engine start-up included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa


def match_result(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from linkage.tlu.result import LinkageResult, MatchStats

    rng = np.random.default_rng(seed)
    parties = ["council_a", "council_b", "nhs"]
    per = [n // 3, n // 3, n - 2 * (n // 3)]
    party = np.repeat(np.arange(3), per)
    ent = rng.integers(0, int(n * 0.45), n)  # ~2.2 records per entity
    links = pa.table(
        {
            "entity_id": pa.array([f"e{x:09d}" for x in ent]),
            "party": pa.array(np.array(parties)[party]),
            "record_id": pa.array([f"r{i:010d}" for i in range(n)]),
        }
    )
    m = int(n * 0.4)
    score = np.concatenate([rng.beta(40, 3, m - m // 10), rng.uniform(0.7, 0.85, m // 10)])
    pairs = pa.table(
        {
            "party_a": pa.array(["council_a"] * m),
            "record_id_a": pa.array([f"r{i:010d}" for i in range(m)]),
            "party_b": pa.array(["nhs"] * m),
            "record_id_b": pa.array([f"r{i + n // 2:010d}" for i in range(m)]),
            "score": pa.array(score),
        }
    )
    sizes = Counter(Counter(ent.tolist()).values())
    stats = MatchStats(
        records_per_party=dict(zip(parties, per, strict=True)), threshold=0.7,
        dedupe_threshold=None, blocking="keys",
        blocking_detail={"blocks": 812_345, "blocks_scored": 811_002, "oversize_blocks": 3},
        candidates=95_000_000, possible_pairs=n * n // 3, reduction_ratio=0.9997,
        pairs_above_threshold=m + m // 5, matched_pairs=m, entities=len(set(ent.tolist())),
        entities_by_size=dict(sizes), engine="in-process", threads=16,
        seconds={"read": 0.8, "candidates+scoring": 14.2, "solve": 1.9, "output": 0.6},
        score_histogram=score_histogram(rng), stub_records={"council_a": 1234, "nhs": 7},
        memory={"read": 9 << 28, "candidates+scoring": 2 << 30, "solve": 2 << 30,
                "output": 9 << 30},
    )  # fmt: skip
    return LinkageResult(links, pairs, stats, {"schema_fingerprint": "f" * 64})


def score_histogram(rng: np.random.Generator) -> dict[str, object]:
    """Binned scores of 95M candidates as Candidates.score_histogram gives them."""
    scores = np.concatenate([rng.beta(40, 3, 400_000), rng.beta(6, 8, 2_000_000)])
    counts, edges = np.histogram(scores, bins=100, range=(0, 1))
    return {"edges": edges.tolist(), "counts": (counts * 40).tolist(),
            "scope": "all candidates", "sample_stride": 64}  # fmt: skip


def encode_inputs(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from linkage.partner.pipeline import EncodeSummary
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_template

    rng = np.random.default_rng(seed)
    schema = Schema.from_dict(uk_person_template())
    w = schema.filter_length // 64
    filters = rng.integers(0, 2**63, (n, w), dtype=np.uint64) & rng.integers(
        0, 2**63, (n, w), dtype=np.uint64
    )
    summary = EncodeSummary("council_a", rows_read=n, rows_encoded=n - 40, rows_left_out=40)
    summary.problems = Counter({("postcode", "invalid UK postcode"): 1234, ("sex", "bad"): 7})
    summary.bits_set_total = int(np.bitwise_count(filters).sum())
    names = np.array([f"name{i}" for i in range(5000)])
    extract = pa.table({f.name: pa.array(names[rng.integers(0, 5000, n)]) for f in schema.fields})
    return schema, summary, filters, extract


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    n = ap.parse_args().records
    from linkage.report import profile_extract, write_encode_report, write_match_report

    result = match_result(n)
    schema, summary, filters, extract = encode_inputs(n)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        write_match_report(Path(tmp) / "match.html", result)
        t_match, c_match = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        prof = profile_extract(extract, schema)
        t_prof = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_encode_report(
            Path(tmp) / "encode.html", summary, encoded=filters, schema=schema, profile=prof
        )
        t_enc = time.perf_counter() - t0
    print(f"{n:,} records: match report {t_match:.2f} s wall, {c_match:.2f} s CPU (chart "
          f"engine start-up included); field profile {t_prof:.2f} s; encode report "
          f"{t_enc:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
