"""The match report (trusted linkage unit): what the match found, as one HTML page.

Takes the :class:`~linkage.tlu.result.LinkageResult` (links, matched pairs, typed
statistics). Individual scores never reach the page: they are binned first.

Statistics the match records (:class:`~linkage.tlu.result.MatchStats`, read with
``getattr`` so older results still render): ``score_histogram`` (``edges``, ``counts``,
``scope``: binned scores of every scored candidate pair, or of those at or above the
threshold; without it the matched pairs are binned here), ``memory`` (stage -> peak bytes),
``stub_records`` (party -> records left out by the partner for too little evidence);
``blocking_keys`` (per key: ``{"key", "candidates", "reduction_ratio"}``) and
``field_weights`` (field -> weight) when a match provides them.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linkage.report import charts
from linkage.report.disclosure import Disclosure
from linkage.report.estimate import estimate_dice, estimate_fields
from linkage.report.field_weights import field_sections
from linkage.report.page import Page, Section

if TYPE_CHECKING:  # pragma: no cover
    from linkage.tlu.result import LinkageResult

SCORE_BINS = 100


def write_match_report(
    path: str | Path,
    result: LinkageResult,
    *,
    disclosure: Disclosure | None = None,
    title: str = "Match report",
) -> Path:
    """Write the match report of ``result`` to ``path`` (HTML, atomically, mode 0600)."""
    d = disclosure or Disclosure()
    st = result.stats
    fp = result.meta.get("schema_fingerprint", "")
    page = Page(
        title,
        subtitle="Records linked into entities by the trusted linkage unit.",
        disclosure=d,
        meta=[
            ("candidates at Dice", f">= {st.threshold:g}, field-aware scoring")
            if st.scoring == "fields"
            else ("threshold", f"{st.threshold:g}"),
            ("blocking", st.blocking),
        ]
        + ([("schema", fp[:16])] if fp else []),
    )
    ent = _entities(result)
    _summary(page.section("Summary"), result, ent, d)
    _parties(page.section("Records per party"), result, ent, d)
    _blocking(page.section("Blocking"), st, d)
    edges, counts, scope = _score_histogram(result)
    _scores(page.section("Score distribution"), st, edges, counts, scope, d)
    _estimate(page.section("Estimated precision and recall"), result, edges, counts, scope)
    field_sections(page, result, d)
    _entity_sizes(page.section("Entities by size and by party combination"), st, ent, d)
    _stages(page.section("Time and memory per stage"), st)
    weights = getattr(st, "field_weights", None)
    if weights:
        _weights(page.section("Field weights"), weights)
    return page.write(path)


# --------------------------------------------------------------------------- figures


def _entities(result: LinkageResult) -> dict[str, Any]:
    """Entity sizes, party combinations and singletons per party, from the links."""
    import pyarrow as pa
    import pyarrow.compute as pc

    links = result.links
    ent_col = links.column("entity_id")
    ent_col = ent_col.combine_chunks() if isinstance(ent_col, pa.ChunkedArray) else ent_col
    enc = pc.dictionary_encode(ent_col)
    ent = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    n_ent = len(enc.dictionary)
    parties = list(result.stats.records_per_party)
    pcol = links.column("party")
    pidx = pc.index_in(pcol, value_set=pa.array(parties, pa.string()))
    party = pc.fill_null(pidx, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    size = np.bincount(ent, minlength=n_ent)
    single = size[ent] == 1
    singles = np.bincount(party[single], minlength=len(parties))
    mask = np.zeros(n_ent, np.int64)
    if len(parties) <= 62:
        np.bitwise_or.at(mask, ent, np.left_shift(1, party))
    combos, combo_n = np.unique(mask[size > 1], return_counts=True)
    combo_rows = []
    for m, c in sorted(zip(combos.tolist(), combo_n.tolist(), strict=True), key=lambda r: -r[1]):
        names = [p for i, p in enumerate(parties) if m >> i & 1]
        combo_rows.append((" + ".join(names) + (" only" if len(names) == 1 else ""), int(c)))
    return {
        "parties": parties,
        "singles": singles,
        "combos": combo_rows,
        "n_entities": n_ent,
        "multi": int((size > 1).sum()),
    }


def _score_histogram(result: LinkageResult) -> tuple[np.ndarray, np.ndarray, str]:
    """Bin edges and counts of the scores, and what they cover: "all candidates", "at or
    above the threshold" (every candidate kept, matched or not) or "matched pairs"."""
    h = getattr(result.stats, "score_histogram", None)
    if h:
        scope = str(h.get("scope", "all candidates"))
        return np.asarray(h["edges"], float), np.asarray(h["counts"], np.int64), scope
    col = result.pairs.column("score")
    scores = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    counts, _ = np.histogram(scores, bins=edges)
    return edges, counts.astype(np.int64), "matched pairs"


