"""Precision and recall of a match estimated WITHOUT ground truth.

Two methods, chosen by what the match recorded:

- **Field-aware scoring** (``result.field_scores``): the Fellegi-Sunter model already gives
  each candidate pair a match probability (:mod:`linkage.tlu.scoring`). Expected precision of
  the matched pairs = their mean match probability; expected recall = the matched pairs'
  summed probability over the summed probability of every candidate pair (so it is recall
  among the candidates: a true pair blocking never proposed is not counted).
- **Dice scores** (:func:`fit_mixture`): the binned scores of every scored candidate pair are
  modelled as a mixture of two Beta distributions, one for pairs of the same person and one
  for pairs of different people, fitted by maximum likelihood (a Poisson likelihood of the
  bin counts, in which bins counted from a 1-in-``stride`` sample carry 1/``stride`` of the
  evidence). Each matched pair then counts as same-person with the fitted posterior
  probability of its score bin; expected precision = the mean over matched pairs. Recall is
  not estimated: the low-scoring same-person pairs hide under the different-people scores, so
  the fitted same-person mass there is an extrapolation (off by up to 0.4 on synthetic
  hardened data). The posterior is that
  of a candidate at that score; the solver keeps the best pair per record, which favours true
  pairs, so the precision estimate leans low where matched pairs score in the overlap.
  (Mixture models of match scores: Belin & Rubin, JASA 1995; Larsen & Rubin, JASA 2001.)

The Dice method is left out, with the reason, when it cannot be trusted: the scores below the
threshold were not kept (exhaustive blocking, the Dask engine: the different-people scores
it must model are mostly below the threshold), too few pairs, a component at a boundary of
its parameters, components that are not separated, or a poor fit of the counts at and above
the threshold (:data:`MAX_MISFIT`). Checked on synthetic data against ``linkage evaluate``
(tests/test_report_estimate.py: precision within 0.05 of the truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_PAIRS = 1000
"""Fewest scored candidate pairs (sample-equivalent) for a mixture fit."""
MIN_MATCHES = 20.0
"""Fewest fitted same-person pairs at or above the threshold."""
MIN_SEPARATION = 0.1
"""Least difference between the two components' mean scores."""
MAX_MISFIT = 0.15
"""Largest share of the pairs at or above the threshold that the fit misplaces: half the sum
over 0.05-wide score bands of |observed - fitted| over the pairs observed there."""
_LOG_BOUNDS = (-9.0, 12.0)  # Beta shapes in (1.2e-4, 1.6e5); at a bound: a boundary fit

DICE_METHOD = (
    "A mixture of two Beta distributions (same person / different people) fitted by maximum "
    "likelihood to the binned Dice scores of every scored candidate pair; each matched pair "
    "counts as same-person with the fitted probability of its score bin, and precision is the "
    "mean of that probability over the matched pairs. The solver keeps the best pairs, so it "
    "leans low. Recall is not estimated from Dice scores: the same-person pairs that score "
    "low hide among the far more numerous different-people pairs, so the model cannot tell "
    "how many there are (on synthetic data it was off by up to 0.4). A model, not a "
    "measurement."
)
FIELD_METHOD = (
    "From the field-aware scoring model (Fellegi-Sunter match weights, m and u estimated "
    "without labels): precision is the mean match probability of the matched pairs, recall "
    "their summed match probability over that of every candidate pair (pairs blocking never "
    "proposed are not counted). As good as the model's m, u and prior. A model, not a "
    "measurement."
)


