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
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from linkage.errors import InputError

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

TableLike: TypeAlias = "str | Path | pa.Table"


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
    """Result of :func:`evaluate`. ``to_dict()`` is JSON-serialisable; ``to_text()`` reads."""

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

    def to_text(self) -> str:
        out: list[str] = []
        r = self.records
        out.append(
            f"records: {r['truth']} in truth, {r['links']} in links, "
            f"{r['missing_from_links']} truth records missing from links; "
            f"{len(self.parties)} parties ({', '.join(self.parties)})"
        )
        out.append("")
        head = (
            f"{'pairs':<28} {'precision':>9} {'recall':>9} {'F1':>9} "
            f"{'TP':>12} {'FP':>12} {'FN':>12}"
        )
        out.append(head)
        out.append("-" * len(head))
        rows: list[tuple[str, PairCounts]] = [("cross-party (overall)", self.cross)]
        if self.within is not None:
            rows.append(("within-party", self.within))
            allp = self.all_pairs
            assert allp is not None
            rows.append(("all pairs", allp))
        rows += [(_pp_label(a, b), c) for a, b, c in self.by_party_pair]
        for i, (label, c) in enumerate(rows):
            if i == len(rows) - len(self.by_party_pair) and self.by_party_pair:
                out.append("")
            out.append(
                f"{_clip(label, 28):<28} {_fmt(c.precision):>9} {_fmt(c.recall):>9} "
                f"{_fmt(c.f1):>9} {c.tp:>12} {c.fp:>12} {c.fn:>12}"
            )
        cl = self.clusters
        out.append("")
        out.append("clusters:")
        out.append(
            f"  persons {cl['persons']} ({cl['persons_multi']} with 2+ records), "
            f"entities {cl['entities']} ({cl['entities_multi']} with 2+ records)"
        )
        out.append(
            f"  persons split over 2+ entities: {cl['persons_split']} "
            f"({_pct(cl['persons_split'], cl['persons_multi'])} of persons with 2+ records)"
        )
        out.append(
            f"  entities merging 2+ persons:    {cl['entities_merged']} "
            f"({_pct(cl['entities_merged'], cl['entities_multi'])} of entities with 2+ records)"
        )
        out.append(
            f"  exact entities (one person, all its records): {cl['exact']} "
            f"({_pct(cl['exact'], cl['persons'])} of persons)"
        )
        if self.pairs is not None:
            p = self.pairs
            pcnt = PairCounts(p["tp"], p["fp"], p["fn"])
            out.append("")
            out.append(
                f"scored pairs: {p['rows']} rows, {p['cross_pairs']} distinct cross-party pairs, "
                f"scores {_fmt(p['min_score'])}..{_fmt(p['max_score'])}; all of them: "
                f"precision {_fmt(pcnt.precision)} recall {_fmt(pcnt.recall)} F1 {_fmt(pcnt.f1)}"
            )
        if self.sweep is not None:
            out.append("")
            h = (
                f"{'threshold':>9} {'precision':>9} {'recall':>9} {'F1':>9} "
                f"{'pairs':>12} {'TP':>12}"
            )
            out.append(h)
            out.append("-" * len(h))
            for s in self.sweep:
                out.append(
                    f"{s['threshold']:>9.4g} {_fmt(s['precision']):>9} {_fmt(s['recall']):>9} "
                    f"{_fmt(s['f1']):>9} {s['predicted']:>12} {s['tp']:>12}"
                )
        if self.best is not None:
            b = self.best
            out.append(
                f"best F1 {_fmt(b['f1'])} at threshold {b['threshold']:.4g} "
                f"(precision {_fmt(b['precision'])}, recall {_fmt(b['recall'])})"
            )
        if self.blocking is not None:
            bl = self.blocking
            out.append("")
            out.append(
                f"blocking: {bl['candidates']} distinct cross-party candidate pairs of "
                f"{bl['possible']} possible; pairs completeness {_fmt(bl['pairs_completeness'])} "
                f"({bl['true_found']} of {bl['true']} true pairs), reduction ratio "
                f"{_fmt(bl['reduction_ratio'], 6)}"
            )
            if len(bl["by_party_pair"]) > 1:
                for r in bl["by_party_pair"]:
                    out.append(
                        f"  {_clip(_pp_label(r['party_a'], r['party_b']), 28):<28} "
                        f"pairs completeness {_fmt(r['pairs_completeness'])} "
                        f"reduction ratio {_fmt(r['reduction_ratio'], 6)} "
                        f"({r['candidates']} candidates)"
                    )
        for n in self.notes:
            out.append(f"note: {n}")
        return "\n".join(out)


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(a: int, b: int) -> str:
    return "-" if b == 0 else f"{100.0 * a / b:.2f}%"


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "~"


def _pp_label(a: str, b: str) -> str:
    return f"{a} (within)" if a == b else f"{a} - {b}"


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


