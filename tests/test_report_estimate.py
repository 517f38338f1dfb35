"""The match report's precision estimate without ground truth, checked against the truth of
synthetic data (hardened default template and unhardened; keys and exhaustive blocking)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import linkage
from linkage.report.estimate import estimate_dice, estimate_fields, fit_mixture

TOLERANCE = 0.05  # |estimated - true precision| where the estimate is given


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from report_fixtures import PARTY_COLUMNS, SECRET

    from linkage.schema import Schema
    from linkage.schema_template import uk_person_template, uk_person_unhardened
    from linkage.secret import Secret

    out = tmp_path_factory.mktemp("estimate")
    linkage.synth(out / "synth", 2000, 2, seed=3)
    truth = {}
    with (out / "synth" / "truth.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            truth[(r["party"], r["record_id"])] = r["person_id"]
    encs: dict[str, list[Path]] = {}
    for name, doc in (("hardened", uk_person_template()), ("plain", uk_person_unhardened())):
        schema = Schema.from_dict(doc)
        for p in sorted((out / "synth").glob("*.csv")):
            if p.stem not in PARTY_COLUMNS:
                continue
            id_col, cols = PARTY_COLUMNS[p.stem]
            enc = out / f"{name}_{p.stem}.parquet"
            linkage.encode_file(
                p, enc, schema, Secret(SECRET), party=p.stem, id_column=id_col, columns=cols
            )
            encs.setdefault(name, []).append(enc)
    return {"encs": encs, "truth": truth}


def _estimate(res: Any) -> Any:
    h = res.stats.score_histogram
    return estimate_dice(
        np.asarray(h["edges"]), np.asarray(h["counts"]), str(h["scope"]),
        float(res.stats.threshold), res.pairs.column("score").to_numpy(),
        stride=int(h.get("sample_stride", 1) or 1),
    )  # fmt: skip


def _true_precision(res: Any, truth: dict[tuple[str, str], str]) -> float:
    p = res.pairs.to_pydict()
    same = [
        truth[(pa, ra)] == truth[(pb, rb)]
        for pa, ra, pb, rb in zip(
            p["party_a"], p["record_id_a"], p["party_b"], p["record_id_b"], strict=True
        )
    ]
    return float(np.mean(same))


@pytest.mark.parametrize(
    ("template", "threshold"),
    [("hardened", None), ("hardened", 0.5), ("plain", 0.5), ("plain", 0.8)],
)
def test_estimated_precision_within_tolerance(synth, template, threshold) -> None:  # type: ignore[no-untyped-def]
    # keys blocking keeps the scores below the threshold (sampled): the method applies
    res = linkage.match(
        synth["encs"][template], dedupe=True, seed=7, blocking="keys", threshold=threshold
    )
    est = _estimate(res)
    true = _true_precision(res, synth["truth"])
    assert est.precision is not None, est.reason
    assert abs(est.precision - true) <= TOLERANCE, (est.precision, true)
    assert est.recall is None  # not estimated from Dice scores


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_no_estimate_when_only_pairs_above_threshold_were_kept(synth, threshold) -> None:  # type: ignore[no-untyped-def]
    # the tester's case: exhaustive blocking keeps only scores >= threshold; before, the
    # truncated fit printed precision 0.155 (true 0.999) and 0.072 (true 0.81)
    res = linkage.match(
        synth["encs"]["hardened"], dedupe=True, seed=7, blocking="none", threshold=threshold
    )
    est = _estimate(res)
    assert est.precision is None and "at or above the threshold" in str(est.reason)


def test_match_report_says_why_no_estimate(synth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.match_report import write_match_report

    res = linkage.match(synth["encs"]["hardened"], dedupe=True, seed=7, blocking="none")
    html = write_match_report(tmp_path / "m.html", res).read_text()
    assert "Not estimated" in html and "estimated precision 0." not in html


def test_implausible_fits_are_refused() -> None:
    edges = np.linspace(0, 1, 101)
    few = np.zeros(100)
    few[50:60] = 5
    assert isinstance(fit_mixture(edges, few), str)  # too few pairs
    rng = np.random.default_rng(0)
    one = np.histogram(rng.beta(50, 50, 100_000), bins=edges)[0]
    est = estimate_dice(edges, one, "all candidates", 0.55, np.array([0.56, 0.6]))
    assert est.precision is None and est.reason


def test_known_mixture_precision() -> None:
    rng = np.random.default_rng(1)
    same, other = rng.beta(40, 3, 20_000), rng.beta(6, 8, 300_000)
    counts, edges = np.histogram(np.concatenate([same, other]), bins=100, range=(0, 1))
    for t in (0.7, 0.8):
        matched = np.concatenate([same[same >= t], other[other >= t]])
        est = estimate_dice(edges, counts, "all candidates", t, matched)
        true = (same >= t).sum() / len(matched)
        assert est.precision is not None and abs(est.precision - true) <= 0.02


def test_field_estimate_is_mean_probability() -> None:
    est = estimate_fields(np.array([1.0, 0.5]), np.array([1.0, 0.5, 0.5]))
    assert est.precision == pytest.approx(0.75) and est.recall == pytest.approx(0.75)
