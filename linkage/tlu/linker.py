"""The trusted linkage unit's match: encodings in, linkage map out. One flow, any engine.

``match([enc_a, enc_b, ...])`` checks the options and that the files belong together (same
format version, schema fingerprint, filter length and key-check value: a mismatch names the
files and the property), asks an engine (:mod:`linkage.tlu.engines`: in-process, or Dask with
``scheduler=``) for scored candidate pairs, solves them into entities
(:mod:`linkage.tlu.solver`) and returns a :class:`~linkage.tlu.result.LinkageResult`.
"""

from __future__ import annotations

import contextlib
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.encoded import EncodedTable
from linkage.errors import CompatibilityError, InputError
from linkage.tlu.blocking import DEFAULT_MAX_BLOCK, DEFAULT_MAX_CANDIDATES, STRATEGIES, Candidates
from linkage.tlu.engines import CandidateOptions, Engine, InProcessEngine, load_tables
from linkage.tlu.result import LinkageResult, MatchStats, check_output_paths, peak_rss, stub_records
from linkage.tlu.solver import assign_entity_ids, record_rank, solve

# numba and the field-aware scoring (whose modules load numba kernels) are imported where
# they are used: a map update imports this module for check_compatible and loads numba on a
# thread beside its DuckDB work (linkage.tlu.linkage_map.startup; docs/linkage-map.md).
if TYPE_CHECKING:
    from linkage.tlu.scoring.compare import Comparisons

DEFAULT_THRESHOLD = 0.7  # calibrated for the uk-person template (benchmarks/bench_quality.py)
DEFAULT_DEDUPE_THRESHOLD = 0.8

_PROPERTY_WORDS = {
    "format_version": "a different encoded-file format version",
    "schema_fingerprint": "a different schema",
    "filter_length": "a different filter length",
    "key_check": "a different secret",
}
# everything else the schema fixes that a link relies on (files of one schema agree; the
# metadata checksum refuses edited files, this names the property when tables disagree)
_SCHEMA_WORDS = {
    "recommended_threshold": "a different recommended threshold",
    "segments": "a different filter layout (segments)",
}
_SHOWN = ("format_version", "filter_length", "recommended_threshold")  # short, not sensitive

__all__ = [
    "DEFAULT_THRESHOLD",
    "LinkageResult",
    "MatchStats",
    "check_output_paths",
    "match",
    "recommended_threshold",
]


def load_inputs(
    inputs: Sequence[EncodedTable | str | Path],
) -> tuple[list[EncodedTable], list[str]]:
    """Encoded files (or tables) with display names; see :func:`engines.load_tables`."""
    return load_tables(inputs)


