"""The trusted linkage unit's batch match: encodings in, linkage map out.

``match([enc_a, enc_b, ...])`` checks that the files belong together (same format version,
schema fingerprint, filter length and key-check value: a mismatch names the files and the
property), generates and scores candidate pairs (:mod:`linkage.blocking`), solves them into
entities (:mod:`linkage.solve`) and returns a :class:`LinkageResult` whose ``links`` table
has ``entity_id, party, record_id`` for every input record (singletons included) and whose
``pairs`` table has ``party_a, record_id_a, party_b, record_id_b, score`` for matched pairs.

Similarity scores are sensitive (they help re-identification): write them only when needed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.blocking import DEFAULT_MAX_BLOCK, STRATEGIES, Candidates, generate
from linkage.encoded import EncodedTable, read_encoded, temp_path_for
from linkage.errors import CompatibilityError, InputError
from linkage.kernels.popcount import popcount_rows
from linkage.solve import assign_entity_ids, solve

DEFAULT_THRESHOLD = 0.7  # calibrated for the uk-person template (benchmarks/bench_quality.py)
DEFAULT_DEDUPE_THRESHOLD = 0.8

_PROPERTY_WORDS = {
    "format_version": "a different encoded-file format version",
    "schema_fingerprint": "a different schema",
    "filter_length": "a different filter length",
    "key_check": "a different secret",
}


@dataclass
class LinkageResult:
    """Links (every record's entity) and matched pairs, as pyarrow Tables, plus statistics."""

    links: pa.Table
    pairs: pa.Table
    stats: dict[str, object] = field(default_factory=dict)

    def write(self, links_path: str | Path, pairs_path: str | Path | None = None) -> None:
        """Write links (and pairs, if a path is given) as Parquet: all or nothing (both are
        written to temporary files first, then renamed)."""
        outputs = [(self.links, Path(links_path))]
        if pairs_path is not None:
            outputs.append((self.pairs, Path(pairs_path)))
        check_output_paths([p for _, p in outputs])
        temps: list[Path] = []
        try:
            for table, path in outputs:
                tmp = temp_path_for(path)
                temps.append(tmp)
                pq.write_table(table, tmp, compression="zstd")
            for (_, path), tmp in zip(outputs, temps, strict=True):
                os.replace(tmp, path)
        except OSError as exc:
            raise InputError(f"cannot write {exc.filename or 'output'}: {exc.strerror}") from None
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)

    def summary_lines(self) -> list[str]:
        s = self.stats
        lines = []
        for party, n in s["records_per_party"].items():  # type: ignore[attr-defined]
            lines.append(f"  {party}: {n} records")
        cand = s["candidates"]
        lines.append(
            f"blocking {s['blocking']}: {cand} candidate pairs scored of {s['possible_pairs']} "
            f"possible (reduction ratio {s['reduction_ratio']:.6f})"
        )
        if s.get("blocking_detail"):
            lines.append(f"  detail: {s['blocking_detail']}")
        lines.append(
            f"{s['pairs_above_threshold']} pairs >= threshold {s['threshold']}; "
            f"{s['matched_pairs']} matched pairs"
        )
        sizes = s["entities_by_size"]
        lines.append(
            f"{s['entities']} entities; by size: "
            + ", ".join(f"{k}: {v}" for k, v in sizes.items())  # type: ignore[attr-defined]
        )
        st = s["seconds"]
        lines.append(
            "time: " + ", ".join(f"{k} {v:.2f}s" for k, v in st.items())  # type: ignore[attr-defined]
        )
        return lines


def check_output_paths(paths: Sequence[str | Path], inputs: Sequence[str | Path] = ()) -> None:
    """Fail early (before any work) on outputs that cannot be written or would clobber."""
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            raise InputError(f"{p}: is a directory")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{parent}: output directory does not exist")
        r = p.resolve()
        if r in seen:
            raise InputError(f"{p}: given as two outputs")
        if any(r == Path(i).resolve() for i in inputs):
            raise InputError(f"{p}: output would overwrite an input file")
        seen.add(r)


def _name(enc: EncodedTable, source: str | None) -> str:
    return Path(source).name if source else f"party {enc.party}"


def load_inputs(
    inputs: Sequence[EncodedTable | str | Path],
) -> tuple[list[EncodedTable], list[str]]:
    encs, names = [], []
    for item in inputs:
        if isinstance(item, EncodedTable):
            encs.append(item)
            names.append(f"party {item.party}")
        else:
            encs.append(read_encoded(item))
            names.append(Path(item).name)
    return encs, names


