"""Pattern mining: find the bit positions of frequent tokens, name the tokens from a reference
population, then re-identify field values (Christen, Vatsalan, Schnell, Ranbaduge &
Vidanage, PAKDD 2018, "Pattern-mining based cryptanalysis of Bloom filters for PPRL").

Every record holding token g has all of g's k positions set, and k random other positions
are almost never all set together (0.35^14 ~ 1e-6), so a set of about k positions that is
set together in a share f of the filters is a token of frequency f. Keyed random hashing
hides *which* positions a token has, not that its occurrences share them. Steps:

1. Mining (:func:`mine_patterns`). Candidates: from each seed bit, repeatedly add the bit
   most enriched among the records that have all bits so far (batched over all seeds as one
   matrix product per step; a second pass leaves out the records of the first pattern).
   Closure: each candidate's records (all its bits set) define its pattern anew as the bits
   set in >= ``accept`` of them, to a fixed point. Patterns whose size fits no bits-per-token
   of the schema (``ks``), held by too few records, or that contain another pattern (a token
   plus stray bits of a subpopulation, or two tokens) are dropped.
2. Naming (:func:`name_patterns`): seeded graph alignment of the patterns' co-occurrence
   structure with the reference tokens' (Christen et al. name by frequency, then by
   co-occurrence). Anchors start as the most frequent patterns named by frequency rank;
   every pattern is then compared with every token (of a fitting size) by the profile of
   conditional co-occurrences with the anchors (P(anchor | pattern) and P(pattern | anchor)
   against the same for the token and the anchors' tokens) plus the log-frequency gap, a
   one-to-one assignment is solved (scipy's Hungarian), and the assignments that are also
   the row's clear best become the next, twice as many, anchors. Several starts are run and
   the one whose assignment is most self-consistent (lowest mean profile distance, computed
   by the attacker without any truth) wins.
3. Re-identification (:func:`reidentify`): for each field, a record's signature is the set
   of named tokens it holds; the reference values with exactly that set of named tokens
   are its candidates, and the most frequent is guessed when there are at most
   ``max_candidates``. Bootstrapping (:func:`learn_tokens`): the records re-identified so
   far reveal the positions of rarer tokens (bits set in all records guessed to hold the
   token), which name more tokens, which re-identify more records.
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


def _greedy_candidates(
    xs: np.ndarray, need: float, steps: int, full: float, passes: int, min_size: int
) -> list[np.ndarray]:
    """Candidate patterns from every seed bit (float32 0/1 sample ``xs``)."""
    ns, length = xs.shape
    marg = xs.mean(0)
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
    return list(found.values())


def holders(xf: np.ndarray, bits: list[np.ndarray]) -> np.ndarray:
    """(n, P) bool: which rows of float32 0/1 filters ``xf`` have all bits of each pattern."""
    s = np.zeros((xf.shape[1], len(bits)), np.float32)
    for j, b in enumerate(bits):
        s[b, j] = 1.0
    return (xf @ s) >= s.sum(0)[None, :] - 0.5


def close_patterns(
    xf: np.ndarray, cands: list[np.ndarray], *, accept: float = 0.97, iters: int = 4
) -> list[tuple[np.ndarray, int]]:
    """Closure of each candidate: its records' bits set in >= ``accept`` of them, iterated.
    -> (bits, records holding them) per candidate (float32 0/1 filters ``xf``)."""
    if not cands:
        return []
    bits = cands
    for _ in range(iters):
        m = holders(xf, bits).astype(np.float32)
        cond = (xf.T @ m) / np.maximum(m.sum(0), 1.0)[None, :]
        bits = [np.flatnonzero(cond[:, j] >= accept) for j in range(len(bits))]
    cnt = holders(xf, bits).sum(0)
    return [(b, int(c)) for b, c in zip(bits, cnt, strict=True)]


def minimal(bits: list[np.ndarray], length: int) -> list[int]:
    """Indices of the patterns that contain no other pattern (a pattern holding another is
    a token plus stray bits, or a union of tokens)."""
    if not bits:
        return []
    b = np.zeros((len(bits), length), np.float32)
    for j, p in enumerate(bits):
        b[j, p] = 1.0
    inter = b @ b.T
    sz = b.sum(1)
    holds = (np.abs(inter - sz[None, :]) < 0.5) & (sz[None, :] < sz[:, None])
    return np.flatnonzero(~holds.any(1)).tolist()


def mine_patterns(
    x: np.ndarray,
    *,
    min_support: float,
    ks: tuple[int, ...] | None = None,
    slack: int = 2,
    steps: int = 6,
    full: float = 0.98,
    accept: float = 0.97,
    passes: int = 2,
    min_size: int = 3,
    sample: int = 10_000,
    seed: int = 0,
) -> list[Pattern]:
    """Frequent bit-position patterns of bool filters ``x`` (n, L), mined and closed on a
    sample of at most ``sample`` records (supports measured on all records). ``ks``: the
    schema's bits per token (patterns of another size, +- ``slack``, are dropped; None: any
    size >= ``min_size``)."""
    rng = np.random.default_rng(seed)
    n, length = x.shape
    rows = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    xs = x[rows].astype(np.float32)
    need = max(min_support * len(rows), 5.0)
    cands = _greedy_candidates(xs, need, steps, full, passes, min_size)
    closed = close_patterns(xs, cands, accept=accept)
    uniq: dict[bytes, np.ndarray] = {}
    for b, c in closed:
        size_ok = len(b) >= min_size and (
            ks is None or any(k - slack <= len(b) <= k + slack for k in ks)
        )
        if c >= need and size_ok:
            uniq.setdefault(b.tobytes(), b)
    kept = list(uniq.values())
    kept = [kept[j] for j in minimal(kept, length)]
    out = []
    for bits in kept:
        sup = float(x[:, bits].all(1).mean())
        if sup >= min_support:
            out.append(Pattern(bits, sup))
    return out


@dataclass(frozen=True)
class RefTokens:
    """Reference tokens: ``names[j] = (field, token)``, ``k[j]`` bits per token (median over
    the values holding it), ``freq[j]`` share of reference records holding it, ``member``
    (n_ref, G) bool."""

    names: list[tuple[str, str]]
    k: np.ndarray
    freq: np.ndarray
    member: np.ndarray


def reference_tokens(
    schema: Any, ref: Plain, min_freq: float, limit: int, min_k: int = 1
) -> RefTokens:
    """The ``limit`` most frequent tokens (all fields) held by >= ``min_freq`` of ``ref``
    whose bits per token is at least ``min_k`` (fewer bits cannot be mined)."""
    per: list[tuple[float, str, str, int]] = []
    for f in schema.fields:
        units, uor, ks = field_units(schema, f, ref)
        if not units:
            continue
        count: Counter[str] = Counter()
        rows_of_unit = np.bincount(uor[uor >= 0], minlength=len(units))
        kt: dict[str, list[tuple[int, int]]] = {}
        for u, toks in enumerate(units):
            for t in set(toks):
                count[t] += int(rows_of_unit[u])
                kt.setdefault(t, []).append((ks[u], int(rows_of_unit[u])))
        for t, c in count.items():
            ku = sorted(kt[t])
            half, acc, k = c / 2, 0, ku[-1][0]
            for kv, w in ku:
                acc += w
                if acc >= half:
                    k = kv
                    break
            if c / ref.n >= min_freq and k >= min_k:
                per.append((c / ref.n, f.name, t, k))
    per.sort(key=lambda r: (-r[0], r[1], r[2]))
    per = per[:limit]
    member = np.zeros((ref.n, len(per)), bool)
    cache: dict[str, tuple[list[tuple[str, ...]], np.ndarray]] = {}
    for j, (_, fname, tok, _) in enumerate(per):
        if fname not in cache:
            units, uor, _ = field_units(schema, schema.field(fname), ref)
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


def _grow(
    cp: tuple[np.ndarray, np.ndarray, np.ndarray],
    cg: tuple[np.ndarray, np.ndarray, np.ndarray],
    fit: np.ndarray,
    base: np.ndarray,
    anchors: dict[int, int],
    rounds: int,
    lam: float,
) -> tuple[dict[int, int], float]:
    """Anchor growing from ``anchors``: -> (pattern -> token, mean profile distance)."""
    from scipy.optimize import linear_sum_assignment

    jp, fp, _ = cp
    jg, fg, _ = cg
    big = 1e6
    out: dict[int, int] = {}
    score = np.inf
    for _ in range(rounds):
        if not anchors:
            break
        ap = np.fromiter(anchors, np.int64)
        ag = np.array([anchors[p] for p in ap], np.int64)
        d = np.zeros(fit.shape, np.float32)
        for fwd in (True, False):  # P(anchor | node), then P(node | anchor)
            a = jp[:, ap] / (fp[:, None] if fwd else fp[ap][None, :])
            b = jg[:, ag] / (fg[:, None] if fwd else fg[ag][None, :])
            for s in range(0, len(a), 256):
                d[s : s + 256] += np.abs(a[s : s + 256, None, :] - b[None, :, :]).mean(2)
        dn = d / (float(d[fit].mean()) + 1e-9) if fit.any() else d
        cost = np.where(fit, dn + lam * base, big)
        r, c = linear_sum_assignment(cost)
        out = {int(p): int(g) for p, g in zip(r, c, strict=True) if cost[p, g] < big}
        if not out:
            break
        score = float(np.mean([d[p, g] for p, g in out.items()]))
        srt = np.sort(cost, axis=1)
        margin = srt[:, 1] - srt[:, 0] if cost.shape[1] > 1 else srt[:, 0]
        best = np.argmin(cost, axis=1)
        ok = np.array([p for p, g in out.items() if best[p] == g], np.int64)
        take = ok[np.argsort(-margin[ok], kind="stable")][: max(2 * len(anchors), 4)]
        anchors = {int(p): out[int(p)] for p in take}
    return out, score


def name_patterns(
    pats: list[Pattern],
    pmember: np.ndarray,
    ref: RefTokens,
    *,
    starts: tuple[int, ...] = (3, 6, 12),
    lams: tuple[float, ...] = (0.25, 0.5),
    rounds: int = 10,
    size_slack: int = 2,
) -> list[dict[int, int]]:
    """Candidate namings of the patterns, pattern index -> reference token index (one to
    one), best (most self-consistent) first; see the module doc, step 2. ``pmember`` (n, P)
    bool: which records hold each pattern. Fields with the same bits per token and
    tokeniser have similar q-gram structure (given name, surname), so each naming is also
    offered with such fields' names swapped; :func:`explained` chooses among them."""
    from scipy.optimize import linear_sum_assignment

    if not pats or not len(ref.names):
        return []
    pm = pmember.astype(np.float32)
    rm = ref.member.astype(np.float32)
    fp = np.maximum(pm.mean(0), 1e-6)
    fg = np.maximum(ref.freq.astype(np.float32), 1e-6)
    cp = ((pm.T @ pm) / len(pm), fp, pm)
    cg = ((rm.T @ rm) / max(len(rm), 1), fg, rm)
    size = np.array([len(p.bits) for p in pats])
    fit = (size[:, None] >= ref.k[None, :] - size_slack) & (
        size[:, None] <= ref.k[None, :] + size_slack
    )
    base = np.abs(np.log(fp[:, None]) - np.log(fg[None, :])).astype(np.float32)
    r, c = linear_sum_assignment(np.where(fit, base, 1e6))
    by_freq = {int(p): int(g) for p, g in zip(r, c, strict=True) if fit[p, g]}
    order = [int(p) for p in np.argsort(-fp, kind="stable") if int(p) in by_freq]
    found: list[tuple[float, dict[int, int]]] = []
    for start in starts:
        for lam in lams:
            anchors = {p: by_freq[p] for p in order[:start]}
            out, score = _grow(cp, cg, fit, base, anchors, rounds, lam)
            if out:
                found.append((score, out))
    found.sort(key=lambda t: t[0])
    outs = [o for _, o in found]
    return outs + [sw for o in outs for sw in _swaps(o, ref)]


