"""``linkage.audit``: set up a scenario, run each attack over its own settings, score the
guesses against the partner's plaintext and report the worst case per attack.

The attacks get only what the attacker holds (filters, block keys, schema, reference);
``scenario.truth`` is used here, after each attack, to score its guesses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from linkage.errors import InputError
from linkage.lab.audit import frequency, graph, hgma, leaks, patterns
from linkage.lab.audit.plaintext import Plain, simulate_averaged, unpack
from linkage.lab.audit.results import AttackResult, AuditResult, small_sample_caveat
from linkage.lab.audit.scenario import Scenario, file_scenario, synthetic_scenario

ATTACKS = ("leaks", "frequency", "patterns", "graph", "hgma")
SEGMENT = "segment:"  # per_field label prefix of the frequency attack's field segments
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


def _score(guess: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Share re-identified, precision (None: no guesses), guesses, and the counts behind the
    share: ``right`` of ``records``."""
    made = np.array([g is not None for g in guess], bool)
    right = np.array([g is not None and g == t for g, t in zip(guess, truth, strict=True)])
    n = max(len(guess), 1)
    return {
        "reidentified": float(right.sum() / n),
        "precision": float(right.sum() / made.sum()) if made.any() else None,
        "guesses": float(made.sum()),
        "right": int(right.sum()),
        "records": len(guess),
    }


CATEGORY_VALUES = 10
"""A field segment whose field has at most this many values in the reference, each held by
many records (sex), names a category, not a person: value disclosure, shown but not counted
as re-identification (:func:`_is_category`)."""


def _is_category(values: list[Any]) -> bool:
    """At most :data:`CATEGORY_VALUES` distinct values, each held by ten records on average
    (sex; not a field most records lack, nor one whose few values are one record each)."""
    distinct = len(set(values))
    return 1 <= distinct <= CATEGORY_VALUES and len(values) >= 10 * distinct


def _worst(
    name: str, title: str, sweep: list[dict[str, Any]], n: int, t0: float, **kw: Any
) -> AttackResult:
    """The AttackResult of the sweep entry with the highest ``reidentified``."""
    best = max(sweep, key=lambda s: s["reidentified"]) if sweep else None
    if best is None:
        return AttackResult(name, title, 0.0, None, n, time.perf_counter() - t0, **kw)
    return AttackResult(
        name,
        title,
        best["reidentified"],
        best["precision"],
        n,
        time.perf_counter() - t0,
        right=best.get("right"),
        settings=dict(best["settings"]),
        per_field=dict(best["per_field"]),
        sweep=tuple({k: v for k, v in s.items() if k != "per_field"} for s in sweep),
        **kw,
    )


def run_leaks(sc: Scenario, x: np.ndarray, seed: int) -> AttackResult:
    t0 = time.perf_counter()
    m = leaks.attacker_stats(x, seed)
    m.update(leaks.scored_stats(x, sc.truth, sc.schema, seed))
    note = (
        "bit_freq_*: how often each bit is set (bit_freq_excess 1 = no frequency leak); "
        "cooc_*: bit pairs set together (phi; pairs over 0.3 mark tokens' bits, pattern "
        "mining's raw material); identical_*: records with equal filters; "
        "popcount_vs_tokens_r: popcount against the number of tokens (leaks value length); "
        "similarity_r: encoded against plaintext Dice on a sample (what graph matching feeds "
        "on); neighbour_overlap_at_10: share of a record's 10 nearest encoded neighbours that "
        "are among its 10 nearest in plaintext"
    )
    caveat = small_sample_caveat(len(x))
    if caveat:
        note += "; " + caveat
    return AttackResult(
        "leaks", "Leak statistics (Vidanage et al., ACM TOPS 2023)", None, None, len(x),
        time.perf_counter() - t0, metrics=m, note=note,
    )  # fmt: skip


