"""Tests for linkage.evaluate: hand-computed cases, brute-force pair enumeration, errors."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import InputError, LinkageError
from linkage.lab.quality import (
    EvaluationReport,
    PairCounts,
    evaluate,
    group_pair_matrix,
    parse_sweep,
    sweep_thresholds,
)
from linkage.report.text import evaluation_text

# --------------------------------------------------------------------------- helpers

Rec = tuple[str, str, str, str]  # (party, record_id, person, entity)


def tables(recs: list[Rec]) -> tuple[pa.Table, pa.Table]:
    """links and truth tables from (party, record_id, person, entity) rows."""
    links = pa.table(
        {
            "entity_id": [r[3] for r in recs],
            "party": [r[0] for r in recs],
            "record_id": [r[1] for r in recs],
        }
    )
    truth = pa.table(
        {
            "party": [r[0] for r in recs],
            "record_id": [r[1] for r in recs],
            "person_id": [r[2] for r in recs],
        }
    )
    return links, truth


def pairs_table(rows: list[tuple[str, str, str, str, float]], score_type: Any = None) -> pa.Table:
    return pa.table(
        {
            "party_a": [r[0] for r in rows],
            "record_id_a": [r[1] for r in rows],
            "party_b": [r[2] for r in rows],
            "record_id_b": [r[3] for r in rows],
            "score": pa.array([r[4] for r in rows], type=score_type or pa.float64()),
        }
    )


def brute(recs: list[Rec]) -> dict[tuple[str, str], list[int]]:
    """[tp, fp, fn] per (party_a, party_b) with party_a <= party_b, by enumerating pairs."""
    out: dict[tuple[str, str], list[int]] = {}
    for x, y in itertools.combinations(recs, 2):
        key = (min(x[0], y[0]), max(x[0], y[0]))
        c = out.setdefault(key, [0, 0, 0])
        pred, true = x[3] == y[3], x[2] == y[2]
        c[0] += pred and true
        c[1] += pred and not true
        c[2] += true and not pred
    return out


def brute_clusters(recs: list[Rec]) -> dict[str, int]:
    ent: dict[str, set[str]] = {}
    per: dict[str, set[str]] = {}
    for p, r, person, e in recs:
        ent.setdefault(e, set()).add(f"{p}|{r}")
        per.setdefault(person, set()).add(f"{p}|{r}")
    per_ents = {k: {e for p, r, person, e in recs if person == k} for k in per}
    ent_pers = {k: {person for p, r, person, e in recs if e == k} for k in ent}
    return {
        "persons": len(per),
        "persons_multi": sum(len(v) > 1 for v in per.values()),
        "entities": len(ent),
        "entities_multi": sum(len(v) > 1 for v in ent.values()),
        "persons_split": sum(len(v) > 1 for v in per_ents.values()),
        "entities_merged": sum(len(v) > 1 for v in ent_pers.values()),
        "exact": sum(1 for v in per.values() if any(v == s for s in ent.values())),
    }


def figures(rep: EvaluationReport) -> dict[tuple[str, str], list[int]]:
    return {(a, b): [c.tp, c.fp, c.fn] for a, b, c in rep.by_party_pair}


# --------------------------------------------------------------------------- hand cases

PERFECT: list[Rec] = [
    ("A", "a1", "p1", "e1"),
    ("B", "b1", "p1", "e1"),
    ("C", "c1", "p1", "e1"),
    ("A", "a2", "p2", "e2"),
    ("B", "b2", "p2", "e2"),
    ("A", "a3", "p3", "e3"),
]


def test_perfect_links() -> None:
    rep = evaluate(*tables(PERFECT))
    assert (rep.cross.tp, rep.cross.fp, rep.cross.fn) == (4, 0, 0)
    assert rep.cross.precision == rep.cross.recall == rep.cross.f1 == 1.0
    assert rep.within is None  # no same-party co-entity pair, not asked
    assert rep.clusters["exact"] == 3 and rep.clusters["exact_rate"] == 1.0
    assert rep.clusters["persons_split"] == rep.clusters["entities_merged"] == 0
    assert figures(rep) == {("A", "B"): [2, 0, 0], ("A", "C"): [1, 0, 0], ("B", "C"): [1, 0, 0]}
    assert rep.records == {
        "truth": 6,
        "links": 6,
        "missing_from_links": 0,
        "possible_cross_pairs": 3 * 2 + 3 * 1 + 2 * 1,
    }


def test_all_singletons_recall_zero() -> None:
    recs = [(p, r, person, f"s{i}") for i, (p, r, person, _) in enumerate(PERFECT)]
    rep = evaluate(*tables(recs))
    assert (rep.cross.tp, rep.cross.fp, rep.cross.fn) == (0, 0, 4)
    assert rep.cross.recall == 0.0
    assert rep.cross.precision is None  # nothing predicted
    assert rep.cross.f1 == 0.0
    assert rep.clusters["persons_split"] == 2  # p1 and p2 (p3 has one record)
    assert rep.clusters["exact"] == 1  # p3, a true singleton


def test_one_wrong_merge() -> None:
    recs: list[Rec] = [
        ("A", "a1", "p1", "e1"),
        ("B", "b1", "p1", "e1"),
        ("A", "a2", "p2", "e2"),
        ("B", "b2", "p2", "e2"),
        ("A", "a3", "p3", "e2"),  # p3 wrongly merged into p2's entity
    ]
    rep = evaluate(*tables(recs))
    # predicted cross pairs: a1-b1, a2-b2, a3-b2; true: a1-b1, a2-b2
    assert (rep.cross.tp, rep.cross.fp, rep.cross.fn) == (2, 1, 0)
    assert rep.cross.precision == pytest.approx(2 / 3)
    assert rep.cross.recall == 1.0
    assert rep.cross.f1 == pytest.approx(0.8)
    # a2-a3 is a same-party co-entity pair: within-party figures appear on their own
    assert rep.within is not None
    assert (rep.within.tp, rep.within.fp, rep.within.fn) == (0, 1, 0)
    assert rep.all_pairs == PairCounts(2, 2, 0)
    assert figures(rep) == {("A", "A"): [0, 1, 0], ("A", "B"): [2, 1, 0], ("B", "B"): [0, 0, 0]}
    assert rep.clusters["entities_merged"] == 1
    assert rep.clusters["persons_split"] == 0
    assert rep.clusters["exact"] == 1  # only p1


def test_a_split() -> None:
    recs: list[Rec] = [
        ("A", "a1", "p1", "e1"),
        ("B", "b1", "p1", "e1"),
        ("C", "c1", "p1", "e2"),  # p1 split over e1 and e2
    ]
    rep = evaluate(*tables(recs))
    assert (rep.cross.tp, rep.cross.fp, rep.cross.fn) == (1, 0, 2)
    assert rep.cross.precision == 1.0 and rep.cross.recall == pytest.approx(1 / 3)
    assert figures(rep) == {("A", "B"): [1, 0, 0], ("A", "C"): [0, 0, 1], ("B", "C"): [0, 0, 1]}
    assert rep.clusters["persons_split"] == 1 and rep.clusters["entities_merged"] == 0
    assert rep.clusters["exact"] == 0


def test_within_party_forced_and_duplicates_in_truth() -> None:
    recs: list[Rec] = [
        ("A", "a1", "p1", "e1"),
        ("A", "a1b", "p1", "e2"),  # a within-party duplicate the links did not join
        ("B", "b1", "p1", "e1"),
    ]
    links, truth = tables(recs)
    auto = evaluate(links, truth)
    assert auto.within is None
    assert any("within-party duplicate" in n for n in auto.notes)
    forced = evaluate(links, truth, within_party=True)
    assert forced.within is not None
    assert (forced.within.tp, forced.within.fp, forced.within.fn) == (0, 0, 1)
    off = evaluate(links, truth, within_party=False)
    assert off.within is None and all(a != b for a, b, _ in off.by_party_pair)


def test_truth_records_missing_from_links_are_a_recall_loss() -> None:
    links, truth = tables(PERFECT)
    links = links.slice(0, 4)  # drop b2 and a3 from the links
    rep = evaluate(links, truth)
    assert rep.records["missing_from_links"] == 2
    assert (rep.cross.tp, rep.cross.fp, rep.cross.fn) == (3, 0, 1)
    assert rep.clusters["persons_split"] == 1  # p2: a2 linked, b2 missing
    assert any("2 truth records are not in the links" in n for n in rep.notes)
    assert "2 truth records missing from links" in evaluation_text(rep)


def test_same_record_id_in_two_parties() -> None:
    recs: list[Rec] = [
        ("A", "x", "p1", "e1"),
        ("B", "x", "p1", "e1"),
        ("C", "x", "p2", "e1"),
        ("A", "y", "p2", "e2"),
    ]
    rep = evaluate(*tables(recs))
    assert rep.within is None
    assert figures(rep) == brute_view(recs, within=False)


def brute_view(recs: list[Rec], within: bool) -> dict[tuple[str, str], list[int]]:
    parties = sorted({r[0] for r in recs})
    b = brute(recs)
    return {
        (x, y): b.get((x, y), [0, 0, 0])
        for x, y in itertools.combinations_with_replacement(parties, 2)
        if within or x != y
    }


# --------------------------------------------------------------------------- property test


@st.composite
def linkages(draw: st.DrawFn) -> list[Rec]:
    n = draw(st.integers(1, 40))
    n_parties = draw(st.integers(1, 4))
    n_persons = draw(st.integers(1, max(1, n)))
    n_ent = draw(st.integers(1, max(1, n)))
    recs = []
    for i in range(n):
        party = draw(st.integers(0, n_parties - 1))
        person = draw(st.integers(0, n_persons - 1))
        # entities correlated with persons most of the time, random otherwise
        e = person if draw(st.booleans()) else draw(st.integers(0, n_ent - 1)) + 1000
        recs.append((f"party{party}", f"r{i % 7}-{i}", f"person{person}", f"e{e}"))
    return recs


@settings(max_examples=150, deadline=None)
@given(linkages())
def test_combinatorial_counts_match_brute_force(recs: list[Rec]) -> None:
    rep = evaluate(*tables(recs), within_party=True)
    assert figures(rep) == brute_view(recs, within=True)
    b = brute(recs)
    cross = [sum(v[k] for (x, y), v in b.items() if x != y) for k in range(3)]
    same = [sum(v[k] for (x, y), v in b.items() if x == y) for k in range(3)]
    assert [rep.cross.tp, rep.cross.fp, rep.cross.fn] == cross
    assert rep.within is not None
    assert [rep.within.tp, rep.within.fp, rep.within.fn] == same
    cl = brute_clusters(recs)
    assert {k: rep.clusters[k] for k in cl} == cl
    sizes = Counter(r[0] for r in recs)
    total = sum(sizes.values())
    possible = (total**2 - sum(v * v for v in sizes.values())) // 2
    assert rep.records["possible_cross_pairs"] == possible
    json.dumps(rep.to_dict())  # serialisable


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=60),
    st.lists(st.integers(0, 3), min_size=60, max_size=60),
    st.integers(1, 4),
)
def test_group_pair_matrix_brute(groups: list[int], parties: list[int], n_p: int) -> None:
    g = np.array(groups, dtype=np.int64)
    p = np.array(parties[: len(groups)], dtype=np.int64) % n_p
    w = group_pair_matrix(g, p, n_p)
    ref = np.zeros((n_p, n_p), dtype=np.int64)
    for i, j in itertools.combinations(range(len(g)), 2):
        if g[i] == g[j]:
            a, b = sorted((int(p[i]), int(p[j])))
            ref[a, b] += 1
    np.testing.assert_array_equal(w, ref)


# --------------------------------------------------------------------------- sweep


SWEEP_RECS: list[Rec] = [
    ("A", "a1", "p1", "e1"),
    ("B", "b1", "p1", "e1"),
    ("A", "a2", "p2", "e2"),
    ("B", "b2", "p2", "e2"),
    ("A", "a3", "p3", "e3"),
    ("B", "b3", "p3", "e4"),
    ("A", "a4", "p4", "e5"),
]


def test_sweep_hand_computed() -> None:
    links, truth = tables(SWEEP_RECS)
    pairs = pairs_table(
        [
            ("A", "a1", "B", "b1", 0.95),
            ("B", "b1", "A", "a1", 0.60),  # same pair reversed: the highest score counts
            ("A", "a2", "B", "b2", 0.80),
            ("A", "a4", "B", "b3", 0.70),  # false
            ("A", "a3", "B", "b3", 0.55),
            ("A", "a1", "A", "a2", 0.99),  # same-party: not a cross-party pair
        ]
    )
    rep = evaluate(links, truth, pairs=pairs, sweep=(0.5, 0.9, 0.1))
    assert rep.sweep is not None and rep.best is not None and rep.pairs is not None
    by_t = {round(r["threshold"], 6): (r["tp"], r["fp"], r["fn"]) for r in rep.sweep}
    assert by_t == {
        0.5: (3, 1, 0),
        0.6: (2, 1, 1),
        0.7: (2, 1, 1),
        0.8: (2, 0, 1),
        0.9: (1, 0, 2),
    }
    # F1: 0.857, 0.667, 0.667, 0.8, 0.5 -> best at 0.5
    assert rep.best["threshold"] == pytest.approx(0.5)
    assert rep.best["f1"] == pytest.approx(6 / 7)
    assert rep.pairs["cross_pairs"] == 4 and rep.pairs["rows"] == 6
    text = evaluation_text(rep)
    assert "best F1 0.8571 at threshold 0.5" in text


def test_pairs_without_sweep_and_matched_only_note() -> None:
    links, truth = tables(SWEEP_RECS)
    pairs = pairs_table([("A", "a1", "B", "b1", 0.95), ("A", "a2", "B", "b2", 0.85)])
    rep = evaluate(links, truth, pairs=pairs)
    assert rep.sweep is None and rep.pairs is not None
    assert (rep.pairs["tp"], rep.pairs["fp"], rep.pairs["fn"]) == (2, 0, 1)
    rep = evaluate(links, truth, pairs=pairs, sweep=(0.5, 0.95, 0.05))
    assert any("no pairs below score 0.85" in n for n in rep.notes)


def test_sweep_float32_scores_at_threshold() -> None:
    links, truth = tables(SWEEP_RECS)
    pairs = pairs_table([("A", "a1", "B", "b1", 0.7)], score_type=pa.float32())
    rep = evaluate(links, truth, pairs=pairs, sweep=(0.7, 0.7, 0.1))
    assert rep.sweep is not None and rep.sweep[0]["tp"] == 1  # float32(0.7) >= 0.7 in float32


@settings(max_examples=60, deadline=None)
@given(linkages(), st.data())
def test_sweep_recall_monotone(recs: list[Rec], data: st.DataObject) -> None:
    links, truth = tables(recs)
    m = data.draw(st.integers(0, 30))
    idx = st.integers(0, len(recs) - 1)
    rows = []
    for _ in range(m):
        x, y = recs[data.draw(idx)], recs[data.draw(idx)]
        rows.append((x[0], x[1], y[0], y[1], data.draw(st.floats(0.0, 1.0))))
    rep = evaluate(links, truth, pairs=pairs_table(rows), sweep=(0.0, 1.0, 0.05))
    assert rep.sweep is not None
    tps = [r["tp"] for r in rep.sweep]
    preds = [r["predicted"] for r in rep.sweep]
    assert tps == sorted(tps, reverse=True) and preds == sorted(preds, reverse=True)
    recalls = [r["recall"] for r in rep.sweep]
    if rep.cross.true:
        assert all(a >= b for a, b in itertools.pairwise(recalls))
    # brute force at each threshold
    best: dict[tuple[tuple[str, str], tuple[str, str]], float] = {}
    truth_person = {(r[0], r[1]): r[2] for r in recs}
    for pa_, ra, pb, rb, s in rows:
        if pa_ == pb:
            continue
        u, v = sorted([(pa_, ra), (pb, rb)])
        best[u, v] = max(best.get((u, v), -1.0), s)
    for r in rep.sweep:
        sel = [k for k, s in best.items() if s >= r["threshold"]]
        tp = sum(truth_person[x] == truth_person[y] for x, y in sel)
        assert (r["predicted"], r["tp"], r["fn"]) == (len(sel), tp, rep.cross.true - tp)


# --------------------------------------------------------------------------- blocking


def test_blocking_quality() -> None:
    links, truth = tables(SWEEP_RECS)  # A: a1..a4, B: b1..b3 -> 12 cross pairs, 3 true
    cand = pa.table(
        {
            "party_a": ["A", "B", "A", "A", "A"],
            "record_id_a": ["a1", "b1", "a2", "a4", "a1"],
            "party_b": ["B", "A", "B", "B", "A"],
            "record_id_b": ["b1", "a1", "b3", "b3", "a2"],
        }
    )
    rep = evaluate(links, truth, candidates=cand)
    bl = rep.blocking
    assert bl is not None
    assert bl["candidates"] == 3  # a1-b1 (twice), a2-b3, a4-b3; a1-a2 is same-party
    assert bl["possible"] == 12 and bl["true"] == 3 and bl["true_found"] == 1
    assert bl["pairs_completeness"] == pytest.approx(1 / 3)
    assert bl["reduction_ratio"] == pytest.approx(1 - 3 / 12)
    assert "pairs completeness 0.3333" in evaluation_text(rep)


@settings(max_examples=60, deadline=None)
@given(linkages(), st.data())
def test_blocking_brute_force(recs: list[Rec], data: st.DataObject) -> None:
    links, truth = tables(recs)
    idx = st.integers(0, len(recs) - 1)
    chosen = [
        (recs[data.draw(idx)], recs[data.draw(idx)]) for _ in range(data.draw(st.integers(0, 30)))
    ]
    cand = pa.table(
        {
            "party_a": pa.array([x[0] for x, _ in chosen], pa.string()),
            "record_id_a": pa.array([x[1] for x, _ in chosen], pa.string()),
            "party_b": pa.array([y[0] for _, y in chosen], pa.string()),
            "record_id_b": pa.array([y[1] for _, y in chosen], pa.string()),
        }
    )
    bl = evaluate(links, truth, candidates=cand).blocking
    assert bl is not None
    distinct = {tuple(sorted([x, y])) for x, y in chosen if x[0] != y[0]}
    assert bl["candidates"] == len(distinct)
    assert bl["true_found"] == sum(x[2] == y[2] for x, y in distinct)
    for r in bl["by_party_pair"]:
        pair = {r["party_a"], r["party_b"]}
        sel = [(x, y) for x, y in distinct if {x[0], y[0]} == pair]
        assert r["candidates"] == len(sel)
        assert r["true_found"] == sum(x[2] == y[2] for x, y in sel)
        sizes = Counter(x[0] for x in recs)
        assert r["possible"] == sizes[r["party_a"]] * sizes[r["party_b"]]
        assert r["true"] == sum(
            x[2] == y[2] and {x[0], y[0]} == pair for x, y in itertools.combinations(recs, 2)
        )


# --------------------------------------------------------------------------- files, report


def test_files_round_trip_and_opaque_ids_stay_strings(tmp_path: Path) -> None:
    recs: list[Rec] = [
        ("A", "0012", "007", "e1"),
        ("B", "12", "007", "e1"),
        ("B", "0013", "008", "e2"),
    ]
    links, truth = tables(recs)
    lp, tp_ = tmp_path / "links.parquet", tmp_path / "truth.csv"
    pq.write_table(links, lp)
    pacsv.write_csv(truth, tp_)
    rep = evaluate(lp, str(tp_))
    assert rep.cross.f1 == 1.0  # "0012" was not read as the number 12
    assert rep.sources["links"] == str(lp)
    # truth as Parquet works too
    tq = tmp_path / "truth.parquet"
    pq.write_table(truth, tq)
    assert evaluate(lp, tq).cross.f1 == 1.0


def test_report_dict_and_text() -> None:
    links, truth = tables(SWEEP_RECS)
    rep = evaluate(
        links,
        truth,
        pairs=pairs_table([("A", "a1", "B", "b1", 0.9)]),
        sweep=(0.5, 0.6, 0.1),
        candidates=pairs_table([("A", "a1", "B", "b1", 0.9)]).drop(["score"]),
    )
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["cross_party"]["tp"] == 2 and d["cross_party"]["fn"] == 1
    assert d["within_party"] is None and len(d["sweep"]) == 2 and d["blocking"]["candidates"] == 1
    assert json.loads(rep.to_json()) == d
    text = evaluation_text(rep)
    for s in ("cross-party (overall)", "A - B", "persons split", "threshold", "blocking"):
        assert s in text


def test_report_data_holds_no_presentation() -> None:
    """The text lives in linkage.report.text (issue 9): the report is figures only."""
    assert not hasattr(EvaluationReport, "to_text")


def test_synth_truth_with_perfect_links(tmp_path: Path) -> None:
    from linkage.lab.synthetic import synth

    s = synth(tmp_path / "pop", 300, 3, duplicates=0.1, corruption="none", seed=3)
    truth = pacsv.read_csv(
        s.truth_path,
        convert_options=pacsv.ConvertOptions(
            column_types={"party": pa.string(), "record_id": pa.string(), "person_id": pa.string()}
        ),
    )
    links = pa.table(
        {
            "entity_id": truth["person_id"],
            "party": truth["party"],
            "record_id": truth["record_id"],
        }
    )
    rep = evaluate(links, s.truth_path)
    assert rep.cross.f1 == 1.0 and rep.within is not None and rep.within.f1 == 1.0
    assert rep.clusters["exact"] == rep.clusters["persons"]


# --------------------------------------------------------------------------- errors


def err(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    assert isinstance(excinfo.value, InputError) and isinstance(excinfo.value, LinkageError)
    return str(excinfo.value)


def test_error_missing_columns(tmp_path: Path) -> None:
    links, truth = tables(PERFECT)
    lp = tmp_path / "links.parquet"
    pq.write_table(links.drop(["entity_id"]), lp)
    with pytest.raises(InputError) as e:
        evaluate(lp, truth)
    assert str(lp) in err(e) and "missing column entity_id" in err(e)
    tp_ = tmp_path / "truth.csv"
    pacsv.write_csv(truth.drop(["person_id", "party"]), tp_)
    with pytest.raises(InputError) as e:
        evaluate(links, tp_)
    assert str(tp_) in err(e) and "missing columns party, person_id" in err(e)
    scored = pairs_table([("A", "a1", "B", "b1", 0.9)])
    with pytest.raises(InputError, match=r"pairs table: missing column score \(has: party_a"):
        evaluate(links, truth, pairs=scored.drop(["score"]))
    with pytest.raises(InputError, match="candidates table: missing columns party_a"):
        evaluate(links, truth, candidates=links)


def test_error_links_ids_not_in_truth() -> None:
    links, truth = tables(PERFECT)
    with pytest.raises(InputError) as e:
        evaluate(links, truth.slice(0, 4))
    msg = err(e)
    assert "2 of 6 records are not in the truth file" in msg
    # rows count data rows from 1 (as encode's do): b2 is the 5th record, a3 the 6th
    assert "party 'A', record_id 'a3', row 6" not in msg  # first is b2 at row 5
    assert "party 'B', record_id 'b2', row 5" in msg


def test_error_no_ids_match() -> None:
    links, truth = tables(PERFECT)
    other = truth.set_column(1, "record_id", pa.array([f"z{i}" for i in range(6)]))
    with pytest.raises(InputError, match="ids do not match the truth file"):
        evaluate(links, other)
    wrong_party = truth.set_column(0, "party", pa.array(["Q"] * 6))
    with pytest.raises(InputError, match="ids do not match the truth file"):
        evaluate(links, wrong_party)


def test_error_duplicates() -> None:
    links, truth = tables(PERFECT)
    with pytest.raises(InputError, match=r"links table: 1 records appear more than once.*'a2'"):
        evaluate(pa.concat_tables([links, links.slice(3, 1)]), truth)
    with pytest.raises(InputError, match=r"truth table: 1 records appear more than once.*row 7"):
        evaluate(links, pa.concat_tables([truth, truth.slice(3, 1)]))


def test_error_empty_and_null_values(tmp_path: Path) -> None:
    links, truth = tables(PERFECT)
    with pytest.raises(InputError, match="truth file has no records"):
        evaluate(links, truth.slice(0, 0))
    with pytest.raises(InputError, match="links file has no records"):
        evaluate(links.slice(0, 0), truth)
    nulls = links.set_column(2, "record_id", pa.array(["a1", None, "c1", "a2", "b2", "a3"]))
    with pytest.raises(InputError, match=r"column record_id has 1 empty values \(first at row 2\)"):
        evaluate(nulls, truth)
    tp_ = tmp_path / "truth.csv"
    tp_.write_text("party,record_id,person_id\nA,a1,x\nB,b1,\nC,c1,\n", encoding="utf-8")
    # empty person ids would all look like one person: refused
    with pytest.raises(InputError, match=r"truth\.csv: column person_id has 2 empty values"):
        evaluate(links, tp_)


def test_error_files(tmp_path: Path) -> None:
    links, truth = tables(PERFECT)
    with pytest.raises(InputError, match=r"links file .*nope\.parquet does not exist"):
        evaluate(tmp_path / "nope.parquet", truth)
    bad = tmp_path / "links.csv"
    bad.write_text("entity_id,party,record_id\n", encoding="utf-8")
    with pytest.raises(InputError, match="links must be a Parquet file"):
        evaluate(bad, truth)
    junk = tmp_path / "links.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="cannot read links file"):
        evaluate(junk, truth)
    with pytest.raises(InputError, match="is a directory"):
        evaluate(links, tmp_path)
    with pytest.raises(InputError, match="expected a path or a pyarrow Table"):
        evaluate(links, 42)


def test_error_pairs_and_candidates_ids() -> None:
    links, truth = tables(SWEEP_RECS)
    with pytest.raises(InputError) as e:
        evaluate(links, truth, pairs=pairs_table([("A", "a1", "B", "zz", 0.9)]))
    assert "pairs table: 1 of 1 record_id_b values are not in the truth file" in err(e)
    assert "record_id 'zz'" in err(e)
    cand = pairs_table([("A", "a1", "B", "b1", 0.9), ("C", "a1", "B", "b1", 0.9)])
    with pytest.raises(InputError, match=r"candidates table: 1 of 2 record_id_a values .*'C'"):
        evaluate(links, truth, candidates=cand)


def test_error_scores() -> None:
    links, truth = tables(SWEEP_RECS)
    p = pairs_table([("A", "a1", "B", "b1", 0.9)])
    with pytest.raises(InputError, match="score has 1 empty values"):
        evaluate(links, truth, pairs=p.set_column(4, "score", pa.array([None], pa.float64())))
    with pytest.raises(InputError, match="score has NaN"):
        evaluate(links, truth, pairs=p.set_column(4, "score", pa.array([float("nan")])))
    with pytest.raises(InputError, match="score has type string"):
        evaluate(links, truth, pairs=p.set_column(4, "score", pa.array(["0.9"])))


def test_error_sweep_arguments() -> None:
    links, truth = tables(SWEEP_RECS)
    with pytest.raises(InputError, match="sweep needs scored pairs"):
        evaluate(links, truth, sweep=(0.5, 0.9, 0.1))
    for bad, msg in [
        ((0.5, 0.9, 0.0), "step must be > 0"),
        ((0.9, 0.5, 0.1), r"hi \(0.5\) must be >= lo"),
        ((0.0, 1.0, 1e-9), "too many"),
        ((0.0, float("nan"), 0.1), "finite"),
        ((0.0, 1.0), "expected"),
    ]:
        with pytest.raises(InputError, match=msg):
            sweep_thresholds(bad)


def test_parse_sweep() -> None:
    assert parse_sweep("0.5:0.95:0.01") == (0.5, 0.95, 0.01)
    t = sweep_thresholds(parse_sweep("0.5:0.95:0.01"))
    assert t.size == 46 and t[0] == 0.5 and t[-1] == 0.95
    for bad in ("0.5:0.9", "a:b:c", "0.5:0.9:0.1:2", ""):
        with pytest.raises(InputError, match="--sweep"):
            parse_sweep(bad)
    with pytest.raises(InputError, match="step must be > 0"):
        parse_sweep("0.5:0.9:-0.1")


# --------------------------------------------------------------------------- CLI (once wired)


def test_cli_evaluate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from linkage.cli import main

    if "evaluate" not in main.commands:
        pytest.skip("linkage evaluate is not wired into the CLI yet")
    links, truth = tables(SWEEP_RECS)
    lp, tp_, pp = tmp_path / "links.parquet", tmp_path / "truth.csv", tmp_path / "pairs.parquet"
    pq.write_table(links, lp)
    pacsv.write_csv(truth, tp_)
    pq.write_table(pairs_table([("A", "a1", "B", "b1", 0.9)]), pp)
    run = CliRunner().invoke(
        main,
        ["evaluate", str(lp), "--truth", str(tp_), "--pairs", str(pp), "--sweep", "0.5:0.9:0.1"],
    )
    assert run.exit_code == 0, run.output
    assert "cross-party (overall)" in run.output and "best F1" in run.output
    run = CliRunner().invoke(main, ["evaluate", str(lp), "--truth", str(tp_), "--json"])
    assert run.exit_code == 0 and json.loads(run.output)["cross_party"]["tp"] == 2
    for args, msg in [
        (["--sweep", "0.5:0.9:0.1"], "--sweep needs --pairs"),
        (["--pairs", str(pp), "--sweep", "0.5:0.9"], "LO:HI:STEP"),
        (["--truth", str(tmp_path / "none.csv")], "does not exist"),
    ]:
        argv = ["evaluate", str(lp), *args]
        if "--truth" not in args:
            argv += ["--truth", str(tp_)]
        run = CliRunner().invoke(main, argv)
        assert run.exit_code == 2 and msg in run.output, run.output
        assert len(run.output.strip().splitlines()) == 1