def check_compatible(encs: Sequence[EncodedTable], names: Sequence[str], dedupe: bool) -> None:
    if not encs:
        raise InputError("no encoded files given")
    if len(encs) < 2 and not dedupe:
        raise InputError("give at least two encoded files to link, or --dedupe for one file")
    first, fname = encs[0], names[0]
    for enc, name in zip(encs[1:], names[1:], strict=True):
        for prop, words in _PROPERTY_WORDS.items():
            if enc.meta.get(prop) != first.meta.get(prop):
                raise CompatibilityError(f"{name} was encoded with {words} than {fname}")
    seen: dict[str, str] = {}
    for enc, name in zip(encs, names, strict=True):
        if enc.party in seen:
            raise InputError(f"{name} and {seen[enc.party]} both have party name {enc.party!r}")
        seen[enc.party] = name
        if len(enc) == 0:
            raise InputError(f"{name}: no records")
        ids = enc.record_ids
        if pc.count_distinct(ids).as_py() != len(ids):
            raise InputError(f"{name}: duplicate record ids within party {enc.party!r}")
    have = [enc.has_block_keys for enc in encs]
    if any(have) and not all(have):
        missing = [n for n, h in zip(names, have, strict=True) if not h]
        raise CompatibilityError(f"{', '.join(missing)} lack(s) block keys that the others have")


def match(
    inputs: Sequence[EncodedTable | str | Path],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    blocking: str = "auto",
    dedupe: bool = False,
    dedupe_threshold: float | None = None,
    solver: str = "greedy",
    threads: int | None = None,
    seed: int | None = None,
    max_block: int = DEFAULT_MAX_BLOCK,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
    scheduler: str | None = None,
) -> LinkageResult:
    """Link encoded files (paths or :class:`EncodedTable`) into entities.

    ``threshold``: minimum Dice score of a pair. ``blocking``: auto, none, keys or lsh.
    ``dedupe``: records of one party may join one entity, through a within-party pair scoring
    at least ``dedupe_threshold`` (default ``max(threshold, 0.8)``: duplicates are nearer to
    each other than to household members). ``solver``: greedy or optimal (two
    parties). ``threads``: numba threads (default: all cores). ``seed``: makes entity ids and
    LSH sampling reproducible (entity ids are random per run when None). ``scheduler``:
    run candidate scoring on Dask (``local[:N]`` or ``tls://HOST:PORT``; inputs must be
    paths every worker can read; see docs/scale.md).
    """
    if scheduler is not None:
        from linkage.distributed import match_on_dask

        return match_on_dask(
            list(inputs),  # type: ignore[arg-type]
            scheduler=scheduler,
            threshold=threshold,
            blocking=blocking,
            dedupe=dedupe,
            dedupe_threshold=dedupe_threshold,
            solver=solver,
            threads=threads,
            seed=seed,
            max_block=max_block,
            warn=warn,
            progress=progress,
        )
    dedupe_threshold = check_options(threshold, dedupe_threshold, blocking, threads)
    with numba_threads(threads):
        return _match(
            inputs,
            threshold=threshold,
            blocking=blocking,
            dedupe=dedupe,
            dedupe_threshold=dedupe_threshold,
            solver=solver,
            seed=seed,
            max_block=max_block,
            warn=warn,
            progress=progress,
        )