def _summary(s: Section, r: LinkageResult, ent: dict[str, Any], d: Disclosure) -> None:
    st = r.stats
    total = sum(st.records_per_party.values())
    linked = total - int(ent["singles"].sum())
    s.facts(
        [
            ("records", total),
            ("parties", str(len(st.records_per_party))),
            ("entities", st.entities),
            ("entities with 2+ records", ent["multi"]),
            ("records linked to another", linked),
            ("matched pairs", st.matched_pairs),
        ]
    )
    dedupe = (
        f" Records of one party may join one entity at a score of at least "
        f"{st.dedupe_threshold:g} (dedupe)."
        if st.dedupe_threshold is not None
        else ""
    )
    if getattr(r, "field_scores", None) is not None:
        from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD

        s.paragraph(
            f"Field-aware scoring: pairs whose whole filters had a Dice similarity of at least "
            f"{CANDIDATE_THRESHOLD:g} were candidates; each was scored by its agreement field "
            "by field (see Match weights by field), and pairs with a match probability of at "
            f"least one half were clustered into entities by the {st.engine} engine."
        )
        return
    s.paragraph(
        f"Pairs scoring at least {st.threshold:g} (Dice similarity of the Bloom filters) were "
        f"candidates for a link; the {st.engine} engine solved them into entities.{dedupe}"
    )


def _parties(s: Section, r: LinkageResult, ent: dict[str, Any], d: Disclosure) -> None:
    rows = []
    bar_rows: list[tuple[str, str, int]] = []
    for p, single in zip(ent["parties"], ent["singles"].tolist(), strict=True):
        n = r.stats.records_per_party[p]
        rows.append([p, n, n - single, single, d.share(single, n)])
        bar_rows.append((p, "linked", n - single))
        bar_rows.append((p, "not linked (entity of one record)", single))
    s.table(["party", "records", "linked", "not linked", "share not linked"], rows)
    if d.any_shown([n for _, _, n in bar_rows]):
        s.figure(
            charts.grouped_bars(
                bar_rows,
                title="Linked and unlinked records per party",
                x_title="records",
                disclosure=d,
                colors={"linked": "#2f5d8a", "not linked (entity of one record)": "#e08a2e"},
            ),
            "A party with a much larger unlinked share than expected from its overlap with "
            "the others may have encoded with a data problem (see its encode report).",
        )


_SETTINGS = frozenset({"bands", "rows", "max_candidates", "partitions", "tasks"})
"""Blocking details that are settings of the run (or its Dask layout), not counts of records
or pairs: shown as they are, never rounded by the disclosure control."""


