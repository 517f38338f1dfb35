"""The prior match probability of a pair, from the numbers of records, so the decision
threshold grows with the job.

Fellegi-Sunter posterior odds = prior odds x Bayes factor. With u estimated on random pairs,
the prior is per random pair: expected matches / possible pairs. The expected number of
matches comes without labels from a session blocked on one field (pairs that agree exactly
on it, where EM gives the share of matches, :mod:`linkage.tlu.scoring.model`):

    matches = lambda_block x pairs_in_blocks / P(field agrees exactly | match)

(Splink estimates its prior the same way from deterministic rules and their recall.)
Matches split into cross-party and within-party (duplicates) by their share among the
session's matches, each divided by its own number of possible pairs: a party's duplicates
are far rarer per pair than cross-party matches, so a within-party pair needs more evidence.
As the job grows tenfold, possible pairs grow a hundredfold and matches tenfold: the prior
odds fall tenfold (3.3 bits) and a pair needs that much more evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prior", "possible_pairs", "prior_from_session"]


@dataclass(frozen=True)
class Prior:
    """Prior match probability of a cross-party and of a within-party pair, with the
    estimated numbers of matches they come from."""

    cross: float
    within: float
    matches_cross: float
    matches_within: float

    def log2_odds(self, cross: np.ndarray) -> np.ndarray:
        """log2 prior odds per pair (``cross``: bool, the pair spans two parties)."""
        lc = np.log2(self.cross / (1.0 - self.cross))
        lw = np.log2(self.within / (1.0 - self.within))
        return np.asarray(np.where(cross, lc, lw), np.float64)


def possible_pairs(sizes: np.ndarray) -> tuple[float, float]:
    """(cross-party pairs, within-party pairs) of parties with ``sizes`` records."""
    s = np.asarray(sizes, np.float64)
    n = s.sum()
    return float((n * n - (s * s).sum()) / 2), float((s * (s - 1) / 2).sum())


def prior_from_session(
    lam: float, block_pairs: int, cross_share: float, p_agree_match: float, sizes: np.ndarray
) -> Prior:
    """The prior from a blocked EM session: its match share ``lam`` among ``block_pairs``
    pairs, the share of those matches spanning two parties, and the probability that a match
    agrees exactly on the blocking field (present on both sides). Probabilities are clipped
    to [1e-12, 0.5]."""
    matches = max(lam * block_pairs / max(p_agree_match, 1e-6), 1.0)
    cross_pairs, within_pairs = possible_pairs(sizes)
    mc, mw = matches * cross_share, matches * (1.0 - cross_share)

    def clip(x: float) -> float:
        return float(min(max(x, 1e-12), 0.5))

    return Prior(clip(mc / max(cross_pairs, 1.0)), clip(mw / max(within_pairs, 1.0)), mc, mw)
