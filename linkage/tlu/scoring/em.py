"""m and u probabilities by expectation-maximisation, without labels.

The Fellegi-Sunter model (Fellegi & Sunter, JASA 1969): a pair is a match with prior
probability lambda; given its class, the fields' comparison levels are independent with
``m[f, l] = P(level l on field f | match)`` and ``u[f, l] = P(level l | non-match)``. EM
(Winkler, "Using the EM algorithm for weight computation in the Fellegi-Sunter model of
record linkage", ASA 1988; Jaro, JASA 1989) alternates the posterior match probability of
each pair (E) and the proportions that maximise the likelihood (M). A missing field (level
-1) is left out of both the likelihood and the proportions (neutral, as in Splink).

Pairs are reduced to distinct level patterns with counts first, so one iteration costs the
number of distinct patterns (a few thousand), not the number of pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EMResult", "fit_em", "level_frequencies", "patterns"]

_FLOOR = 1e-6  # smallest probability kept (a level never seen in one class is not impossible)


@dataclass(frozen=True)
class EMResult:
    """``m``, ``u``: (F, L) float64, rows sum to 1; ``lam``: the prior match probability among
    the fitted pairs; ``iterations``; ``converged``."""

    m: np.ndarray
    u: np.ndarray
    lam: float
    iterations: int
    converged: bool


def patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of (m, F) int8 ``levels``: (patterns (P, F), counts (P,), inverse (m,))."""
    lv = np.ascontiguousarray(levels, np.int8)
    if len(lv) == 0:
        return lv.reshape(0, lv.shape[1]), np.zeros(0, np.int64), np.zeros(0, np.int64)
    # pack a row into one integer key (levels -1..14 fit in 4 bits for up to 16 fields)
    if lv.shape[1] <= 16 and lv.max(initial=0) < 15:
        shift = np.arange(lv.shape[1], dtype=np.uint64) * np.uint64(4)
        key = ((lv.astype(np.int64) + 1).astype(np.uint64) << shift).sum(1, dtype=np.uint64)
        _, first, inv, cnt = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        return lv[first], cnt.astype(np.int64), inv.reshape(-1)
    pat, inv, cnt = np.unique(lv, axis=0, return_inverse=True, return_counts=True)
    return pat, cnt.astype(np.int64), inv.reshape(-1)


def level_frequencies(
    levels: np.ndarray, n_levels: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """(F, L) share of each level per field among non-missing entries (weighted), floored."""
    lv = np.asarray(levels)
    w = np.ones(len(lv)) if weights is None else np.asarray(weights, np.float64)
    out = np.empty((lv.shape[1], n_levels))
    for f in range(lv.shape[1]):
        ok = lv[:, f] >= 0
        c = np.bincount(lv[ok, f], weights=w[ok], minlength=n_levels)[:n_levels]
        out[f] = c
    return _normalise(out)


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.maximum(a, 0.0)
    s = a.sum(1, keepdims=True)
    a = np.where(s > 0, a / np.where(s > 0, s, 1), 1.0 / a.shape[1])
    a = np.maximum(a, _FLOOR)
    return a / a.sum(1, keepdims=True)


def _log_likelihoods(pat: np.ndarray, m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(P,) sum over present fields of log(m) - log(u) of each pattern."""
    out = np.zeros(len(pat))
    lm, lu = np.log(m), np.log(u)
    for f in range(pat.shape[1]):
        ok = pat[:, f] >= 0
        out[ok] += lm[f, pat[ok, f]] - lu[f, pat[ok, f]]
    return out


def fit_em(
    levels: np.ndarray,
    m0: np.ndarray,
    u0: np.ndarray,
    lam0: float,
    *,
    fix_u: bool = False,
    fix_m: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-7,
) -> EMResult:
    """Fit m, u (unless ``fix_u``) and lambda to (m, F) int8 ``levels`` (-1 missing) from the
    starting values ``m0``, ``u0`` ((F, L)) and ``lam0`` in (0, 1). ``fix_m``: bool[F], rows
    of m held at ``m0`` (estimated elsewhere; they still inform the posteriors).

    Stops when no parameter moves by more than ``tol`` or after ``max_iter`` iterations."""
    pat, cnt, _ = patterns(levels)
    n_levels = m0.shape[1]
    m, u, lam = _normalise(np.array(m0, float)), _normalise(np.array(u0, float)), float(lam0)
    w = cnt.astype(np.float64)
    it, converged = 0, False
    for it in range(1, max_iter + 1):  # noqa: B007 (read after the loop)
        llr = _log_likelihoods(pat, m, u)
        logit = np.log(lam) - np.log1p(-lam) + llr
        post = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        lam_new = float(np.clip((w * post).sum() / w.sum(), 1e-9, 1 - 1e-9))
        m_new = level_frequencies(pat, n_levels, w * post)
        if fix_m is not None:
            m_new[fix_m] = m[fix_m]
        u_new = u if fix_u else level_frequencies(pat, n_levels, w * (1.0 - post))
        delta = max(abs(lam_new - lam), np.abs(m_new - m).max(), np.abs(u_new - u).max())
        m, u, lam = m_new, u_new, lam_new
        if delta < tol:
            converged = True
            break
    return EMResult(m, u, lam, it, converged)