# --------------------------------------------------------------------------- reading


def _name(src: TableLike, what: str) -> str:
    return str(src) if isinstance(src, str | Path) else f"{what} table"


def _read(src: TableLike, what: str, columns: Sequence[str], csv_ok: bool) -> pa.Table:
    """Read a Parquet (or, where allowed, CSV) file or take a Table; check the columns."""
    name = _name(src, what)
    if isinstance(src, pa.Table):
        table = src
    elif isinstance(src, str | Path):
        p = Path(src)
        if not p.exists():
            raise InputError(f"{what} file {p} does not exist")
        if p.is_dir():
            raise InputError(f"{what} file {p} is a directory")
        is_csv = p.suffix.lower() in (".csv", ".tsv", ".txt") or (
            csv_ok and p.suffix.lower() != ".parquet" and not _is_parquet(p)
        )
        try:
            if is_csv:
                if not csv_ok:
                    raise InputError(f"{p}: {what} must be a Parquet file")
                table = _read_csv(p, columns)
            else:
                table = pq.read_table(p)
        except InputError:
            raise
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{p}: cannot read {what} file: {_one_line(exc)}") from None
    else:
        raise InputError(f"{what}: expected a path or a pyarrow Table, got {type(src).__name__}")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (has: {', '.join(table.column_names) or 'no columns'})"
        )
    return table


