"""Pattern mining: find the bit positions of frequent tokens, name the tokens from a reference
population, then re-identify field values (Christen, Vatsalan, Schnell, Ranbaduge &
Vidanage, PAKDD 2018, "Pattern-mining based cryptanalysis of Bloom filters for PPRL").

Every record holding token g has all of g's k positions set, and k random other positions
are almost never all set together (0.35^14 ~ 1e-6), so a set of k positions that is set
together in a share f of the filters is a token of frequency f. Steps:

1. Mining (Apriori-like, greedy): from each seed bit, repeatedly add the bit most enriched
   among the records that have all bits so far (batched over all seeds as one matrix product
   per step); when the records left have some bits set in >= 98% of them, those bits are a
   pattern. A second pass per seed leaves out the records of the pattern found first (a bit
   belongs to several tokens). Patterns are kept when at least ``min_support`` records hold
   them; identical patterns are merged.
2. Naming: patterns are assigned one to one to the reference's tokens (scipy's Hungarian)
   by frequency, then refined by co-occurrence: a pattern's co-occurrence with the other
   patterns must match its token's co-occurrence with their tokens in the reference.
   Pattern size must fit the schema's bits per token of the token's field.
3. Re-identification: for each field, a record's signature is which named tokens it holds;
   a reference value with the same signature (the value's named tokens, exactly) is the
   guess; with ``max_candidates`` > 1 the most frequent of a few candidates is guessed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from linkage.lab.audit.plaintext import Plain, field_units


@dataclass(frozen=True)
class Pattern:
    bits: np.ndarray  # sorted positions
    support: float  # share of encoded records holding all of them


def mine_patterns(
    x: np.ndarray,
    *,
    min_support: float,
    steps: int = 6,
    full: float = 0.98,
    passes: int = 2,
    min_size: int = 3,
    sample: int = 10_000,
    seed: int = 0,
) -> list[Pattern]:
    """Frequent bit-position patterns of bool filters ``x`` (n, L) mined on a sample of at
    most ``sample`` records; supports are measured on all records."""
    rng = np.random.default_rng(seed)
    n, length = x.shape
    rows = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    xs = x[rows].astype(np.float32)
    ns = len(rows)
    marg = xs.mean(0)
    need = max(min_support * ns, 5.0)
    found: dict[bytes, np.ndarray] = {}
    exclude = np.zeros((ns, length), bool)  # per seed: records of its first pattern
    for p in range(passes):
        m = xs.copy()  # column s: records in seed s's set (start: those with bit s)
        if p:
            m[exclude] = 0.0
        chosen = np.zeros((length, length), bool)
        chosen[np.arange(length), np.arange(length)] = True
        for _ in range(steps):
            size = m.sum(0)
            cond = (xs.T @ m) / np.maximum(size, 1.0)[None, :]  # (bit, seed)
            enrich = cond - marg[:, None]
            enrich[chosen.T] = -np.inf
            best = np.argmax(enrich, axis=0)
            chosen[np.arange(length), best] = True
            m *= xs[:, best]
        size = m.sum(0)
        cond = (xs.T @ m) / np.maximum(size, 1.0)[None, :]
        for s in np.flatnonzero(size >= need):
            bits = np.flatnonzero(cond[:, s] >= full)
            if len(bits) >= min_size:
                found.setdefault(bits.tobytes(), bits)
                if p == 0:
                    exclude[:, s] = m[:, s] > 0
    out = []
    for bits in found.values():
        sup = float(x[:, bits].all(1).mean())
        if sup >= min_support:
            out.append(Pattern(bits, sup))
    return out


@dataclass(frozen=True)
class RefTokens:
    """Reference tokens: ``names[j] = (field, token)``, ``k[j]`` bits per token, ``freq[j]``
    share of reference records holding it, ``member`` (n_ref, G) bool."""

    names: list[tuple[str, str]]
    k: np.ndarray
    freq: np.ndarray
    member: np.ndarray


def reference_tokens(schema: Any, ref: Plain, min_freq: float, limit: int) -> RefTokens:
    """The ``limit`` most frequent tokens (all fields) held by >= ``min_freq`` of ``ref``."""
    per: list[tuple[float, str, str, int, np.ndarray]] = []
    for f in schema.fields:
        units, uor, ks = field_units(schema, f, ref)
        if not units:
            continue
        count: Counter[str] = Counter()
        rows_of_unit = np.bincount(uor[uor >= 0], minlength=len(units))
        kt: dict[str, int] = {}
        for u, toks in enumerate(units):
            for t in set(toks):
                count[t] += int(rows_of_unit[u])
                kt[t] = min(kt.get(t, 1 << 30), ks[u])
        for t, c in count.items():
            if c / ref.n >= min_freq:
                per.append((c / ref.n, f.name, t, kt[t], uor))
    per.sort(key=lambda r: -r[0])
    per = per[:limit]
    member = np.zeros((ref.n, len(per)), bool)
    cache: dict[str, tuple[list[tuple[str, ...]], np.ndarray]] = {}
    for j, (_, fname, tok, _, _) in enumerate(per):
        if fname not in cache:
            f = schema.field(fname)
            units, uor, _ = field_units(schema, f, ref)
            cache[fname] = (units, uor)
        units, uor = cache[fname]
        has = np.array([tok in u for u in units] + [False])
        member[:, j] = has[uor]
    return RefTokens(
        [(r[1], r[2]) for r in per],
        np.array([r[3] for r in per], np.int64),
        np.array([r[0] for r in per]),
        member,
    )


def assign(
    pats: list[Pattern],
    pmember: np.ndarray,
    ref: RefTokens,
    *,
    rounds: int = 4,
    size_slack: int = 2,
) -> dict[int, int]:
    """Name patterns: pattern index -> reference token index (one to one)."""
    from scipy.optimize import linear_sum_assignment

    if not pats or not len(ref.names):
        return {}
    sp = np.array([p.support for p in pats])
    size = np.array([len(p.bits) for p in pats])
    fit = (size[:, None] >= ref.k[None, :] - size_slack) & (size[:, None] <= 3 * ref.k[None, :])
    base = np.abs(np.log(sp[:, None]) - np.log(ref.freq[None, :]))
    big = 1e6
    cost = np.where(fit, base, big)
    r, c = linear_sum_assignment(cost)
    pairs = {int(a): int(b) for a, b in zip(r, c, strict=True) if cost[a, b] < big}
    cp = (pmember.T.astype(np.float32) @ pmember.astype(np.float32)) / len(pmember)
    rm = ref.member.astype(np.float32)
    cg = (rm.T @ rm) / len(rm)
    for _ in range(rounds):
        if not pairs:
            break
        ps = np.array(list(pairs))
        gs = np.array([pairs[p] for p in ps])
        a = cp[:, ps]  # (P, anchors)
        b = cg[:, gs]  # (G, anchors)
        # squared distance of co-occurrence profiles, by one matrix product
        co = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        co = np.sqrt(np.maximum(co, 0.0)) / (sp[:, None] + ref.freq[None, :])
        cost = np.where(fit, co + 0.5 * base, big)
        r, c = linear_sum_assignment(cost)
        pairs = {int(a_): int(b_) for a_, b_ in zip(r, c, strict=True) if cost[a_, b_] < big}
    return pairs


def reidentify(
    schema: Any,
    pats: list[Pattern],
    pmember: np.ndarray,
    names: dict[int, int],
    ref: RefTokens,
    reference: Plain,
    max_candidates: int = 1,
) -> dict[str, np.ndarray]:
    """Guess each record's value of each field from the tokens it holds: field -> object
    array of guesses (None: no guess)."""
    out: dict[str, np.ndarray] = {}
    n = pmember.shape[0]
    for f in schema.fields:
        cols = [(p, ref.names[g][1]) for p, g in names.items() if ref.names[g][0] == f.name]
        guesses = np.full(n, None, object)
        out[f.name] = guesses
        if not cols:
            continue
        toks = [t for _, t in cols]
        units, uor, _ = field_units(schema, f, reference)
        freq = np.bincount(uor[uor >= 0], minlength=len(units))
        vals = reference.values[f.name]
        first = {}
        for i in range(reference.n):
            if uor[i] >= 0 and uor[i] not in first:
                first[int(uor[i])] = vals[i]
        by_sig: dict[bytes, list[tuple[int, str]]] = {}
        for u, ut in enumerate(units):
            s = set(ut)
            sig = np.array([t in s for t in toks], bool)
            if sig.any():
                by_sig.setdefault(np.packbits(sig).tobytes(), []).append((int(freq[u]), first[u]))
        have = pmember[:, [p for p, _ in cols]]
        keys = np.packbits(have, axis=1)
        for i in range(n):
            if not have[i].any():
                continue
            cands = by_sig.get(keys[i].tobytes())
            if cands and len(cands) <= max_candidates:
                guesses[i] = max(cands)[1]
    return out
