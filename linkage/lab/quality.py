"""Linkage quality against ground truth: ``linkage evaluate``.

Inputs are the links from ``linkage match`` (``entity_id, party, record_id``, every record
once), the truth from ``linkage synth`` (``party, record_id, person_id``), optionally scored
pairs (``party_a, record_id_a, party_b, record_id_b, score``) for a threshold sweep and
optionally a candidate set (``party_a, record_id_a, party_b, record_id_b``) for blocking
quality. Everything is measured over the records of the truth file; a truth record missing
from the links counts as a singleton (a recall loss, reported).

Pairs are counted combinatorially, never materialised. For a group ``G`` of records (an
entity, a person, or the records of one entity that belong to one person) with ``n_{G,p}``
records from party ``p``, the number of record pairs between parties ``a != b`` is
``n_{G,a} n_{G,b}`` and within party ``a`` it is ``n_{G,a}(n_{G,a} - 1) / 2``. Summed over
entities this gives the predicted pairs, over persons the true pairs, and over the
(entity, person) cells of the contingency table the true positives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from linkage.errors import InputError
from linkage.lab.tables import (
    TableLike,
    TruthIndex,
    check_known,
    dense_codes,
    read_table,
    sorted_runs,
    source_name,
    string_column,
)

__all__ = [
    "EvaluationReport",
    "PairCounts",
    "evaluate",
    "group_pair_matrix",
    "parse_sweep",
    "sweep_thresholds",
]

LINKS_COLUMNS = ("entity_id", "party", "record_id")
TRUTH_COLUMNS = ("party", "record_id", "person_id")
PAIR_COLUMNS = ("party_a", "record_id_a", "party_b", "record_id_b")
MAX_SWEEP_STEPS = 100_000

# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class PairCounts:
    """Pairwise confusion counts. ``precision`` is ``None`` when nothing was predicted,
    ``recall`` when there is nothing to find, ``f1`` (``2TP / (2TP + FP + FN)``) when both."""

    tp: int
    fp: int
    fn: int

    @property
    def predicted(self) -> int:
        return self.tp + self.fp

    @property
    def true(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.true if self.true else None

    @property
    def f1(self) -> float | None:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "predicted": self.predicted,
            "true": self.true,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate`. ``to_dict()`` is JSON-serialisable; the text that
    ``linkage evaluate`` prints is :func:`linkage.report.text.evaluation_text`."""

    sources: dict[str, str | None]
    parties: list[str]
    records: dict[str, int]
    cross: PairCounts
    within: PairCounts | None
    by_party_pair: list[tuple[str, str, PairCounts]]
    clusters: dict[str, Any]
    pairs: dict[str, Any] | None = None
    sweep: list[dict[str, Any]] | None = None
    best: dict[str, Any] | None = None
    blocking: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def all_pairs(self) -> PairCounts | None:
        """Cross-party and within-party pairs together (only when within-party is reported)."""
        if self.within is None:
            return None
        w, c = self.within, self.cross
        return PairCounts(c.tp + w.tp, c.fp + w.fp, c.fn + w.fn)

    def to_dict(self) -> dict[str, Any]:
        allp = self.all_pairs
        return {
            "sources": dict(self.sources),
            "parties": list(self.parties),
            "records": dict(self.records),
            "cross_party": self.cross.to_dict(),
            "within_party": self.within.to_dict() if self.within is not None else None,
            "all_pairs": allp.to_dict() if allp is not None else None,
            "by_party_pair": [
                {"party_a": a, "party_b": b, **c.to_dict()} for a, b, c in self.by_party_pair
            ],
            "clusters": dict(self.clusters),
            "pairs": dict(self.pairs) if self.pairs is not None else None,
            "sweep": [dict(r) for r in self.sweep] if self.sweep is not None else None,
            "best": dict(self.best) if self.best is not None else None,
            "blocking": dict(self.blocking) if self.blocking is not None else None,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# --------------------------------------------------------------------------- sweep parsing


def parse_sweep(text: str) -> tuple[float, float, float]:
    """Parse ``"lo:hi:step"`` (e.g. ``"0.5:0.95:0.01"``) into a checked triple."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"--sweep: expected LO:HI:STEP such as 0.5:0.95:0.01, got {text!r}")
    try:
        lo, hi, step = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"--sweep: expected three numbers LO:HI:STEP such as 0.5:0.95:0.01, got {text!r}"
        ) from None
    sweep_thresholds((lo, hi, step))
    return lo, hi, step


def sweep_thresholds(sweep: Sequence[float]) -> NDArray[np.float64]:
    """Thresholds ``lo, lo + step, ...`` up to ``hi`` inclusive (rounded to 10 decimals)."""
    if len(sweep) != 3:
        raise InputError(f"sweep: expected (lo, hi, step), got {sweep!r}")
    lo, hi, step = (float(x) for x in sweep)
    if not all(math.isfinite(x) for x in (lo, hi, step)):
        raise InputError(f"sweep: lo, hi and step must be finite numbers, got {sweep!r}")
    if step <= 0:
        raise InputError(f"sweep: step must be > 0, got {step}")
    if hi < lo:
        raise InputError(f"sweep: hi ({hi}) must be >= lo ({lo})")
    k = math.floor((hi - lo) / step + 1e-9) + 1
    if k > MAX_SWEEP_STEPS:
        raise InputError(f"sweep: {k} thresholds is too many (at most {MAX_SWEEP_STEPS})")
    t = np.round(lo + step * np.arange(k, dtype=np.float64), 10)
    return np.minimum(t, hi) if k > 1 else t


# --------------------------------------------------------------------------- counting


def group_pair_matrix(
    group: NDArray[np.int64], party: NDArray[np.int64], n_parties: int
) -> NDArray[np.int64]:
    """Record pairs sharing a group, by party pair, counted without enumerating pairs.

    Returns ``W`` (``n_parties x n_parties``, upper triangular) with
    ``W[a, b] = sum_G n_{G,a} n_{G,b}`` for ``a < b`` and
    ``W[a, a] = sum_G n_{G,a} (n_{G,a} - 1) / 2``, where ``n_{G,p}`` is the number of records
    of party ``p`` in group ``G``. Groups and parties are non-negative integer codes.
    """
    w = np.zeros((n_parties, n_parties), dtype=np.int64)
    if group.size == 0:
        return w
    key = group.astype(np.int64) * n_parties + party.astype(np.int64)
    cells, n = sorted_runs(key)
    cg, cp = cells // n_parties, cells % n_parties
    diag = np.zeros(n_parties, dtype=np.int64)
    np.add.at(diag, cp, n * (n - 1) // 2)
    w[np.arange(n_parties), np.arange(n_parties)] = diag
    flat = w.reshape(-1)
    # cells are sorted by (group, party): pair each cell with the cells after it in its group
    d = 1
    while d < cells.size:
        same = cg[:-d] == cg[d:]
        if not same.any():
            break
        a, b = cp[:-d][same], cp[d:][same]
        np.add.at(flat, a * n_parties + b, n[:-d][same] * n[d:][same])
        d += 1
    return w


def _pairs_from_matrices(
    pred: NDArray[np.int64], true: NDArray[np.int64], tp: NDArray[np.int64], a: int, b: int
) -> PairCounts:
    t = int(tp[a, b])
    return PairCounts(t, int(pred[a, b]) - t, int(true[a, b]) - t)


def _pair_keys(i: NDArray[np.int64], j: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * np.int64(n) + hi


# --------------------------------------------------------------------------- evaluate


def evaluate(
    links: TableLike,
    truth: TableLike,
    *,
    pairs: TableLike | None = None,
    sweep: Sequence[float] | None = None,
    candidates: TableLike | None = None,
    within_party: bool | None = None,
) -> EvaluationReport:
    """Measure a linkage against ground truth.

    ``links``: Parquet path or Table with ``entity_id, party, record_id`` (every record
    once). ``truth``: CSV or Parquet path or Table with ``party, record_id, person_id``.
    ``pairs``: scored pairs ``party_a, record_id_a, party_b, record_id_b, score``; with
    ``sweep=(lo, hi, step)`` a threshold sweep of the pair set ``{score >= t}`` is added.
    ``candidates``: candidate pairs, for pairs completeness and reduction ratio.
    ``within_party``: report same-party pairs (``None``: when the links put two records of
    one party in one entity). Raises :class:`~linkage.errors.InputError` naming the file and
    column for bad input.
    """
    if sweep is not None and pairs is None:
        raise InputError("sweep needs scored pairs (pairs=..., --pairs FILE)")
    thresholds = sweep_thresholds(sweep) if sweep is not None else None
    links_name, truth_name = source_name(links, "links"), source_name(truth, "truth")

    tt = read_table(truth, "truth", TRUTH_COLUMNS, csv_ok=True)
    lt = read_table(links, "links", LINKS_COLUMNS, csv_ok=False)
    # score only the parties that were linked: a truth party absent from the links would
    # count every one of its true pairs as missed (recall 0.34 for a two-party linkage)
    linked = set(pc.unique(string_column(lt, "party", links_name)).to_pylist())
    t_all = string_column(tt, "party", truth_name)
    t_parties = set(pc.unique(t_all).to_pylist())
    left_out = sorted(t_parties - linked) if t_parties & linked else []
    if left_out:  # (no party in common: the id check below names the problem)
        tt = tt.filter(pc.is_in(t_all, value_set=pa.array(sorted(linked), pa.string())))
    t_party = string_column(tt, "party", truth_name)
    t_rid = string_column(tt, "record_id", truth_name)
    t_person = string_column(tt, "person_id", truth_name)
    n = len(t_rid)
    if n == 0:
        raise InputError(f"{truth_name}: the truth file has no records")
    index = TruthIndex(t_party, t_rid, truth_name)
    person, n_persons = dense_codes(t_person)

    l_party = string_column(lt, "party", links_name)
    l_rid = string_column(lt, "record_id", links_name)
    l_ent = string_column(lt, "entity_id", links_name)
    row = index.lookup(l_party, l_rid)
    if len(row) == 0:
        raise InputError(f"{links_name}: the links file has no records")
    if not (row >= 0).any():
        raise InputError(
            f"{links_name}: ids do not match the truth file {truth_name} "
            f"(none of its {len(row)} (party, record_id) pairs is in the truth)"
        )
    check_known(row, l_party, l_rid, links_name, truth_name, "records")
    counts = np.bincount(row, minlength=n)
    if (counts > 1).any():
        order = np.argsort(row, kind="stable")  # repeats of one record side by side
        rep = np.flatnonzero(row[order][1:] == row[order][:-1])
        j = int(order[rep + 1].min())  # the earliest repeat, and the row it repeats
        i = int(np.flatnonzero(row == row[j])[0])
        raise InputError(
            f"{links_name}: {int((counts > 1).sum())} records appear more than once (first "
            f"repeat: party {l_party[j].as_py()!r}, record_id {l_rid[j].as_py()!r}, row {j + 1} "
            f"repeats row {i + 1}); every record must appear once"
        )
    ent_l, n_ent_l = dense_codes(l_ent)
    entity = np.empty(n, dtype=np.int64)
    entity[row] = ent_l
    missing = np.flatnonzero(counts == 0)
    entity[missing] = n_ent_l + np.arange(missing.size, dtype=np.int64)  # singletons
    n_ent = n_ent_l + missing.size

    party = index.party
    n_p = len(index.parties)
    w_pred = group_pair_matrix(entity, party, n_p)
    w_true = group_pair_matrix(person, party, n_p)
    cell = entity * np.int64(n_persons) + person
    w_tp = group_pair_matrix(cell, party, n_p)

    pt = np.triu(np.ones((n_p, n_p), dtype=bool), 1)
    cross = PairCounts(
        int(w_tp[pt].sum()),
        int(w_pred[pt].sum() - w_tp[pt].sum()),
        int(w_true[pt].sum() - w_tp[pt].sum()),
    )
    dg = np.arange(n_p)
    same_pred = int(w_pred[dg, dg].sum())
    show_within = same_pred > 0 if within_party is None else bool(within_party)
    within = None
    if show_within:
        tpw = int(w_tp[dg, dg].sum())
        within = PairCounts(tpw, same_pred - tpw, int(w_true[dg, dg].sum()) - tpw)
    by_pp: list[tuple[str, str, PairCounts]] = []
    for a in range(n_p):
        for b in range(a, n_p):
            if a == b and not show_within:
                continue
            by_pp.append(
                (
                    index.parties[a],
                    index.parties[b],
                    _pairs_from_matrices(w_pred, w_true, w_tp, a, b),
                )
            )

    clusters = _cluster_figures(entity, person, n_ent, n_persons)
    notes: list[str] = []
    if left_out:
        notes.append(
            f"scored against the linked parties only ({', '.join(index.parties)}); truth "
            f"parties not in the links are left out: {', '.join(left_out)}"
        )
    if missing.size:
        notes.append(
            f"{missing.size} truth records are not in the links; they count as singletons "
            "(a recall loss)"
        )
    if within is None and int(w_true[dg, dg].sum()) > 0:
        notes.append(
            f"the truth holds {int(w_true[dg, dg].sum())} within-party duplicate pairs that "
            "are not scored (the links never join records of one party; use within_party=True "
            "to count them as missed)"
        )
    party_sizes = np.bincount(party, minlength=n_p).astype(np.int64)
    possible = (int(party_sizes.sum()) ** 2 - int((party_sizes**2).sum())) // 2

    report = EvaluationReport(
        sources={
            "links": links_name,
            "truth": truth_name,
            "pairs": source_name(pairs, "pairs") if pairs is not None else None,
            "candidates": source_name(candidates, "candidates") if candidates is not None else None,
        },
        parties=list(index.parties),
        records={
            "truth": n,
            "links": len(row),
            "missing_from_links": int(missing.size),
            "possible_cross_pairs": possible,
        },
        cross=cross,
        within=within,
        by_party_pair=by_pp,
        clusters=clusters,
        notes=notes,
    )
    if pairs is not None:
        _add_pairs(report, pairs, index, truth_name, person, cross.true, thresholds)
    if candidates is not None:
        report.blocking = _blocking(
            candidates, index, truth_name, person, cross.true, possible, w_true, party_sizes
        )
    return report


def _cluster_figures(
    entity: NDArray[np.int64], person: NDArray[np.int64], n_ent: int, n_persons: int
) -> dict[str, Any]:
    cells, _ = sorted_runs(entity * np.int64(n_persons) + person)
    ce, cp = cells // n_persons, cells % n_persons
    ent_cells = np.bincount(ce, minlength=n_ent)
    per_cells = np.bincount(cp, minlength=n_persons)
    ent_size = np.bincount(entity, minlength=n_ent)
    per_size = np.bincount(person, minlength=n_persons)
    exact = int(((ent_cells[ce] == 1) & (per_cells[cp] == 1)).sum())
    persons_multi = int((per_size > 1).sum())
    return {
        "persons": n_persons,
        "persons_multi": persons_multi,
        "entities": n_ent,
        "entities_multi": int((ent_size > 1).sum()),
        "persons_split": int((per_cells > 1).sum()),
        "entities_merged": int((ent_cells > 1).sum()),
        "exact": exact,
        "exact_rate": exact / n_persons if n_persons else None,
    }


def _pair_rows(
    src: TableLike, what: str, index: TruthIndex, truth_name: str, extra: Sequence[str]
) -> tuple[pa.Table, str, NDArray[np.int64], NDArray[np.int64]]:
    name = source_name(src, what)
    t = read_table(src, what, (*PAIR_COLUMNS, *extra), csv_ok=False)
    ends = []
    for s in ("a", "b"):
        p = string_column(t, f"party_{s}", name)
        r = string_column(t, f"record_id_{s}", name)
        i = index.lookup(p, r)
        check_known(i, p, r, name, truth_name, f"record_id_{s} values")
        ends.append(i)
    return t, name, ends[0], ends[1]


def _add_pairs(
    report: EvaluationReport,
    src: TableLike,
    index: TruthIndex,
    truth_name: str,
    person: NDArray[np.int64],
    n_true: int,
    thresholds: NDArray[np.float64] | None,
) -> None:
    t, name, i, j = _pair_rows(src, "pairs", index, truth_name, ("score",))
    col = t.column("score")
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise InputError(f"{name}: column score has type {col.type}; expected numbers")
    if col.null_count:
        raise InputError(f"{name}: column score has {col.null_count} empty values")
    score = col.to_numpy()
    if not np.issubdtype(score.dtype, np.floating):
        score = score.astype(np.float64)
    if np.isnan(score).any():
        raise InputError(f"{name}: column score has NaN values")
    cross = index.party[i] != index.party[j]
    i, j, score = i[cross], j[cross], score[cross]
    key = _pair_keys(i, j, len(person))
    # one score per distinct pair: the highest
    order = np.argsort(key)
    sk, ss = key[order], score[order]
    start = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1]))) if sk.size else order
    key = sk[start]
    score = np.maximum.reduceat(ss, start) if sk.size else ss
    n_rec = np.int64(len(person))
    is_true = person[key // n_rec] == person[key % n_rec]
    all_sorted = np.sort(score)
    true_sorted = np.sort(score[is_true])
    tp_all = int(true_sorted.size)
    report.pairs = {
        "rows": t.num_rows,
        "cross_pairs": int(score.size),
        "min_score": float(all_sorted[0]) if score.size else None,
        "max_score": float(all_sorted[-1]) if score.size else None,
        "tp": tp_all,
        "fp": int(score.size) - tp_all,
        "fn": n_true - tp_all,
    }
    if thresholds is None:
        return
    thr = thresholds.astype(score.dtype)  # compare in the scores' own precision
    n_sel = all_sorted.size - np.searchsorted(all_sorted, thr, side="left")  # score >= t
    n_tp = true_sorted.size - np.searchsorted(true_sorted, thr, side="left")
    rows: list[dict[str, Any]] = []
    for tv, k, tp in zip(thresholds.tolist(), n_sel.tolist(), n_tp.tolist(), strict=True):
        c = PairCounts(int(tp), int(k - tp), int(n_true - tp))
        rows.append({"threshold": tv, **c.to_dict()})
    report.sweep = rows
    best = max(
        (r for r in rows if r["f1"] is not None),
        key=lambda r: r["f1"],
        default=None,
    )
    report.best = dict(best) if best is not None else None
    if score.size and float(score.min()) > float(thresholds[0]):
        meta = t.schema.metadata or {}
        why = (
            "field-aware scoring writes only the linked pairs, as match probabilities"
            if meta.get(b"linkage.scoring") == b"fields"
            else "matched-only pairs from `linkage match --pairs` sweep only upwards from the "
            "match threshold"
        )
        report.notes.append(
            f"the pairs file holds no pairs below score {float(score.min()):.4g}, so thresholds "
            f"below it all select the same pairs ({why})"
        )


def _blocking(
    src: TableLike,
    index: TruthIndex,
    truth_name: str,
    person: NDArray[np.int64],
    n_true: int,
    possible: int,
    w_true: NDArray[np.int64],
    party_sizes: NDArray[np.int64],
) -> dict[str, Any]:
    t, _, i, j = _pair_rows(src, "candidates", index, truth_name, ())
    cross = index.party[i] != index.party[j]
    i, j = i[cross], j[cross]
    key, _ = sorted_runs(_pair_keys(i, j, len(person)))
    n_rec = np.int64(len(person))
    lo, hi = key // n_rec, key % n_rec
    is_true = person[lo] == person[hi]
    found = int(is_true.sum())
    # per party pair (a < b)
    n_p = index.n_parties
    pa_, pb_ = index.party[lo], index.party[hi]
    pp = np.minimum(pa_, pb_) * n_p + np.maximum(pa_, pb_)
    cand_pp = np.bincount(pp, minlength=n_p * n_p).reshape(n_p, n_p)
    found_pp = np.bincount(pp[is_true], minlength=n_p * n_p).reshape(n_p, n_p)
    by_pp = []
    for a in range(n_p):
        for b in range(a + 1, n_p):
            tr, poss = int(w_true[a, b]), int(party_sizes[a]) * int(party_sizes[b])
            by_pp.append(
                {
                    "party_a": index.parties[a],
                    "party_b": index.parties[b],
                    "candidates": int(cand_pp[a, b]),
                    "possible": poss,
                    "true": tr,
                    "true_found": int(found_pp[a, b]),
                    "pairs_completeness": int(found_pp[a, b]) / tr if tr else None,
                    "reduction_ratio": 1.0 - int(cand_pp[a, b]) / poss if poss else None,
                }
            )
    return {
        "rows": t.num_rows,
        "candidates": int(key.size),
        "possible": possible,
        "true": n_true,
        "true_found": found,
        "pairs_completeness": found / n_true if n_true else None,
        "reduction_ratio": 1.0 - key.size / possible if possible else None,
        "by_party_pair": by_pp,
    }
