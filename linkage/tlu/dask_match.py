"""Scale-out on Dask: candidate generation and scoring as tasks over partitions.

The in-process engine (:func:`linkage.tlu.linker.match`) is the reference; this module reproduces
its scored pairs exactly, so that solving afterwards (in the client, same code) gives identical
links for the same seed.

What travels (see docs/scale.md): into each task go FILE PATHS (local paths visible to every
worker, or ``scheme://`` URLs that ``pyarrow.fs`` understands) plus small parameters (threshold,
partition number, LSH bit positions); each task reads what it needs from the encoded Parquet
files itself (never through the scheduler; no shuffle of ``clk``). Out of each task come the
scored pairs at or above the threshold (global record indices and scores), a few counters and
warning texts. No secret is needed or sent for matching.

Partitions:

- ``keys`` / ``lsh``: the key space is split by ``key % P``; task ``i`` streams every file,
  keeps the (key, record) entries whose key falls in partition ``i`` and the filters of those
  records, and scores those groups with :func:`linkage.tlu.blocking.score_blocks` (the same kernels
  as in-process). Every group lands in exactly one partition; a pair sharing keys in two
  partitions is scored twice and de-duplicated in the client, exactly as score_blocks does.
  For ``lsh`` the fill (popcount fraction) is summed exactly over per-file tasks first; bands,
  rows and bit positions come from the same seed as in-process.
- ``none``: for every party pair (p, q), p <= q, the rows of file p are tiled into ranges; a
  task scores its rows of p against all of q (or, within a party with dedupe, against its own
  tile and the rows after it), with the same all-pairs kernels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.dask_session import DaskSession, SchedulerSpec, Warn, open_scheduler
from linkage.encoded import (
    FORMAT_VERSION,
    EncodedTable,
    arrow_to_filters,
    decode_meta,
    is_url,
    open_parquet,
    read_meta,
)
from linkage.errors import CompatibilityError, InputError, LinkageError
from linkage.integrity import expected_digests, verify, verify_metadata
from linkage.tlu.blocking import (
    DEFAULT_MAX_BLOCK,
    STRATEGIES,
    Candidates,
    bands_rows,
    cap_candidates,
    choose_strategy,
    possible_pairs,
    score_blocks,
)
from linkage.tlu.engines import CandidateOptions
from linkage.tlu.solver import record_rank

BATCH_ROWS = 65_536  # rows per streamed Parquet batch inside a task
TARGET_RECALL = 0.995  # as linkage.tlu.blocking.generate's default


# ---------------------------------------------------------------------------------------------
# Scheduler specification
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Worker-side reading (each task opens the files itself)
# ---------------------------------------------------------------------------------------------


def _read_rows(path: str, r0: int, r1: int) -> np.ndarray:
    """Filters of rows r0..r1-1 of an encoded file, reading only the row groups needed."""
    pf = open_parquet(path)
    md = pf.metadata
    groups, first, start = [], -1, 0
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        if start < r1 and start + n > r0:
            if first < 0:
                first = start
            groups.append(g)
        start += n
    width = pf.schema_arrow.field("clk").type.byte_width
    if not groups:
        return np.zeros((0, width // 8), np.uint64)
    part = pf.read_row_groups(groups, columns=["clk"])
    meta = decode_meta(md.metadata or {})
    expected = [{"clk": g.get("clk", "")} for g in expected_digests(meta, path)]
    verify_metadata(meta, path)  # as the client and in-process reads check it
    rows = [md.row_group(g).num_rows for g in groups]
    verify(part, rows, expected, path, groups[0])  # the row groups this task reads
    col = part.column("clk").slice(r0 - first, r1 - r0)
    return np.ascontiguousarray(arrow_to_filters(col))


def _iter_batches(path: str, columns: list[str]) -> Any:
    return open_parquet(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def _parallel() -> bool:
    return numba.get_num_threads() > 1


def warm_worker() -> bool:
    """Import the kernels and run each once on tiny inputs, so that numba loads (or compiles
    and caches) them once per worker process, not inside the first task."""
    from linkage.kernels.dice import allpairs_dice, dedup_dice
    from linkage.kernels.lsh import band_keys
    from linkage.kernels.popcount import popcount_rows

    par = _parallel()
    f = np.zeros((3, 16), np.uint64)
    f[:, 0] = 1
    allpairs_dice(f, f, 0.5, parallel=par)
    dedup_dice(f, 0.5, parallel=par)
    band_keys(f, np.zeros((2, 3), np.int64), parallel=par)
    pop = popcount_rows(f)
    keys = np.zeros(3, np.uint64)
    owners = np.arange(3, dtype=np.int64)
    party = np.array([0, 1, 1], np.int32)
    score_blocks(keys, owners, f, pop, party, 0.5, True, par, 2, lambda m: None)
    score_blocks(keys, owners, f, pop, party, 0.5, False, par, 5, lambda m: None)
    return True


def _fill_task(path: str) -> tuple[int, int]:
    """(set bits, total bits) of one encoded file (exact integers)."""
    ones = total = 0
    for batch in _iter_batches(path, ["clk"]):
        f = arrow_to_filters(batch.column("clk"))
        ones += int(np.bitwise_count(f).sum(dtype=np.uint64))
        total += f.size * 64
    return ones, total


def _keys_task(
    files: list[tuple[str, int]],
    part: int,
    nparts: int,
    positions: np.ndarray | None,
    threshold: float,
    dedupe: bool,
    max_block: int,
) -> dict[str, Any]:
    """Score the groups whose key % nparts == part (block keys, or LSH band keys when
    ``positions`` is given). ``files``: (path, global offset of its first record)."""
    from linkage.kernels.lsh import band_keys
    from linkage.kernels.popcount import popcount_rows

    np_ = np.uint64(nparts)
    pv = np.uint64(part)
    key_parts: list[np.ndarray] = []
    own_parts: list[np.ndarray] = []
    filt_parts: list[np.ndarray] = []
    gid_parts: list[np.ndarray] = []
    party_parts: list[np.ndarray] = []
    n_kept = 0
    for p, (path, offset) in enumerate(files):
        cols = ["clk"] if positions is not None else ["clk", "block_keys"]
        g0 = offset
        for batch in _iter_batches(path, cols):
            f = arrow_to_filters(batch.column("clk"))
            nb = f.shape[0]
            if positions is not None:
                bk = band_keys(f, positions, parallel=_parallel())
                flat = bk.reshape(-1)
                local = np.repeat(np.arange(nb, dtype=np.int64), positions.shape[0])
            else:
                col = batch.column("block_keys")
                flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
                lens = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
                local = np.repeat(np.arange(nb, dtype=np.int64), lens)
            sel = (flat % np_) == pv
            k, o = flat[sel], local[sel]
            rows = np.unique(o)
            key_parts.append(k)
            own_parts.append(np.searchsorted(rows, o).astype(np.int64) + n_kept)
            filt_parts.append(f[rows])
            gid_parts.append(rows + g0)
            party_parts.append(np.full(len(rows), p, np.int32))
            n_kept += len(rows)
            g0 += nb
    width = filt_parts[0].shape[1] if filt_parts else 1
    keys = np.concatenate(key_parts) if key_parts else np.zeros(0, np.uint64)
    owners = np.concatenate(own_parts) if own_parts else np.zeros(0, np.int64)
    filters = (
        np.ascontiguousarray(np.concatenate(filt_parts))
        if filt_parts
        else np.zeros((0, width), np.uint64)
    )
    gids = np.concatenate(gid_parts) if gid_parts else np.zeros(0, np.int64)
    party = np.concatenate(party_parts) if party_parts else np.zeros(0, np.int32)
    pop = popcount_rows(filters)
    _u, counts = np.unique(keys, return_counts=True)  # group sizes as score_blocks sees them
    over = counts[counts > max_block]
    left, right, score, stats = score_blocks(
        keys, owners, filters, pop, party, threshold, dedupe, _parallel(), max_block,
        lambda m: None,
    )  # fmt: skip
    stats["largest_oversize"] = int(over.max()) if len(over) else 0
    # gids is increasing, so compact order (left < right, sorted) maps to global order
    return {
        "left": gids[left],
        "right": gids[right],
        "score": score,
        "stats": stats,
        "records_read": int(n_kept),
    }


def _tile_task(
    path_a: str,
    r0: int,
    r1: int,
    off_a: int,
    path_b: str,
    off_b: int,
    within: bool,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs >= threshold between rows r0..r1-1 of file a and file b (global indices);
    ``within`` (a is b): pairs i < j with i in the tile, sorted by (i, j)."""
    from linkage.kernels.dice import allpairs_dice, dedup_dice

    par = _parallel()
    a = _read_rows(path_a, r0, r1)
    if not within:
        n_b = open_parquet(path_b).metadata.num_rows
        b = _read_rows(path_b, 0, n_b)
        r, c, s = allpairs_dice(a, b, threshold, parallel=par)
        return r + (off_a + r0), c + off_b, s
    n_a = open_parquet(path_a).metadata.num_rows
    r_1, c_1, s_1 = dedup_dice(a, threshold, parallel=par)
    b = _read_rows(path_a, r1, n_a)
    r_2, c_2, s_2 = allpairs_dice(a, b, threshold, parallel=par)
    rows = np.concatenate([r_1, r_2])
    cols = np.concatenate([c_1, c_2 + (r1 - r0)])
    sc = np.concatenate([s_1, s_2])
    o = np.lexsort((cols, rows))
    base = off_a + r0
    return rows[o] + base, cols[o] + base, sc[o]