def _swaps(names: dict[int, int], ref: RefTokens) -> list[dict[int, int]]:
    """``names`` with the names of each pair of fields with equal bits per token swapped."""
    where = {n: j for j, n in enumerate(ref.names)}
    kf: dict[str, int] = {}
    for (f, _), k in zip(ref.names, ref.k.tolist(), strict=True):
        kf.setdefault(f, k)
    fields = sorted(kf)
    out = []
    for i, a in enumerate(fields):
        for b in fields[i + 1 :]:
            if kf[a] != kf[b]:
                continue
            sw = {}
            for p, g in names.items():
                f, t = ref.names[g]
                other = {a: b, b: a}.get(f, f)
                j = where.get((other, t))
                if j is not None:
                    sw[p] = j
            out.append(sw)
    return out


def _refine_field(
    schema: Any,
    field: str,
    prows: list[int],
    pats: list[Pattern],
    pmember: np.ndarray,
    ref: RefTokens,
    reference: Plain,
    current: tuple[float, str, dict[int, int]],
    used: set[int],
    starts: tuple[int, ...] = (2, 3, 4, 6, 8, 12),
    lams: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0),
) -> dict[int, int]:
    """Name one field's patterns again among that field's tokens only, from more starts,
    keeping the naming that explains most records (:func:`explained`)."""
    from scipy.optimize import linear_sum_assignment

    gcols = [j for j, (f, _) in enumerate(ref.names) if f == field and j not in used]
    if len(prows) < 4 or not gcols:
        return current[2]
    sub = RefTokens([ref.names[j] for j in gcols], ref.k[gcols], ref.freq[gcols],
                    ref.member[:, gcols])  # fmt: skip
    pm = pmember[:, prows].astype(np.float32)
    rm = sub.member.astype(np.float32)
    fp = np.maximum(pm.mean(0), 1e-6)
    fg = np.maximum(sub.freq.astype(np.float32), 1e-6)
    cp = ((pm.T @ pm) / len(pm), fp, pm)
    cg = ((rm.T @ rm) / max(len(rm), 1), fg, rm)
    fit = np.ones((len(prows), len(gcols)), bool)
    base = np.abs(np.log(fp[:, None]) - np.log(fg[None, :])).astype(np.float32)
    r, c = linear_sum_assignment(base)
    by_freq = dict(zip(r.tolist(), c.tolist(), strict=True))
    order = [int(p) for p in np.argsort(-fp, kind="stable")]
    best_v, best = current[0], current[2]
    for start in starts:
        for lam in lams:
            out, _ = _grow(cp, cg, fit, base, {p: by_freq[p] for p in order[:start]}, 10, lam)
            nm = {prows[p]: gcols[g] for p, g in out.items()}
            v = explained(schema, pmember, nm, ref, reference).get(field, 0.0)
            if v > best_v:
                best_v, best = v, nm
    return best


