"""``linkage.audit``: set up a scenario, run each attack over its own settings, score the
guesses against the partner's plaintext and report the worst case per attack.

The attacks get only what the attacker holds (filters, block keys, schema, reference);
``scenario.truth`` is used here, after each attack, to score its guesses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from linkage.errors import InputError
from linkage.lab.audit import frequency, graph, leaks, patterns
from linkage.lab.audit.plaintext import Plain, simulate_averaged, unpack
from linkage.lab.audit.results import AttackResult, AuditResult
from linkage.lab.audit.scenario import Scenario, file_scenario, synthetic_scenario

ATTACKS = ("leaks", "frequency", "patterns", "graph")
Progress = Callable[[str], None]


def _schema(schema: Any) -> Any:
    import linkage

    if isinstance(schema, linkage.Schema):
        return schema
    if isinstance(schema, Mapping):
        return linkage.Schema.from_dict(dict(schema))
    if isinstance(schema, (str, Path)):
        return linkage.Schema.load(schema)
    raise InputError("schema must be a linkage.Schema, a schema dict or a path")


def _score(guess: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    made = np.array([g is not None for g in guess], bool)
    right = np.array([g is not None and g == t for g, t in zip(guess, truth, strict=True)])
    n = max(len(guess), 1)
    return {
        "reidentified": float(right.sum() / n),
        "precision": float(right.sum() / made.sum()) if made.any() else 0.0,
        "guesses": float(made.sum()),
    }


def _worst(
    name: str, title: str, sweep: list[dict[str, Any]], n: int, t0: float, **kw: Any
) -> AttackResult:
    """The AttackResult of the sweep entry with the highest ``reidentified``."""
    best = max(sweep, key=lambda s: s["reidentified"]) if sweep else None
    if best is None:
        return AttackResult(name, title, 0.0, 0.0, n, time.perf_counter() - t0, **kw)
    return AttackResult(
        name,
        title,
        best["reidentified"],
        best["precision"],
        n,
        time.perf_counter() - t0,
        settings=dict(best["settings"]),
        per_field=dict(best["per_field"]),
        sweep=tuple({k: v for k, v in s.items() if k != "per_field"} for s in sweep),
        **kw,
    )


def run_leaks(sc: Scenario, x: np.ndarray, seed: int) -> AttackResult:
    t0 = time.perf_counter()
    m = leaks.attacker_stats(x, seed)
    m.update(leaks.scored_stats(x, sc.truth, sc.schema, seed))
    return AttackResult(
        "leaks", "Leak statistics (Vidanage et al., ACM TOPS 2023)", None, None, len(x),
        time.perf_counter() - t0, metrics=m,
    )  # fmt: skip


def run_frequency(sc: Scenario, x: np.ndarray) -> AttackResult:
    t0 = time.perf_counter()
    targets: list[tuple[str, list[Any], np.ndarray, np.ndarray]] = [
        ("whole_filter", list(frequency.filter_items(x)), sc.reference.identity(),
         sc.truth.identity()),
    ]  # fmt: skip
    if sc.block_keys is not None and sc.schema.block_keys:
        names = [b.name for b in sc.schema.block_keys]
        items = frequency.block_key_items(sc.block_keys, names)
        ref_s = frequency.block_strings(sc.schema, sc.reference)
        tru_s = frequency.block_strings(sc.schema, sc.truth)
        for nm in names:
            targets.append((f"block_key:{nm}", items[nm], ref_s[nm], tru_s[nm]))
    sweep: list[dict[str, Any]] = []
    for top in (20, 100, 500):
        for gap in (0.0, 0.05, 0.2):
            per = {}
            for label, enc_items, ref_items, truth in targets:
                guess = frequency.align(enc_items, list(ref_items), top=top, min_gap=gap)
                per[label] = _score(guess, truth)
            w = max(per.values(), key=lambda v: v["reidentified"])
            sweep.append({
                "settings": {"top": top, "min_gap": gap}, "per_field": per,
                "reidentified": w["reidentified"], "precision": w["precision"],
            })  # fmt: skip
    return _worst(
        "frequency",
        "Frequency alignment of whole filters and block keys",
        sweep,
        len(x),
        t0,
        note="block keys: share of records whose key's plaintext (e.g. Soundex + year) is "
        "revealed; whole filter: the whole record",
    )


def _mined_sizes(schema: Any, density: float, n: int) -> tuple[int, ...] | None:
    """Bits per token of the fields whose tokens can be mined: k positions are set together
    by chance in density^k of the records, so k must make that well under one record of
    ``n`` (and under 1e-3). None when no field qualifies."""
    floor = np.log(min(1e-3, 1.0 / max(n, 1))) / np.log(min(max(density, 1e-6), 0.999))
    ks = sorted({int(f.bits_per_token) for f in schema.fields
                 if f.bits_per_token and f.bits_per_token >= max(floor, 3)})  # fmt: skip
    return tuple(ks) or None


def run_patterns(
    sc: Scenario,
    x: np.ndarray,
    seed: int,
    sample: int,
    progress: Progress,
    max_patterns: int = 800,
) -> AttackResult:
    t0 = time.perf_counter()
    sweep: list[dict[str, Any]] = []
    n_all = len(x)
    rows = np.arange(n_all)
    if n_all > sample:  # the whole attack (and its score) on one honest random sample
        rows = np.sort(np.random.default_rng(seed).choice(n_all, size=sample, replace=False))
        x = x[rows]
    truth = sc.truth.take(rows)
    ks = _mined_sizes(sc.schema, float(x.mean()), len(x))
    for support in (0.003, 0.006):
        if ks is None:
            break
        progress(f"pattern mining: support {support:.1%}")
        pats = patterns.mine_patterns(x, min_support=support, ks=ks, sample=sample, seed=seed)
        pats = sorted(pats, key=lambda p: -p.support)[:max_patterns]
        if not pats:
            continue
        pm = patterns.holders(x.astype(np.float32), [p.bits for p in pats])
        ref = patterns.reference_tokens(
            sc.schema, sc.reference, support / 2, 3 * len(pats), min_k=min(ks) - 2
        )
        progress(f"pattern mining: naming {len(pats)} patterns")
        names = patterns.best_naming(sc.schema, pats, pm, ref, sc.reference)
        for cands in (1, 3):
            guesses, learned = patterns.reidentify(
                sc.schema, x, pats, pm, names, ref, sc.reference, cands
            )
            per = {f: _score(g, truth.values[f]) for f, g in guesses.items()}
            if not per:
                continue
            w = max(per.values(), key=lambda v: v["reidentified"])
            sweep.append({
                "settings": {"min_support": support, "max_candidates": cands,
                             "patterns": len(pats), "named": len(names),
                             "tokens_known": sum(learned.values())},
                "per_field": per, "reidentified": w["reidentified"], "precision": w["precision"],
            })  # fmt: skip
    res = _worst(
        "patterns", "Pattern mining and value re-identification (Christen et al., PAKDD 2018)",
        sweep, len(x), t0, sampled=n_all > len(x),
        note=("no field sets enough bits per token to be mined at this density; "
              if ks is None else "")
        + f"attack run and scored on a random sample of {len(x):,} of {n_all:,} records; "
        "patterns mined, named by "
        "seeded co-occurrence alignment, tokens of re-identified records learned back; "
        "rates per q-gram field (each field at its own worst-case settings), worst field "
        "reported",
    )  # fmt: skip
    return replace(res, per_field=_per_field_worst(sweep))


def _per_field_worst(sweep: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each field's highest rate over the sweep, with the settings that gave it."""
    out: dict[str, dict[str, float]] = {}
    for s in sweep:
        for f, v in s["per_field"].items():
            if f not in out or v["reidentified"] > out[f]["reidentified"]:
                extra = {k: float(s["settings"][k]) for k in ("min_support", "max_candidates")}
                out[f] = {**v, **extra}
    return out