def _blocking(s: Section, st: Any, d: Disclosure) -> None:
    s.table(
        ["blocking", "candidate pairs scored", "possible pairs", "reduction ratio"],
        [[st.blocking, st.candidates, st.possible_pairs, f"{st.reduction_ratio:.6f}"]],
        numeric=(3,),
        caption="Reduction ratio: share of all possible cross-record pairs that blocking "
        "spared from scoring.",
    )
    keys = getattr(st, "blocking_keys", None)
    if keys:
        s.table(
            ["block key", "candidate pairs", "reduction ratio"],
            [[k["key"], int(k["candidates"]), f"{float(k['reduction_ratio']):.6f}"] for k in keys],
            numeric=(2,),
        )
        shown = [int(k["candidates"]) for k in keys]
        if d.any_shown(shown):
            s.figure(
                charts.bars(
                    [k["key"] for k in keys],
                    shown,
                    title="Candidate pairs per block key",
                    x_title="candidate pairs (log scale)",
                    disclosure=d,
                    log=True,
                ),
                "A key producing far more candidates than the others has a common value "
                "(e.g. a frequent surname code); it costs time but rarely finds extra links.",
            )
    det = {k: v for k, v in (st.blocking_detail or {}).items() if k != "seconds"}
    if det:
        rows = [
            [
                k.replace("_", " "),
                str(v) if k in _SETTINGS or not isinstance(v, int | float) else v,
            ]
            for k, v in det.items()
        ]
        s.table(["blocking detail", "value"], rows)
    over = int(det.get("oversize_blocks", 0) or 0)
    if over:
        s.callout(
            f"{d.count(over)} block(s) were larger than the block size limit (--max-block) and "
            "were not scored; their records can still link through their other keys."
        )
    stubs = getattr(st, "stub_records", None)
    if isinstance(stubs, dict) and stubs:
        s.table(
            ["party", "stub records left out by the partner"],
            [[p, int(n)] for p, n in stubs.items()],
            caption="Records with too little identifying evidence to link reliably (the "
            "schema's min_evidence rule): the partner kept them out of its encoded file.",
        )
    elif isinstance(stubs, int):
        s.paragraph(f"Stub records (too little evidence to link reliably): {d.count(stubs)}.")
    if not keys and st.blocking == "keys":
        s.note(
            "Candidates per block key are not shown: encoded files carry each record's block "
            "keys without saying which key definition made each one."
        )


def _scores(
    s: Section, st: Any, edges: np.ndarray, counts: np.ndarray, scope: str, d: Disclosure
) -> None:
    all_pairs = scope == "all candidates"
    fields = getattr(st, "scoring", "dice") == "fields"
    cut = f"Dice {st.threshold:g}" if fields else "the threshold"
    what = {
        "all candidates": "scored candidate pairs",
        "at or above the threshold": f"candidate pairs at or above {cut}",
    }.get(scope, "matched pairs")
    if not d.any_shown(counts.tolist()):
        s.note(f"No chart: fewer than {d.min_count} {what} in every score bin.")
        return
    lo = 0.0 if all_pairs else max(0.0, min(float(st.threshold), 1.0) - 0.05)
    keep = edges[:-1] >= lo - 1e-12
    e = np.concatenate([edges[:-1][keep], edges[-1:]])
    s.figure(
        charts.histogram(
            e,
            counts[keep],
            title=f"Scores of {what}",
            x_title="match probability"
            if fields and scope == "matched pairs"  # no histogram: the pairs' own scores
            else "Dice similarity score (0 = nothing in common, 1 = identical filters)",
            y_title=f"{what} (log scale)",
            disclosure=d,
            log_y=True,
            rule_at=float(st.threshold),
            rule_label=f"candidates from Dice {st.threshold:g}"
            if fields
            else f"threshold {st.threshold:g}",
            x_domain=(float(e[0]), float(e[-1])),
        ),
        _scores_caption(all_pairs, fields, float(st.threshold)),
    )
    stride = int((getattr(st, "score_histogram", None) or {}).get("sample_stride", 1) or 1)
    if all_pairs and stride > 1:
        s.note(
            f"Below {cut} the bars are estimated from every {stride}th scored "
            f"candidate slot (counted {stride} times; pairs sharing several blocks count once "
            "per block there); at and above it they are exact."
        )


def _scores_caption(all_pairs: bool, fields: bool, threshold: float) -> str:
    """What the score chart shows and how the match used it: a Dice threshold, or (field-aware
    scoring) a candidate cut-off, with the links decided by match probability."""
    if fields:
        return (
            f"Pairs whose filters have a Dice similarity of at least {threshold:g} are kept as "
            "candidates; each is then scored field by field and linked by its match "
            "probability (coherent clusters at one half), not by this score, so a pile just "
            f"above {threshold:g} is sorted out by the field comparisons."
        )
    if all_pairs:
        return (
            "Pairs of the same person pile up near 1 and other pairs lower down; a threshold "
            "in the valley between the two humps keeps most true links and few false ones."
        )
    return (
        "Only pairs at or above the threshold are kept by the match; a large pile just above "
        "the threshold suggests it lets in doubtful pairs."
    )


