"""The evaluation report: linkage quality against ground truth, as one HTML page.

Takes the :class:`~linkage.lab.quality.EvaluationReport` of ``linkage evaluate`` (and, for
errors by cluster size, the links and truth it was made from).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linkage.report import charts
from linkage.report.disclosure import Disclosure
from linkage.report.page import Page, Section

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from linkage.lab.quality import EvaluationReport, PairCounts

SIZE_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, None))


def write_evaluation_report(
    path: str | Path,
    report: EvaluationReport,
    *,
    threshold: float | None = None,
    links: str | Path | pa.Table | None = None,
    truth: str | Path | pa.Table | None = None,
    disclosure: Disclosure | None = None,
    title: str = "Linkage quality against ground truth",
    probabilities: bool = False,
) -> Path:
    """Write the evaluation report for ``report`` to ``path`` (HTML, atomically, mode 0600).

    ``threshold``: the match threshold the links were made with (marked on the sweep chart).
    ``links`` and ``truth`` (the inputs of the evaluation; paths or Tables): add errors by
    cluster size. ``disclosure``: small-count control (default: suppress below 10).
    ``probabilities``: the swept scores are match probabilities (pairs of a field-aware
    match, linked by coherent clusters at probability 0.5), not Dice.
    """
    d = disclosure or Disclosure()
    page = Page(
        title,
        subtitle="How well the links found by the match agree with the true persons.",
        disclosure=d,
        meta=[(k, Path(v).name) for k, v in report.sources.items() if v],
    )
    _summary(page.section("Summary"), report, d)
    _sweep(page.section("Precision and recall against the threshold"), report, d, threshold,
           probabilities)  # fmt: skip
    _party_pairs(page.section("Errors by party pair"), report, d)
    by_size = _errors_by_size(links, truth) if links is not None and truth is not None else None
    _clusters(page.section("Split and merged entities"), report, d, by_size)
    if report.blocking is not None:
        _blocking(page.section("Blocking quality"), report.blocking, d)
    if report.notes:
        s = page.section("Notes")
        for n in report.notes:
            s.paragraph(_scrub_note(n))
    return page.write(path)


def _scrub_note(note: str) -> str:
    # notes carry counts as digits; they are context, not figures: keep them only when
    # they hold no small number
    import re

    def sub(m: re.Match[str]) -> str:
        return "a few" if 0 < int(m.group()) < 10 else m.group()

    return re.sub(r"(?<![\d.])\d+(?![\d.])", sub, note)


def _rates(d: Disclosure, c: PairCounts) -> list[str]:
    return [
        d.rate(c.tp, c.predicted),
        d.rate(c.tp, c.true),
        d.rate(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    ]


def _summary(s: Section, r: EvaluationReport, d: Disclosure) -> None:
    c = r.cross
    p, rec, f1 = _rates(d, c)
    s.facts(
        [
            ("records in the truth", r.records["truth"]),
            ("parties", str(len(r.parties))),
            ("precision (cross-party pairs)", p),
            ("recall (cross-party pairs)", rec),
            ("F1 (cross-party pairs)", f1),
            ("truth records missing from the links", r.records["missing_from_links"]),
        ]
    )
    rows: list[list[Any]] = [["cross-party", *_rates(d, c), c.tp, c.fp, c.fn]]
    if r.within is not None:
        rows.append(["within-party", *_rates(d, r.within), r.within.tp, r.within.fp, r.within.fn])
        a = r.all_pairs
        if a is not None:
            rows.append(["all pairs", *_rates(d, a), a.tp, a.fp, a.fn])
    s.table(
        ["record pairs", "precision", "recall", "F1", "true pos.", "false pos.", "false neg."],
        rows,
        numeric=(1, 2, 3),
        caption="Pairs of records put in one entity (predicted) against pairs of records of "
        "one person (true); counted without listing pairs.",
    )
    s.paragraph(f"Parties: {', '.join(r.parties)}.")


def _sweep(
    s: Section,
    r: EvaluationReport,
    d: Disclosure,
    threshold: float | None,
    probabilities: bool = False,
) -> None:
    if not r.sweep:
        s.note(
            "No threshold sweep in this evaluation: run `linkage evaluate` with --pairs (the "
            "scored pairs) and --sweep LO:HI:STEP to see precision and recall against the "
            "threshold."
        )
        return
    xs = [float(row["threshold"]) for row in r.sweep]
    prec, rec, f1 = [], [], []
    for row in r.sweep:  # curves from rounded counts (a small count becomes half the limit)
        tp, fp, fn = d.approx(row["tp"]), d.approx(row["fp"]), d.approx(row["fn"])
        prec.append(tp / (tp + fp) if tp + fp else None)
        rec.append(tp / (tp + fn) if tp + fn else None)
        f1.append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None)
    best = r.best
    if probabilities:  # field-aware: links come from coherent clusters at probability 0.5
        threshold = 0.5
    mark = threshold if threshold is not None else (best["threshold"] if best else None)
    label = (
        ("clusters link at 0.5" if probabilities else f"match threshold {threshold:g}")
        if threshold is not None
        else (f"best F1 at {mark:g}" if mark is not None else "")
    )
    x_title = (
        "match probability (field-aware scoring: a what-if cut of the linked pairs; the match "
        "links coherent clusters at 0.5, no threshold option moves it)"
        if probabilities
        else "score threshold (Dice similarity, pairs scoring at least this are linked)"
    )
    svg = charts.curves(
        xs,
        {"precision": prec, "recall": rec, "F1": f1},
        title="Precision, recall and F1 against the score threshold",
        x_title=x_title,
        y_title="share of pairs",
        rule_at=mark,
        rule_label=label,
        dashed=("F1",),
    )
    s.figure(
        svg,
        "Raising the threshold trades recall (true pairs found) for precision (found pairs "
        "that are true); pick the threshold where the loss you can least afford is small.",
    )
    step = max(1, len(r.sweep) // 12)
    picked = r.sweep[::step]
    if best is not None and best not in picked:
        picked = sorted([*picked, best], key=lambda row: row["threshold"])
    rows = []
    for row in picked:
        c_tp, c_fp, c_fn = row["tp"], row["fp"], row["fn"]
        rows.append(
            [
                f"{row['threshold']:.3g}" + (" (best F1)" if row is best or row == best else ""),
                d.rate(c_tp, c_tp + c_fp),
                d.rate(c_tp, c_tp + c_fn),
                d.rate(2 * c_tp, 2 * c_tp + c_fp + c_fn),
                int(row["predicted"]),
                int(c_tp),
            ]
        )
    s.table(
        ["threshold", "precision", "recall", "F1", "pairs linked", "true pairs linked"],
        rows,
        numeric=(0, 1, 2, 3),
    )


def _pp(a: str, b: str) -> str:
    return f"{a} (within)" if a == b else f"{a} \u2013 {b}"


def _party_pairs(s: Section, r: EvaluationReport, d: Disclosure) -> None:
    if not r.by_party_pair:
        s.note("No party pairs to compare.")
        return
    rows = []
    bar_rows: list[tuple[str, str, int]] = []
    for a, b, c in r.by_party_pair:
        rows.append([_pp(a, b), *_rates(d, c), c.tp, c.fp, c.fn])
        bar_rows.append((_pp(a, b), "false positives (wrongly linked)", c.fp))
        bar_rows.append((_pp(a, b), "false negatives (missed)", c.fn))
    s.table(
        ["party pair", "precision", "recall", "F1", "true pos.", "false pos.", "false neg."],
        rows,
        numeric=(1, 2, 3),
    )
    if not d.any_shown([n for _, _, n in bar_rows]):
        s.note(f"No chart: every party pair has fewer than {d.min_count} errors of each kind.")
        return
    s.figure(
        charts.grouped_bars(
            bar_rows,
            title="Wrong and missed record pairs by party pair",
            x_title="record pairs",
            disclosure=d,
            colors={
                "false positives (wrongly linked)": "#b54a4a",
                "false negatives (missed)": "#e08a2e",
            },
        ),
        "A party pair with many more errors than the others points at that partner's data "
        "(e.g. a missing field or a different date or name convention).",
    )


def _clusters(
    s: Section,
    r: EvaluationReport,
    d: Disclosure,
    by_size: dict[str, list[tuple[str, int, int]]] | None,
) -> None:
    cl = r.clusters
    s.table(
        ["", "count", "share"],
        [
            ["persons (true)", cl["persons"], ""],
            ["persons with 2+ records", cl["persons_multi"], ""],
            ["entities (linked)", cl["entities"], ""],
            ["entities with 2+ records", cl["entities_multi"], ""],
            [
                "persons split over 2+ entities",
                cl["persons_split"],
                d.share(cl["persons_split"], cl["persons_multi"]) + " of persons with 2+ records",
            ],
            [
                "entities merging 2+ persons",
                cl["entities_merged"],
                d.share(cl["entities_merged"], cl["entities_multi"])
                + " of entities with 2+ records",
            ],
            [
                "exact entities (one person, all records)",
                cl["exact"],
                d.share(cl["exact"], cl["persons"]) + " of persons",
            ],
        ],
    )
    if by_size is None:
        s.note(
            "Errors by cluster size need the links and the truth (pass links= and truth= to "
            "write_evaluation_report, or use `linkage evaluate --report`)."
        )
        return
    ent, per = by_size["entities"], by_size["persons"]
    s.table(
        ["entity size (records)", "entities", "merging 2+ persons", "share merged"],
        [[lab, n, m, d.share(m, n)] for lab, n, m in ent],
    )
    s.table(
        ["person size (records)", "persons", "split over 2+ entities", "share split"],
        [[lab, n, m, d.share(m, n)] for lab, n, m in per],
    )
    bar_rows = [(f"{lab} records", "entities merging 2+ persons", m) for lab, _, m in ent]
    bar_rows += [(f"{lab} records", "persons split over 2+ entities", m) for lab, _, m in per]
    bar_rows = [row for row in bar_rows if not row[0].startswith("1 ")]
    if not d.any_shown([n for _, _, n in bar_rows]):
        s.note(f"No chart: fewer than {d.min_count} merged or split clusters of every size.")
        return
    s.figure(
        charts.grouped_bars(
            bar_rows,
            title="Merged entities and split persons by size",
            x_title="entities or persons",
            y_title="size",
            disclosure=d,
            colors={
                "entities merging 2+ persons": "#b54a4a",
                "persons split over 2+ entities": "#e08a2e",
            },
        ),
        "Merges among large entities suggest a threshold too low or hub records; splits of "
        "large persons suggest missing within-party links (--dedupe) or a threshold too high.",
    )


def _blocking(s: Section, bl: dict[str, Any], d: Disclosure) -> None:
    s.table(
        ["party pair", "candidates", "true pairs", "true pairs kept", "pairs completeness",
         "reduction ratio"],
        [
            ["all", bl["candidates"], bl["true"], bl["true_found"],
             d.rate(bl["true_found"], bl["true"]), _rr(bl["reduction_ratio"])],
            *[
                [_pp(r["party_a"], r["party_b"]), r["candidates"], r["true"], r["true_found"],
                 d.rate(r["true_found"], r["true"]), _rr(r["reduction_ratio"])]
                for r in bl["by_party_pair"]
            ],
        ],
        numeric=(4, 5),
        caption="Pairs completeness: share of true pairs that blocking kept as candidates. "
        "Reduction ratio: share of all possible pairs that were not compared.",
    )  # fmt: skip


def _rr(x: float | None) -> str:
    return "-" if x is None else f"{x:.6f}"


def _bucket(size: int) -> int:
    for i, (lo, hi) in enumerate(SIZE_BUCKETS):
        if size >= lo and (hi is None or size <= hi):
            return i
    return len(SIZE_BUCKETS) - 1


def _bucket_labels() -> list[str]:
    return [
        str(lo) if hi == lo else (f"{lo}+" if hi is None else f"{lo}-{hi}")
        for lo, hi in SIZE_BUCKETS
    ]


def _read_table(src: str | Path | pa.Table, columns: Sequence[str]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if isinstance(src, pa.Table):
        return src.select(list(columns))
    p = Path(src)
    with p.open("rb") as fh:
        is_parquet = fh.read(4) == b"PAR1"
    if is_parquet:
        return pq.read_table(p, columns=list(columns))
    return pacsv.read_csv(
        p,
        parse_options=pacsv.ParseOptions(delimiter="\t" if p.suffix.lower() == ".tsv" else ","),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(columns), column_types={c: pa.string() for c in columns}
        ),
    )


def _codes(col: Any) -> tuple[np.ndarray, int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = pc.dictionary_encode(pc.cast(arr, pa.string()))
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return idx.astype(np.int64, copy=False), len(enc.dictionary)


def _errors_by_size(
    links: str | Path | pa.Table, truth: str | Path | pa.Table
) -> dict[str, list[tuple[str, int, int]]]:
    """Entities (and persons) by size, with how many merge persons (are split)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lt = _read_table(links, ("entity_id", "party", "record_id"))
    tt = _read_table(truth, ("party", "record_id", "person_id"))
    cast = {c: pc.cast(lt.column(c), pa.string()) for c in ("entity_id", "party", "record_id")}
    lt = pa.table(cast)
    tt = pa.table(
        {c: pc.cast(tt.column(c), pa.string()) for c in ("party", "record_id", "person_id")}
    )
    j = tt.join(lt, keys=["party", "record_id"], join_type="left outer")
    person, n_per = _codes(j.column("person_id"))
    ent_col = j.column("entity_id").combine_chunks()
    missing = ent_col.is_null().to_numpy(zero_copy_only=False)
    entity, n_ent = _codes(pc.fill_null(ent_col, ""))
    k = int(missing.sum())
    if k:  # truth records missing from the links are singletons
        entity = entity.copy()
        entity[missing] = n_ent + np.arange(k)
        n_ent += k
    cells = np.unique(entity * np.int64(n_per) + person)
    ce, cp = cells // n_per, cells % n_per
    ent_cells = np.bincount(ce, minlength=n_ent)
    per_cells = np.bincount(cp, minlength=n_per)
    ent_size = np.bincount(entity, minlength=n_ent)
    per_size = np.bincount(person, minlength=n_per)
    labels = _bucket_labels()

    def table(size: np.ndarray, bad: np.ndarray) -> list[tuple[str, int, int]]:
        b = np.array([_bucket(int(x)) for x in range(int(size.max()) + 1)])[size]
        n = np.bincount(b, minlength=len(labels))
        m = np.bincount(b[bad], minlength=len(labels))
        return [(labels[i], int(n[i]), int(m[i])) for i in range(len(labels)) if n[i]]

    return {"entities": table(ent_size, ent_cells > 1), "persons": table(per_size, per_cells > 1)}