@dataclass(frozen=True)
class Mixture:
    """A fitted two-component Beta mixture (``a1, b1``: same person; ``a0, b0``: different
    people; ``weight``: the same-person share of the candidate pairs) with ``total``, the
    fitted number of candidate pairs, and ``misfit`` (see :data:`MAX_MISFIT`)."""

    a1: float
    b1: float
    a0: float
    b0: float
    weight: float
    total: float
    misfit: float
    at_bound: bool

    @property
    def match_mean(self) -> float:
        return self.a1 / (self.a1 + self.b1)

    @property
    def nonmatch_mean(self) -> float:
        return self.a0 / (self.a0 + self.b0)

    def bin_masses(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fitted same-person and different-people pairs per bin (float64[len(edges)-1])."""
        from scipy.special import betainc

        e = np.clip(np.asarray(edges, np.float64), 0.0, 1.0)
        m = self.total * self.weight * np.diff(betainc(self.a1, self.b1, e))
        u = self.total * (1 - self.weight) * np.diff(betainc(self.a0, self.b0, e))
        return m, u

    def posterior(self, edges: np.ndarray) -> np.ndarray:
        """Fitted probability that a candidate in each bin is a same-person pair."""
        m, u = self.bin_masses(edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(m + u > 0, m / (m + u), np.nan)
        # beyond both components' reach (far tails): the nearer component decides
        mid = (np.asarray(edges[:-1]) + np.asarray(edges[1:])) / 2
        return np.where(np.isnan(p), (mid > (self.match_mean + self.nonmatch_mean) / 2) * 1.0, p)

    def candidate_curves(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fitted same-person share of the candidates scoring at least t, and the share of
        the same-person candidates scoring at least t, at each threshold t."""
        from scipy.special import betaincc

        t = np.clip(np.asarray(thresholds, np.float64), 0.0, 1.0)
        sf1 = betaincc(self.a1, self.b1, t)
        m = self.weight * sf1
        u = (1 - self.weight) * betaincc(self.a0, self.b0, t)
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(m + u > 0, m / (m + u), np.nan)
        return prec, sf1


@dataclass
class Estimate:
    """Estimated ``precision`` and ``recall`` of the matched pairs (None when left out, with
    ``reason``), the ``method`` in words, extra ``rows`` (label, text) and the ``mixture``
    when the Dice method was used."""

    precision: float | None
    recall: float | None
    method: str
    reason: str | None = None
    rows: list[tuple[str, str]] = field(default_factory=list)
    mixture: Mixture | None = None


def _mom(mids: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Beta shapes with the weighted mean and variance of ``mids`` (method of moments)."""
    s = w.sum()
    if s <= 0:
        return 2.0, 2.0
    m = float(np.clip((w * mids).sum() / s, 0.02, 0.98))
    v = float(max((w * (mids - m) ** 2).sum() / s, 1e-5))
    c = max(m * (1 - m) / v - 1, 0.5)
    return m * c, (1 - m) * c


def fit_mixture(
    edges: np.ndarray,
    counts: np.ndarray,
    *,
    threshold: float = 0.0,
    stride: int = 1,
) -> Mixture | str:
    """Fit the two-Beta mixture to a histogram of every scored candidate pair's score
    (``counts[i]`` in ``[edges[i], edges[i+1])``; bins below ``threshold`` counted from a
    1-in-``stride`` sample and scaled up by ``stride``). Returns the :class:`Mixture`, or a
    sentence saying why no trustworthy fit exists."""
    from scipy.optimize import minimize
    from scipy.special import betainc

    edges = np.asarray(edges, np.float64)
    counts = np.asarray(counts, np.float64)
    sampled = edges[1:] <= threshold + 1e-9
    s = np.where(sampled, float(max(stride, 1)), 1.0)
    obs = counts / s  # what was counted (a Poisson count of mean N q_i / s_i)
    if obs.sum() < MIN_PAIRS or len(counts) < 5:
        return f"fewer than {MIN_PAIRS:,} scored candidate pairs to fit a model to"
    e = np.clip(edges, 0.0, 1.0)
    mids = (edges[:-1] + edges[1:]) / 2

    def unpack(x: np.ndarray) -> tuple[float, float, float, float, float]:
        a1, b1, a0, b0 = np.exp(np.clip(x[:4], *_LOG_BOUNDS))
        return float(a1), float(b1), float(a0), float(b0), float(1 / (1 + np.exp(-x[4])))

    def q_of(x: np.ndarray) -> np.ndarray:
        a1, b1, a0, b0, w = unpack(x)
        return w * np.diff(betainc(a1, b1, e)) + (1 - w) * np.diff(betainc(a0, b0, e))

    def nll(x: np.ndarray) -> float:
        q = np.clip(q_of(x), 1e-300, None)
        lam = q / s
        n = obs.sum() / lam.sum()  # the total N at its maximum
        val = -(obs * np.log(n * lam)).sum() + n * lam.sum()
        return float(val) if np.isfinite(val) else 1e300

    starts = []
    for cut in sorted({threshold, 0.5 * (threshold + 1.0), 0.8} - {0.0}):
        hi = mids >= cut
        if counts[hi].sum() == 0 or counts[~hi].sum() == 0:
            continue
        a1, b1 = _mom(mids[hi], counts[hi])
        a0, b0 = _mom(mids[~hi], counts[~hi])
        w = counts[hi].sum() / counts.sum()
        starts.append(np.array([*np.log([a1, b1, a0, b0]), np.log(w / (1 - w))]))
    if not starts:
        return "the scores do not spread over two ranges to fit two components to"
    best = None
    for x0 in starts:
        res = minimize(nll, x0, method="Nelder-Mead",
                       options={"maxfev": 4000, "xatol": 1e-4, "fatol": 1e-4})  # fmt: skip
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        return "the model could not be fitted"
    a1, b1, a0, b0, w = unpack(best.x)
    if a1 / (a1 + b1) < a0 / (a0 + b0):
        a1, b1, a0, b0, w = a0, b0, a1, b1, 1 - w
    q = q_of(best.x)
    total = float(obs.sum() / (q / s).sum())
    lo_b, hi_b = _LOG_BOUNDS
    at_bound = bool(np.any((best.x[:4] <= lo_b + 0.05) | (best.x[:4] >= hi_b - 0.05)))
    mix = Mixture(a1, b1, a0, b0, w, total, 0.0, at_bound)
    fm, fu = mix.bin_masses(edges)
    above = edges[:-1] >= threshold - 1e-9
    band = np.floor(mids[above] / 0.05).astype(int)
    o = np.bincount(band, counts[above], minlength=21)
    f = np.bincount(band, (fm + fu)[above], minlength=21)
    misfit = float(0.5 * np.abs(o - f).sum() / max(o.sum(), 1.0))
    return Mixture(a1, b1, a0, b0, w, total, misfit, at_bound)


def _checks(mix: Mixture, edges: np.ndarray, threshold: float) -> str | None:
    if mix.at_bound or not 1e-9 < mix.weight < 1 - 1e-9:
        return "the fitted model has a component at the boundary of its parameters"
    if mix.match_mean < threshold:
        return "the fitted same-person component lies below the threshold (an implausible fit)"
    if mix.match_mean - mix.nonmatch_mean < MIN_SEPARATION:
        return "the fitted same-person and different-people components are not separated"
    fm, _ = mix.bin_masses(edges)
    if fm[np.asarray(edges[:-1]) >= threshold - 1e-9].sum() < MIN_MATCHES:
        return f"fewer than {MIN_MATCHES:.0f} fitted same-person pairs at or above the threshold"
    if mix.misfit > MAX_MISFIT:
        return (
            f"the model fits the scores at and above the threshold poorly (it misplaces "
            f"{mix.misfit:.0%} of those pairs; at most {MAX_MISFIT:.0%} is accepted)"
        )
    return None


def estimate_dice(
    edges: np.ndarray,
    counts: np.ndarray,
    scope: str,
    threshold: float,
    matched_scores: np.ndarray,
    *,
    stride: int = 1,
) -> Estimate:
    """Estimate from the candidate-score histogram (``scope`` as in
    :class:`~linkage.tlu.result.MatchStats`) and the matched pairs' scores (float[m]; only
    binned here). Left out (``precision`` None, ``reason`` set) where unreliable."""
    if scope != "all candidates":
        return Estimate(
            None, None, DICE_METHOD,
            "the match kept only the scores at or above the threshold (exhaustive blocking or "
            "the Dask engine), so the different-people scores, mostly below it, cannot be "
            "modelled; match with --blocking keys or lsh for an estimate",
        )  # fmt: skip
    fit = fit_mixture(edges, counts, threshold=threshold, stride=stride)
    if isinstance(fit, str):
        return Estimate(None, None, DICE_METHOD, fit)
    why = _checks(fit, edges, threshold)
    rows = [
        ("same-person component: mean score", f"{fit.match_mean:.3f}"),
        ("different-people component: mean score", f"{fit.nonmatch_mean:.3f}"),
        ("misfit at and above the threshold", f"{fit.misfit:.1%}"),
    ]
    if why:
        return Estimate(None, None, DICE_METHOD, why, rows, fit)
    hist, _ = np.histogram(np.asarray(matched_scores, np.float64), bins=np.asarray(edges))
    post = fit.posterior(np.asarray(edges))
    true = float((hist * post).sum())
    n = int(hist.sum())
    prec = true / n if n else None
    return Estimate(prec, None, DICE_METHOD, None, rows, fit)


def estimate_fields(matched_probability: np.ndarray, candidate_probability: np.ndarray) -> Estimate:
    """Estimate from the field-aware model: matched pairs' match probabilities (float[m]) and
    every candidate pair's (float[c])."""
    mp = np.asarray(matched_probability, np.float64)
    cp = np.asarray(candidate_probability, np.float64)
    if len(mp) == 0 or cp.sum() <= 0:
        return Estimate(None, None, FIELD_METHOD, "no matched pairs")
    return Estimate(float(mp.mean()), min(float(mp.sum() / cp.sum()), 1.0), FIELD_METHOD)
