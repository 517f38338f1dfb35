"""``map update``: a party's new extract (or a delta) applied to the map as one transaction.

1. Diff each extract against the party's current records (:mod:`.diff`): added, changed
   (same record id, new digest: the old version retires, the new one is stored), unchanged,
   retired (missing from a full extract, or listed in the deletions of a delta).
2. Score only the pairs touching new records (:mod:`.candidates`).
3. Affected components: the connected components of the pair graph (stored pairs, including
   those of retiring records, plus the new pairs) that hold a new or retiring record. The
   solver's result on a component depends only on that component's edges, so re-solving
   exactly these with :func:`linkage.tlu.solver.solve` (the map's stored options; records
   in party order, then map order) gives what a full relink's solve gives on them;
   everything else stays as it is.
4. Stable ids for the re-solved clusters (:mod:`.ids`); events for every id change.
5. Write it all in one DuckDB transaction: the previous version stays intact and readable
   if the process is killed at any point, and bad input is refused before anything is written.
   The new filters go to the map's filter file (:mod:`.filters`) first, past the stored rows,
   and its header names the new version only after the commit; the new block keys go to the
   map's key index (:mod:`.keyindex`) the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from linkage.encoded import EncodedTable
from linkage.errors import CompatibilityError, InputError
from linkage.tlu.blocking import choose_strategy
from linkage.tlu.engines import load_tables
from linkage.tlu.linkage_map import ids as idrules
from linkage.tlu.linkage_map.build import (
    NO_FIELD_SCORING,
    cap_error,
    check_encoded_inputs,
    file_source,
    store_options,
    version_row,
)
from linkage.tlu.linkage_map.candidates import NewSet, Rules, new_pairs
from linkage.tlu.linkage_map.diff import (
    Deletions,
    Guards,
    PartyDiff,
    check_mass_change,
    check_reapplied,
    party_diff,
    read_deletions,
)
from linkage.tlu.linkage_map.filters import FilterFile
from linkage.tlu.linkage_map.keyindex import KeyIndex
from linkage.tlu.linkage_map.records import KeyArrays, block_keys, key_rows, record_rows
from linkage.tlu.linkage_map.startup import gc_paused, numba_started_beside
from linkage.tlu.linkage_map.store import (
    MapStore,
    check_side_files,
    open_map,
    remove_stale_partials,
)
from linkage.tlu.linker import _PROPERTY_WORDS, check_compatible, numba_threads
from linkage.tlu.solver import MAX_PARTIES, record_rank, solve


def _checkpoint(name: str) -> None:
    """A named point of the update (the crash test kills the process at these)."""


def _check_against_map(store: MapStore, encs: Sequence[EncodedTable], names: list[str]) -> None:
    m = store.meta
    want = {
        "format_version": m["encoded_format_version"],
        "schema_fingerprint": m["schema_fingerprint"],
        "filter_length": m["filter_length"],
        "key_check": m["key_check"],
    }
    for enc, name in zip(encs, names, strict=True):
        for prop, words in _PROPERTY_WORDS.items():
            if enc.meta.get(prop) != want[prop]:
                raise CompatibilityError(
                    f"{name} was encoded with {words} than the map {store.path.name}"
                )
        if enc.has_block_keys != (m["has_block_keys"] == "true"):
            have = "has" if enc.has_block_keys else "lacks"
            raise CompatibilityError(f"{name} {have} block keys, unlike the map's records")
    if encs and m.get("scoring") != "dice" and _field_layout(encs, names) is not None:
        # a map made before the scoring was stored linked segmented files field-aware at
        # create, which its updates (Dice, solver) cannot continue
        raise InputError(
            NO_FIELD_SCORING.format(
                why=f" ({names[0]} has the segmented filter layout and {store.path.name} was "
                "made without --scoring dice; recreate it with --scoring dice)"
            )
        )


def _field_layout(encs: Sequence[EncodedTable], names: list[str]) -> Any:
    from linkage.tlu.scoring.rescore import field_layout  # loads numba: old maps only

    return field_layout(encs, names)


def _check_cap(ga: np.ndarray, gb: np.ndarray, node_pix: np.ndarray, k: int | None) -> None:
    """InputError when a record current after the update would have more than ``k`` pairs:
    a relink would cap them (keep each record's k best), which the stored pair graph cannot
    reproduce (pairs a cap dropped are not kept). Below the cap, capped == uncapped."""
    if k is None or len(ga) == 0:
        return
    live = (node_pix[ga] >= 0) & (node_pix[gb] >= 0)
    n = len(node_pix)
    deg = np.bincount(ga[live], minlength=n) + np.bincount(gb[live], minlength=n)
    over = int((deg > k).sum())
    if over:
        raise cap_error(over, k, int(deg.max()), update=True)


def new_cap(store: MapStore, stored: int | None, asked: int | str | None) -> int | None:
    """The per-record candidate cap of this update: the stored one, or a higher one (None:
    no cap). Raising it keeps the map exact (below the old cap nothing was dropped); a
    lower cap is refused (stored records may already have more pairs)."""
    if asked == "stored":
        return stored
    if asked is not None and (not isinstance(asked, int) or asked < 1):
        raise InputError(f"--max-candidates must be a number >= 1, got {asked!r}")
    if asked is not None and (stored is None or asked < stored):
        now = "no cap" if stored is None else f"a cap of {stored}"
        raise InputError(
            f"{store.path}: the map has {now} (--max-candidates); an update may raise it, "
            f"never lower it (stored records may already have more pairs), so "
            f"--max-candidates {asked} is refused"
        )
    return asked


def map_update(
    map_path: str | Path,
    inputs: Sequence[EncodedTable | str | Path] = (),
    *,
    delta: bool = False,
    deletions: str | Path | pa.Table | None = None,
    threads: int | None = None,
    wait: float = 0.0,
    replace_all: bool = False,
    allow_mass_change: bool = False,
    reapply: bool = False,
    max_candidates: int | str | None = "stored",
    new_party: bool = False,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    opened: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Apply new extracts to the map as a new version (see the module docstring).

    Each input replaces its party's previous extract (a party not yet in the map joins it);
    with ``delta`` the inputs carry only additions and changes, and ``deletions`` (CSV or
    Parquet with ``party, record_id``) lists the records to retire. A full extract that
    shares (almost) no record ids with its party's current records (another party's file
    under this party's name?) is refused unless ``replace_all`` (:func:`.diff.check_overlap`);
    an update that would retire or change over 25% of a party's current records (a truncated
    extract?) unless ``allow_mass_change`` (:func:`.diff.check_mass_change`); a file already
    applied to its party, or encoded before the last one applied, unless ``reapply``
    (:func:`.diff.check_reapplied`); a party not yet in the map named like an existing one
    (case, spaces, punctuation aside) or holding mostly an existing party's current records
    (same id, same encoding: a mistyped ``--party``?) unless ``new_party``
    (:func:`.diff.check_new_party`).
    Returns a summary:
    version, added, changed, unchanged, retired, records, entities, pairs, affected, seconds.

    Raises :class:`InputError` / :class:`CompatibilityError` (files of another schema,
    secret or format; duplicate ids; a deletion of an unknown record) before writing; the
    map is locked while an update runs (a second one waits ``wait`` seconds, then fails).
    ``max_candidates``: ``"stored"`` (the map's cap), or a higher cap (None: none) for this
    update and the later ones (stored); a lower cap is refused (:func:`new_cap`).
    ``opened`` is called with the map's version once the map is open for the update (the
    CLI says after an interrupt whether the update was applied).
    """
    say = progress or (lambda n, t: None)
    warn_ = warn or (lambda m: None)
    if deletions is not None and not delta:
        raise InputError("a deletions list needs --delta (a full extract retires what it lacks)")
    check_encoded_inputs(inputs)
    encs, names = load_tables(inputs) if inputs else ([], [])
    dels = read_deletions(deletions) if deletions is not None else Deletions("deletions")
    if not encs and not dels.by_party:
        if deletions is not None:
            raise InputError(f"{dels.name}: the deletions list has no rows; nothing to apply")
        raise InputError("give at least one encoded file (or --delta with --deletions)")
    if encs:
        check_compatible(encs, names, dedupe=True)
    secs: dict[str, float] = {}
    t_all = t0 = time.perf_counter()
    with gc_paused(), numba_started_beside():
        store = open_map(map_path, write=True, wait=wait)
        try:
            if opened is not None:
                opened(store.version)
            remove_stale_partials(store.path)  # a killed create's or rebuild's files
            check_side_files(store.path)
            # with threads=None (the default) numba is not touched here: it is imported on
            # the start-up thread, and first used by the candidates
            with numba_threads(threads) if threads is not None else contextlib.nullcontext():
                _check_against_map(store, encs, names)
                result = _update(
                    store,
                    encs,
                    names,
                    delta,
                    dels,
                    inputs,
                    warn_,
                    say,
                    secs,
                    t0,
                    Guards(replace_all, allow_mass_change, reapply, max_candidates, new_party),
                )
            result["seconds"] = {k: round(v, 3) for k, v in secs.items()}
            result["seconds"]["total"] = round(time.perf_counter() - t_all, 3)
            return result
        finally:
            store.close()


def _update(
    store: MapStore,
    encs: list[EncodedTable],
    names: list[str],
    delta: bool,
    dels: Deletions,
    inputs: Sequence[Any],
    warn: Callable[[str], None],
    say: Callable[[int, int], None],
    secs: dict[str, float],
    t0: float,
    guards: Guards,
) -> dict[str, Any]:
    t_start = t0
    opts = store_options(store)
    cap = new_cap(store, opts["max_candidates"], guards.max_candidates)
    opts["max_candidates"] = cap
    version = store.version + 1
    parties = store.parties()
    sources = [
        file_source(None if isinstance(i, EncodedTable) else i, e, nm)
        for i, e, nm in zip(inputs, encs, names, strict=True)
    ]
    if not guards.reapply:
        check_reapplied(store, sources)
    # 1. diff
    diffs: list[PartyDiff] = []
    next_pix = max(parties.values(), default=-1) + 1
    by_party = {e.party: e for e in encs}
    name_of = {e.party: n for e, n in zip(encs, names, strict=True)}
    for party in list(by_party) + [p for p in dels.by_party if p not in by_party]:
        d = party_diff(
            store,
            by_party.get(party),
            party,
            parties.get(party),
            next_pix,
            delta=delta,
            deleted=dels.by_party.get(party, []),
            deletions_name=dels.name,
            name=name_of.get(party, "the extract"),
            replace_all=guards.replace_all,
            new_party=guards.new_party,
        )
        if d.is_new_party:
            next_pix += 1
        diffs.append(d)
    if next_pix > MAX_PARTIES:
        raise InputError(f"a map holds at most {MAX_PARTIES} parties")
    if opts["solver"] == "optimal" and next_pix > 2:
        d = next(d for d in diffs if d.is_new_party)
        raise InputError(
            f"{name_of.get(d.party, d.party)}: party {d.party!r} would be a third party of "
            f"{store.path.name}, which was created with --solver optimal (one-to-one "
            "matching of exactly two parties). Nothing was applied. To link more parties, "
            "create a new map with --solver greedy"
        )
    rix0 = store.max_rix() + 1
    parts_f, parts_pix, parts_old, parts_keys = [], [], [], []
    offset = 0
    for d in diffs:
        n = len(d.new_rows)
        if d.enc is not None and n:
            parts_f.append(d.enc.filters[d.new_rows])
            ka = block_keys(d.enc)
            if ka is not None:
                remap = np.full(len(d.enc), -1, np.int64)
                remap[d.new_rows] = np.arange(n) + offset
                sel = remap[ka.owner] >= 0
                parts_keys.append(KeyArrays(ka.keys[sel], remap[ka.owner[sel]]))
        parts_pix.append(np.full(n, d.pix, np.int64))
        parts_old.append(d.changed_old)
        offset += n
    words = int(store.meta["filter_length"]) // 64
    k = offset
    new = NewSet(
        np.ascontiguousarray(np.concatenate(parts_f))
        if parts_f
        else np.zeros((0, words), np.uint64),
        np.concatenate(parts_pix) if parts_pix else np.zeros(0, np.int64),
        np.arange(k, dtype=np.int64) + rix0,
        None,
    )
    if store.meta["has_block_keys"] == "true":
        new.keys = KeyArrays(
            np.concatenate([p.keys for p in parts_keys]) if parts_keys else np.zeros(0, np.uint64),
            np.concatenate([p.owner for p in parts_keys]) if parts_keys else np.zeros(0, np.int64),
        )
    changed_old = np.concatenate(parts_old) if parts_old else np.zeros(0, np.int64)
    retiring = np.concatenate([changed_old[changed_old >= 0]] + [d.retired for d in diffs])
    secs["diff"] = time.perf_counter() - t0
    say(1, 5)
    _checkpoint("diffed")

    # 2. candidates touching new records
    t0 = time.perf_counter()
    cur = store.arrow("SELECT rix, pix FROM records WHERE valid_to IS NULL")
    n_nodes = rix0 + k
    node_pix = np.full(n_nodes, -1, np.int64)
    node_pix[cur.column("rix").to_numpy()] = cur.column("pix").to_numpy()
    if not (guards.allow_mass_change or guards.replace_all):
        current = np.bincount(cur.column("pix").to_numpy(), minlength=next_pix)
        for d in diffs:
            check_mass_change(d, name_of.get(d.party, dels.name), int(current[d.pix]), delta)
    node_pix[retiring] = -1
    node_pix[new.rix] = new.pix
    sizes = np.bincount(node_pix[node_pix >= 0], minlength=next_pix).tolist()
    strategy = opts["blocking"]
    if strategy == "auto":
        strategy = choose_strategy(sizes, opts["dedupe"], new.keys is not None)
    rules = Rules(
        opts["threshold"],
        opts["dedupe"],
        opts["dedupe_threshold"],
        opts["max_block"],
        opts["seed"] or 0,
    )
    stored = FilterFile(store)  # checked against the map; rebuilt from it when stale
    keyidx = KeyIndex(store, stored.map_id) if new.keys is not None else None  # the same
    # the stored pairs (step 3) now: DuckDB reads them while numba's start-up still runs
    old = store.arrow("SELECT a, b, score FROM pairs")
    secs["filters"] = time.perf_counter() - t0
    na, nb, ns, scored_against = new_pairs(
        store, new, node_pix, stored.array, strategy, rules, warn, keyidx
    )
    secs["candidates"] = time.perf_counter() - t0 - secs["filters"]
    say(2, 5)

    # 3. affected components
    t0 = time.perf_counter()
    oa, ob = old.column("a").to_numpy(), old.column("b").to_numpy()
    osc = old.column("score").to_numpy()
    ga, gb = np.concatenate([oa, na]), np.concatenate([ob, nb])
    _check_cap(ga, gb, node_pix, opts["max_candidates"])
    from linkage.kernels.cluster import connected_components  # loaded by the start-up thread

    comp = connected_components(ga, gb, np.ones(len(ga), np.bool_), n_nodes)
    hit = np.zeros(int(comp.max(initial=-1)) + 1, np.bool_)
    hit[comp[new.rix]] = True
    hit[comp[retiring]] = True
    aff_mask = hit[comp] & (node_pix >= 0)
    aff = np.flatnonzero(aff_mask)
    aff = aff[np.lexsort((aff, node_pix[aff]))]  # party order, then map order
    local = np.full(n_nodes, -1, np.int64)
    local[aff] = np.arange(len(aff))
    keep_old = (local[oa] >= 0) & (local[ob] >= 0)
    ea = np.concatenate([local[oa[keep_old]], local[na]])
    eb = np.concatenate([local[ob[keep_old]], local[nb]])
    es = np.concatenate([osc[keep_old], ns])
    rank = _affected_rank(store, diffs, aff, node_pix, rix0)
    res = solve(ea, eb, es, node_pix[aff], dedupe=opts["dedupe"], solver=opts["solver"], rank=rank)
    secs["solve"] = time.perf_counter() - t0
    say(3, 5)

    # 4. stable ids
    t0 = time.perf_counter()
    old_side = np.concatenate([aff[aff < rix0], retiring])
    with store.temp("_q", pa.table({"rix": pa.array(old_side, pa.int64())})):
        mem = store.arrow(
            "SELECT rix, entity FROM membership WHERE valid_to IS NULL "
            "AND rix IN (SELECT rix FROM _q)"
        )
    m_rix, m_ent = mem.column("rix").to_numpy(), mem.column("entity").to_numpy()
    prev_of = np.zeros(n_nodes, np.uint64)
    prev_of[m_rix] = m_ent
    succ_old = np.full(n_nodes, -1, np.int64)
    succ_old[new.rix] = changed_old
    prev_node = np.where(aff >= rix0, succ_old[aff], aff)  # a changed record: its old version
    prev = np.where(prev_node >= 0, prev_of[np.maximum(prev_node, 0)], 0).astype(np.uint64)
    touched, old_size = np.unique(m_ent, return_counts=True)
    with store.temp("_t", pa.table({"entity": pa.array(touched, pa.uint64())})):
        fv = store.arrow(
            "SELECT entity, first_version FROM entities WHERE entity IN (SELECT entity FROM _t)"
        )
    first_version = np.zeros(len(touched), np.int64)
    first_version[np.searchsorted(touched, fv.column("entity").to_numpy())] = fv.column(
        "first_version"
    ).to_numpy()

    def taken(cand: np.ndarray) -> np.ndarray:
        with store.temp("_c", pa.table({"entity": pa.array(cand, pa.uint64())})):
            hits = store.arrow(
                "SELECT entity FROM entities WHERE entity IN (SELECT entity FROM _c)"
            )
        return np.isin(cand, hits.column("entity").to_numpy())

    assignment = idrules.assign(
        res.labels,
        prev,
        touched,
        first_version,
        old_size.astype(np.int64),
        lambda n: idrules.new_ids(n, taken, opts["seed"], version),
        rank=rank,
    )
    new_ent = assignment.cluster_ids[res.labels]
    secs["ids"] = time.perf_counter() - t0
    say(4, 5)
    _checkpoint("solved")

    # 5. one transaction
    t0 = time.perf_counter()
    moved = (aff < rix0) & (new_ent != prev)
    close_rix = np.concatenate([aff[moved], retiring])
    open_rix = np.concatenate([aff[moved], aff[aff >= rix0]])
    open_ent = np.concatenate([new_ent[moved], new_ent[aff >= rix0]])
    n_new_rec = k
    counts = {
        "added": sum(d.added for d in diffs),
        "changed": sum(d.changed for d in diffs),
        "retired": int(sum(len(d.retired) for d in diffs)),
        "unchanged": sum(d.unchanged for d in diffs),
    }
    prev_entities = int(
        store.sql("SELECT entities FROM versions WHERE version = ?", version - 1)[0][0]
    )
    n_entities = prev_entities + len(assignment.fresh) - len(assignment.ended)
    n_records = int((node_pix >= 0).sum())
    if dels.by_party:
        sources.append({"file": dels.name, "deletions": sum(map(len, dels.by_party.values()))})
    if overrides := guards.given():  # an audit trail of what the operator overrode
        sources.append({"overrides": overrides})
    digest = stored.append(new.filters)  # past the stored rows: unused until the commit
    token = os.urandom(16)  # meta.keys_token of the new version
    if keyidx is not None:
        assert new.keys is not None
        keyidx.append(new.keys.keys, new.rix[new.keys.owner])  # as the filters
    _checkpoint("filters-written")
    with (
        stored.uncommitted(),
        keyidx.uncommitted() if keyidx is not None else contextlib.nullcontext(),
        store.transaction(),
    ):  # a failed commit cuts the rows off
        store.insert(
            "parties",
            pa.table(
                {
                    "pix": pa.array([d.pix for d in diffs if d.is_new_party], pa.int16()),
                    "party": pa.array([d.party for d in diffs if d.is_new_party], pa.string()),
                    "first_version": pa.array(
                        [version for d in diffs if d.is_new_party], pa.int32()
                    ),
                }
            ),
        )
        base = rix0
        for d in diffs:
            n = len(d.new_rows)
            if d.enc is not None and n:
                rix = np.arange(n, dtype=np.int64) + base
                store.insert(
                    "records", record_rows(d.enc, d.new_rows, rix, d.pix, d.digest, version)
                )
                store.insert("record_keys", key_rows(block_keys(d.enc), d.new_rows, rix))
            base += n
        _checkpoint("records-inserted")
        with store.temp("_ret", pa.table({"rix": pa.array(retiring, pa.int64())})):
            store.con.execute(
                f"UPDATE records SET valid_to = {version} WHERE rix IN (SELECT rix FROM _ret)"
            )
            store.con.execute("DELETE FROM record_keys WHERE rix IN (SELECT rix FROM _ret)")
            store.con.execute(
                "DELETE FROM pairs WHERE a IN (SELECT rix FROM _ret) OR b IN (SELECT rix FROM _ret)"
            )
        store.insert(
            "pairs", pa.table({"a": pa.array(na), "b": pa.array(nb), "score": pa.array(ns)})
        )
        _checkpoint("pairs-written")
        with store.temp("_close", pa.table({"rix": pa.array(close_rix, pa.int64())})):
            store.con.execute(
                f"UPDATE membership SET valid_to = {version} WHERE valid_to IS NULL "
                "AND rix IN (SELECT rix FROM _close)"
            )
        store.insert(
            "membership",
            pa.table(
                {
                    "rix": pa.array(open_rix, pa.int64()),
                    "entity": pa.array(open_ent, pa.uint64()),
                    "valid_from": pa.array(np.full(len(open_rix), version, np.int32)),
                    "valid_to": pa.nulls(len(open_rix), pa.int32()),
                }
            ),
        )
        nf = len(assignment.fresh)
        store.insert(
            "entities",
            pa.table(
                {
                    "entity": pa.array(assignment.fresh, pa.uint64()),
                    "first_version": pa.array(np.full(nf, version, np.int32)),
                    "ended": pa.nulls(nf, pa.int32()),
                    "fate": pa.nulls(nf, pa.string()),
                    "successor": pa.nulls(nf, pa.uint64()),
                }
            ),
        )
        for e, (fate, succ) in assignment.ended.items():
            store.con.execute(
                "UPDATE entities SET ended = ?, fate = ?, successor = ? WHERE entity = ?",
                [version, fate, succ or None, e],
            )
        ev = assignment.events
        store.insert(
            "events",
            pa.table(
                {
                    "version": pa.array([version] * len(ev), pa.int32()),
                    "change": pa.array([c for c, _, _, _ in ev], pa.string()),
                    "entity": pa.array([e for _, e, _, _ in ev], pa.uint64()),
                    "related": pa.array([r or None for _, _, r, _ in ev], pa.uint64()),
                    "records": pa.array([n for _, _, _, n in ev], pa.int64()),
                }
            ),
        )
        _checkpoint("memberships-written")
        store.insert(
            "versions",
            version_row(
                version,
                "update",
                parties=",".join(d.party for d in diffs),
                sources=json.dumps(sources),
                delta=delta,
                records=n_records,
                entities=n_entities,
                pairs=int(store.sql("SELECT count(*) FROM pairs")[0][0]),
                seconds=round(time.perf_counter() - t_start, 3),
                **counts,
            ),
        )
        store.set_meta(
            {"current_version": str(version), "map_id": stored.map_id.hex(),
             "filters_digest": digest.hex(), "keys_token": token.hex(),
             "max_candidates": "" if cap is None else str(cap)}
        )  # fmt: skip
        _checkpoint("before-commit")
    _checkpoint("committed")
    stored.synced(version, digest)
    _checkpoint("filters-synced")
    if keyidx is not None:
        keyidx.synced(token)
    secs["write"] = time.perf_counter() - t0
    say(5, 5)
    return {
        "version": version,
        **counts,
        "records": n_records,
        "entities": n_entities,
        "new_pairs": len(na),
        "affected_records": len(aff),
        "scored_against": scored_against,
        "strategy": strategy,
        "new_records_stored": n_new_rec,
        "events": len(ev),
        "filters_rebuilt": stored.rebuilt,
        "keys_rebuilt": keyidx is not None and keyidx.rebuilt,
    }


def _affected_rank(
    store: MapStore,
    diffs: Sequence[PartyDiff],
    aff: np.ndarray,
    node_pix: np.ndarray,
    rix0: int,
) -> np.ndarray:
    """Tie-break ranks of the affected records (``aff``, grouped by party) as
    :func:`linkage.tlu.solver.record_rank` gives them in a full match: from the party names and
    record ids only, so a re-clustered component never depends on row or file order."""
    if not len(aff):
        return np.zeros(0, np.int64)
    old = np.sort(aff[aff < rix0])
    with store.temp("_rank", pa.table({"rix": pa.array(old, pa.int64())})):
        t = store.arrow(
            "SELECT rix, record_id FROM records WHERE rix IN (SELECT rix FROM _rank) ORDER BY rix"
        )
    old_ids = t.column("record_id").combine_chunks()
    new_ids = [d.enc.record_ids.take(pa.array(d.new_rows)) for d in diffs if d.enc is not None]
    new_all = pa.concat_arrays([a.cast(pa.string()) for a in new_ids]) if new_ids else None
    pos = np.where(
        aff < rix0,
        np.searchsorted(t.column("rix").to_numpy(), aff),
        aff - rix0 + len(old_ids),
    )
    ids = pa.concat_arrays([old_ids.cast(pa.string()), *([new_all] if new_all is not None else [])])
    ids = ids.take(pa.array(pos))
    names = {pix: party for party, pix in store.parties().items()}
    names.update({d.pix: d.party for d in diffs})
    pix = node_pix[aff]
    cuts = np.flatnonzero(np.diff(pix)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(aff)]])
    return record_rank(
        [names[int(pix[a])] for a in starts],
        [ids.slice(int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)],
    )
