"""Leak statistics of an encoding (Vidanage, Christen, Ranbaduge & Schnell, "A vulnerability
assessment framework for privacy-preserving record linkage", ACM TOPS 2023): frequency,
length, co-occurrence, identical encodings and similarity (neighbourhood) leaks.

:func:`attacker_stats` reads only the filters (what the attacker sees); :func:`scored_stats`
compares them with the partner plaintext to say how much each leak reveals (scoring only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linkage.lab.audit.plaintext import Plain, field_units


def attacker_stats(x: np.ndarray, seed: int = 0, sample: int = 20_000) -> dict[str, float]:
    """Statistics of bool filters ``x`` (n, L), in shares (0..1) unless named otherwise.

    - ``bit_freq_cv``: coefficient of variation of bit frequencies over positions, and
      ``bit_freq_excess``: their standard deviation over the binomial one expected if every
      bit were set independently at the mean rate (1: no frequency leak);
    - ``cooc_max_phi`` / ``cooc_pairs_over_0.3``: bit co-occurrence (phi correlation of
      position pairs, on a sample of ``sample`` records): strongly co-set positions are
      tokens' positions, the raw material of pattern mining;
    - ``identical_share``: share of records whose filter equals another record's filter;
      ``largest_identical_group``: records in the largest group (count).
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    freq = x.mean(0)
    p = float(freq.mean())
    binom_sd = np.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))
    out = {
        "records": float(n),
        "mean_density": p,
        "bit_freq_min": float(freq.min()),
        "bit_freq_max": float(freq.max()),
        "bit_freq_cv": float(freq.std() / max(p, 1e-12)),
        "bit_freq_excess": float(freq.std() / binom_sd),
    }
    rows = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    xs = x[rows].astype(np.float32)
    xs -= xs.mean(0)
    sd = np.sqrt((xs * xs).mean(0)) + 1e-9
    phi = (xs.T @ xs) / len(rows) / np.outer(sd, sd)
    np.fill_diagonal(phi, 0.0)
    out["cooc_max_phi"] = float(np.abs(phi).max())
    out["cooc_pairs_over_0.3"] = float((np.triu(phi, 1) > 0.3).sum())
    packed = np.packbits(x, axis=1)
    _, inv, counts = np.unique(packed, axis=0, return_inverse=True, return_counts=True)
    c = counts[inv.reshape(-1)]
    out["identical_share"] = float((c > 1).mean())
    out["largest_identical_group"] = float(counts.max()) if len(counts) else 0.0
    return out


def scored_stats(
    x: np.ndarray, truth: Plain, schema: Any, seed: int = 0, pairs: int = 200_000
) -> dict[str, float]:
    """What the leaks reveal about the plaintext (uses the partner's plaintext, scoring only).

    - ``popcount_vs_tokens_r``: Pearson correlation of a filter's popcount and its record's
      number of tokens (length leak);
    - ``similarity_r``: correlation of encoded Dice and plaintext token-set Dice over random
      record pairs (similarity leak);
    - ``neighbour_overlap_at_10``: share of each record's 10 nearest encoded neighbours that
      are among its 10 nearest plaintext neighbours (neighbourhood leak; sample of 2,000).
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sets: list[set[str]] = [set() for _ in range(n)]
    ntok = np.zeros(n)
    for f in schema.fields:
        units, uor, _ = field_units(schema, f, truth)
        for i in np.flatnonzero(uor >= 0):
            toks = units[uor[i]]
            ntok[i] += len(toks)
            sets[i].update(f.name + "|" + t for t in toks)
    pc = x.sum(1).astype(float)
    out = {}
    out["popcount_vs_tokens_r"] = float(np.corrcoef(pc, ntok)[0, 1]) if n > 2 else 0.0
    a = rng.integers(0, n, pairs)
    b = rng.integers(0, n, pairs)
    keep = a != b
    a, b = a[keep][:50_000], b[keep][:50_000]
    inter = (x[a] & x[b]).sum(1)
    de = 2 * inter / np.maximum(pc[a] + pc[b], 1)
    dp = np.array([
        2 * len(sets[i] & sets[j]) / max(len(sets[i]) + len(sets[j]), 1)
        for i, j in zip(a.tolist(), b.tolist(), strict=True)
    ])  # fmt: skip
    out["similarity_r"] = float(np.corrcoef(de, dp)[0, 1]) if len(a) > 2 else 0.0
    m = min(n, 2000)
    if m < 2:  # no neighbours to compare
        out["neighbour_overlap_at_10"] = 0.0
        return out
    rows = rng.choice(n, size=m, replace=False)
    xf = x[rows].astype(np.float32)
    dice_e = 2 * (xf @ xf.T) / np.maximum(pc[rows][:, None] + pc[rows][None, :], 1)
    vocab: dict[str, int] = {}
    tf = np.zeros((m, 0), np.float32)
    cols = [[vocab.setdefault(t, len(vocab)) for t in sets[i]] for i in rows.tolist()]
    tf = np.zeros((m, len(vocab)), np.float32)
    for r, cs in enumerate(cols):
        tf[r, cs] = 1.0
    sz = tf.sum(1)
    dice_p = 2 * (tf @ tf.T) / np.maximum(sz[:, None] + sz[None, :], 1)
    k = min(10, m - 1)
    np.fill_diagonal(dice_e, -1)
    np.fill_diagonal(dice_p, -1)
    ne = np.argpartition(-dice_e, k, axis=1)[:, :k]
    npl = np.argpartition(-dice_p, k, axis=1)[:, :k]
    share = [len(set(ne[i]) & set(npl[i])) / k for i in range(m)]
    out["neighbour_overlap_at_10"] = float(np.mean(share)) if m else 0.0
    return out