def explained(
    schema: Any, pmember: np.ndarray, names: dict[int, int], ref: RefTokens, reference: Plain
) -> dict[str, float]:
    """How well a naming explains the records, without any truth: per q-gram field, the
    share of records whose named tokens are exactly those of some reference value (with at
    least two of them). A right naming explains most records, a wrong one few."""
    shares = {}
    for f in schema.fields:
        if f.tokeniser.type != "qgram":
            continue
        cols = {ref.names[g][1]: p for p, g in names.items() if ref.names[g][0] == f.name}
        if not cols:
            continue
        toks = sorted(cols)
        voc = vocabulary(schema, f.name, reference)
        g = reidentify_field(pmember[:, [cols[t] for t in toks]], toks, voc, 1 << 30,
                             extra=1e3, miss=1e3)  # fmt: skip
        shares[f.name] = float((g >= 0).mean())
    return shares


def best_naming(
    schema: Any,
    pats: list[Pattern],
    pmember: np.ndarray,
    ref: RefTokens,
    reference: Plain,
    **kw: Any,
) -> dict[int, int]:
    """Per q-gram field, the names of that field from the candidate naming
    (:func:`name_patterns`) that explains most of its records (:func:`explained`); a
    pattern claimed by two fields goes to the better explained one. Other fields' names
    come from the first (most self-consistent) candidate. Fields are chosen best explained
    first, each from the patterns the fields before it left."""
    cands = name_patterns(pats, pmember, ref, **kw)
    if not cands:
        return {}
    qfields = [f.name for f in schema.fields if f.tokeniser.type == "qgram"]
    out = {p: g for p, g in cands[0].items() if ref.names[g][0] not in qfields}
    left = set(qfields)
    while left:  # the best explained field first, then the next on the patterns left
        best: tuple[float, str, dict[int, int]] = (-1.0, "", {})
        for nm in cands:
            free = {p: g for p, g in nm.items() if p not in out and ref.names[g][0] in left}
            for f, v in explained(schema, pmember, free, ref, reference).items():
                if v > best[0]:
                    best = (v, f, {p: g for p, g in free.items() if ref.names[g][0] == f})
        if best[0] < 0:
            break
        out.update(_refine_field(schema, best[1], list(best[2]), pats, pmember, ref,
                                 reference, best, set(out.values())))  # fmt: skip
        left.discard(best[1])
    return out