# ---------------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------------


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _tiles(n: int, k: int) -> list[tuple[int, int]]:
    k = max(1, min(k, n))
    step = math.ceil(n / k) if n else 1
    return [(r, min(n, r + step)) for r in range(0, n, step)]


def generate_distributed(
    paths: Sequence[str | Path],
    sizes: Sequence[int],
    threshold: float,
    *,
    client: Any,
    strategy: str,
    dedupe: bool,
    have_keys: bool,
    seed: int,
    max_block: int = DEFAULT_MAX_BLOCK,
    target_recall: float = TARGET_RECALL,
    dedupe_threshold: float | None = None,
    partitions: int | None = None,
    warn: Warn | None = None,
    _task_delay: float = 0.0,
) -> Candidates:
    """Scored pairs as :func:`linkage.tlu.blocking.generate` returns them, computed as Dask tasks.

    ``paths``: encoded files (readable by every worker), in party order; ``sizes`` their record
    counts. ``partitions``: key partitions (keys/lsh; default one per worker thread) or row
    tiles per party pair (none; default two per worker thread). Pairs, scores and their order
    are identical to the in-process engine for the same arguments.
    """
    from linkage.kernels.lsh import sample_positions

    warn = warn or (lambda m: None)
    files = [str(p) for p in paths]
    sizes = [int(s) for s in sizes]
    offsets = np.zeros(len(files) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    possible = possible_pairs(sizes, dedupe)
    if strategy == "auto":
        strategy = choose_strategy(sizes, dedupe, have_keys)
    if partitions is None:
        # keys/lsh: every task streams all files, so one task per worker thread; none: tiles
        # read only their rows of p (and all of q), so two per thread balance better
        threads = max(1, sum(client.nthreads().values()))
        partitions = 2 * threads if strategy == "none" else threads
    if partitions < 1:
        raise InputError(f"partitions must be >= 1, got {partitions}")
    delay = _task_delay
    t0 = time.perf_counter()
    detail: dict[str, object] = {}
    if strategy == "none":
        t_within = threshold if dedupe_threshold is None else dedupe_threshold
        futures = []
        compared = 0
        for p in range(len(files)):
            a0, a1 = int(offsets[p]), int(offsets[p + 1])
            if dedupe and a1 - a0 > 1:
                for r0, r1 in _tiles(a1 - a0, partitions):
                    args = (files[p], r0, r1, a0, files[p], a0, True, t_within)
                    futures.append(client.submit(_delayed(_tile_task, delay), *args, pure=False))
                compared += (a1 - a0) * (a1 - a0 - 1) // 2
            for q in range(p + 1, len(files)):
                b0, b1 = int(offsets[q]), int(offsets[q + 1])
                if a1 == a0 or b1 == b0:
                    continue
                for r0, r1 in _tiles(a1 - a0, partitions):
                    args = (files[p], r0, r1, a0, files[q], b0, False, threshold)
                    futures.append(client.submit(_delayed(_tile_task, delay), *args, pure=False))
                compared += (a1 - a0) * (b1 - b0)
        results = client.gather(futures)
        left = _cat([r[0] for r in results], np.int64)
        right = _cat([r[1] for r in results], np.int64)
        score = _cat([r[2] for r in results], np.float64)
        detail["tasks"] = len(futures)
    elif strategy in ("keys", "lsh"):
        positions = None
        if strategy == "keys":
            if not have_keys:
                raise LinkageError(
                    "--blocking keys needs block keys in every file (the schema defines none); "
                    "use --blocking lsh"
                )
        else:
            fills = client.gather([client.submit(_fill_task, f, pure=False) for f in files])
            ones = sum(o for o, _ in fills)
            total = sum(t for _, t in fills)
            fill = float(ones) / max(1, total)
            fill = min(max(fill, 0.05), 0.95)
            length = total // max(1, sum(sizes)) if sum(sizes) else 64
            bands, rows = bands_rows(threshold, target_recall, int(length), fill)
            positions = sample_positions(int(length), bands, rows, seed)
            detail.update({"bands": bands, "rows": rows, "fill": round(fill, 3)})
        t_low = threshold
        if dedupe and dedupe_threshold is not None:
            t_low = min(threshold, dedupe_threshold)
        file_args = [(files[p], int(offsets[p])) for p in range(len(files))]
        keys_fn = _delayed(_keys_task, delay)
        futures = [
            client.submit(
                keys_fn,
                file_args,
                i,
                partitions,
                positions,
                t_low,
                dedupe,
                max_block,
                pure=False,
            )
            for i in range(partitions)
        ]
        results = client.gather(futures)
        left = _cat([r["left"] for r in results], np.int64)
        right = _cat([r["right"] for r in results], np.int64)
        score = _cat([r["score"] for r in results], np.float64)
        if len(left):
            from linkage.kernels.blocking import dedupe_sorted_pairs

            o = np.lexsort((right, left))
            left, right, score = left[o], right[o], score[o]
            keep = dedupe_sorted_pairs(left, right)
            left, right, score = left[keep], right[keep], score[keep]
        stats: dict[str, int] = {}
        largest = 0
        for r in results:
            for k, v in r["stats"].items():
                if k == "largest_oversize":
                    largest = max(largest, int(v))
                else:
                    stats[k] = stats.get(k, 0) + int(v)
        if stats.get("oversize_blocks"):
            warn(oversize_warning(stats["oversize_blocks"], max_block, largest))
        detail.update({k: v for k, v in stats.items() if k != "compared_with_repeats"})
        detail["compared_with_repeats"] = stats.get("compared_with_repeats", 0)
        compared = int(stats.get("compared_with_repeats", 0))
        if dedupe and dedupe_threshold is not None and dedupe_threshold != threshold:
            party = np.repeat(np.arange(len(files), dtype=np.int32), sizes)
            within = party[left] == party[right]
            keep = np.where(within, score >= dedupe_threshold, score >= threshold)
            left, right, score = left[keep], right[keep], score[keep]
        detail["partitions"] = partitions
    else:
        raise LinkageError(f"unknown blocking {strategy!r} (choose {', '.join(STRATEGIES)})")
    detail["seconds"] = round(time.perf_counter() - t0, 3)
    return Candidates(left, right, score, strategy, min(compared, possible), possible, detail)


def oversize_warning(n_blocks: int, max_block: int, largest: int) -> str:
    """The warning :func:`~linkage.tlu.blocking.score_blocks` gives for oversize blocks."""
    return (
        f"{n_blocks} block(s) exceed --max-block {max_block} (largest "
        f"{largest} records); they are scored with the all-pairs kernel, "
        "not dropped"
    )


class _delayed:
    """A picklable wrapper that sleeps before calling (tests use it to kill a worker mid-run)."""

    def __init__(self, fn: Callable[..., Any], delay: float) -> None:
        self.fn = fn
        self.delay = delay
        self.__name__ = fn.__name__  # dask names tasks after this

    def __call__(self, *args: Any) -> Any:
        if self.delay:
            time.sleep(self.delay)
        return self.fn(*args)


def _light_inputs(
    paths: Sequence[EncodedTable | str | Path],
) -> tuple[list[EncodedTable], list[str], list[str]]:
    """Record ids and metadata of each file (no filters): what the client needs to check
    compatibility and write the outputs. Returns (tables, display names, path strings)."""
    encs, names, strs = [], [], []
    for item in paths:
        if isinstance(item, EncodedTable):
            raise InputError(
                "--scheduler needs encoded FILES (paths every worker can read), not tables"
            )
        s = str(item)
        if is_url(s):
            try:
                pf = open_parquet(s)
            except (OSError, pa.ArrowInvalid) as exc:
                raise InputError(f"{s}: cannot open ({exc.__class__.__name__})") from None
            meta = decode_meta(pf.metadata.metadata or {})
            if "format_version" not in meta or "filter_length" not in meta:
                raise InputError(f"{s}: not a linkage encoded file; make it with `linkage encode`")
            name = s.rstrip("/").rsplit("/", 1)[-1]
        else:
            meta = read_meta(s)
            pf = open_parquet(s)
            name = Path(s).name
        expected_digests(meta, s)  # a file without checksums is refused here, as in-process
        verify_metadata(meta, s)  # and one whose metadata was changed after encoding
        if meta["format_version"] != FORMAT_VERSION:
            raise CompatibilityError(
                f"{s}: encoded-file format version {meta['format_version']} is not supported "
                f"(this linkage reads version {FORMAT_VERSION})"
            )
        schema = pf.schema_arrow
        length = int(meta["filter_length"])
        for col in ("record_id", "clk"):
            if col not in schema.names:
                raise InputError(f"{s}: column {col!r} is missing")
        if schema.field("clk").type != pa.binary(length // 8):
            raise InputError(
                f"{s}: column 'clk' should be fixed_size_binary({length // 8}) for {length}-bit "
                f"filters, got {schema.field('clk').type}"
            )
        table = pf.read(columns=["record_id"])
        if "block_keys" in schema.names:  # a placeholder: the client never reads the keys
            table = table.append_column("block_keys", pa.nulls(table.num_rows))
        encs.append(EncodedTable(table, meta))
        names.append(name)
        strs.append(s)
    return encs, names, strs


class DaskEngine:
    """Candidates as Dask tasks whose workers read the encoded files themselves.

    ``scheduler``: ``local``, ``local:N``, ``tcp://`` / ``tls://HOST:PORT``, a
    :class:`~linkage.dask_session.DaskSession` or a ``dask.distributed.Client``. The client
    reads only record ids and metadata; inputs must be paths (or URLs) every worker can read.
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | SchedulerSpec | DaskSession | Any,
        *,
        partitions: int | None = None,
        warn: Warn | None = None,
        _task_delay: float = 0.0,
    ) -> None:
        self.scheduler = scheduler
        self.partitions = partitions
        self.warn = warn
        self._task_delay = _task_delay
        self.files: list[str] = []
        self.workers = self.worker_threads = 0

    def load(
        self, inputs: Sequence[EncodedTable | str | Path]
    ) -> tuple[list[EncodedTable], list[str]]:
        encs, names, self.files = _light_inputs(inputs)
        return encs, names

    def candidates(
        self, encs: Sequence[EncodedTable], opts: CandidateOptions, warn: Warn
    ) -> Candidates:
        owned: DaskSession | None = None
        if isinstance(self.scheduler, DaskSession):
            client = self.scheduler.client
        elif isinstance(self.scheduler, (str, SchedulerSpec)):
            owned = open_scheduler(self.scheduler, self.warn or warn, warm=warm_worker)
            client = owned.client
        else:
            client = self.scheduler  # a dask.distributed.Client
        try:
            cand = generate_distributed(
                self.files, [len(e) for e in encs], opts.threshold, client=client,
                strategy=opts.strategy, dedupe=opts.dedupe,
                have_keys=all(e.has_block_keys for e in encs), seed=opts.seed,
                max_block=opts.max_block, dedupe_threshold=opts.dedupe_threshold,
                partitions=self.partitions, warn=warn, _task_delay=self._task_delay,
            )  # fmt: skip
            self.workers = len(client.nthreads())
            self.worker_threads = sum(client.nthreads().values())
        finally:
            if owned is not None:
                owned.close()
        # the in-process engine caps while it scores; here the gathered pairs, alike
        rank = lambda: record_rank([e.party for e in encs], [e.record_ids for e in encs])  # noqa: E731
        return cap_candidates(cand, opts.max_candidates, rank, warn)

    def describe(self) -> dict[str, int]:
        return {"workers": self.workers, "threads": self.worker_threads}

    def close(self) -> None:
        pass