def _estimate(
    s: Section, r: LinkageResult, edges: np.ndarray, counts: np.ndarray, scope: str
) -> None:
    st = r.stats
    col = r.pairs.column("score")
    matched = np.asarray(col.to_numpy() if hasattr(col, "to_numpy") else col, np.float64)
    fs = getattr(r, "field_scores", None)
    if fs is not None:
        est = estimate_fields(matched, fs.probability)
    else:
        stride = int((getattr(st, "score_histogram", None) or {}).get("sample_stride", 1) or 1)
        est = estimate_dice(edges, counts, scope, float(st.threshold), matched, stride=stride)
    if est.precision is None:
        s.note(f"Not estimated: {est.reason}.")
        s.paragraph("Method (had it applied): " + est.method)
        return
    s.callout("These are estimates from a model of the scores, not measurements. " + est.method)
    rows = [["estimated precision of the matched pairs", _fmt(est.precision)]]
    if est.recall is not None:
        rows.append(["estimated recall among the candidate pairs", _fmt(est.recall)])
    rows += [[k, v] for k, v in est.rows]
    s.table(["estimate", "value"], rows)


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3f}"


def _entity_sizes(s: Section, st: Any, ent: dict[str, Any], d: Disclosure) -> None:
    sizes = sorted(st.entities_by_size.items())
    big = [(k, v) for k, v in sizes if k > 10]
    rows = [(str(k), v) for k, v in sizes if k <= 10]
    if big:
        rows.append(("11+", sum(v for _, v in big)))
    s.table(["entity size (records)", "entities"], [[k, v] for k, v in rows])
    if d.any_shown([v for _, v in rows]):
        s.figure(
            charts.bars(
                [f"{k} record{'s' if k != '1' else ''}" for k, _ in rows],
                [v for _, v in rows],
                title="Entities by size",
                x_title="entities (log scale)",
                disclosure=d,
                log=True,
            ),
            "Most entities should hold about one record per party; many large entities hint at "
            "over-linking (a threshold too low, or placeholder values such as a default date).",
        )
    combos = ent["combos"]
    if combos:
        s.table(["parties in the entity (2+ records)", "entities"], [[c, n] for c, n in combos])
        top = combos[:15]
        if d.any_shown([n for _, n in top]):
            s.figure(
                charts.bars(
                    [c for c, _ in top],
                    [n for _, n in top],
                    title="Entities by party combination",
                    x_title="entities",
                    disclosure=d,
                ),
                "Compare with the expected overlap between the parties: a combination much "
                "rarer than expected points at a pair of partners that link poorly.",
            )


def _stages(s: Section, st: Any) -> None:
    secs = dict(st.seconds or {})
    mem = getattr(st, "memory", None) or {}
    rows = [[k, f"{v:.2f} s", _bytes(mem[k]) if k in mem else ""] for k, v in secs.items()]
    rows.append(["total", f"{sum(secs.values()):.2f} s", _bytes(max(mem.values())) if mem else ""])
    s.table(
        ["stage", "time", "peak memory after the stage"],
        rows,
        numeric=(1, 2),
        caption="Peak memory: the process's resident high-water mark when the stage ended "
        "(it never falls, so a stage that needs much memory shows as a step up).",
    )
    if secs:
        s.figure(
            charts.bars(
                list(secs),
                [round(float(v), 2) for v in secs.values()],  # no stray decimals in the SVG
                title="Time per stage",
                x_title="seconds",
                disclosure=None,
            ),
            "The longest bar is the stage to tune first (blocking settings for candidates and "
            "scoring, --threads or a Dask scheduler for throughput).",
        )
    workers = f", {st.workers} Dask workers" if st.workers else ""
    s.paragraph(
        f"Engine {st.engine}, {st.threads} threads{workers}. Peak memory of the process that "
        f"wrote this report: {_bytes(_peak_rss())}."
    )


def _weights(s: Section, weights: dict[str, float]) -> None:
    names = list(weights)
    s.figure(
        charts.bars(
            names,
            [float(weights[n]) for n in names],
            title="Field weights",
            x_title="weight",
            disclosure=None,
        ),
        "Fields with more weight decide more links; a field with little weight barely matters.",
    )


def _peak_rss() -> int:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(ru if sys.platform == "darwin" else ru * 1024)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