def check_options(
    threshold: float, dedupe_threshold: float | None, blocking: str, threads: int | None
) -> float:
    """Validate match options (shared by both engines); return the dedupe threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be between 0 and 1, got {threshold}")
    if dedupe_threshold is None:
        dedupe_threshold = max(threshold, DEFAULT_DEDUPE_THRESHOLD)
    if not 0.0 <= dedupe_threshold <= 1.0:
        raise InputError(f"--dedupe-threshold must be between 0 and 1, got {dedupe_threshold}")
    if blocking not in STRATEGIES:
        raise InputError(f"unknown blocking {blocking!r} (choose {', '.join(STRATEGIES)})")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    return dedupe_threshold


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` numba threads inside the block, restoring the previous count after."""
    before = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _match(
    inputs: Sequence[EncodedTable | str | Path],
    *,
    threshold: float,
    blocking: str,
    dedupe: bool,
    dedupe_threshold: float,
    solver: str,
    seed: int | None,
    max_block: int,
    warn: Callable[[str], None] | None,
    progress: Callable[[str], None] | None,
) -> LinkageResult:
    parallel = numba.get_num_threads() > 1
    warn = warn or (lambda m: None)
    say = progress or (lambda m: None)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    encs, names = load_inputs(inputs)
    check_compatible(encs, names, dedupe)
    sizes = [len(e) for e in encs]
    offsets = np.zeros(len(encs) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    filters = np.ascontiguousarray(np.concatenate([e.filters for e in encs]))
    party = np.repeat(np.arange(len(encs), dtype=np.int32), sizes)
    pop = popcount_rows(filters)
    block_keys = None
    if all(e.has_block_keys for e in encs):
        keys_parts, owner_parts = [], []
        for p, e in enumerate(encs):
            col = e.table.column("block_keys").combine_chunks()
            flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
            lens = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
            keys_parts.append(flat)
            owner_parts.append(np.repeat(np.arange(len(e), dtype=np.int64) + offsets[p], lens))
        block_keys = (np.concatenate(keys_parts), np.concatenate(owner_parts))
    seconds["read"] = time.perf_counter() - t0
    say(f"read {sum(sizes)} records from {len(encs)} file(s)")

    t0 = time.perf_counter()
    cand: Candidates = generate(
        filters,
        offsets,
        party,
        pop,
        threshold,
        strategy=blocking,
        dedupe=dedupe,
        block_keys=block_keys,
        seed=0 if seed is None else seed,
        parallel=parallel,
        max_block=max_block,
        dedupe_threshold=dedupe_threshold if dedupe else None,
        warn=warn,
    )
    seconds["candidates+scoring"] = time.perf_counter() - t0
    say(f"blocking {cand.strategy}: {len(cand.left)} pairs >= {threshold}")

    return finish(
        encs,
        cand,
        dedupe=dedupe,
        solver=solver,
        seed=seed,
        threshold=threshold,
        dedupe_threshold=dedupe_threshold,
        seconds=seconds,
    )


def finish(
    encs: Sequence[EncodedTable],
    cand: Candidates,
    *,
    dedupe: bool,
    solver: str,
    seed: int | None,
    threshold: float,
    dedupe_threshold: float,
    seconds: dict[str, float],
) -> LinkageResult:
    """Solve scored pairs into entities and build the links / pairs tables and statistics
    (shared by the in-process and the Dask engines)."""
    sizes = [len(e) for e in encs]
    party = np.repeat(np.arange(len(encs), dtype=np.int32), sizes)
    t0 = time.perf_counter()
    res = solve(cand.left, cand.right, cand.score, party, dedupe=dedupe, solver=solver)  # type: ignore[arg-type]
    ids = assign_entity_ids(res.labels, seed)
    seconds["solve"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    party_names = pa.array([e.party for e in encs])
    record_ids = pa.concat_arrays([e.record_ids for e in encs])
    links = pa.table(
        {
            "entity_id": pa.array(ids[res.labels]),
            "party": pc.take(party_names, pa.array(party)),
            "record_id": record_ids,
        }
    )
    m = res.pair_mask
    li, ri = cand.left[m], cand.right[m]
    pairs = pa.table(
        {
            "party_a": pc.take(party_names, pa.array(party[li])),
            "record_id_a": pc.take(record_ids, pa.array(li)),
            "party_b": pc.take(party_names, pa.array(party[ri])),
            "record_id_b": pc.take(record_ids, pa.array(ri)),
            "score": pa.array(cand.score[m]),
        }
    )
    seconds["output"] = time.perf_counter() - t0
    ent_sizes = np.bincount(res.labels)
    by_size = np.bincount(ent_sizes)
    stats: dict[str, object] = {
        "records_per_party": {e.party: len(e) for e in encs},
        "threshold": threshold,
        "dedupe_threshold": dedupe_threshold if dedupe else None,
        "blocking": cand.strategy,
        "blocking_detail": cand.detail,
        "candidates": cand.compared,
        "possible_pairs": cand.possible,
        "reduction_ratio": cand.reduction_ratio,
        "pairs_above_threshold": len(cand.left),
        "matched_pairs": int(m.sum()),
        "entities": len(ent_sizes),
        "entities_by_size": {int(k): int(v) for k, v in enumerate(by_size) if k and v},
        "threads": numba.get_num_threads(),
        "seconds": seconds,
    }
    return LinkageResult(links, pairs, stats)
