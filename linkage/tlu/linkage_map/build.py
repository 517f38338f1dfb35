"""``map create``: a full link (the match flow itself) stored as version 1 of a new map.

The candidates and the solve are :func:`linkage.tlu.linker.match`'s own (an engine wrapper
keeps the loaded tables and the scored candidate pairs), so the map's entities are the same
partition as ``linkage match`` with the same options; the map then issues its own 64-bit
entity ids and stores records, block keys, scored pairs and memberships.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.tlu.blocking import DEFAULT_MAX_BLOCK, DEFAULT_MAX_CANDIDATES, Candidates
from linkage.tlu.engines import CandidateOptions, Engine, InProcessEngine, Warn
from linkage.tlu.linkage_map import ids as idrules
from linkage.tlu.linkage_map.filters import write_filter_file
from linkage.tlu.linkage_map.keyindex import write_key_index
from linkage.tlu.linkage_map.records import block_keys, digests, key_rows, record_rows
from linkage.tlu.linkage_map.store import MAP_FORMAT_VERSION, MapStore, check_new_map, new_map
from linkage.tlu.linker import match
from linkage.tlu.solver import record_rank

Progress = Callable[[int, int], None]

NO_FIELD_SCORING = (
    "the linkage map does not support field-aware scoring yet{why}: encode with the "
    "record-level layout, give --scoring dice to link by whole-filter Dice in the map, or use "
    "`linkage match`"
)


def cap_error(records: int, k: int, largest: int | None = None, update: bool = False) -> InputError:
    """The error when a per-record candidate cap bites (the map cannot keep it exact): at
    create, a higher cap or none; at an update, the cap raised for it (and kept)."""
    most = f" (the most: {largest})" if largest is not None else ""
    head = (
        f"{records} record(s) have more than {k} candidate pairs at or above the "
        f"threshold{most}: a link keeps only each record's {k} best (--max-candidates), and "
        "the linkage map cannot keep such a cap exact from one update to the next."
    )
    if update:
        return InputError(
            f"{head} Nothing was applied. Raise the map's cap with this update: give "
            f"--max-candidates {largest or 'N'} (or more; it is kept for later updates) or "
            "--no-max-candidates"
        )
    return InputError(
        f"{head} Nothing was written. Give a higher --max-candidates, --no-max-candidates, "
        "or a higher --threshold"
    )


DICE_NOTE = (
    "{name} has the segmented filter layout: the linkage map links it by whole-filter Dice "
    "(field-aware scoring refits a model on all records and clusters coherently, which an "
    "update cannot continue yet); `linkage match` scores such files field by field "
    "(docs/linkage-map.md)"
)


def refuse_field_scoring(
    scoring: str,
    encs: Sequence[EncodedTable],
    names: list[str],
    warn: Callable[[str], None] | None = None,
) -> None:
    """The map links by whole-filter Dice only: the map re-solves components with the Dice
    solver (field-aware scoring refits a model on all records and clusters coherently, which
    an update cannot reproduce incrementally yet). Segmented inputs under ``auto`` are linked
    by Dice with a ``warn`` note (InputError without ``warn``); ``fields`` is refused."""
    if scoring == "dice":
        return
    from linkage.tlu.scoring.rescore import field_layout  # loads numba: only when asked

    if field_layout(encs, names) is not None:
        seg = next(iter(names), "the input")
        if scoring == "auto" and warn is not None:
            warn(DICE_NOTE.format(name=seg))
            return
        raise InputError(NO_FIELD_SCORING.format(why=f" ({seg} has the segmented filter layout)"))


class _Keeping:
    """An engine that delegates to another and keeps what the match flow gave it."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.encs: list[EncodedTable] = []
        self.names: list[str] = []
        self.cand: Candidates | None = None
        self.check: Callable[[list[EncodedTable], list[str]], None] = lambda e, n: None

    def load(self, inputs: Any) -> tuple[list[EncodedTable], list[str]]:
        self.encs, self.names = self.inner.load(inputs)
        self.check(self.encs, self.names)
        return self.encs, self.names

    def candidates(
        self, encs: Sequence[EncodedTable], opts: CandidateOptions, warn: Warn
    ) -> Candidates:
        self.cand = self.inner.candidates(encs, opts, warn)
        return self.cand

    def describe(self) -> dict[str, int]:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()


