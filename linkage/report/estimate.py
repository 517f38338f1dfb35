"""Precision and recall of a match estimated WITHOUT ground truth, from its score histogram.

Method: the scores are modelled as a mixture of two Beta distributions, one for pairs of
records of the same person (high scores) and one for pairs of different people; the five
parameters (two shapes each and the weight) are fitted by maximum likelihood to the binned
scores. When the histogram only covers part of [0, 1] (e.g. only pairs at or above the
threshold were kept) the likelihood is truncated to the covered range. Then, for a threshold
t, estimated precision = M(t) / (M(t) + U(t)) and estimated recall = M(t) / M(0), where M and
U are the fitted masses of the two components above t. It is a model estimate, not a
measurement: it assumes both score distributions are Beta-shaped, and recall extrapolates the
same-person component below the lowest score seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHOD = (
    "Estimated without ground truth: a mixture of two Beta distributions (same person / "
    "different people) fitted by maximum likelihood to the binned scores{trunc}; precision "
    "at a threshold t is the fitted same-person share of the pairs scoring at least t, "
    "recall the fitted share of the same-person component at or above t. A model, not a "
    "measurement."
)


@dataclass(frozen=True)
class Mixture:
    """A fitted two-component Beta mixture (``a1, b1``: same person; ``a0, b0``: different
    people; ``weight``: the same-person share over [0, 1]) and the range it was fitted on."""

    a1: float
    b1: float
    a0: float
    b0: float
    weight: float
    lower: float
    upper: float
    pairs: int

    @property
    def match_mean(self) -> float:
        return self.a1 / (self.a1 + self.b1)

    @property
    def nonmatch_mean(self) -> float:
        return self.a0 / (self.a0 + self.b0)

    @property
    def truncated(self) -> bool:
        return self.lower > 1e-9 or self.upper < 1 - 1e-9

    def method(self) -> str:
        trunc = (
            f" (only scores from {self.lower:.2f} to {self.upper:.2f} were available, so the "
            "fit is truncated to that range)"
            if self.truncated
            else ""
        )
        return METHOD.format(trunc=trunc)

    def precision_recall(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.special import betaincc  # the survival function of Beta(a, b)

        t = np.clip(np.asarray(thresholds, dtype=np.float64), 0.0, 1.0)
        sf1 = betaincc(self.a1, self.b1, t)
        m = self.weight * sf1
        u = (1 - self.weight) * betaincc(self.a0, self.b0, t)
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(m + u > 0, m / (m + u), np.nan)
        return prec, sf1


def fit_mixture(edges: np.ndarray, counts: np.ndarray, min_pairs: int = 200) -> Mixture | None:
    """Fit the mixture to a score histogram (``counts[i]`` scores in ``[edges[i],
    edges[i+1])``); None when there are too few scores or the fit fails."""
    from scipy.optimize import minimize
    from scipy.special import betainc

    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n = int(counts.sum())
    if n < min_pairs or len(counts) < 5:
        return None
    nz = np.flatnonzero(counts)  # the covered range: first to last non-empty bin
    counts, edges = counts[nz[0] : nz[-1] + 1], edges[nz[0] : nz[-1] + 2]
    while len(counts) > 60:  # coarser bins (from the lowest score up): faster, as good a fit
        odd = len(counts) % 2
        pairs = counts[: len(counts) - odd]
        merged = pairs[0::2] + pairs[1::2]
        counts = np.concatenate([merged, counts[len(counts) - odd :]])
        edges = np.concatenate([edges[: len(edges) - odd : 2], edges[len(edges) - odd :]])
    nz = np.flatnonzero(counts)
    lo, hi = float(edges[0]), float(edges[-1])
    e = np.clip(edges, 1e-6, 1 - 1e-6)

    def probs(theta: np.ndarray) -> tuple[np.ndarray, float]:
        theta = np.clip(theta, -20.0, 20.0)
        a1, b1, a0, b0 = np.exp(theta[:4])
        w = 1 / (1 + np.exp(-theta[4]))
        c1, c0 = betainc(a1, b1, e), betainc(a0, b0, e)
        p = w * np.diff(c1) + (1 - w) * np.diff(c0)
        inside = w * (c1[nz[-1] + 1] - c1[nz[0]]) + (1 - w) * (c0[nz[-1] + 1] - c0[nz[0]])
        return p, float(inside)

    def nll(theta: np.ndarray) -> float:
        p, inside = probs(theta)
        if not np.isfinite(inside) or inside <= 1e-300:
            return 1e300
        q = np.clip(p / inside, 1e-300, None)
        return float(-(counts * np.log(q)).sum())

    mean = float((counts * (edges[:-1] + edges[1:]) / 2).sum() / n)
    starts = [
        (30.0, 3.0, 4.0, 6.0, 0.0),
        (20.0, 2.5, max(2.0, 10 * mean), max(2.0, 10 * (1 - mean)), -2.0),
    ]
    best = None
    for a1, b1, a0, b0, w in starts:
        x0 = np.array([np.log(a1), np.log(b1), np.log(a0), np.log(b0), w])
        try:
            res = minimize(
                nll,
                x0,
                method="Nelder-Mead",
                options={"maxfev": 1500, "xatol": 1e-3, "fatol": 1e-3},
            )
        except (ValueError, FloatingPointError):
            continue
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        return None
    x = np.clip(best.x, -20.0, 20.0)
    a1, b1, a0, b0 = (float(v) for v in np.exp(x[:4]))
    w = float(1 / (1 + np.exp(-x[4])))
    if a1 / (a1 + b1) < a0 / (a0 + b0):  # the same-person component is the higher one
        a1, b1, a0, b0, w = a0, b0, a1, b1, 1 - w
    return Mixture(a1, b1, a0, b0, w, lo, hi, n)