LIST_KINDS = ("others", "population")
ATTACKER_KEYS = 4  # own keys the graph attacker averages its simulation over
GRAPH_ROUNDS, GRAPH_ANCHORS = 8, 3000  # anchor rounds, seed pairs in the last round


def graph_lists(
    sc: Scenario, overlap: float, size: int, seed: int, kind: str = "others"
) -> tuple[np.ndarray, Plain, np.ndarray]:
    """Encoded sample rows, the attacker's list (shuffled; the sample is ``overlap`` of it) and
    each sample row's identity. ``kind``: ``others`` -- the list is the sample's persons plus
    other people (reference records: nobody in the sample's households); ``population`` -- the
    list is a random part of the encoded file's own population and the sample a random part of
    the list (an electoral roll against a service's records: households split between them)."""
    rng = np.random.default_rng(seed)
    n = sc.truth.n
    if kind == "population":
        m = min(size, int(n * overlap))
        lst_rows = rng.choice(n, size=min(n, round(m / overlap)), replace=False)
        rows = np.sort(rng.choice(lst_rows, size=m, replace=False))
        lst = sc.truth.take(rng.permutation(lst_rows))
        return rows, lst, sc.truth.take(rows).identity()
    if kind != "others":
        raise ValueError(f"kind must be one of {LIST_KINDS}, got {kind!r}")
    m = min(size, n, int(sc.reference.n * overlap / max(1 - overlap, 1e-9)) if overlap < 1 else n)
    rows = np.sort(rng.choice(n, size=m, replace=False))
    pad = round(m / overlap) - m
    lst = sc.truth.take(rows)
    if pad:
        lst = lst.concat(sc.reference.take(rng.choice(sc.reference.n, size=pad, replace=False)))
    lst = lst.take(rng.permutation(lst.n))
    return rows, lst, sc.truth.take(rows).identity()