def file_source(path: str | Path | None, enc: EncodedTable, name: str) -> dict[str, Any]:
    """What the version log records about one input: who sent what, when."""
    out: dict[str, Any] = {
        "file": name,
        "party": enc.party,
        "records": len(enc),
        "encoded_created": enc.meta.get("created"),
        "encoded_by": enc.meta.get("package_version"),
    }
    if path is not None and Path(path).is_file():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out["sha256"] = h.hexdigest()
    return out


def check_encoded_inputs(inputs: Sequence[object]) -> None:
    """InputError for an input file that is not Parquet (say, a partner's CSV given before
    it was encoded): said in the user's words, before any work."""
    for item in inputs:
        if not isinstance(item, str | Path) or not Path(item).is_file():
            continue  # a table, or a missing file (the reader says so)
        try:
            with open(item, "rb") as f:
                magic = f.read(4)
        except OSError:
            continue
        if magic != b"PAR1":
            kind = "a CSV file" if Path(item).suffix.lower() == ".csv" else "not Parquet"
            raise InputError(
                f"{item}: not an encoded file ({kind}); the map links the Parquet files "
                "`linkage encode` writes: encode it first with `linkage encode`"
            )


def version_row(version: int, verb: str, **fields: Any) -> pa.Table:
    row: dict[str, Any] = {
        "version": version,
        "created": _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0),
        "verb": verb,
        "operator": _operator(),
    }
    row.update(fields)
    return pa.Table.from_pylist([row])


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user name in some containers
        return "unknown"