def run_frequency(sc: Scenario, x: np.ndarray, segments: Sequence[Any] = ()) -> AttackResult:
    """Whole filters, each block key and, for a segmented file, each field's segment
    (``segments``: the layout of the file's public metadata); per field or key its worst
    case over the settings, the attack's worst case over all of them."""
    t0 = time.perf_counter()
    targets: list[tuple[str, list[Any], np.ndarray, np.ndarray]] = [
        ("whole_filter", list(frequency.filter_items(x)), sc.reference.identity(),
         sc.truth.identity()),
    ]  # fmt: skip
    if sc.block_keys is not None and sc.schema.block_keys:
        names = [b.name for b in sc.schema.block_keys]
        ref_s = frequency.block_strings(sc.schema, sc.reference)
        tru_s = frequency.block_strings(sc.schema, sc.truth)
        # one hypothesis when some record has every key; else one per choice of present keys
        hyps = frequency.block_key_hypotheses(sc.block_keys, names)
        none: list[int | None] = [None] * len(sc.block_keys)
        for h, items in enumerate(hyps or [{nm: none for nm in names}]):
            for nm in names:
                if h == 0 or any(v is not None for v in items[nm]):  # every key has a row
                    targets.append((f"block_key:{nm}", items[nm], ref_s[nm], tru_s[nm]))
    for seg in segments:  # scored on the field's value (a salted item's salt dropped)
        targets.append((f"{SEGMENT}{seg.field}",
                        frequency.segment_items(sc.filters, seg.start, seg.bits),
                        frequency.segment_values(sc.schema, seg.field, sc.reference),
                        sc.truth.values[seg.field]))  # fmt: skip
    # a segment of a field with few values each held by many (sex) names a category, not a
    # person: reported, not counted as re-identification
    category = tuple(
        label for label, _e, ref_items, _t in targets
        if label.startswith(SEGMENT) and _is_category([v for v in ref_items if v is not None])
    )  # fmt: skip
    sweep: list[dict[str, Any]] = []
    for top in (20, 100, 500):
        for gap in (0.0, 0.05, 0.2):
            per: dict[str, dict[str, Any]] = {}
            for label, enc_items, ref_items, truth in targets:
                guess = frequency.align(enc_items, list(ref_items), top=top, min_gap=gap)
                if label.startswith(SEGMENT):
                    guess = frequency.value_of(guess)
                sc_ = _score(guess, truth)  # a label seen twice: block-key hypotheses
                if label not in per or sc_["reidentified"] > per[label]["reidentified"]:
                    per[label] = sc_
            counted = [v for k, v in per.items() if k not in category] or list(per.values())
            w = max(counted, key=lambda v: v["reidentified"])
            sweep.append({
                "settings": {"top": top, "min_gap": gap}, "per_field": per,
                "reidentified": w["reidentified"], "precision": w["precision"],
                "right": w["right"],
            })  # fmt: skip
    seg_note = (
        "; field segments (segmented layout, public in the file's metadata): share of records "
        "whose field value is named right by aligning equal segments with the reference's "
        "values (as the partner hashed them, with their salt where salted); each field or key "
        "at its own worst-case settings"
        if segments else ""
    )  # fmt: skip
    res = _worst(
        "frequency",
        "Frequency alignment of whole filters, block keys"
        + (" and field segments" if segments else ""),
        sweep,
        len(x),
        t0,
        note="block keys: share of records whose key's plaintext (e.g. Soundex + year) is "
        "revealed; whole filter: the whole record" + seg_note,
    )
    return replace(res, per_field=_per_field_worst(sweep, ("top", "min_gap")), category=category)


def file_segments(sch: Any, encoded: str | Path | None, width: int) -> tuple[Any, ...]:
    """The segmented layout the attacker reads (empty: record layout): from the encoded
    file's metadata in mode (a); in mode (b) the layout the encoder writes into it (the
    schema's wire segments), checked against the filters' ``width`` in bits."""
    from linkage.encoded import read_meta
    from linkage.segments import segments_from_meta, segments_meta

    if encoded is not None:
        return segments_from_meta(read_meta(encoded), str(encoded))
    meta = {**segments_meta(sch.wire_segments), "filter_length": str(width)}
    return segments_from_meta(meta, "the encoded population")


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
                "right": w["right"],
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


def _per_field_worst(
    sweep: list[dict[str, Any]], keys: Sequence[str] = ("min_support", "max_candidates")
) -> dict[str, dict[str, float]]:
    """Each field's highest rate over the sweep, with the settings ``keys`` that gave it."""
    out: dict[str, dict[str, float]] = {}
    for s in sweep:
        for f, v in s["per_field"].items():
            if f not in out or v["reidentified"] > out[f]["reidentified"]:
                extra = {k: float(s["settings"][k]) for k in keys}
                out[f] = {**v, **extra}
    return out