def run_graph(
    sc: Scenario,
    x: np.ndarray,
    seed: int,
    size: int,
    overlaps: Sequence[float],
    progress: Progress,
) -> AttackResult:
    t0 = time.perf_counter()
    per: dict[str, dict[str, float]] = {}
    sweep: list[dict[str, Any]] = []
    best_cfg: dict[str, Any] = {}
    for ov, kind in [(o, k) for o in overlaps for k in LIST_KINDS if o < 1 or k == "others"]:
        rows, lst, ident = graph_lists(sc, ov, size, seed, kind)
        if len(rows) < 50:
            continue
        who = "the file's population" if kind == "population" else "other people"
        progress(f"graph matching: {len(rows):,} encoded vs {lst.n:,} listed ({ov:.0%} overlap, "
                 f"list of {who})")  # fmt: skip
        ga = graph.Graph(simulate_averaged(lst, sc.schema, seed + 1, ATTACKER_KEYS))
        ge = graph.Graph(x[rows])
        lid = lst.identity()
        top: dict[str, float] = {"reidentified": -1.0}
        # a list of other people: counts (its extra people are not the file's neighbours)
        modes = graph.MODES if kind == "population" and ga.n > ge.n else graph.MODES[:1]
        for mode in modes:
            feats = graph.graph_features(ge, ga, mode, seed)
            for seeds, pool in ((50, 1500), (100, 3000)):
                m = graph.match_graphs(ge, ga, feats=feats, pool_nodes=pool, seeds=seeds,
                                       rounds=GRAPH_ROUNDS, anchors=GRAPH_ANCHORS)  # fmt: skip
                guess = np.array([lid[j] if j >= 0 else None for j in m], dtype=object)
                s = _score(guess, ident)
                cfg = {"list": kind, "features": mode, "seeds": seeds, "pool_nodes": pool,
                       "rounds": GRAPH_ROUNDS, "anchors": GRAPH_ANCHORS,
                       "attacker_keys": ATTACKER_KEYS}  # fmt: skip
                sweep.append({"settings": {"overlap": ov, **cfg}, **s})
                if s["reidentified"] > top["reidentified"]:
                    top = s
        label = "" if ov == 1 else f", list: {'population' if kind == 'population' else 'others'}"
        per[f"overlap {ov:.0%} ({len(rows):,} of {lst.n:,}{label})"] = top
    w = max(per.values(), key=lambda v: v["reidentified"]) if per else {}
    if sweep:
        best_cfg = max(sweep, key=lambda v: v["reidentified"])["settings"]
    return AttackResult(
        "graph", "Graph matching (Vidanage et al., CIKM 2020; Schäfer et al., ACSAC 2024)",
        w.get("reidentified", 0.0), w.get("precision", 0.0), min(size, len(x)),
        time.perf_counter() - t0, settings=best_cfg, per_field=per, sweep=tuple(sweep),
        sampled=len(x) > size,
        note=f"on a sample of at most {size:,} encoded records per overlap; the attacker's list "
        "holds the sample's persons plus other people, or (list: population) is a random part "
        "of the file's own population that contains the sample (overlap = sample / list); "
        "worst case over both lists, feature scalings (counts, shares) and seed settings",
    )  # fmt: skip


