"""Plain-text summaries printed by the command line (the HTML reports render the same
figures). Takes result objects; holds no policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkage.lab.quality import EvaluationReport
    from linkage.partner.pipeline import EncodeSummary
    from linkage.tlu.result import MatchStats


MAX_SUSPECT_LINES = 3
"""A field with more suspected placeholders than this gets one summary line, not one each."""


def encode_summary_lines(summary: EncodeSummary, filter_length: int) -> list[str]:
    """What ``linkage encode`` prints after a run: rows, bits set, formats, row problems."""
    from linkage.partner.values import REASONS, SUSPECTED_MISSING

    out = [
        f"party {summary.party}: {summary.rows_read} rows read, {summary.rows_encoded} encoded, "
        f"{summary.rows_left_out} left out (no usable field)"
        + (
            f", {summary.rows_unlinkable} unlinkable (too little identifying information)"
            if summary.rows_unlinkable
            else ""
        ),
        f"mean bits set {summary.mean_bits_set:.1f} of {filter_length} "
        f"({100 * summary.mean_bits_set / filter_length:.1f}%)",
    ]
    ignored = []
    if getattr(summary, "blank_rows", 0):
        ignored.append(f"{summary.blank_rows} all-empty rows")
    if getattr(summary, "unnamed_columns", 0):
        ignored.append(f"{summary.unnamed_columns} unnamed empty columns")
    if ignored:
        out.append("ignored: " + ", ".join(ignored))
    for f, fmt in sorted(summary.date_formats.items()):
        out.append(f"date format of {f}: {fmt}")
    for f in summary.absent_fields:
        out.append(f"field {f}: declared absent, encoded as missing")
    by_field: dict[str, list[tuple[int, float]]] = {}
    for f, rows, share in getattr(summary, "suspected_placeholders", []):
        by_field.setdefault(f, []).append((rows, share))
    missing = REASONS[SUSPECTED_MISSING]
    encoded_missing = {f for (f, why), n in summary.problems.items() if why == missing and n}
    for f, found in by_field.items():
        done = f in encoded_missing  # --suspected-placeholders missing: say so, not the hint
        if len(found) <= MAX_SUSPECT_LINES:
            out += [
                f"field {f}: one value on {rows} rows ({100 * share:.1f}%): suspected placeholder "
                + (
                    "(listed in --rejects; encoded as missing)"
                    if done
                    else "(listed in --rejects; --suspected-placeholders missing encodes it as "
                    "missing)"
                )
                for rows, share in found
            ]
            continue
        lo, hi = min(s for _, s in found), max(s for _, s in found)
        out.append(
            f"field {f}: {len(found)} values each on {100 * lo:.1f}-{100 * hi:.1f}% of rows "
            f"({sum(r for r, _ in found)} rows in all): suspected placeholders, or values that "
            "cluster naturally in this extract (e.g. a small area's postcodes) "
            + (
                "(listed in --rejects; encoded as missing)"
                if done
                else "(listed in --rejects; --suspected-placeholders missing encodes them as "
                "missing)"
            )
        )
    if summary.problems:
        out.append("row problems (rows; each says whether the value was kept):")
        for (f, why), n in sorted(summary.problems.items()):
            said = "kept" in why or "treated as missing" in why
            out.append(f"  {f}: {why}: {n}" + ("" if said else " (treated as missing)"))
    return out


# words for the candidate search's details (linkage.tlu.blocking, linkage.tlu.dask_match)
_DETAIL_WORDS: dict[str, str] = {
    "blocks": "{:,} blocks",
    "blocks_scored": "{:,} scored block by block",
    "oversize_blocks": "{:,} over --max-block (scored by the all-pairs kernel)",
    "compared_with_repeats": "{:,} comparisons (a pair in several blocks counted each time)",
    "oversize_repeats_skipped": "{:,} of them repeats of a block already scored (skipped)",
    "capped_records": "{:,} records had more candidate pairs than --max-candidates allows; "
    "their weakest were dropped",
    "tasks": "{:,} Dask tasks",
    "partitions": "{:,} partitions",
    "seconds": "took {:.2f}s",
}


def blocking_detail_words(detail: dict[str, object]) -> str:
    """The candidate search's details as one line of words (empty when there are none):
    ``candidate search: 1,204 blocks, 3 over --max-block (...), took 0.65s``, never a raw
    dict."""
    if not detail:
        return ""
    parts: list[str] = []
    if "bands" in detail and "rows" in detail:
        lsh = f"LSH with {detail['bands']} bands of {detail['rows']} bits"
        if "fill" in detail:
            lsh += f" (filters {float(str(detail['fill'])):.1%} set)"
        parts.append(lsh)
    for key, value in detail.items():
        if key in ("bands", "rows", "fill", "max_candidates"):
            continue
        words = _DETAIL_WORDS.get(key)
        cap = detail.get("max_candidates")
        if key == "capped_records" and isinstance(value, int) and isinstance(cap, int):
            words = (
                "{:,} records had more than " + f"{cap:,}" + " candidate pairs; their weakest "
                "were dropped (--max-candidates; raise it to keep more)"
            )
        if words is not None and isinstance(value, int | float):
            parts.append(words.format(value))
        elif isinstance(value, int | float | str):
            parts.append(f"{key.replace('_', ' ')} {value}")
    return "candidate search: " + ", ".join(parts) if parts else ""


def match_summary_lines(s: MatchStats) -> list[str]:
    """What ``linkage match`` prints after a run: records, blocking, pairs, entities, time."""
    lines = [f"  {party}: {n} records" for party, n in s.records_per_party.items()]
    lines.append(
        f"blocking {s.blocking}: {s.candidates} candidate pairs scored of {s.possible_pairs} "
        f"possible (reduction ratio {s.reduction_ratio:.6f})"
    )
    detail = blocking_detail_words(s.blocking_detail)
    if detail:
        lines.append(f"  {detail}")
    if s.scoring == "fields":
        lines.append(
            f"field-aware scoring (segmented layout): {s.pairs_above_threshold} candidate pairs "
            f"at Dice >= {s.threshold:g} scored field by field; {s.matched_pairs} matched pairs "
            "in coherent clusters (duplicates within a party included unless --one-to-one)"
        )
    else:
        lines.append(
            f"{s.pairs_above_threshold} pairs >= threshold {s.threshold}; "
            f"{s.matched_pairs} matched pairs"
        )
    lines.append(
        f"{s.entities} entities; by size: "
        + ", ".join(f"{k}: {v}" for k, v in s.entities_by_size.items())
    )
    where = f"{s.engine}, {s.threads} thread(s)"
    if s.workers is not None:
        where += f" on {s.workers} worker(s)"
    lines.append(f"time ({where}): " + ", ".join(f"{k} {v:.2f}s" for k, v in s.seconds.items()))
    return lines


def evaluation_text(report: EvaluationReport, *, probabilities: bool = False) -> str:
    """What ``linkage evaluate`` prints: pair precision / recall / F1 (cross-party, within-party,
    by party pair), cluster figures, and the threshold sweep and blocking quality when measured.
    ``probabilities``: the pairs' scores are match probabilities (field-aware scoring), so the
    sweep is labelled as one over probability, not a Dice threshold.
    Precision, recall and F1 as in Christen, *Data Matching* (2012), ch. 7."""
    from linkage.lab.quality import PairCounts

    out: list[str] = []
    r = report.records
    out.append(
        f"records: {r['truth']} in truth, {r['links']} in links, "
        f"{r['missing_from_links']} truth records missing from links; "
        f"{len(report.parties)} parties ({', '.join(report.parties)})"
    )
    out.append("")
    head = (
        f"{'pairs':<28} {'precision':>9} {'recall':>9} {'F1':>9} {'TP':>12} {'FP':>12} {'FN':>12}"
    )
    out.append(head)
    out.append("-" * len(head))
    rows: list[tuple[str, PairCounts]] = [("cross-party (overall)", report.cross)]
    if report.within is not None:
        rows.append(("within-party", report.within))
        allp = report.all_pairs
        assert allp is not None
        rows.append(("all pairs", allp))
    rows += [(_pp_label(a, b), c) for a, b, c in report.by_party_pair]
    for i, (label, c) in enumerate(rows):
        if i == len(rows) - len(report.by_party_pair) and report.by_party_pair:
            out.append("")
        out.append(
            f"{_clip(label, 28):<28} {_fmt(c.precision):>9} {_fmt(c.recall):>9} "
            f"{_fmt(c.f1):>9} {c.tp:>12} {c.fp:>12} {c.fn:>12}"
        )
    cl = report.clusters
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
    if report.pairs is not None:
        p = report.pairs
        pcnt = PairCounts(p["tp"], p["fp"], p["fn"])
        out.append("")
        out.append(
            f"scored pairs: {p['rows']} rows, {p['cross_pairs']} distinct cross-party pairs, "
            f"scores {_fmt(p['min_score'])}..{_fmt(p['max_score'])}; all of them: "
            f"precision {_fmt(pcnt.precision)} recall {_fmt(pcnt.recall)} F1 {_fmt(pcnt.f1)}"
        )
    if report.sweep is not None:
        out.append("")
        col = "P(match)" if probabilities else "threshold"
        h = f"{col:>9} {'precision':>9} {'recall':>9} {'F1':>9} {'pairs':>12} {'TP':>12}"
        out.append(h)
        out.append("-" * len(h))
        for s in report.sweep:
            out.append(
                f"{s['threshold']:>9.4g} {_fmt(s['precision']):>9} {_fmt(s['recall']):>9} "
                f"{_fmt(s['f1']):>9} {s['predicted']:>12} {s['tp']:>12}"
            )
    if report.best is not None:
        b = report.best
        out.append(
            f"best F1 {_fmt(b['f1'])} at {'match probability' if probabilities else 'threshold'}"
            f" {b['threshold']:.4g} "
            f"(precision {_fmt(b['precision'])}, recall {_fmt(b['recall'])})"
        )
    if report.blocking is not None:
        bl = report.blocking
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
    for n in report.notes:
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