def party_key(name: str) -> str:
    """A party name with Unicode compatibility forms folded (NFKC: a fullwidth ``ａ`` is
    ``a``), case, spaces and punctuation ignored: ``council-a``, ``council_a`` and
    ``Council A`` give one key."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"[\W_]+", "", folded) or folded


def check_compatible(encs: Sequence[EncodedTable], names: Sequence[str], dedupe: bool) -> None:
    """Raise :class:`CompatibilityError` / :class:`InputError` unless the inputs can be linked
    together: the same format, schema, filter length, secret, recommended threshold, filter
    layout and block keys (a mismatch names the two files and the property); distinct
    parties; unique ids; a valid recommended threshold."""
    if not encs:
        raise InputError("no encoded files given")
    if len(encs) < 2 and not dedupe:
        raise InputError("give at least two encoded files to link, or --dedupe for one file")
    first, fname = encs[0], names[0]
    for enc, name in zip(encs[1:], names[1:], strict=True):
        for prop, words in {**_PROPERTY_WORDS, **_SCHEMA_WORDS}.items():
            a, b = enc.meta.get(prop), first.meta.get(prop)
            if a != b:
                vs = f" ({prop} {a or 'none'} vs {b or 'none'})" if prop in _SHOWN else ""
                raise CompatibilityError(f"{name} was encoded with {words} than {fname}{vs}")
    for enc, name in zip(encs, names, strict=True):
        raw = enc.meta.get("recommended_threshold")
        if raw is not None and not _is_threshold(raw):
            raise InputError(f"{name}: recommended_threshold {raw[:20]!r} in the metadata is "
                             "not a number between 0 and 1; the file was altered")  # fmt: skip
    seen: dict[str, str] = {}
    alike: dict[str, tuple[str, str]] = {}
    for enc, name in zip(encs, names, strict=True):
        if enc.party in seen:
            raise InputError(f"{name} and {seen[enc.party]} both have party name {enc.party!r}")
        seen[enc.party] = name
        other, other_party = alike.setdefault(party_key(enc.party), (name, enc.party))
        if other != name:
            raise InputError(
                f"{name} (party {enc.party!r}) and {other} (party {other_party!r}) have names "
                "that differ only in case, spaces or punctuation: one partner's extract encoded "
                "twice, once with a mistyped --party? Encode it again with the right --party "
                "(parties' names must differ in more than that)"
            )
        if len(enc) == 0:
            raise InputError(f"{name}: no records")
        ids = enc.record_ids
        if pc.count_distinct(ids).as_py() != len(ids):
            raise InputError(f"{name}: duplicate record ids within party {enc.party!r}")
    have = [enc.has_block_keys for enc in encs]
    if any(have) and not all(have):
        missing = [n for n, h in zip(names, have, strict=True) if not h]
        raise CompatibilityError(f"{', '.join(missing)} lack(s) block keys that the others have")


def _is_threshold(raw: str) -> bool:
    try:
        return 0.0 <= float(raw) <= 1.0
    except ValueError:
        return False


def recommended_threshold(encs: Sequence[EncodedTable]) -> float:
    """The threshold the encoded files recommend (metadata ``recommended_threshold``, from
    the schema's ``match.threshold``), else :data:`DEFAULT_THRESHOLD`. Files linked together
    agree on it (:func:`check_compatible` refuses them otherwise, naming the files)."""
    for enc in encs:
        try:
            t = float(enc.meta.get("recommended_threshold") or "nan")
        except ValueError:
            continue
        if 0.0 <= t <= 1.0:
            return t
    return DEFAULT_THRESHOLD


def check_options(
    threshold: float, dedupe_threshold: float | None, blocking: str, threads: int | None
) -> float:
    """Validate match options; return the dedupe threshold."""
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


def check_solver(solver: str, dedupe: bool, parties: Sequence[str]) -> None:
    """Refuse, before any work, what the optimal solver cannot do (it matches exactly two
    parties one-to-one): dedupe, or a third party. InputError in the command line's words."""
    if solver != "optimal":
        return
    if dedupe:
        raise InputError("--solver optimal cannot --dedupe (it links two parties one-to-one); "
                         "use --solver greedy")  # fmt: skip
    distinct = list(dict.fromkeys(parties))
    if len(distinct) > 2:
        raise InputError(
            f"--solver optimal links exactly two parties one-to-one, and these files hold "
            f"{len(distinct)} ({', '.join(distinct)}); use --solver greedy to link more"
        )


def check_seed(seed: object) -> None:
    """A seed is None or a whole number >= 0 (numpy's generators refuse negative seeds, and a
    run must not fail for it after all its work); InputError otherwise."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed must be a whole number >= 0, got {seed!r}")


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` numba threads inside the block, restoring the previous count after."""
    import numba

    before = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        numba.set_num_threads(before)


def match(
    inputs: Sequence[EncodedTable | str | Path],
    *,
    threshold: float | None = None,
    blocking: str = "auto",
    dedupe: bool = False,
    dedupe_threshold: float | None = None,
    solver: str = "greedy",
    threads: int | None = None,
    seed: int | None = None,
    max_block: int = DEFAULT_MAX_BLOCK,
    max_candidates: int | Literal["auto"] | None = "auto",
    warn: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
    scheduler: Any = None,
    partitions: int | None = None,
    engine: Engine | None = None,
    scoring: str = "auto",
    one_to_one: bool = False,
) -> LinkageResult:
    """Link encoded files (paths or :class:`EncodedTable`) into entities.

    ``threshold``: minimum Dice score of a pair (default: the recommended threshold that the
    schema's ``match.threshold`` wrote into the encoded files, else :data:`DEFAULT_THRESHOLD`;
    hardening moves Dice, see docs/privacy.md). ``blocking``: auto, none, keys or lsh.
    ``dedupe``: records of one party may join one entity, through a within-party pair scoring
    at least ``dedupe_threshold`` (default ``max(threshold, 0.8)``: duplicates are nearer to
    each other than to household members). ``solver``: greedy or optimal (two
    parties). ``threads``: numba threads (default: all cores). ``seed``: makes entity ids and
    LSH sampling reproducible (entity ids are random per run when None). ``scheduler``:
    score candidates on Dask (``local[:N]``, ``tls://HOST:PORT``, a DaskSession or a Client;
    inputs must be paths every worker can read; see docs/scale.md); ``partitions``: its task
    count. ``engine``: any other candidate engine (:class:`linkage.tlu.engines.Engine`).
    ``scoring``: ``auto`` (field-aware when the inputs have the segmented layout, else Dice),
    ``fields`` or ``dice``. Field-aware scoring (docs/quality.md) takes candidates at Dice >=
    ``CANDIDATE_THRESHOLD``, scores them by per-field Fellegi-Sunter weights fitted without
    labels and forms coherent clusters, duplicates within a party included unless
    ``one_to_one``; ``threshold`` and ``dedupe`` then do not apply. ``max_candidates``:
    candidate pairs kept per record, its best by score (ties by record order); ``auto``:
    :data:`DEFAULT_MAX_CANDIDATES` (100) with Dice scoring, ``FIELD_MAX_CANDIDATES`` with
    field-aware scoring (a design choice there: at Dice >= 0.5 most records of a large job
    have more, so it is reported in the statistics, not warned about); an int is used as
    given in either flow; None keeps every pair.

    Raises :class:`InputError` on bad options or inputs, :class:`CompatibilityError`
    when the inputs were encoded with different schemas, secrets or formats, and TypeError
    when ``inputs`` is one path or table instead of a list.
    """
    from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD

    if isinstance(inputs, (str, bytes, Path, EncodedTable)):  # a path iterates as letters
        raise TypeError(
            "inputs must be a list of encoded files or tables (match(['a.parquet', "
            f"'b.parquet'])), not one {type(inputs).__name__}"
        )
    check_options(DEFAULT_THRESHOLD if threshold is None else threshold, dedupe_threshold,
                  blocking, threads)  # fmt: skip
    check_seed(seed)
    _check_cap(max_candidates)
    if engine is None:
        if scheduler is not None:
            from linkage.tlu.dask_match import DaskEngine

            engine = DaskEngine(scheduler, partitions=partitions, warn=warn)
        else:
            engine = InProcessEngine()
    warn = warn or (lambda m: None)
    say = progress or (lambda m: None)
    seconds: dict[str, float] = {}
    memory: dict[str, int] = {}  # stage -> peak resident memory of the process after it
    with numba_threads(threads):
        try:
            t0 = time.perf_counter()
            encs, names = engine.load(inputs)
            check_compatible(encs, names, dedupe)
            check_solver(solver, dedupe, [e.party for e in encs])
            fields = _field_scoring(scoring, encs, names)
            _say_unused(fields is not None, threshold, dedupe, dedupe_threshold, solver,
                        one_to_one, warn)  # fmt: skip
            if threshold is None:
                threshold = recommended_threshold(encs)
                if fields is None:  # field-aware scoring decides by match weight instead
                    say(f"threshold {threshold:g} (recommended by the encoded files' schema)")
            dedupe_threshold = check_options(threshold, dedupe_threshold, blocking, threads)
            seconds["read"] = time.perf_counter() - t0
            memory["read"] = peak_rss()
            say(f"read {sum(len(e) for e in encs)} records from {len(encs)} file(s)")

            t0 = time.perf_counter()
            with_dups = dedupe or (fields is not None and not one_to_one)
            opts = CandidateOptions(
                threshold=CANDIDATE_THRESHOLD if fields else threshold,
                strategy=blocking,
                dedupe=with_dups,
                dedupe_threshold=(CANDIDATE_THRESHOLD if fields else dedupe_threshold)
                if with_dups
                else None,
                seed=0 if seed is None else seed,
                max_block=max_block,
                max_candidates=_cap(max_candidates, fields is not None),
                warn_cap=fields is None,  # field-aware: the cap is the design, in the stats
            )
            cand = engine.candidates(encs, opts, warn)
            seconds["candidates+scoring"] = time.perf_counter() - t0
            memory["candidates+scoring"] = peak_rss()
            if fields:
                say(_field_candidates_line(cand, opts.max_candidates))
            else:
                say(f"blocking {cand.strategy}: {len(cand.left)} pairs >= {threshold}")
        finally:
            engine.close()
        result = finish(
            encs, cand, dedupe=dedupe, solver=solver, seed=seed, threshold=threshold,
            dedupe_threshold=dedupe_threshold, seconds=seconds, fields=fields,
            one_to_one=one_to_one,
        )  # fmt: skip
        where = engine.describe()
    result.stats.engine = engine.name
    result.stats.threads = int(where.get("threads", 1))
    result.stats.workers = where.get("workers")
    result.stats.memory = {**memory, **result.stats.memory}
    return result


def _say_unused(
    fields: bool,
    threshold: float | None,
    dedupe: bool,
    dedupe_threshold: float | None,
    solver: str,
    one_to_one: bool,
    warn: Callable[[str], None],
) -> None:
    """Warn about options the chosen flow does not use, so a run is never silently other
    than what was asked for."""
    from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD

    if fields:
        unused = [name for name, given in (
            ("threshold", threshold is not None),
            ("dedupe", dedupe),
            ("dedupe_threshold", dedupe_threshold is not None),
            (f"solver {solver!r}", solver != "greedy"),
        ) if given]  # fmt: skip
        if unused:
            warn(
                f"field-aware scoring (segmented layout) does not use {', '.join(unused)}: it "
                f"takes candidates at Dice >= {CANDIDATE_THRESHOLD:g} and links pairs by match "
                "probability in coherent clusters, duplicates within a party included (one_to_one "
                "to exclude them); scoring='dice' links by a Dice threshold instead"
            )
    elif one_to_one:
        warn(
            "one_to_one applies to field-aware scoring only; the Dice flow is one-to-one "
            "already unless dedupe is on"
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
    fields: Comparisons | None = None,
    one_to_one: bool = False,
) -> LinkageResult:
    """Solve scored pairs into entities and build the links / pairs tables and statistics
    (with ``fields``: rescored field-aware and clustered coherently, see :func:`match`)."""
    import numba

    from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD, solve_fields

    sizes = [len(e) for e in encs]
    party = np.repeat(np.arange(len(encs), dtype=np.int32), sizes)
    t0 = time.perf_counter()
    histogram = cand.score_histogram()  # binned Dice scores of the candidates, before solving
    rank = record_rank([e.party for e in encs], [e.record_ids for e in encs])
    field_scores = None
    if fields is not None:
        res, cand, field_scores = solve_fields(
            encs, cand, party, fields, seed=seed, one_to_one=one_to_one, rank=rank,
            parallel=numba.get_num_threads() > 1,
        )  # fmt: skip
    else:
        res = solve(
            cand.left, cand.right, cand.score, party, dedupe=dedupe, solver=solver, rank=rank,  # type: ignore[arg-type]
        )  # fmt: skip
    ids = assign_entity_ids(res.labels, seed)
    seconds["solve"] = time.perf_counter() - t0
    memory = {"solve": peak_rss()}

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
    memory["output"] = peak_rss()
    ent_sizes = np.bincount(res.labels)
    by_size = np.bincount(ent_sizes)
    stats = MatchStats(
        records_per_party={e.party: len(e) for e in encs},
        threshold=CANDIDATE_THRESHOLD if fields is not None else threshold,
        dedupe_threshold=dedupe_threshold if dedupe else None,
        blocking=cand.strategy,
        blocking_detail=dict(cand.detail),
        candidates=cand.compared,
        possible_pairs=cand.possible,
        reduction_ratio=cand.reduction_ratio,
        pairs_above_threshold=len(cand.left),
        matched_pairs=int(m.sum()),
        entities=len(ent_sizes),
        entities_by_size={int(k): int(v) for k, v in enumerate(by_size) if k and v},
        engine="in-process",
        threads=numba.get_num_threads(),
        seconds=seconds,
        score_histogram=histogram,
        memory=memory,
        stub_records=stub_records(encs),
        scoring="fields" if fields is not None else "dice",
    )
    result = LinkageResult(links, pairs, stats, dict(encs[0].meta) if encs else {})
    result.field_scores = field_scores  # the model and per-pair levels, for waterfalls
    return result


def _check_cap(max_candidates: object) -> None:
    """Refuse a ``max_candidates`` that is not None, ``auto`` or an int >= 1."""
    if max_candidates is None or max_candidates == "auto":
        return
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, int | np.integer):
        raise InputError(f"--max-candidates must be a whole number, got {max_candidates!r}")
    if max_candidates < 1:
        raise InputError(f"--max-candidates must be >= 1, got {max_candidates}")


