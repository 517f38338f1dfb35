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
from linkage.tlu.scoring.levels import (
    DEFAULT_EDGES,
    DEFAULT_JOINT,
    FIELD_EDGES,
    combine,
    field_levels,
)
from linkage.tlu.scoring.prior import Prior, prior_from_session
from linkage.tlu.scoring.training import (
    exact_groups,
    random_pairs,
    segment_keys,
    value_frequencies,
    within_group_pairs,
)

__all__ = ["FieldModel", "fit_model"]

DEFAULT_SESSIONS: tuple[tuple[str, ...], ...] = (("date_of_birth",), ("given_name", "surname"))
SHARED_WITH: dict[tuple[str, ...], tuple[str, ...]] = {
    ("given_name", "surname"): ("location", "sex")
}
"""Comparisons left out of a session blocked on the key's fields: their non-matches are not
random pairs there (people with one full name are often one household: same location), so
u from random pairs would not hold and EM would take household members for matches."""
CONDITIONAL: dict[str, tuple[str, ...]] = {"location": ("postcode", "address")}
"""Comparisons whose exact agreement changes how non-matches look (a comparison: the fields
it is blocked on). Records with one postcode and address are mostly one household: they
share a surname far more often than random people, and often a given name's culture and a
sex; counting those agreements at their random-pair u double-counts the household
(conditional independence fails). For pairs at exact location agreement the other
comparisons' u is estimated among such pairs (EM with m held fixed and u free, on pairs
blocked on postcode and address), the interaction term of a log-linear model of the
non-matches (Winkler, "Improved decision rules in the Fellegi-Sunter model", 1993;
Armstrong & Mayda 1993)."""
CONDITIONAL_PRIOR_PAIRS = 1000.0
"""Pseudo-pairs of random-pair u mixed into a conditional u (a Dirichlet prior)."""
TF_FIELDS: tuple[str, ...] = ("given_name", "surname")
"""Comparisons with a term-frequency adjustment at exact agreement: two records agreeing on a
rare name are likelier one person than two agreeing on a common one. u of the exact level
becomes the value's frequency among the records holding the field, found by equal segments
(Winkler, "Frequency-based matching in Fellegi-Sunter model of record linkage", 1989/2000;
Splink's term-frequency adjustments). Not applied where :data:`CONDITIONAL` holds (a
household shares its surname whatever its rarity)."""
TF_MIN = 1e-6
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
    field_edges: dict[str, tuple[float, ...]] = field(default_factory=dict)
    u_given: dict[str, np.ndarray] = field(default_factory=dict)
    """comparison -> (C, L) u of every comparison among non-matches at that comparison's
    exact level (:data:`CONDITIONAL`), used for pairs at that level."""
    tf: dict[str, np.ndarray] = field(default_factory=dict)
    """comparison -> float64[N] frequency of each record's value of that field among the
    records holding it (0 where missing) (:data:`TF_FIELDS`)."""

    def edges_of(self, name: str) -> tuple[float, ...]:
        """The Dice edges of comparison ``name``'s levels."""
        return self.field_edges.get(name, self.edges)

    @property
    def n_levels(self) -> int:
        return len(self.edges) + 1

    def levels(
        self, filters: np.ndarray, left: np.ndarray, right: np.ndarray, parallel: bool = False
    ) -> np.ndarray:
        """(m, C) int8 comparison levels of pairs (-1: missing on either side)."""
        sims = self.comparisons.similarities(filters, left, right, parallel=parallel)
        fields = self.comparisons.fields
        raw = field_levels(sims.dice, fields, self.edges, self.field_edges)
        lv, _ = combine(raw, fields, self.n_levels, DEFAULT_JOINT)
        return lv

    def weights(self) -> np.ndarray:
        """(C, L) log2(m / u): each level's match weight (bits)."""
        return np.log2(self.m) - np.log2(self.u)

    def u_for(self, levels: np.ndarray) -> np.ndarray:
        """(C, L) u that applies to a pair with (C,) ``levels``."""
        for name, uc in self.u_given.items():
            if levels[self.names.index(name)] == 0:
                return uc
        return self.u

    def contributions(self, levels: np.ndarray, left: np.ndarray | None = None) -> np.ndarray:
        """(m, C) float64 bits each comparison adds to each pair (0 where missing); with
        ``left`` (the pairs' first records, int[m]) term-frequency adjusted."""
        out = np.zeros(levels.shape, np.float64)
        rest = np.ones(len(levels), bool)
        groups = []
        for name, uc in self.u_given.items():
            sel = rest & (levels[:, self.names.index(name)] == 0)
            groups.append((sel, np.log2(self.m) - np.log2(uc)))
            rest &= ~sel
        groups.append((rest, self.weights()))
        for sel, w in groups:
            for c in range(levels.shape[1]):
                ok = sel & (levels[:, c] >= 0)
                out[ok, c] = w[c, levels[ok, c]]
        if left is not None:
            for name, tf in self.tf.items():
                c = self.names.index(name)
                ok = rest & (levels[:, c] == 0)
                u_tf = np.maximum(tf[np.asarray(left)[ok]], TF_MIN)
                out[ok, c] += np.log2(self.u[c, 0]) - np.log2(u_tf)
        return out

    def match_weight(
        self, levels: np.ndarray, cross: np.ndarray, left: np.ndarray | None = None
    ) -> np.ndarray:
        """log2 posterior odds per pair: prior log2 odds + the comparisons' bits (with
        ``left``, the pairs' first records: term-frequency adjusted)."""
        return self.prior.log2_odds(cross) + self.contributions(levels, left).sum(1)


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
    field_edges: dict[str, tuple[float, ...]] | None = None,
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
    field_edges = dict(FIELD_EDGES if field_edges is None else field_edges)

    def lv_of(lft: np.ndarray, rgt: np.ndarray) -> tuple[np.ndarray, list[str]]:
        sims = comparisons.similarities(filters, lft, rgt, parallel=parallel)
        raw = field_levels(sims.dice, fields, edges, field_edges)
        return combine(raw, fields, n_levels, DEFAULT_JOINT)

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
    fixed = None
    for block in sessions:
        left_out: list[str] = []
        words = [comparisons.segments[fields.index(f)].words for f in block]
        order, starts = exact_groups(segment_keys(filters, words), rank)
        lft, rgt, total = within_group_pairs(order, starts, SESSION_PAIRS, rng)
        lv, _ = lv_of(lft, rgt)
        blocked = [names.index(f) for f in block if f in names]
        lv[:, blocked] = -1
        if fixed is not None:  # later sessions: m of the first session's comparisons held
            left_out = [c for c in SHARED_WITH.get(block, ()) if c in names]
            lv[:, [names.index(c) for c in left_out]] = -1
        m0 = m if fixed is None else np.where(fixed[:, None], fitted[0][2].m, m)
        res = fit_em(lv, m0, u, 0.3, fix_u=True, fix_m=fixed)
        if fixed is None:
            fixed = np.ones(len(names), bool)
            fixed[blocked] = False
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
                "left_out": left_out,
            }
        )
    (b1, c1, r1, total1, share1), (_, _, r2, _, _) = fitted
    m_final = r1.m.copy()
    for c in c1:
        m_final[c] = r2.m[c]
    # P(exact agreement on the session-1 field | match), both sides present
    p_present = float(np.prod([present[fields.index(f)] for f in b1]) ** 2)
    p_agree = float(np.prod([m_final[names.index(f), 0] for f in b1 if f in names])) * p_present
    u_given = {}
    for cond, block in CONDITIONAL.items():
        if cond not in names or not all(f in fields for f in block):
            continue
        words = [comparisons.segments[fields.index(f)].words for f in block]
        order, starts = exact_groups(segment_keys(filters, words), rank)
        lft, rgt, total = within_group_pairs(order, starts, SESSION_PAIRS, rng)
        ci = names.index(cond)
        lv, _ = lv_of(lft, rgt)
        lv = lv[lv[:, ci] == 0]
        if len(lv) < 100:
            continue
        lv[:, ci] = -1
        res = fit_em(lv, m_final, u, 0.3, fix_m=np.ones(len(names), bool))
        # shrunk towards the random-pair u by CONDITIONAL_PRIOR_PAIRS pseudo-pairs: a job
        # with few households (most location-exact pairs one person) keeps the plain u
        nonmatch = (1.0 - res.lam) * len(lv)
        uc = (nonmatch * res.u + CONDITIONAL_PRIOR_PAIRS * u) / (nonmatch + CONDITIONAL_PRIOR_PAIRS)
        uc[ci] = u[ci]
        u_given[cond] = uc
        info.append({"block": list(block), "pairs": total, "match_share": res.lam,
                     "iterations": res.iterations, "converged": res.converged,
                     "estimates": f"u given {cond} exact"})  # fmt: skip
    tf = {}
    for name in TF_FIELDS:
        if name in names and name in fields:
            tf[name] = value_frequencies(
                segment_keys(filters, [comparisons.segments[fields.index(name)].words])
            )
    sizes = np.bincount(party, minlength=int(party.max()) + 1 if n else 0)
    prior = prior_from_session(r1.lam, total1, share1, p_agree, sizes)
    return FieldModel(
        names, tuple(edges), m_final, u, prior, comparisons, info,
        {f: e for f, e in field_edges.items() if f in fields}, u_given, tf,
    )  # fmt: skip
