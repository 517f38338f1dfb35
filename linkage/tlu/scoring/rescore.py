"""The match flow's field-aware step: rescore Dice candidates with the fitted model.

Candidates come from the whole-filter Dice at a recall-oriented threshold
(:data:`CANDIDATE_THRESHOLD`); each is then scored by its per-field evidence
(:class:`~linkage.tlu.scoring.model.FieldModel`), and the match probability replaces the
Dice score. Used by :func:`linkage.tlu.linker.match` when every input has the segmented
layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from linkage.encoded import EncodedTable
from linkage.segments import segments_from_meta
from linkage.tlu.blocking import Candidates
from linkage.tlu.coherent import coherent_clusters
from linkage.tlu.scoring.compare import Comparisons
from linkage.tlu.scoring.model import FieldModel, fit_model, probability
from linkage.tlu.solver import SolveResult

__all__ = [
    "CANDIDATE_THRESHOLD",
    "FIELD_MAX_CANDIDATES",
    "FieldScores",
    "field_layout",
    "score_pairs",
    "solve_fields",
]

CANDIDATE_THRESHOLD = 0.5
"""Whole-filter Dice for candidates under field-aware scoring: low, for recall; the field
model decides."""
FIELD_MAX_CANDIDATES = 16
"""Candidates kept per record under field-aware scoring (its best by Dice, ties by record
rank; a pair stays when either record keeps it): at Dice >= 0.5 the coarse block keys hold
tens of pairs per record at 400k people and grow with the job. 8-24 gave the same F1 at 100k
people (docs/quality.md). It is what ``max_candidates="auto"`` (the default) means under
field-aware scoring; an int ``max_candidates`` replaces it (higher or lower), None lifts it."""


@dataclass
class FieldScores:
    """Per candidate pair: ``probability``, ``weight`` (log2 posterior odds), ``levels``
    ((m, C) int8); and the fitted ``model``."""

    probability: np.ndarray
    weight: np.ndarray
    levels: np.ndarray
    model: FieldModel


def field_layout(encs: Sequence[EncodedTable], names: Sequence[str]) -> Comparisons | None:
    """The comparisons of the inputs' segmented layout, or None for record-level filters."""
    segs = [segments_from_meta(e.meta, n) for e, n in zip(encs, names, strict=True)]
    if not segs[0] or any(s != segs[0] for s in segs):
        return None
    return Comparisons(segs[0])


def score_pairs(
    filters: np.ndarray,
    party: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: Comparisons,
    *,
    seed: int = 0,
    parallel: bool = False,
    rank: np.ndarray | None = None,
) -> FieldScores:
    """Fit the model on all records (no labels) and score the pairs ``left``-``right``."""
    model = fit_model(filters, party, comparisons, seed=seed, parallel=parallel, rank=rank)
    levels = model.levels(filters, left, right, parallel=parallel)
    weight = model.match_weight(levels, party[left] != party[right], left)
    return FieldScores(probability(weight), weight, levels, model)


def solve_fields(
    encs: Sequence[EncodedTable],
    cand: Candidates,
    party: np.ndarray,
    comparisons: Comparisons,
    *,
    seed: int | None,
    one_to_one: bool,
    min_probability: float = 0.5,
    parallel: bool = False,
    rank: np.ndarray | None = None,
) -> tuple[SolveResult, Candidates, FieldScores]:
    """Field-aware scores for the candidates, then coherent clusters
    (:func:`linkage.tlu.coherent.coherent_clusters`): returns the solve result, the
    candidates with the match probability as score, and the scores (model included)."""
    filters = np.ascontiguousarray(np.concatenate([e.filters for e in encs]))
    scores = score_pairs(
        filters, party, cand.left, cand.right, comparisons,
        seed=0 if seed is None else seed, parallel=parallel, rank=rank,
    )  # fmt: skip
    labels = coherent_clusters(
        cand.left, cand.right, scores.probability, scores.weight, party,
        threshold=min_probability, one_to_one=one_to_one, rank=rank,
    )  # fmt: skip
    pair_mask = labels[cand.left] == labels[cand.right]
    res = SolveResult(labels=labels, pair_mask=pair_mask, accepted=pair_mask.copy())
    return res, replace(cand, score=scores.probability), scores
