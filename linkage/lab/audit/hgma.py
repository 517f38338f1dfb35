"""Homomorphism-based graph matching (HGMA; Armknecht & Schäfer, "Breaking BAD? Better Call
SAUL!", PoPETs 2026): what it can reach on an encoding, measured as an upper bound.

The attack uses that diffusion is linear over GF(2) (and that Bloom filters are nearly so
while tokens rarely collide): when the token sets of 2, 3 or 4 records cancel up to ``tau``
tokens (e.g. two people whose records both changed the same address), the XOR of their
encodings is sparse too. On the plaintext side the attacker finds every tuple of its list with
a symmetric difference of at most ``tau`` tokens (published: 2); on the encoded side it takes
the ``1.1 x`` as many tuples with the lowest XOR weight; each side's tuples become the edges
of a relationship graph; node embeddings of the two graphs are aligned and matched. Its tuple
search is O(n^4): the published attack runs on files of at most 1,000 records.

The audit runs the attack's tuple search on both sides (kernels:
:mod:`linkage.kernels.tuples`): pairs over the whole file (up to :data:`PAIR_LIMIT` records),
4-tuples made of two such pairs over the whole file, and every 2-4-tuple on a sample that
takes the records in near-duplicate pairs first (as an attacker would). It reports, as the
attack's rate, an **upper bound** on what a matcher of the two relationship graphs
re-identifies in expectation, beyond the one record random guessing gets. If a permutation of
the records maps the plaintext relations onto themselves with the same sizes and weights (an
automorphism), a matching and the same matching followed by that permutation fit everything
the attacker sees equally well, the encodings' XOR weights included; so of each orbit at most
one record is right in expectation. The bound is the number of orbits among the records in a
relation both sides find (:func:`orbit_bound` on :func:`_weighted`): it cannot be weakened by
a poor matcher; it does not credit an encoding for hiding relations beyond that (the
relations-recovered metric shows it). As metrics: the tuples
found, the records in a relation both sides find, the share of plaintext relations the
encodings give away (the homomorphism leak itself), and what a simple matcher reaches:
colour refinement (1-3 rounds of Weisfeiler-Lehman refinement over both graphs at once, nodes
of one colour paired at random, seeded). The published matcher (node2vec embeddings,
Wasserstein-Procrustes alignment) is not run; the bound holds for it too. The attacker's
list is the file's own plaintext (the published 100% overlap: the strongest case).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from linkage.kernels.tuples import lowest_weight_tuples, tuple_counts
from linkage.lab.audit.plaintext import Plain, field_units
from linkage.lab.audit.results import AttackResult

TAUS = (2, 4)  # tokens a plaintext tuple may fail to cancel (published: 2; 4 to be safe)
SAMPLE = 400  # encoded records searched by default (the published attack: at most 1,000)
SAMPLE_MIN = 10
SAMPLE_RANGE = (SAMPLE_MIN, 1000)  # allowed samples (O(n^4): 1,000 takes minutes on 2 cores)
PAIR_LIMIT = 20_000  # records whose pairs are searched (all of a file up to this size)
MAX_TUPLES = 200_000  # plaintext tuples above which the bound is the records in them
DUPLICATES = 0.05  # mode (b): share of people with a second record in the extract attacked
ENCODED_FACTOR = 1.1  # encoded tuples taken per plaintext tuple (as published)
TITLE = "Homomorphism-based graph matching, upper bound (Armknecht & Schäfer, PoPETs 2026)"


def token_matrix(schema: Any, plain: Plain) -> np.ndarray:
    """(n, W) uint64: bit b of row r set when record r has token b, over every distinct
    (field, salted token) of ``plain`` under the schema's tokenisation (what the attacker's
    plaintext tuples are counted in)."""
    ids: dict[tuple[str, str], int] = {}
    rows: list[list[int]] = [[] for _ in range(plain.n)]
    for f in schema.fields:
        units, unit_of_row, _ks = field_units(schema, f, plain)
        unit_ids = [[ids.setdefault((f.name, t), len(ids)) for t in set(u)] for u in units]
        for r in range(plain.n):
            u = unit_of_row[r]
            if u >= 0:
                rows[r].extend(unit_ids[u])
    out = np.zeros((plain.n, max(1, -(-len(ids) // 64))), np.uint64)
    for r, toks in enumerate(rows):
        t = np.asarray(toks, np.int64)
        np.bitwise_or.at(out[r], t >> 6, np.left_shift(np.uint64(1), (t & 63).astype(np.uint64)))
    return out


def _rows(t: np.ndarray) -> list[tuple[int, ...]]:
    """Tuples (m, 4) -1 padded -> row tuples."""
    return [tuple(int(v) for v in row if v >= 0) for row in t]


def _neighbours(n: int, tuples: set[tuple[int, ...]]) -> list[set[int]]:
    """The relationship graph: an edge between every two members of a tuple."""
    nb: list[set[int]] = [set() for _ in range(n)]
    for t in tuples:
        for a in t:
            nb[a].update(b for b in t if b != a)
    return nb


Graph = list[set[int]] | list[dict[int, Any]]


def _coloured(nb: Graph) -> list[dict[int, int]]:
    """Adjacency with edge colours as small ints (a list of sets: one colour)."""
    rows = [dict(x) if isinstance(x, dict) else dict.fromkeys(x, 1) for x in nb]
    ids = {c: i + 1 for i, c in enumerate(sorted({c for r in rows for c in r.values()}, key=repr))}
    return [{u: ids[c] for u, c in r.items()} for r in rows]


def _twin_parent(adj: dict[int, dict[int, int]], label: dict[int, int]) -> dict[int, int]:
    """Node -> representative (smallest node) of its twin class: u ~ v when they have the same
    label and the same coloured neighbours apart from each other (open twins: not adjacent;
    closed twins: adjacent, by an edge of one colour). Swapping two twins is an automorphism."""
    parent = {v: v for v in sorted(adj)}

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    first: dict[Any, int] = {}
    for v in parent:
        items = frozenset(adj[v].items())
        for c in (0, *sorted(set(adj[v].values()))):
            k = (label[v], c, items | {(v, c)}) if c else (label[v], 0, items)
            if k in first:
                x, y = find(v), find(first[k])
                parent[max(x, y)] = min(x, y)
            else:
                first[k] = v
    return {v: find(v) for v in parent}


def _twin_quotient(
    g: list[dict[int, int]], nodes: set[int]
) -> tuple[dict[int, int], dict[int, int], dict[int, dict[int, int]]]:
    """Merge twins until none are left: twins of the quotient (same label: class size and
    inner colour) are automorphic in the graph too, so e.g. a clique of duplicate pairs
    collapses to one class. Returns (node -> class, class -> label, class adjacency)."""
    adj = {v: {u: c for u, c in g[v].items() if u in nodes} for v in nodes}
    label = dict.fromkeys(nodes, 0)
    where = {v: v for v in nodes}
    while True:
        parent = _twin_parent(adj, label)
        if all(parent[v] == v for v in parent):
            return where, label, adj
        groups: dict[int, list[int]] = {}
        for v, r in parent.items():
            groups.setdefault(r, []).append(v)
        keys = {}
        for r, ms in groups.items():
            inner = max((c for u, c in adj[r].items() if parent[u] == r), default=0)
            keys[r] = (label[r], len(ms), inner)
        ids = {k: i for i, k in enumerate(sorted(set(keys.values())))}
        label = {r: ids[keys[r]] for r in groups}
        adj = {r: {parent[u]: c for u, c in adj[r].items() if parent[u] != r} for r in groups}
        where = {v: parent[r] for v, r in where.items()}


def twin_classes(nb: Graph, nodes: np.ndarray) -> int:
    """Classes of ``nodes`` under the twin relation of graph ``nb`` (sets, or dicts neighbour
    -> edge colour), merged until no twins are left (:func:`_twin_quotient`). Records of one
    class can be swapped by an automorphism, so no matcher that sees only the graph tells
    them apart: of a class it re-identifies at most one record in expectation."""
    g = _coloured(nb)
    want = {int(v) for v in nodes}
    if not want:
        return 0
    where, _label, _adj = _twin_quotient(g, want | {v for v in range(len(g)) if g[v]})
    return len({where[v] for v in want})


def orbit_bound(nb: Graph, nodes: np.ndarray, exact_up_to: int = 7) -> int:
    """An upper bound on the records of ``nodes`` that any matcher seeing only graph ``nb``
    (sets, or dicts neighbour -> edge colour, e.g. :func:`_weighted`) re-identifies in
    expectation: the number of (colour-preserving) automorphism orbits that hold them.
    Records of one orbit can be swapped by an automorphism, so of an orbit at most one is
    right in expectation. Twins are merged first, repeatedly (:func:`twin_classes`); a
    component of the quotient with at most ``exact_up_to`` classes gets its exact orbits from
    a canonical form (brute force over its orderings), so isomorphic components (e.g. a hundred
    duplicate pairs) share their orbits; a larger component counts one per class (finer than
    its orbits, so still a bound)."""
    g = _coloured(nb)
    want = {int(v) for v in nodes}
    if not want:
        return 0
    where, label, qnb = _twin_quotient(g, want | {v for v in range(len(g)) if g[v]})
    reps = sorted(qnb)
    seen: set[int] = set()
    orbit_of: dict[int, Any] = {}
    for r in reps:
        if r in seen:
            continue
        comp, stack = [], [r]
        seen.add(r)
        while stack:
            v = stack.pop()
            comp.append(v)
            for u in qnb[v]:
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        if len(comp) > exact_up_to:
            orbit_of.update((v, ("class", v)) for v in comp)
            continue
        best: Any = None
        pos: dict[int, int] = {}
        for perm in itertools.permutations(comp):
            at = {v: i for i, v in enumerate(perm)}
            form = (tuple(label[v] for v in perm),
                    tuple(sorted((min(at[v], at[u]), max(at[v], at[u]), c)
                                 for v in perm for u, c in qnb[v].items())))  # fmt: skip
            if best is None or form < best:
                best, pos = form, dict(at)
            elif form == best:
                for v in comp:
                    pos[v] = min(pos[v], at[v])
        orbit_of.update((v, (best, pos[v])) for v in comp)
    return len({orbit_of[where[v]] for v in want})


def _weighted(n: int, tuples: dict[tuple[int, ...], int]) -> list[dict[int, Any]]:
    """The plaintext relationship graph as the attacker knows it: an edge between every two
    members of a tuple, coloured by the (size, weight in tokens) of the tuples that hold it
    (the attacker sees each relation's weight on both sides: an encoded XOR of 0 bits is an
    exact duplicate, so symmetries that ignore weights are not symmetries for it)."""
    col: list[dict[int, list[tuple[int, int]]]] = [{} for _ in range(n)]
    for t, w in tuples.items():
        for a in t:
            for b in t:
                if a != b:
                    col[a].setdefault(b, []).append((len(t), w))
    return [{b: tuple(sorted(c)) for b, c in row.items()} for row in col]


def wl_match(plain: list[set[int]], enc: list[set[int]], rounds: int, seed: int) -> np.ndarray:
    """Guess per encoded node (-1: none) by colour refinement over both graphs at once: start
    from the degree, ``rounds`` times recolour each node by (its colour, the sorted colours of
    its neighbours); nodes of degree 0 are not in a graph. Within a colour, encoded and
    plaintext nodes are paired at random (seeded)."""
    n = len(enc)
    colour = {("p", i): len(plain[i]) for i in range(n)} | {("e", i): len(enc[i]) for i in range(n)}
    for _ in range(rounds):
        sig = {}
        for (side, i), c in colour.items():
            g = plain if side == "p" else enc
            sig[(side, i)] = (c, tuple(sorted(colour[(side, j)] for j in g[i])))
        ids: dict[Any, int] = {}
        colour = {k: ids.setdefault(v, len(ids)) for k, v in sorted(sig.items())}
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for (side, i), c in sorted(colour.items()):
        g = plain if side == "p" else enc
        if g[i]:
            groups.setdefault(c, ([], []))[0 if side == "p" else 1].append(i)
    rng = np.random.default_rng(seed)
    guess = np.full(n, -1, np.int64)
    for c in sorted(groups):
        ps, es = groups[c]
        ps = list(rng.permutation(ps))
        for e, p in zip(es, ps, strict=False):
            guess[e] = p
    return guess


def _too_few(n: int, t0: float) -> AttackResult:
    return AttackResult(
        "hgma", TITLE, None, None, n, time.perf_counter() - t0,
        note=f"skipped: {n} encoded records (under {SAMPLE_MIN}, too few for tuples of 2-4 "
        "records to say anything)",
    )  # fmt: skip


def _quads(
    tok: np.ndarray, ppairs: np.ndarray, enc: np.ndarray, epairs: np.ndarray, tau: int
) -> tuple[dict[tuple[int, ...], int], set[tuple[int, ...]]]:
    """4-tuples a, b, c, d of the whole file made of two near-duplicate pairs whose differences
    cancel (weight(a ^ b ^ c ^ d) <= ``tau`` tokens: the commonest 4-tuples of whole-record
    data, e.g. two people each recorded twice with the same change), found on both sides:
    plaintext from ``ppairs`` (rows of ``tok``), encoded from the encodings' own low-weight
    ``epairs`` (rows of ``enc``), as many as the plaintext gave times 1.1. Returns (plaintext
    quads -> their weight in tokens, encoded quads) as sorted row tuples. O(pairs^2)."""

    def xors(x: np.ndarray, pr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[pr[:, 0]] ^ x[pr[:, 1]])

    def as_quads(pr: np.ndarray, t: np.ndarray, w: np.ndarray) -> dict[tuple[int, ...], int]:
        out: dict[tuple[int, ...], int] = {}
        for (i, j), wt in zip(t[:, :2], w, strict=True):
            q = {int(v) for v in (*pr[i], *pr[j])}
            if len(q) == 4:  # pairs sharing a record give a pair, counted already
                out.setdefault(tuple(sorted(q)), int(wt))
        return out

    if len(ppairs) < 2:
        return {}, set()
    xp = xors(tok, ppairs)
    _m, c = tuple_counts(xp, tau, max_size=2)
    found = int(min(c[0], MAX_TUPLES))
    if not found or len(epairs) < 2:
        return {}, set()
    pq, pw = lowest_weight_tuples(xp, found, 2)
    eq, ew = lowest_weight_tuples(xors(enc, epairs), math.ceil(ENCODED_FACTOR * found), 2)
    return as_quads(ppairs, pq, pw), set(as_quads(epairs, eq, ew))


def _focus(tok: np.ndarray, enc: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The rows the 3-4-tuple search takes: first those in a near-duplicate pair (plaintext
    pairs up to max(TAUS) tokens apart, and the encodings' as many lowest-weight pairs: what
    an attacker sees), where tuples form, at random when there are more; then random others.
    Sorted positions."""
    _m, c = tuple_counts(tok, max(TAUS), max_size=2)
    found = int(min(c[0], MAX_TUPLES))
    near: set[int] = set()
    if found:
        for side, top in ((tok, found), (enc, math.ceil(ENCODED_FACTOR * found))):
            t, _w = lowest_weight_tuples(side, top, 2)
            near.update(int(v) for v in t[:, :2].ravel())
    first = np.array(sorted(near), np.int64)
    if len(first) >= size:
        return np.sort(rng.choice(first, size=size, replace=False))
    rest = np.setdiff1d(np.arange(len(tok)), first)
    extra = rng.choice(rest, size=size - len(first), replace=False)
    return np.sort(np.concatenate([first, extra]))


