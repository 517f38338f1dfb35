"""Why two records linked: each comparison's contribution to a pair's match weight.

A waterfall (as Splink's match-weight chart): the prior's log2 odds, then for each
comparison its level and log2(m / u) in bits (0 when a side is missing), summing to the
match weight; the match probability is 1 / (1 + 2^-weight). Returned as rows (data) and as
text. Levels are named by their Dice range (e.g. ``dice >= 0.8``), never by a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkage.tlu.scoring.model import FieldModel, probability

__all__ = ["WaterfallRow", "level_label", "waterfall", "waterfall_text"]


@dataclass(frozen=True)
class WaterfallRow:
    """One bar: ``comparison`` (or ``prior``), its ``level`` (-1 missing), the level's
    ``label``, ``m`` and ``u`` (None for the prior and missing), ``bits`` it adds and the
    running ``total``."""

    comparison: str
    level: int
    label: str
    m: float | None
    u: float | None
    bits: float
    total: float


def level_label(edges: tuple[float, ...], level: int, name: str = "") -> str:
    """``exact``, ``dice >= 0.8``, ... ``disagree``, ``missing`` (joint comparisons: ``both
    exact``, ``one exact``, then the better field's range)."""
    if level < 0:
        return "missing"
    if name == "location" and level <= 1:
        return ("both exact", "one exact")[level]
    if level == 0:
        return "exact"
    if level >= len(edges):
        return f"dice < {edges[-1]:g}"
    return f"dice >= {edges[level]:g}"


def waterfall(model: FieldModel, levels: np.ndarray, cross: bool) -> list[WaterfallRow]:
    """The waterfall of one pair from its (C,) int8 ``levels``."""
    prior = float(model.prior.log2_odds(np.array([cross]))[0])
    rows = [
        WaterfallRow(
            "prior", -1, "cross-party" if cross else "same party", None, None, prior, prior
        )
    ]
    total = prior
    u = model.u_for(np.asarray(levels))
    w = np.log2(model.m) - np.log2(u)
    for c, name in enumerate(model.names):
        lv = int(levels[c])
        if lv < 0:
            rows.append(WaterfallRow(name, lv, "missing", None, None, 0.0, total))
            continue
        bits = float(w[c, lv])
        total += bits
        rows.append(
            WaterfallRow(
                name,
                lv,
                level_label(model.edges_of(name), lv, name),
                float(model.m[c, lv]),
                float(u[c, lv]),
                bits,
                total,
            )
        )
    return rows


def waterfall_text(rows: list[WaterfallRow]) -> str:
    """The waterfall as a fixed-width table ending in the match weight and probability."""
    out = [f"{'comparison':<14} {'level':<16} {'m':>7} {'u':>9} {'bits':>7} {'total':>7}"]
    for r in rows:
        m = f"{r.m:.3f}" if r.m is not None else ""
        u = f"{r.u:.2e}" if r.u is not None else ""
        out.append(
            f"{r.comparison:<14} {r.label:<16} {m:>7} {u:>9} {r.bits:>+7.2f} {r.total:>+7.2f}"
        )
    total = rows[-1].total if rows else 0.0
    p = float(probability(np.array([total]))[0])
    out.append(f"match weight {total:+.2f} bits, match probability {p:.4f}")
    return "\n".join(out)