def audit(
    schema: Any,
    *,
    encoded: str | Path | None = None,
    plaintext: str | Path | None = None,
    reference: str | Path | None = None,
    people: int = 5000,
    seed: int = 0,
    attacks: Sequence[str] = ATTACKS,
    graph_sample: int = 2000,
    overlaps: Sequence[float] = (1.0, 0.5, 0.25),
    pattern_sample: int = 10_000,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Attack an encoding and report the worst case per attack.

    ``schema``: a :class:`linkage.Schema`, a schema dict or a path. Mode (a): ``encoded`` (an
    encoded file) with ``plaintext`` (the partner's plaintext of it, for scoring only) and
    optionally ``reference`` (the attacker's population; default: a ``linkage synth`` draw).
    Mode (b), without ``encoded``: ``people`` synthetic records encoded under a throwaway
    secret. ``graph_sample``: encoded records per graph-matching run (the attacker's list is
    ``graph_sample / overlap``); ``pattern_sample``: records mined for patterns.
    Returns an :class:`AuditResult`; ``result.rates()`` gives each attack's worst rate.
    """
    t0 = time.perf_counter()
    say: Progress = progress or (lambda _msg: None)
    sch = _schema(schema)
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown:
        raise InputError(f"unknown attack(s): {', '.join(unknown)} (one of {', '.join(ATTACKS)})")
    if not all(0 < o <= 1 for o in overlaps):
        raise InputError("overlaps must be in (0, 1]")
    if encoded is not None:
        if plaintext is None:
            raise InputError("an encoded file needs the partner's plaintext of it (to score)")
        say("reading the encoded file and plaintext")
        sc = file_scenario(encoded, plaintext, sch, reference=reference, id_column=id_column,
                           columns=columns, date_formats=date_formats, seed=seed)  # fmt: skip
    else:
        if people < 50:
            raise InputError("--people must be at least 50")
        need = max(people, int(min(graph_sample, people) * (1 / min(overlaps) - 1)) + 1)
        say(f"drawing and encoding {people:,} synthetic records (throwaway secret)")
        sc = synthetic_scenario(sch, people, seed=seed, reference_people=need)
    x = unpack(sc.filters)
    results = []
    for name in ATTACKS:
        if name not in attacks:
            continue
        say(f"attack: {name}")
        if name == "leaks":
            results.append(run_leaks(sc, x, seed))
        elif name == "frequency":
            results.append(run_frequency(sc, x))
        elif name == "patterns":
            results.append(run_patterns(sc, x, seed, pattern_sample, say))
        else:
            results.append(run_graph(sc, x, seed, graph_sample, overlaps, say))
    return AuditResult(
        sch.fingerprint, sc.mode, len(x), sc.reference.n, seed, tuple(results),
        time.perf_counter() - t0,
    )  # fmt: skip