LIST_KINDS = ("others", "population")
ATTACKER_KEYS = 4  # own keys the graph attacker averages its simulation over
GRAPH_ROUNDS, GRAPH_ANCHORS = 8, 3000  # anchor rounds, seed pairs in the last round
GRAPH_MIN = 50  # fewest encoded records a graph-matching run attacks (and --graph-sample)
MIN_OVERLAP = 0.05  # the list is sample / overlap records


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
    m = min(size, n)
    while m > 0 and _pad(m, overlap) > sc.reference.n:  # other people: the reference's
        m = min(m - 1, int(sc.reference.n * overlap / (1 - overlap)) + 1)
    rows = np.sort(rng.choice(n, size=m, replace=False))
    pad = _pad(m, overlap)
    lst = sc.truth.take(rows)
    if pad:
        lst = lst.concat(sc.reference.take(rng.choice(sc.reference.n, size=pad, replace=False)))
    lst = lst.take(rng.permutation(lst.n))
    return rows, lst, sc.truth.take(rows).identity()


MAX_PEOPLE = 2_000_000
"""The largest synthetic population of a schema audit (mode b): the region's size."""

DEFAULT_OVERLAPS = (1.0, 0.5, 0.25)
"""Graph matching's overlaps (encoded sample / attacker's list) unless told otherwise."""


def _pad(m: int, overlap: float) -> int:
    """Other people in a list of which ``m`` encoded records are ``overlap``."""
    return round(m / overlap) - m


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
    skipped: list[str] = []
    for ov, kind in [(o, k) for o in overlaps for k in LIST_KINDS if o < 1 or k == "others"]:
        rows, lst, ident = graph_lists(sc, ov, size, seed, kind)
        who = "the file's population" if kind == "population" else "other people"
        if len(rows) < GRAPH_MIN:
            skipped.append(f"{ov:.0%} overlap, list of {who} ({len(rows):,} encoded records)")
            continue
        progress(f"graph matching: {len(rows):,} encoded vs {lst.n:,} listed ({ov:.0%} overlap, "
                 f"list of {who})")  # fmt: skip
        ga = graph.Graph(simulate_averaged(lst, sc.schema, seed + 1, ATTACKER_KEYS))
        ge = graph.Graph(x[rows])
        lid = lst.identity()
        top: dict[str, float] = {"reidentified": -1.0}
        # a list of other people: counts (its extra people are not the file's neighbours)
        modes = graph.MODES if kind == "population" and ga.n > ge.n else graph.MODES[:1]
        for sim, gs, sets in _graph_stages(ge, ga, modes, seed):
            for mode, feats in sets.items():
                for seeds, pool in ((50, 1500), (100, 3000)):
                    m = graph.match_graphs(*gs, feats=feats, pool_nodes=pool, seeds=seeds,
                                           rounds=GRAPH_ROUNDS, anchors=GRAPH_ANCHORS,
                                           centre=sim == "centred")  # fmt: skip
                    guess = np.array([lid[j] if j >= 0 else None for j in m], dtype=object)
                    s = _score(guess, ident)
                    cfg = {"list": kind, "similarity": sim, "features": mode, "seeds": seeds,
                           "pool_nodes": pool, "rounds": GRAPH_ROUNDS,
                           "anchors": GRAPH_ANCHORS, "attacker_keys": ATTACKER_KEYS}  # fmt: skip
                    sweep.append({"settings": {"overlap": ov, **cfg}, **s})
                    if s["reidentified"] > top["reidentified"]:
                        top = s
        label = "" if ov == 1 else f", list: {'population' if kind == 'population' else 'others'}"
        per[f"overlap {ov:.0%} ({len(rows):,} of {lst.n:,}{label})"] = top
    w = max(per.values(), key=lambda v: v["reidentified"]) if per else {}
    if sweep:
        best_cfg = max(sweep, key=lambda v: v["reidentified"])["settings"]
    skip = (
        f"skipped (under {GRAPH_MIN} encoded records to attack): {'; '.join(skipped)}; "
        if skipped else ""
    )  # fmt: skip
    return AttackResult(
        "graph", "Graph matching (Vidanage et al., CIKM 2020; Schäfer et al., ACSAC 2024)",
        w.get("reidentified"), w.get("precision"), int(w.get("records", min(size, len(x)))),
        time.perf_counter() - t0, settings=best_cfg, per_field=per, sweep=tuple(sweep),
        sampled=len(x) > size, right=None if "right" not in w else int(w["right"]),
        note=skip + f"on a sample of at most {size:,} encoded records per overlap; the "
        "attacker's list "
        "holds the sample's persons plus other people, or (list: population) is a random part "
        "of the file's own population that contains the sample (overlap = sample / list); "
        "worst case over both lists, seed stages (Dice; centred Hamming on lists of at most "
        f"{graph.CENTRED_MAX:,}), feature scalings (counts, shares) and seed settings",
    )  # fmt: skip


