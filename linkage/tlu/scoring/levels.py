"""Comparison levels: each field's Dice cut into ordered agreement levels (Fellegi & Sunter,
JASA 1969; levels as in Splink's comparison levels, here on segment Dice).

Level 0 is exact agreement (Dice >= 0.99: identical token sets, up to hash collisions), then
one level per edge below it; the last level is disagreement. A missing field (Dice -1) gets
level -1 and contributes nothing to the match weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_EDGES", "FIELD_EDGES", "MISSING", "field_levels", "to_levels"]

DEFAULT_EDGES: tuple[float, ...] = (0.99, 0.8, 0.6, 0.4)
"""Lower Dice bounds of levels 0 .. len-1; below the last edge is the disagreement level."""

FIELD_EDGES: dict[str, tuple[float, ...]] = {"date_of_birth": (0.99, 0.62, 0.5, 0.38)}
"""Edges of fields whose tokens are few and whole: the uk-person date has five tokens (day,
month, year, unordered day/month, full date), so its segment Dice falls into bands by the
number of tokens shared: exact; 3-4 (a year typo: day, month and day/month agree); 2 (a
day/month swap: year and day/month; a day typo: year and month); 1; none. The bands were read
off the Dice of random pairs (modes near 0.28 for none, 0.44 for one, 0.55 for two, 0.68 for
three tokens). With the generic edges a swap fell in one level with random pairs sharing one
token (u 8%); here it is its own level (u well under 1%)."""

MISSING = -1


def to_levels(dice: np.ndarray, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """(m, F) float Dice (-1 missing) -> (m, F) int8 levels in 0..len(edges), -1 missing.

    Level k holds Dice in [edges[k], edges[k-1]); edges must descend."""
    e = np.asarray(edges, np.float64)
    if e.ndim != 1 or len(e) == 0 or (np.diff(e) >= 0).any():
        raise ValueError("edges must be a non-empty descending sequence")
    d = np.asarray(dice)
    if d.dtype.kind != "f":
        d = d.astype(np.float64)
    # count of edges above the value = its level; one pass per edge, compared in float64
    # (a float64 scalar: a float32 Dice is not compared with a float32-rounded edge)
    lv = np.zeros(d.shape, np.int8)
    for x in e:
        lv += d < np.float64(x)
    lv[d < 0] = MISSING
    return lv


def field_levels(
    dice: np.ndarray,
    fields: Sequence[str],
    edges: Sequence[float] = DEFAULT_EDGES,
    field_edges: dict[str, tuple[float, ...]] | None = None,
) -> np.ndarray:
    """:func:`to_levels` per column: field ``fields[i]`` cut at ``field_edges[field]`` when
    given there (same number of edges), else at ``edges``."""
    fe = FIELD_EDGES if field_edges is None else field_edges
    out = np.empty(dice.shape, np.int8)
    for i in range(dice.shape[1]):  # column by column: each column's edges once
        f = fields[i] if i < len(fields) else ""
        if f in fe and len(fe[f]) != len(edges):
            raise ValueError(f"edges of {f!r} must number {len(edges)}")
        out[:, i] = to_levels(dice[:, i], fe.get(f, edges))
    return out


DEFAULT_JOINT: dict[str, tuple[str, str]] = {"location": ("postcode", "address")}
"""Fields compared as one: postcode and address both say where someone lives, and household
members share both, so counting them as independent evidence double-counts a household."""


def joint_levels(a: np.ndarray, b: np.ndarray, n_levels: int) -> np.ndarray:
    """One comparison from two fields' levels (int8, -1 missing): 0 both exact, 1 one exact,
    then the better of the two levels (at least 2); missing only when both are missing."""
    best = np.where(a < 0, b, np.where(b < 0, a, np.minimum(a, b))).astype(np.int8)
    out = np.maximum(best, 2).astype(np.int8)
    out[best == 0] = 1
    out[(a == 0) & (b == 0)] = 0
    out[(a < 0) & (b < 0)] = MISSING
    return np.minimum(out, n_levels - 1).astype(np.int8)


def combine(
    levels: np.ndarray, fields: Sequence[str], n_levels: int, joint: dict[str, tuple[str, str]]
) -> tuple[np.ndarray, list[str]]:
    """Replace each joint pair of fields (both present in ``fields``) by one comparison:
    returns (levels (m, F'), comparison names)."""
    names = list(fields)
    cols = [levels[:, i] for i in range(levels.shape[1])]
    for name, (x, y) in joint.items():
        if x in names and y in names:
            i, j = names.index(x), names.index(y)
            merged = joint_levels(cols[i], cols[j], n_levels)
            keep = [k for k in range(len(names)) if k not in (i, j)]
            cols = [cols[k] for k in keep] + [merged]
            names = [names[k] for k in keep] + [name]
    out = np.stack(cols, axis=1) if cols else levels[:, :0]
    return np.ascontiguousarray(out, np.int8), names