def run(
    schema: Any,
    filters: np.ndarray,
    truth: Plain,
    seed: int,
    sample: int = SAMPLE,
    progress: Callable[[str], None] = lambda _m: None,
) -> AttackResult:
    """The bound for ``filters`` (n, W) uint64 encodings with ``truth`` (their plaintext, row
    for row): pairs over the whole file (or a random :data:`PAIR_LIMIT` of it), 3- and
    4-tuples (and pairs) on a seeded random sample of at most ``sample`` records of those;
    worst case over :data:`TAUS`. Returns an :class:`AttackResult` named ``hgma``; its rate is
    None (with a note) for a file of under :data:`SAMPLE_MIN` records."""
    t0 = time.perf_counter()
    n = len(filters)
    if n < SAMPLE_MIN:
        return _too_few(n, t0)
    rng = np.random.default_rng(seed + 2026)
    # rows in an order of their filters' content, not of the file: the samples and every tie
    # after them do not depend on row order
    canon = np.lexsort(np.asarray(filters, np.uint64).T[::-1])
    rows = canon[np.sort(rng.choice(n, size=min(PAIR_LIMIT, n), replace=False))]
    big = len(rows)
    progress(f"homomorphism tuples: tokens of {big:,} records")
    ftok = token_matrix(schema, truth.take(rows))
    fenc = np.ascontiguousarray(filters[rows], np.uint64)
    spos = _focus(ftok, fenc, min(sample, big), rng)
    m = len(spos)
    stok, senc = ftok[spos], fenc[spos]
    per: dict[str, dict[str, Any]] = {}
    sweep: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    notes: list[str] = []
    for tau in TAUS:
        progress(f"homomorphism tuples: pairs of {big:,} records and tuples of {m:,}, up to "
                 f"{tau} tokens apart")  # fmt: skip
        _pm, pcount = tuple_counts(ftok, tau, max_size=2)
        member, counts = tuple_counts(stok, tau)
        pairs, total = int(pcount[0]), int(counts.sum())
        seen_p: dict[tuple[int, ...], int] = {}  # plaintext relations (file rows) -> weight
        seen_e: set[tuple[int, ...]] = set()  # the encodings' relations
        given: list[float] = []
        exposed = np.zeros(big, bool)
        matched = 0.0
        for tok, enc, found, at in ((ftok, fenc, pairs, None), (stok, senc, total, spos)):
            if not found:
                continue
            if found > MAX_TUPLES:  # too many to compare: count every record in one exposed
                notes.append(f"tau {tau}: {found:,} plaintext tuples, bound = records in them")
                mem, _c = tuple_counts(tok, tau, max_size=2 if at is None else 4)
                exposed[np.flatnonzero(mem) if at is None else at[mem]] = True
                continue
            size = 2 if at is None else 4
            pt, pw = lowest_weight_tuples(tok, found, size)
            et, _ = lowest_weight_tuples(enc, math.ceil(ENCODED_FACTOR * found), size)
            pk = dict(zip(_rows(pt), (int(w) for w in pw), strict=True))
            ek = set(_rows(et))
            given.append(len(pk.keys() & ek) / found)
            if at is None:  # two pairs whose differences cancel: 4-tuples over the whole file
                qp, qe = _quads(tok, pt[:, :2], enc, et[:, :2], tau)
                pk, ek = {**qp, **pk}, ek | qe
                metrics[f"tau{tau}_pair_quads_found"] = float(len(qp.keys() & qe))
            else:
                gp, ge = _neighbours(m, set(pk)), _neighbours(m, ek)
                for rounds in (1, 2, 3):
                    guess = wl_match(gp, ge, rounds, seed)
                    matched = max(matched, float((guess == np.arange(m)).mean()))
                pk = {tuple(int(at[v]) for v in t): w for t, w in pk.items()}
                ek = {tuple(int(at[v]) for v in t) for t in ek}
            seen_p.update(pk)
            seen_e |= ek
        for t in seen_p.keys() & seen_e:
            exposed[list(t)] = True
        linked = np.flatnonzero(exposed)
        right = orbit_bound(_weighted(big, seen_p), linked) if len(linked) else 0
        if notes and notes[-1].startswith(f"tau {tau}:"):
            right = max(right, int(exposed.sum()))
        entry = {"reidentified": right / big, "precision": None, "guesses": 0.0,
                 "right": right, "records": big}  # a bound: no guess was made  # fmt: skip
        sweep.append({"settings": {"tau": tau, "sample": m, "pairs_over": big}, **entry})
        per[f"tau {tau}"] = entry
        metrics[f"tau{tau}_pairs_in_file"] = float(pairs)
        metrics[f"tau{tau}_tuples_2"] = float(counts[0])
        metrics[f"tau{tau}_tuples_3"] = float(counts[1])
        metrics[f"tau{tau}_tuples_4"] = float(counts[2])
        metrics[f"tau{tau}_sample_records_in_plaintext_tuples"] = float(member.mean())
        metrics[f"tau{tau}_records_in_tuples_both_sides_find"] = float(exposed.mean())
        if given:
            metrics[f"tau{tau}_relations_recovered"] = min(given)
        metrics[f"tau{tau}_matched_by_refinement"] = matched
    best = max(sweep, key=lambda s: s["reidentified"])
    where = (f"pairs over all {big:,} records" if big == n else
             f"pairs over a random {big:,} of the {n:,} records")  # fmt: skip
    return AttackResult(
        "hgma",
        TITLE,
        best["reidentified"],
        None,
        big,
        time.perf_counter() - t0,
        settings=dict(best["settings"]),
        per_field=per,
        metrics=metrics,
        sweep=tuple(sweep),
        sampled=n > big,
        right=best["right"],
        note=(
            f"{where}, tuples of 3-4 records on {m:,} of them (those in a near-duplicate "
            "pair first, as an attacker would choose; the search is O(n^4)); upper bound: "
            "the automorphism orbits, among the records in a relation both sides find, of "
            "the plaintext relationship graph with each relation's size and weight (tuples "
            "whose tokens cancel up to tau tokens): records of one orbit no matcher of the "
            "two graphs can tell apart, even one that reads the encodings' XOR weights; "
            "beyond that, random guessing gets about one record right; counts this small "
            "move by a few records with the seed; what colour-refinement matching reached "
            "(on the tuple sample) is in the metrics; the attacker's list is the file's own "
            "plaintext" + ("; " + "; ".join(notes) if notes else "")
        ),
    )