def _graph_stages(
    ge: graph.Graph, ga: graph.Graph, modes: tuple[str, ...], seed: int
) -> Iterator[tuple[str, tuple[graph.Graph, graph.Graph], dict[str, Any]]]:
    """The two seed stages the graph attack sweeps: Dice (its node features) and, where both
    full similarity matrices fit (lists of at most ``graph.CENTRED_MAX``), the centred graphs
    (double-centred Hamming distances: what breaks diffusion with 4 taps). Lazily, so one
    pair of extra matrices is alive at a time."""
    yield "dice", (ge, ga), graph.feature_sets(ge, ga, modes, seed)
    if ge.full is not None and ga.full is not None and ga.n <= graph.CENTRED_MAX:
        ce, ca = graph.centred(ge), graph.centred(ga)
        yield "centred", (ce, ca), graph.centred_feature_sets(ce, ca, modes, seed)


def run_hgma(
    sch: Any, sc: Scenario, seed: int, people: int, sample: int, say: Progress
) -> AttackResult:
    """The homomorphism bound (:mod:`.hgma`). Its tuples come from near-duplicate records, so
    in mode (b) (``people`` > 0) it attacks an extract drawn as ``linkage synth`` writes one
    (medium corruption, :data:`hgma.DUPLICATES` of the people with a second record) instead
    of the clean population the other attacks use; in mode (a), the partner's own file."""
    if not people:
        return hgma.run(sch, sc.filters, sc.truth, seed, sample, progress=say)
    n = min(people, hgma.PAIR_LIMIT)
    say(f"homomorphism tuples: drawing and encoding an extract of {n:,} records (duplicates, "
        "medium corruption)")  # fmt: skip
    ex = synthetic_scenario(sch, n, seed=seed + 1, duplicates=hgma.DUPLICATES,
                            corruption="medium")  # fmt: skip
    r = hgma.run(sch, ex.filters, ex.truth, seed, sample, progress=say)
    extra = (
        f"; mode (b): a synthetic extract of {len(ex.filters):,} records (medium corruption; "
        f"{hgma.DUPLICATES:.0%} of its people recorded twice)"
    )
    return replace(r, note=r.note + extra)