def _cap(max_candidates: int | Literal["auto"] | None, fields: bool) -> int | None:
    """Candidates per record: ``auto`` is the flow's default, anything else as given."""
    from linkage.tlu.scoring.rescore import FIELD_MAX_CANDIDATES

    if max_candidates == "auto":
        return FIELD_MAX_CANDIDATES if fields else DEFAULT_MAX_CANDIDATES
    return None if max_candidates is None else int(max_candidates)


def _field_candidates_line(cand: Candidates, k: int | None) -> str:
    """The progress line of field-aware candidates: pairs, and how many records the
    per-record cap trimmed (most of a large job's: the candidate Dice is low)."""
    from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD

    line = f"blocking {cand.strategy}: {len(cand.left)} candidate pairs >= {CANDIDATE_THRESHOLD}"
    capped = cand.detail.get("capped_records")
    if k is not None and isinstance(capped, int) and capped:
        line += f"; {capped} records had more than {k} and kept their {k} best by Dice"
    return line


def _field_scoring(
    scoring: str, encs: Sequence[EncodedTable], names: Sequence[str]
) -> Comparisons | None:
    """The comparisons for field-aware scoring, or None (``scoring``: auto, fields, dice)."""
    from linkage.tlu.scoring.rescore import field_layout

    if scoring not in ("auto", "fields", "dice"):
        raise InputError(f"unknown scoring {scoring!r} (choose auto, fields or dice)")
    if scoring == "dice":
        return None
    if not all("clk" in e.table.column_names for e in encs):  # an engine whose workers read them
        if scoring == "fields" or field_layout(encs, names) is not None:
            raise InputError(
                "field-aware scoring of segmented encodings runs in this process, not on Dask "
                "workers: drop --scheduler, or give --scoring dice to score by Dice on Dask"
            )
        return None
    fields = field_layout(encs, names)
    if fields is None and scoring == "fields":
        raise InputError(
            "--scoring fields needs encodings made with the segmented layout "
            '("filter": {"layout": "segments"}, docs/quality.md)'
        )
    return fields
