"""Field similarities of candidate pairs from segmented filters (the comparison vectors).

For each schema field, the Dice of its two segments (:mod:`linkage.segments`); -1 when either
record lacks the field (an empty segment), which the model treats as neutral. Fields with one
shared key (given name and surname, hashed alike into equal segments) are also compared
crosswise; when the crosswise pair agrees better than the straight pair (sum of the two
Dice), the pair is taken as *swapped* and the crosswise Dice replace the straight ones, so a
record with given name and surname exchanged keeps its name evidence (as Splink's
"names swapped" comparison level does on plaintext).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from linkage.kernels.segments import segment_dice
from linkage.segments import Segment

__all__ = ["Comparisons", "FieldSimilarities"]


@dataclass(frozen=True)
class FieldSimilarities:
    """``dice``: (m, F) float32 per field (-1: missing); ``swapped``: bool[m], the pair's
    shared-key fields were compared crosswise."""

    dice: np.ndarray
    swapped: np.ndarray


class Comparisons:
    """The comparisons a segmented layout allows: each field with itself, and each pair of
    fields sharing a key crosswise (groups of exactly two fields; larger groups are compared
    straight only)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        if not segments:
            raise ValueError("field-aware scoring needs the segmented layout")
        self.segments = tuple(segments)
        self.fields = [s.field for s in segments]
        self.bounds = np.array([0] + [(s.start + s.bits) // 64 for s in segments], np.int64)
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(segments):
            if s.shared_key is not None:
                groups.setdefault(s.shared_key, []).append(i)
        self.swaps = [tuple(g) for g in groups.values() if len(g) == 2]
        nf = len(segments)
        sa, sb = list(range(nf)), list(range(nf))
        for i, j in self.swaps:
            sa += [i, j]
            sb += [j, i]
        self.sa = np.array(sa, np.int64)
        self.sb = np.array(sb, np.int64)

    def similarities(
        self, filters: np.ndarray, left: np.ndarray, right: np.ndarray, *, parallel: bool = False
    ) -> FieldSimilarities:
        """Per-field Dice of pairs ``left[e]``, ``right[e]`` (row indices of ``filters``)."""
        raw = segment_dice(filters, left, right, self.bounds, self.sa, self.sb, parallel=parallel)
        nf = len(self.fields)
        dice = np.ascontiguousarray(raw[:, :nf])
        swapped = np.zeros(len(left), bool)
        for k, (i, j) in enumerate(self.swaps):
            cross = raw[:, nf + 2 * k : nf + 2 * k + 2]
            straight = dice[:, [i, j]]
            # a missing side counts 0 on both readings; swap only on strictly better agreement
            better = np.maximum(cross, 0).sum(1) > np.maximum(straight, 0).sum(1) + 1e-6
            dice[better, i] = cross[better, 0]
            dice[better, j] = cross[better, 1]
            swapped |= better
        return FieldSimilarities(dice, swapped)