def audit(
    schema: Any,
    *,
    encoded: str | Path | None = None,
    plaintext: str | Path | None = None,
    reference: str | Path | None = None,
    people: int = 5000,
    seed: int = 0,
    attacks: str | Sequence[str] = ATTACKS,
    graph_sample: int = 2000,
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    pattern_sample: int = 10_000,
    hgma_sample: int = hgma.SAMPLE,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
    progress: Progress | None = None,
) -> AuditResult:
    """Attack an encoding and report the worst case per attack.

    ``schema``: a :class:`linkage.Schema`, a schema dict or a path. Mode (a): ``encoded`` (an
    encoded file) with ``plaintext`` (the partner's plaintext of it, for scoring only) and
    optionally ``reference`` (the attacker's population; default: a ``linkage synth`` draw).
    ``columns`` (field -> column), ``date_formats`` (field -> strptime format) and ``absent``
    (fields the encoded file was made without) read the plaintext and reference as ``linkage
    encode`` read the extract; any other schema field without a column is an InputError.
    Mode (b), without ``encoded``: ``people`` synthetic records encoded under a throwaway
    secret. ``attacks``: names from :data:`ATTACKS` (or one comma-separated string).
    ``graph_sample``: encoded records per graph-matching run (at least 50; the attacker's list
    is ``graph_sample / overlap``, overlaps in [0.05, 1]); a run with fewer than 50 encoded
    records (a small file) is skipped and said so in the result's note.
    ``pattern_sample``: records mined for patterns. ``hgma_sample``: records searched by the
    homomorphism attack's 3-4-tuple search (:data:`hgma.SAMPLE_RANGE`; O(n^4): the attack
    takes about one to two minutes on 2 cores at 400, many minutes at 1,000, the published
    attack's limit).
    Returns an :class:`AuditResult`; ``result.rates()`` gives each attack's worst rate.
    """
    t0 = time.perf_counter()
    say: Progress = progress or (lambda _msg: None)
    sch = _schema(schema)
    attacks = check_attacks(attacks)
    overlaps = check_overlaps(overlaps, graph_sample)
    if pattern_sample < 1:
        raise InputError(f"--pattern-sample must be at least 1, got {pattern_sample}")
    lo, hi = hgma.SAMPLE_RANGE
    if not lo <= hgma_sample <= hi:
        raise InputError(
            f"--hgma-sample must be in {lo}..{hi:,} (the attack's search grows as the fourth "
            f"power of it; {hi:,} is the published attack's own limit), got {hgma_sample}"
        )
    # the attacker's reference for the value attacks is as large as the default overlaps
    # need, whatever --overlaps says: trimming the overlaps must not weaken pattern mining
    widest = min(min(overlaps), min(DEFAULT_OVERLAPS))
    if encoded is not None:
        if plaintext is None:
            raise InputError("an encoded file needs the partner's plaintext of it (to score)")
        say("reading the encoded file and plaintext")
        sc = file_scenario(encoded, plaintext, sch, reference=reference, id_column=id_column,
                           columns=columns, date_formats=date_formats, absent=tuple(absent),
                           seed=seed, reference_people=_pad(graph_sample, widest),
                           )  # fmt: skip
    else:
        if plaintext is not None or reference is not None:
            raise InputError(
                "--plaintext and --reference belong to an encoded file (mode a): give the "
                "ENCODED file, or leave them out to audit the schema on synthetic people"
            )
        if not 50 <= people <= MAX_PEOPLE:
            raise InputError(
                f"--people must be in 50..{MAX_PEOPLE:,} (a 50,000-person audit takes about 7 "
                f"minutes on 2 cores; the attacks sample what they need), got {people:,}"
            )
        need = max(people, _pad(min(graph_sample, people), widest))
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
            segs = file_segments(sch, encoded, 64 * sc.filters.shape[1])
            results.append(run_frequency(sc, x, segs))
        elif name == "patterns":
            results.append(run_patterns(sc, x, seed, pattern_sample, say))
        elif name == "graph":
            results.append(run_graph(sc, x, seed, graph_sample, overlaps, say))
        else:
            mode_b_people = people if encoded is None else 0
            results.append(run_hgma(sch, sc, seed, mode_b_people, hgma_sample, say))
    return AuditResult(
        sch.fingerprint, sc.mode, len(x), sc.reference.n, seed, tuple(results),
        time.perf_counter() - t0,
        hardening=tuple(st.type for st in getattr(sch.hardening, "steps", ())),
        salted=tuple(f.name for f in sch.fields if f.salt is not None),
    )  # fmt: skip


def check_attacks(attacks: str | Sequence[str]) -> tuple[str, ...]:
    """The attacks to run: a sequence of names or one comma-separated string ("graph",
    "leaks,graph"); InputError for none or an unknown one."""
    if isinstance(attacks, str):
        attacks = attacks.split(",")
    names = tuple(dict.fromkeys(a.strip() for a in attacks if a.strip()))
    if not names:
        raise InputError(f"--attacks: name at least one attack ({', '.join(ATTACKS)})")
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise InputError(f"unknown attack(s): {', '.join(unknown)} (one of {', '.join(ATTACKS)})")
    return names


def check_overlaps(overlaps: Sequence[float], graph_sample: int) -> tuple[float, ...]:
    """Graph-matching overlaps, duplicates collapsed (first order kept); InputError for none,
    one outside [MIN_OVERLAP, 1], or a ``graph_sample`` under GRAPH_MIN."""
    if graph_sample < GRAPH_MIN:
        raise InputError(
            f"--graph-sample must be at least {GRAPH_MIN} (graph matching needs that many "
            f"encoded records to align), got {graph_sample}"
        )
    ovs = tuple(dict.fromkeys(float(o) for o in overlaps))
    if not ovs:
        raise InputError("--overlaps: give at least one overlap, e.g. 1,0.5,0.25")
    for o in ovs:
        if not MIN_OVERLAP <= o <= 1:  # NaN too
            why = (
                f": the attacker's list would be {graph_sample:,}/{o:g} = "
                f"{graph_sample / o:,.0f} records"
                if 0 < o < MIN_OVERLAP else ""
            )  # fmt: skip
            raise InputError(f"--overlaps: {o:g} is not in [{MIN_OVERLAP:g}, 1]{why}")
    return ovs