@dataclass(frozen=True)
class Vocabulary:
    """A field's reference values: ``values[u]``, ``tokens[u]`` (token set), ``count[u]``."""

    values: list[str]
    tokens: list[frozenset[str]]
    count: np.ndarray


def vocabulary(schema: Any, field: str, reference: Plain) -> Vocabulary:
    """The distinct (salted) values of ``field`` in ``reference`` with their tokens."""
    f = schema.field(field)
    units, uor, _ = field_units(schema, f, reference)
    vals = reference.values[field]
    first: dict[int, str] = {}
    for i in np.flatnonzero(uor >= 0).tolist():
        first.setdefault(int(uor[i]), vals[i])
    cnt = np.bincount(uor[uor >= 0], minlength=len(units))
    return Vocabulary([first[u] for u in range(len(units))], [frozenset(u) for u in units], cnt)


def _token_matrix(voc: Vocabulary, toks: list[str]) -> np.ndarray:
    """(U, T) float32: which of ``toks`` each vocabulary value holds."""
    col = {t: j for j, t in enumerate(toks)}
    v = np.zeros((len(voc.values), len(toks)), np.float32)
    for u, ts in enumerate(voc.tokens):
        for t in ts:
            j = col.get(t)
            if j is not None:
                v[u, j] = 1.0
    return v


