"""Fit a field-aware Fellegi-Sunter model to the records being linked, without labels.

- u: level frequencies of random record pairs (Splink's ``estimate_u_using_random_sampling``);
- m: EM with u held fixed (:mod:`linkage.tlu.scoring.em`) on pairs that agree exactly on a
  blocking field (:mod:`linkage.tlu.scoring.training`); session 1 blocks on the date of birth
  and gives m for every other comparison, session 2 blocks on the full name and gives m of
  the date of birth (schemas without those fields: the two most discriminating fields
  present in most records);
- the prior: :mod:`linkage.tlu.scoring.prior` from session 1.

Comparisons are the schema's fields with postcode and address as one (``levels.combine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from linkage.tlu.scoring.compare import Comparisons
from linkage.tlu.scoring.em import fit_em, level_frequencies
from linkage.tlu.scoring.levels import DEFAULT_EDGES, DEFAULT_JOINT, combine, to_levels
from linkage.tlu.scoring.prior import Prior, prior_from_session
from linkage.tlu.scoring.training import (
    exact_groups,
    random_pairs,
    segment_keys,
    within_group_pairs,
)

__all__ = ["FieldModel", "fit_model"]

DEFAULT_SESSIONS: tuple[tuple[str, ...], ...] = (("date_of_birth",), ("given_name", "surname"))
RANDOM_PAIRS = 1_000_000
SESSION_PAIRS = 1_000_000
_M0 = (0.85, 0.07, 0.04, 0.02, 0.02)


@dataclass
class FieldModel:
    """A fitted model: ``names`` of the comparisons, level ``edges`` (Dice), ``m``, ``u``
    ((C, L) probabilities), the ``prior``, and how it was fitted (``sessions``: blocking
    fields, pairs, match share, EM iterations)."""

    names: list[str]
    edges: tuple[float, ...]
    m: np.ndarray
    u: np.ndarray
    prior: Prior
    comparisons: Comparisons
    sessions: list[dict[str, object]] = field(default_factory=list)

    @property
    def n_levels(self) -> int:
        return len(self.edges) + 1

    def levels(
        self, filters: np.ndarray, left: np.ndarray, right: np.ndarray, parallel: bool = False
    ) -> np.ndarray:
        """(m, C) int8 comparison levels of pairs (-1: missing on either side)."""
        sims = self.comparisons.similarities(filters, left, right, parallel=parallel)
        lv, _ = combine(
            to_levels(sims.dice, self.edges), self.comparisons.fields, self.n_levels, DEFAULT_JOINT
        )
        return lv

    def weights(self) -> np.ndarray:
        """(C, L) log2(m / u): each level's match weight (bits)."""
        return np.log2(self.m) - np.log2(self.u)

    def contributions(self, levels: np.ndarray) -> np.ndarray:
        """(m, C) float64 bits each comparison adds to each pair (0 where missing)."""
        w = self.weights()
        out = np.zeros(levels.shape, np.float64)
        for c in range(levels.shape[1]):
            ok = levels[:, c] >= 0
            out[ok, c] = w[c, levels[ok, c]]
        return out

    def match_weight(self, levels: np.ndarray, cross: np.ndarray) -> np.ndarray:
        """log2 posterior odds per pair: prior log2 odds + the comparisons' bits."""
        return self.prior.log2_odds(cross) + self.contributions(levels).sum(1)


def probability(weight: np.ndarray) -> np.ndarray:
    """Match probability of a match weight w (bits): 1 / (1 + 2^-w)."""
    return 1.0 / (1.0 + np.exp2(-np.clip(weight, -1000, 1000)))


def _session_fields(
    model_names: Sequence[str], fields: Sequence[str], u: np.ndarray, present: np.ndarray
) -> list[tuple[str, ...]]:
    if all(f in fields for s in DEFAULT_SESSIONS for f in s):
        return list(DEFAULT_SESSIONS)
    ok = [i for i, f in enumerate(fields) if present[i] >= 0.5 and f in model_names]
    ranked = sorted(ok, key=lambda i: u[list(model_names).index(fields[i]), 0])
    if len(ranked) < 2:
        raise ValueError("field-aware scoring needs two fields present in most records")
    return [(fields[ranked[0]],), (fields[ranked[1]],)]


