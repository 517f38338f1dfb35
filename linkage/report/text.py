"""Plain-text summaries printed by the command line (the HTML reports render the same
figures). Takes result objects; holds no policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkage.partner.pipeline import EncodeSummary
    from linkage.tlu.result import MatchStats


def encode_summary_lines(summary: EncodeSummary, filter_length: int) -> list[str]:
    """What ``linkage encode`` prints after a run: rows, bits set, formats, row problems."""
    out = [
        f"party {summary.party}: {summary.rows_read} rows read, {summary.rows_encoded} encoded, "
        f"{summary.rows_left_out} left out (no usable field)",
        f"mean bits set {summary.mean_bits_set:.1f} of {filter_length} "
        f"({100 * summary.mean_bits_set / filter_length:.1f}%)",
    ]
    for f, fmt in sorted(summary.date_formats.items()):
        out.append(f"date format of {f}: {fmt}")
    for f in summary.absent_fields:
        out.append(f"field {f}: declared absent, encoded as missing")
    if summary.problems:
        out.append("row problems (value treated as missing):")
        for (f, why), n in sorted(summary.problems.items()):
            out.append(f"  {f}: {why}: {n}")
    return out


def match_summary_lines(s: MatchStats) -> list[str]:
    """What ``linkage match`` prints after a run: records, blocking, pairs, entities, time."""
    lines = [f"  {party}: {n} records" for party, n in s.records_per_party.items()]
    lines.append(
        f"blocking {s.blocking}: {s.candidates} candidate pairs scored of {s.possible_pairs} "
        f"possible (reduction ratio {s.reduction_ratio:.6f})"
    )
    if s.blocking_detail:
        lines.append(f"  detail: {s.blocking_detail}")
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