def reidentify_field(
    have: np.ndarray,
    toks: list[str],
    voc: Vocabulary,
    max_candidates: int = 1,
    *,
    miss: float = 2.0,
    extra: float = 1.0,
    min_match: int = 2,
    block: int = 4096,
) -> np.ndarray:
    """Guess each record's value of one field: ``have`` (n, T) bool, which of the named
    tokens ``toks`` each record holds -> object array of value indices into ``voc``
    (-1: no guess). A value scores (named tokens it holds that the record holds) - ``miss``
    x (named tokens it holds that the record lacks: a holder always has all positions) -
    ``extra`` x (named tokens the record holds that the value lacks); the best value of at
    least ``min_match`` matches is guessed when at most ``max_candidates`` values tie on the
    best score (the most frequent of them)."""
    n = have.shape[0]
    out = np.full(n, -1, np.int64)
    if not toks or not len(voc.values):
        return out
    v = _token_matrix(voc, toks)
    vs = v.sum(1)
    tie = np.log1p(voc.count.astype(np.float32)) * 1e-3  # most frequent among equals
    for s in range(0, n, block):
        h = have[s : s + block].astype(np.float32)
        match = h @ v.T
        score = (1 + miss) * match - miss * vs[None, :] - extra * (h.sum(1)[:, None] - match)
        best = score.max(1)
        ties = (score >= best[:, None] - 1e-6).sum(1)
        arg = np.argmax(score + tie[None, :], axis=1)
        ok = (ties <= max_candidates) & (match[np.arange(len(h)), arg] >= min_match)
        out[s : s + block] = np.where(ok, arg, -1)
    return out