def _is_parquet(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def _read_csv(p: Path, columns: Sequence[str]) -> pa.Table:
    delim = "\t" if p.suffix.lower() == ".tsv" else ","
    return pacsv.read_csv(
        p,
        parse_options=pacsv.ParseOptions(delimiter=delim),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _strings(table: pa.Table, col: str, name: str) -> pa.Array:
    """A column as a plain string array, with no nulls."""
    arr = table.column(col)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        try:
            arr = pc.cast(
                arr, pa.large_string() if pa.types.is_large_string(arr.type) else pa.string()
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{name}: column {col} has type {arr.type}; expected strings"
            ) from None
        if pa.types.is_large_string(arr.type):
            arr = pc.cast(arr, pa.string())
    empty = pc.or_kleene(arr.is_null(), pc.equal(pc.utf8_length(arr), 0))
    n_empty = pc.sum(empty).as_py() or 0
    if n_empty:
        first = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{name}: column {col} has {n_empty} empty values (first at row {first})")
    return arr


def _codes(arr: pa.Array) -> tuple[NDArray[np.int64], int]:
    """Dense integer codes of an array's values (first-seen order) and their number."""
    enc = pc.dictionary_encode(arr)
    return enc.indices.to_numpy().astype(np.int64), len(enc.dictionary)


def _sorted_runs(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct values of ``keys`` (ascending) and how often each occurs (sort-based)."""
    if keys.size == 0:
        return keys[:0].astype(np.int64), np.zeros(0, dtype=np.int64)
    sk = np.sort(keys)
    start = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
    counts = np.diff(np.append(start, sk.size)).astype(np.int64)
    return sk[start], counts


class _Index:
    """The truth records keyed by (party, record_id), for vectorised look-ups.

    Record ids are hashed once into dense codes. An id held by one truth record maps straight
    to its row; ids held by several records (same id in several parties) are looked up as
    ``record code * n_parties + party code`` in a sorted array.
    """

    def __init__(self, party: pa.Array, record_id: pa.Array, name: str) -> None:
        self.name = name
        self.parties: list[str] = sorted(pc.unique(party).to_pylist())
        self._pv = pa.array(self.parties, pa.string())
        self.n_parties = len(self.parties)
        self.party = self.party_codes(party)
        enc = pc.dictionary_encode(record_id)
        self._rid_dict = enc.dictionary
        rcode = enc.indices.to_numpy().astype(np.int64)
        n = rcode.size
        # a record id used by one truth record only (the usual case) is looked up directly
        self._rid_count = np.bincount(rcode, minlength=len(self._rid_dict))
        self._row_of_rid = np.full(len(self._rid_dict), -1, dtype=np.int64)
        self._row_of_rid[rcode] = np.arange(n, dtype=np.int64)
        # ids shared by several records (several parties, or repeats) go through sorted keys
        shared = np.flatnonzero(self._rid_count[rcode] > 1)
        keys = rcode[shared] * self.n_parties + self.party[shared]
        order = np.argsort(keys)
        self._order = shared[order]
        self._sorted = keys[order]
        dup = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
        if dup.size:
            first = int(self._order[dup + 1].min())
            n_dup = int(_sorted_runs(self._sorted[dup])[0].size)
            raise InputError(
                f"{name}: {n_dup} records appear more than once (first repeat: party "
                f"{party[first].as_py()!r}, record_id {record_id[first].as_py()!r}, row {first}); "
                "every record must appear once"
            )

    def party_codes(self, party: pa.Array) -> NDArray[np.int64]:
        """Party codes (-1 for a party not in the truth)."""
        return pc.index_in(party, value_set=self._pv).fill_null(-1).to_numpy().astype(np.int64)

    def lookup(self, party: pa.Array, record_id: pa.Array) -> NDArray[np.int64]:
        """Truth row of each (party, record_id), -1 where absent."""
        pcode = self.party_codes(party)
        rcode = pc.index_in(record_id, value_set=self._rid_dict).fill_null(-1).to_numpy()
        rcode = rcode.astype(np.int64)
        out = np.full(rcode.size, -1, dtype=np.int64)
        ok = (pcode >= 0) & (rcode >= 0)
        cnt = np.zeros(rcode.size, dtype=np.int64)
        cnt[ok] = self._rid_count[rcode[ok]]
        one = np.flatnonzero(cnt == 1)
        r = self._row_of_rid[rcode[one]]
        hit = self.party[r] == pcode[one]
        out[one[hit]] = r[hit]
        many = np.flatnonzero(cnt > 1)
        if many.size:
            key = rcode[many] * self.n_parties + pcode[many]
            pos = np.minimum(np.searchsorted(self._sorted, key), self._sorted.size - 1)
            hit = self._sorted[pos] == key
            out[many[hit]] = self._order[pos[hit]]
        return out


def _check_known(
    idx: NDArray[np.int64],
    party: pa.Array,
    record_id: pa.Array,
    name: str,
    truth: str,
    what: str,
) -> None:
    bad = np.flatnonzero(idx < 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{name}: {bad.size} of {idx.size} {what} are not in the truth file {truth} "
            f"(first: party {party[i].as_py()!r}, record_id {record_id[i].as_py()!r}, row {i})"
        )


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
    cells, n = _sorted_runs(key)
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
    links_name, truth_name = _name(links, "links"), _name(truth, "truth")

    tt = _read(truth, "truth", TRUTH_COLUMNS, csv_ok=True)
    t_party = _strings(tt, "party", truth_name)
    t_rid = _strings(tt, "record_id", truth_name)
    t_person = _strings(tt, "person_id", truth_name)
    n = len(t_rid)
    if n == 0:
        raise InputError(f"{truth_name}: the truth file has no records")
    index = _Index(t_party, t_rid, truth_name)
    person, n_persons = _codes(t_person)

    lt = _read(links, "links", LINKS_COLUMNS, csv_ok=False)
    l_party = _strings(lt, "party", links_name)
    l_rid = _strings(lt, "record_id", links_name)
    l_ent = _strings(lt, "entity_id", links_name)
    row = index.lookup(l_party, l_rid)
    if len(row) == 0:
        raise InputError(f"{links_name}: the links file has no records")
    if not (row >= 0).any():
        raise InputError(
            f"{links_name}: ids do not match the truth file {truth_name} "
            f"(none of its {len(row)} (party, record_id) pairs is in the truth)"
        )
    _check_known(row, l_party, l_rid, links_name, truth_name, "records")
    counts = np.bincount(row, minlength=n)
    if (counts > 1).any():
        i = int(np.flatnonzero(counts[row] > 1)[0])
        raise InputError(
            f"{links_name}: {int((counts > 1).sum())} records appear more than once (first: "
            f"party {l_party[i].as_py()!r}, record_id {l_rid[i].as_py()!r}, row {i}); every "
            "record must appear once"
        )
    ent_l, n_ent_l = _codes(l_ent)
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
            "pairs": _name(pairs, "pairs") if pairs is not None else None,
            "candidates": _name(candidates, "candidates") if candidates is not None else None,
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
    cells, _ = _sorted_runs(entity * np.int64(n_persons) + person)
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
    src: TableLike, what: str, index: _Index, truth_name: str, extra: Sequence[str]
) -> tuple[pa.Table, str, NDArray[np.int64], NDArray[np.int64]]:
    name = _name(src, what)
    t = _read(src, what, (*PAIR_COLUMNS, *extra), csv_ok=False)
    ends = []
    for s in ("a", "b"):
        p = _strings(t, f"party_{s}", name)
        r = _strings(t, f"record_id_{s}", name)
        i = index.lookup(p, r)
        _check_known(i, p, r, name, truth_name, f"record_id_{s} values")
        ends.append(i)
    return t, name, ends[0], ends[1]


def _add_pairs(
    report: EvaluationReport,
    src: TableLike,
    index: _Index,
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
        report.notes.append(
            f"the pairs file holds no pairs below score {float(score.min()):.4g}, so thresholds "
            "below it all select the same pairs (matched-only pairs from `linkage match --pairs` "
            "sweep only upwards from the match threshold)"
        )


def _blocking(
    src: TableLike,
    index: _Index,
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
    key, _ = _sorted_runs(_pair_keys(i, j, len(person)))
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
