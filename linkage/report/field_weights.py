"""The match report's field-aware sections: the model's match weights by field and an
example waterfall (only when the match scored field-aware, ``result.field_scores``).

- **Match weights by field**: for each comparison (a field, or the joint location
  comparison) and agreement level, m = P(level | match), u = P(level | non-match) and the
  weight log2(m / u) in bits (Fellegi & Sunter, JASA 1969), as a table and as Splink's
  "match weights" chart; the prior and how it was set from the record counts
  (:mod:`linkage.tlu.scoring.prior`). m, u and the prior are aggregate model estimates.
- **Example waterfall** (as Splink's waterfall chart, :func:`linkage.tlu.scoring.waterfall`):
  a *composed* typical match and typical non-match, each comparison at its most common level
  among the candidate pairs the model scores at a match probability of at least 0.5 (below
  0.5). Composed from per-comparison level counts, never a real pair: no record id and no
  individual pair's score. A group of fewer than the disclosure limit, or a most common level
  held by fewer pairs than the limit, is not shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from linkage.report import charts
from linkage.report.disclosure import Disclosure
from linkage.report.page import Page, Section

if TYPE_CHECKING:  # pragma: no cover
    from linkage.tlu.result import LinkageResult

IMPOSSIBLE = 1e-5
"""Levels with m and u both at most this were never seen (the model floors probabilities at
1e-6; e.g. a partial agreement on sex, whose tokens are whole): left out."""
SPLIT = 0.5
"""Match probability that splits the candidates into probable matches and non-matches."""


def field_sections(page: Page, result: LinkageResult, d: Disclosure) -> None:
    """Add the two sections to ``page`` when ``result`` holds field-aware scores."""
    fs = getattr(result, "field_scores", None)
    if fs is None:
        return
    parties = len(result.stats.records_per_party)
    _weights(page.section("Match weights by field"), fs.model, result.stats, parties, d)
    _example(page.section("Example: how a score is built"), fs, parties, d)


# --------------------------------------------------------------------------- weights


def _label(model: Any, name: str, level: int) -> str:
    from linkage.tlu.scoring.explain import level_label

    return level_label(model.edges_of(name), level, name)


def _levels(model: Any, c: int) -> list[int]:
    """The levels of comparison ``c`` that can occur."""
    return [
        lv
        for lv in range(model.m.shape[1])
        if model.m[c, lv] > IMPOSSIBLE or model.u[c, lv] > IMPOSSIBLE
    ]


def _bits(x: float) -> str:
    return f"{x:+.2f}"


def _prob(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"


def _weights(s: Section, model: Any, st: Any, parties: int, d: Disclosure) -> None:
    from linkage.tlu.scoring.prior import possible_pairs

    w = model.weights()
    cond = {name: np.log2(model.m) - np.log2(uc) for name, uc in model.u_given.items()}
    s.paragraph(
        "Each candidate pair was scored by its agreement on each field (Fellegi-Sunter): "
        "a comparison's level adds log2(m / u) bits to the pair's match weight, where m is "
        "the chance of that level for two records of the same person and u for two records "
        "of different people. The model estimated m and u from these records without labels "
        "(u from random pairs, m by EM on pairs agreeing exactly on one field); they are "
        "aggregate estimates, not counts of pairs."
    )
    prior_bits = float(model.prior.log2_odds(np.array([parties > 1]))[0])
    kind = "cross-party pair" if parties > 1 else "pair within a party"
    rows: list[list[Any]] = []
    bars: list[tuple[str, str, float]] = [("prior", kind, prior_bits)]
    headers = ["comparison", "level", "m", "u", "weight (bits)"]
    for c, name in enumerate(model.names):
        for lv in _levels(model, c):
            row = [name, _label(model, name, lv), _prob(model.m[c, lv]), _prob(model.u[c, lv]),
                   _bits(w[c, lv])]  # fmt: skip
            row += [_bits(cw[c, lv]) if name != cn else "" for cn, cw in cond.items()]
            rows.append(row)
            bars.append((name, _label(model, name, lv), float(w[c, lv])))
    headers += [f"weight when {cn} agrees exactly" for cn in cond]
    s.figure(
        charts.match_weights(
            bars,
            title="Match weights by comparison level",
            subtitle="bits each level adds to a pair's match weight; the prior is where every "
            "pair starts",
        ),
        "Long blue bars are strong evidence for a match (agreeing on a rare detail), long red "
        "bars strong evidence against; a comparison whose bars are all short barely decides "
        "anything. A level with an implausible sign (a partial agreement counting against a "
        "match, say) hints that m or u was poorly estimated.",
    )
    notes = ["m: P(level | same person); u: P(level | different people)."]
    tf = [n for n in model.tf if n in model.names]
    if tf:
        notes.append(
            f"At exact agreement {' and '.join(tf)} are adjusted for how common the value "
            "is: a rare value adds more than the weight shown, a common one less (term "
            "frequencies; the table shows the average)."
        )
    for cn in cond:
        notes.append(
            f"When {cn} agrees exactly (often one household), the other comparisons' u is "
            f"the one estimated among such pairs: see the column 'weight when {cn} agrees "
            "exactly'."
        )
    s.table(headers, rows, caption=" ".join(notes), numeric=tuple(range(2, len(headers))))
    _prior(s, model, st, prior_bits, kind, possible_pairs, d)


def _prior(
    s: Section, model: Any, st: Any, bits: float, kind: str, possible_pairs: Any, d: Disclosure
) -> None:
    pr = model.prior
    sizes = np.array(list(st.records_per_party.values()), np.int64)
    cross_pairs, within_pairs = possible_pairs(sizes)
    s.heading("The prior")
    rows: list[list[Any]] = [
        ["prior match probability of a cross-party pair", _prob(pr.cross)],
        ["  as log2 odds (bits)", _bits(float(np.log2(pr.cross / (1 - pr.cross))))],
        ["prior match probability of a pair within one party", _prob(pr.within)],
        ["  as log2 odds (bits)", _bits(float(np.log2(pr.within / (1 - pr.within))))],
        ["estimated matches across parties", round(pr.matches_cross)],
        ["estimated duplicates within parties", round(pr.matches_within)],
        ["possible cross-party pairs", int(cross_pairs)],
        ["possible pairs within parties", int(within_pairs)],
    ]
    s.table(["prior", "value"], rows, numeric=(1,))
    sess = model.sessions[0] if model.sessions else None
    how = ""
    if sess:
        block = " and ".join(sess["block"])
        how = (
            f" Among the {d.count(int(sess['pairs']))} pairs of records agreeing exactly on "
            f"{block}, EM counted a share of {float(sess['match_share']):.3f} as matches; "
            f"divided by the chance that a match agrees exactly on {block} (its m at the exact "
            "level, times both records holding it), that gives the expected number of "
            "matches."
        )
    s.paragraph(
        "The prior is the chance that two records picked at random are the same person, "
        "before any field is compared: the expected number of matches over the number of "
        f"possible pairs, set from the record counts without labels.{how} Matches split "
        "into cross-party and within-party by their share among those pairs. Ten times the "
        "records gives a hundred times the possible pairs but only ten times the matches, so "
        f"the prior falls by 3.3 bits and a pair needs that much more evidence. The examples "
        f"below start from the prior of a {kind} ({_bits(bits)} bits)."
    )


# --------------------------------------------------------------------------- waterfall


def typical_levels(
    levels: np.ndarray, mask: np.ndarray, n_levels: int, min_count: int
) -> np.ndarray | None:
    """(C,) int8 profile of the pairs in ``mask``: each comparison at its most common level
    (-1 missing counts as a level; ties go to the better level). None when fewer than
    ``min_count`` pairs are in the group or a most common level is held by fewer than
    ``min_count`` of them (it could describe a handful of pairs)."""
    sel = np.asarray(levels)[np.asarray(mask, bool)]
    if len(sel) < min_count:
        return None
    out = np.empty(sel.shape[1], np.int8)
    for c in range(sel.shape[1]):
        counts = np.bincount(sel[:, c].astype(np.int64) + 1, minlength=n_levels + 1)
        best = int(np.argmax(counts))
        if counts[best] < min_count:
            return None
        out[c] = best - 1
    return out


def _example(s: Section, fs: Any, parties: int, d: Disclosure) -> None:
    from linkage.tlu.scoring.explain import waterfall
    from linkage.tlu.scoring.model import probability

    model = fs.model
    cross = parties > 1
    s.callout(
        "These examples are built from the model, not taken from a real pair: each "
        "comparison is set to its most common level among the candidate pairs the model "
        f"scores at a match probability of at least {SPLIT:g} (a typical match) or below it "
        "(a typical non-match among the candidates), and the score is the model's for that "
        "combination of levels. No record and no real pair's score is shown."
    )
    prob = np.asarray(fs.probability)
    groups = [
        ("A typical match", prob >= SPLIT),
        ("A typical non-match among the candidates", prob < SPLIT),
    ]
    for head, mask in groups:
        s.heading(head)
        prof = typical_levels(fs.levels, mask, model.n_levels, d.min_count)
        if prof is None:
            s.note(
                f"Not shown: fewer than {d.min_count} candidate pairs in this group, or a "
                f"most common level held by fewer than {d.min_count} of them."
            )
            continue
        rows = waterfall(model, prof, cross)
        total = rows[-1].total
        p = float(probability(np.array([total]))[0])
        p_text = "over 0.999" if p > 0.999 else ("under 0.001" if p < 0.001 else f"{p:.3f}")
        steps = [("prior" if r.comparison == "prior" else f"{r.comparison}: {r.label}", r.bits)
                 for r in rows]  # fmt: skip
        s.figure(
            charts.waterfall(
                steps,
                title=f"{head}: how its match weight is built",
                subtitle=f"match weight {total:+.1f} bits = match probability {p_text} "
                "(composed from the model, not a real pair)",
            ),
            "Read from the top: the pair starts at the prior, each comparison moves it right "
            "(evidence for a match) or left (against), and the grey bar is the total; above "
            "0 bits the match probability is over one half. A missing field adds nothing.",
        )
        held = [n for n in model.u_given if prof[model.names.index(n)] == 0]
        if held:
            s.note(
                f"{' and '.join(held)} agrees exactly here, so the other comparisons use the u "
                "estimated among such pairs (the last column of the weights table)."
            )
        s.table(
            ["step", "level", "m", "u", "bits", "running total (bits)"],
            [
                [r.comparison, r.label, "" if r.m is None else _prob(r.m),
                 "" if r.u is None else _prob(r.u), _bits(r.bits), _bits(r.total)]
                for r in rows
            ]
            + [["match weight", "", "", "", "", _bits(total)],
               ["match probability", "1 / (1 + 2^-weight)", "", "", "", p_text]],
            numeric=(2, 3, 4, 5),
        )  # fmt: skip