def learn_tokens(
    x: np.ndarray,
    guess: np.ndarray,
    voc: Vocabulary,
    k: int,
    *,
    min_holders: int = 5,
    accept: float = 0.9,
    slack: int = 2,
) -> dict[str, np.ndarray]:
    """Positions of the field's tokens from the records guessed so far (``guess``: value
    index or -1): for each token with >= ``min_holders`` guessed holders, the ``k`` bits set
    in >= ``accept`` of them that are most enriched over the guessed non-holders, closed over
    all records (:func:`close_patterns`); kept when about ``k`` bits remain (a token always
    seen with another gives a larger closure and is left out)."""
    toks = sorted({t for u in np.unique(guess[guess >= 0]).tolist() for t in voc.tokens[u]})
    if not toks:
        return {}
    rows = np.flatnonzero(guess >= 0)
    hv = _token_matrix(voc, toks)[guess[rows]]  # (g, T) guessed holders
    cnt = hv.sum(0)
    use = np.flatnonzero(cnt >= min_holders)
    if not len(use):
        return {}
    hv = hv[:, use]
    xr = x[rows].astype(np.float32)
    ch = (xr.T @ hv) / cnt[use][None, :]
    cn = (xr.T @ (1.0 - hv)) / np.maximum(len(rows) - cnt[use], 1.0)[None, :]
    score = np.where(ch >= accept, ch - cn, -np.inf)
    cands, names = [], []
    for j in range(len(use)):
        good = np.flatnonzero(np.isfinite(score[:, j]))
        if len(good) < k - slack:
            continue
        top = good[np.argsort(-score[good, j], kind="stable")[:k]]
        cands.append(np.sort(top))
        names.append(toks[use[j]])
    out = {}
    for t, (bits, c) in zip(names, close_patterns(x.astype(np.float32), cands), strict=True):
        if k - slack <= len(bits) <= k + slack and c >= min_holders:
            out[t] = bits
    return out


def reidentify(
    schema: Any,
    x: np.ndarray,
    pats: list[Pattern],
    pmember: np.ndarray,
    names: dict[int, int],
    ref: RefTokens,
    reference: Plain,
    max_candidates: int = 1,
    bootstrap: int = 4,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Guess each record's value of each q-gram field from the named tokens it holds, with
    ``bootstrap`` rounds of :func:`learn_tokens` (learned positions replace the mined ones of
    the same token). -> (field -> object array of guesses (None: none), field -> tokens
    named at the end)."""
    out: dict[str, np.ndarray] = {}
    named: dict[str, int] = {}
    for f in schema.fields:
        if f.tokeniser.type != "qgram":
            continue
        cols = {ref.names[g][1]: pmember[:, p] for p, g in names.items()
                if ref.names[g][0] == f.name}  # fmt: skip
        voc = vocabulary(schema, f.name, reference)
        k = f.bits_per_token or 0
        guess = np.full(x.shape[0], -1, np.int64)
        for r in range(bootstrap + 1):
            toks = sorted(cols)
            have = np.stack([cols[t] for t in toks], 1) if toks else np.zeros((len(x), 0), bool)
            guess = reidentify_field(have, toks, voc, max_candidates)
            if r == bootstrap or not k or not (guess >= 0).any():
                break
            new = learn_tokens(x, guess, voc, k)
            if not new:
                break
            for t, bits in new.items():
                cols[t] = np.asarray(x[:, bits].all(1), bool)
        vals = np.array([*voc.values, None], dtype=object)
        out[f.name] = vals[guess]
        named[f.name] = len(cols)
    return out, named