def map_create(
    map_path: str | Path,
    inputs: Sequence[EncodedTable | str | Path],
    *,
    threshold: float | None = None,  # None: the files' recommended threshold (as match)
    blocking: str = "auto",
    dedupe: bool = False,
    dedupe_threshold: float | None = None,
    solver: str = "greedy",
    threads: int | None = None,
    seed: int | None = None,
    max_block: int = DEFAULT_MAX_BLOCK,
    max_candidates: int | None = DEFAULT_MAX_CANDIDATES,
    scoring: str = "auto",
    force: bool = False,
    warn: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Link ``inputs`` as :func:`linkage.match` does and store the result as version 1 of a
    new map at ``map_path`` (written beside it, renamed into place at the end).

    Options are match's (stored in the map: every update re-uses them). ``seed`` also makes
    entity ids reproducible. ``max_candidates``: match's per-record cap on candidate pairs;
    the map holds only links the cap does not change, so a cap that bites is refused here
    (and in any later update that would make it bite). ``scoring``: the map links by
    whole-filter Dice only: ``dice``, or ``auto``, which links segmented encodings by Dice too
    and says so through ``warn`` (a UserWarning without it); ``fields`` is refused
    (field-aware scoring is not supported by the map yet; docs/linkage-map.md). Returns the
    map's :func:`map_info`-style summary. Raises :class:`~linkage.errors.InputError` /
    :class:`~linkage.errors.CompatibilityError` as ``match`` does, InputError for the
    refusals above; OutputError if ``map_path`` does not end in .duckdb, if it (or its
    filter file, key index or log) is one of the inputs, if it exists or appears while the
    map is built (unless ``force``); InputError if another process holds the map it would
    replace.
    """
    if scoring not in ("auto", "fields", "dice"):
        raise InputError(f"unknown scoring {scoring!r} (choose auto, fields or dice)")
    if scoring == "fields":
        raise InputError(NO_FIELD_SCORING.format(why=""))
    if max_candidates is not None and max_candidates < 1:
        raise InputError(f"--max-candidates must be >= 1, got {max_candidates}")
    check_new_map(map_path, inputs, force=force)  # before the work: an input, in use, exists
    check_encoded_inputs(inputs)
    say = progress or (lambda n, t: None)
    note = warn if warn is not None else (lambda m: warnings.warn(m, UserWarning, stacklevel=4))
    t_start = time.perf_counter()
    keeper = _Keeping(engine or InProcessEngine())
    keeper.check = lambda encs, names: refuse_field_scoring(scoring, encs, names, note)
    result = match(
        inputs,
        threshold=threshold,
        blocking=blocking,
        dedupe=dedupe,
        dedupe_threshold=dedupe_threshold,
        solver=solver,
        threads=threads,
        seed=seed,
        max_block=max_block,
        max_candidates=max_candidates,
        scoring="dice",
        warn=warn,
        engine=keeper,
    )
    say(1, 4)
    encs, names, cand = keeper.encs, keeper.names, keeper.cand
    assert cand is not None
    if cand.detail.get("capped_records") and max_candidates is not None:
        raise cap_error(int(str(cand.detail["capped_records"])), max_candidates)
    # entity labels of the concatenated records (in input order), numbered by each entity's
    # smallest record rank: the ids (handed out in label order) never follow row or file order
    labels = pc.dictionary_encode(result.links.column("entity_id")).combine_chunks().indices
    labels = labels.to_numpy(zero_copy_only=False).astype(np.int64)
    rank = record_rank([e.party for e in encs], [e.record_ids for e in encs])
    labels = idrules.by_rank(labels, rank)
    n_ent = int(labels.max()) + 1 if len(labels) else 0
    eids = idrules.new_ids(n_ent, lambda a: np.zeros(len(a), bool), seed, 1)
    meta = _map_meta(encs[0], result.stats, cand, dedupe, solver, blocking, max_block, seed)
    meta["max_candidates"] = "" if max_candidates is None else str(max_candidates)
    meta["scoring"] = "dice"
    paths = [None if isinstance(i, EncodedTable) else i for i in inputs]
    sources = [file_source(p, e, n) for p, e, n in zip(paths, encs, names, strict=True)]
    say(2, 4)
    with new_map(map_path, force=force, inputs=inputs) as store:
        offset = 0
        index_keys, index_rix = [], []  # the block-key index's entries (.keyindex)
        for pix, enc in enumerate(encs):
            n = len(enc)
            rows = np.arange(n, dtype=np.int64)
            rix = rows + offset
            store.insert("records", record_rows(enc, rows, rix, pix, digests(enc), 1))
            ka = block_keys(enc)
            store.insert("record_keys", key_rows(ka, rows, rix))
            if ka is not None:
                index_keys.append(ka.keys)
                index_rix.append(ka.owner + offset)
            store.insert(
                "parties",
                pa.table(
                    {
                        "pix": pa.array([pix], pa.int16()),
                        "party": [enc.party],
                        "first_version": pa.array([1], pa.int32()),
                    }
                ),
            )
            offset += n
        say(3, 4)
        store.insert(
            "pairs",
            pa.table(
                {"a": pa.array(cand.left), "b": pa.array(cand.right), "score": pa.array(cand.score)}
            ),
        )
        n_rec = offset
        store.insert(
            "membership",
            pa.table(
                {
                    "rix": pa.array(np.arange(n_rec, dtype=np.int64)),
                    "entity": pa.array(eids[labels]),
                    "valid_from": pa.array(np.ones(n_rec, np.int32)),
                    "valid_to": pa.nulls(n_rec, pa.int32()),
                }
            ),
        )
        store.insert(
            "entities",
            pa.table(
                {
                    "entity": pa.array(eids),
                    "first_version": pa.array(np.ones(n_ent, np.int32)),
                    "ended": pa.nulls(n_ent, pa.int32()),
                    "fate": pa.nulls(n_ent, pa.string()),
                    "successor": pa.nulls(n_ent, pa.uint64()),
                }
            ),
        )
        # every id issued is a "created" event, those of version 1 included
        store.insert(
            "events",
            pa.table(
                {
                    "version": pa.array(np.ones(n_ent, np.int32)),
                    "change": pa.array(["created"] * n_ent, pa.string()),
                    "entity": pa.array(eids),
                    "related": pa.nulls(n_ent, pa.uint64()),
                    "records": pa.array(np.bincount(labels, minlength=n_ent).astype(np.int64)),
                }
            ),
        )
        map_id = os.urandom(16)
        part, final, digest = write_filter_file(store.path, [e.filters for e in encs], map_id)
        store.companions.append((part, final))  # renamed in after the map, removed on error
        meta.update(map_id=map_id.hex(), filters_digest=digest.hex())
        if index_keys:
            token = os.urandom(16)
            store.companions.append(
                write_key_index(store.path, map_id, token, np.concatenate(index_keys),
                                np.concatenate(index_rix))
            )  # fmt: skip
            meta["keys_token"] = token.hex()
            del index_keys, index_rix
        store.set_meta(meta)
        store.insert(
            "versions",
            version_row(
                1,
                "create",
                parties=",".join(e.party for e in encs),
                sources=json.dumps(sources),
                delta=False,
                added=n_rec,
                changed=0,
                retired=0,
                unchanged=0,
                records=n_rec,
                entities=n_ent,
                pairs=len(cand.left),
                seconds=round(time.perf_counter() - t_start, 3),
            ),
        )
    say(4, 4)
    return {"version": 1, "records": n_rec, "entities": n_ent, "pairs": len(cand.left)}


def _map_meta(
    enc: EncodedTable,
    stats: Any,
    cand: Candidates,
    dedupe: bool,
    solver: str,
    blocking: str,
    max_block: int,
    seed: int | None,
) -> dict[str, str]:
    from linkage import __version__

    meta = {
        "map_format_version": MAP_FORMAT_VERSION,
        "current_version": "1",
        "encoded_format_version": enc.meta["format_version"],
        "schema_fingerprint": enc.meta["schema_fingerprint"],
        "key_check": enc.meta["key_check"],
        "filter_length": enc.meta["filter_length"],
        "has_block_keys": str(enc.has_block_keys).lower(),
        "threshold": repr(float(stats.threshold)),
        "dedupe": str(dedupe).lower(),
        "dedupe_threshold": repr(float(stats.dedupe_threshold)) if dedupe else "",
        "solver": solver,
        "blocking": blocking,
        "blocking_used_at_create": cand.strategy,
        "max_block": str(max_block),
        "seed": "" if seed is None else str(seed),
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "package_version": __version__,
    }
    for k in ("bands", "rows"):
        if k in cand.detail:
            meta[f"lsh_{k}"] = str(cand.detail[k])
    return meta


def store_options(store: MapStore) -> dict[str, Any]:
    """The match options a map was created with (what every update re-uses)."""
    m = store.meta
    return {
        "threshold": float(m["threshold"]),
        "dedupe": m["dedupe"] == "true",
        "dedupe_threshold": float(m["dedupe_threshold"]) if m["dedupe_threshold"] else None,
        "solver": m["solver"],
        "blocking": m["blocking"],
        "max_block": int(m["max_block"]),
        "seed": int(m["seed"]) if m["seed"] else None,
        # maps made before the cap was stored were made with match's default cap
        "max_candidates": (
            int(m["max_candidates"])
            if m.get("max_candidates")
            else (None if "max_candidates" in m else DEFAULT_MAX_CANDIDATES)
        ),
        "scoring": m.get("scoring"),  # "dice"; None: a map made before scoring was stored
    }