def fit_model(
    filters: np.ndarray,
    party: np.ndarray,
    comparisons: Comparisons,
    *,
    seed: int = 0,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    parallel: bool = False,
    rank: np.ndarray | None = None,
) -> FieldModel:
    """Fit m, u and the prior to the records (``filters`` (N, W) uint64 of all parties,
    ``party`` int[N]) without labels. Deterministic for a seed; with ``rank``
    (:func:`linkage.tlu.solver.record_rank`) also independent of the records' order."""
    rng = np.random.default_rng(seed)
    n = len(filters)
    n_levels = len(edges) + 1
    fields = comparisons.fields

    def lv_of(lft: np.ndarray, rgt: np.ndarray) -> tuple[np.ndarray, list[str]]:
        sims = comparisons.similarities(filters, lft, rgt, parallel=parallel)
        return combine(to_levels(sims.dice, edges), fields, n_levels, DEFAULT_JOINT)

    by_rank = np.arange(n) if rank is None else np.argsort(rank, kind="stable")
    a, b = random_pairs(n, min(RANDOM_PAIRS, max(n * (n - 1) // 2, 1)), rng)
    a, b = by_rank[a], by_rank[b]
    lv_r, names = lv_of(a, b)
    u = level_frequencies(lv_r, n_levels)
    present = np.array(
        [
            np.count_nonzero(filters[:, lo:hi].any(1)) / max(n, 1)
            for lo, hi in (s.words for s in comparisons.segments)
        ]
    )
    sessions = _session_fields(names, fields, u, present)
    m = np.tile(np.array(_M0[:n_levels] + (0.02,) * max(0, n_levels - 5)), (len(names), 1))
    fitted, info = [], []
    for block in sessions:
        words = [comparisons.segments[fields.index(f)].words for f in block]
        order, starts = exact_groups(segment_keys(filters, words), rank)
        lft, rgt, total = within_group_pairs(order, starts, SESSION_PAIRS, rng)
        lv, _ = lv_of(lft, rgt)
        blocked = [names.index(f) for f in block if f in names]
        lv[:, blocked] = -1
        res = fit_em(lv, m, u, 0.3, fix_u=True)
        llr = np.zeros(len(lv))
        for c in range(lv.shape[1]):
            ok = lv[:, c] >= 0
            llr[ok] += np.log(res.m[c, lv[ok, c]]) - np.log(u[c, lv[ok, c]])
        lam = min(max(res.lam, 1e-12), 1 - 1e-12)
        post = 1.0 / (1.0 + np.exp(-np.clip(np.log(lam / (1 - lam)) + llr, -700, 700)))
        cross = party[lft] != party[rgt]
        share = float(post[cross].sum() / max(post.sum(), 1e-12))
        fitted.append((block, blocked, res, total, share))
        info.append(
            {
                "block": list(block),
                "pairs": total,
                "match_share": res.lam,
                "iterations": res.iterations,
                "converged": res.converged,
            }
        )
    (b1, c1, r1, total1, share1), (_, _, r2, _, _) = fitted
    m_final = r1.m.copy()
    for c in c1:
        m_final[c] = r2.m[c]
    # P(exact agreement on the session-1 field | match), both sides present
    p_present = float(np.prod([present[fields.index(f)] for f in b1]) ** 2)
    p_agree = float(np.prod([m_final[names.index(f), 0] for f in b1 if f in names])) * p_present
    sizes = np.bincount(party, minlength=int(party.max()) + 1 if n else 0)
    prior = prior_from_session(r1.lam, total1, share1, p_agree, sizes)
    return FieldModel(names, tuple(edges), m_final, u, prior, comparisons, info)
