"""Candidate engines: the one hook of the match flow that differs between in-process and Dask.

An engine loads the encoded inputs (all of them, or only ids and metadata when its workers
read the filters themselves) and produces :class:`~linkage.tlu.blocking.Candidates`: scored
pairs at or above the threshold. Everything else (option checks, compatibility checks,
solving, the linkage map and its statistics) is the one flow in :mod:`linkage.tlu.linker`,
so every engine gives the same links for the same seed (tests run each behaviour test on
every engine: ``tests/engines.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow.compute as pc

from linkage.encoded import EncodedTable, read_encoded
from linkage.tlu.blocking import DEFAULT_MAX_CANDIDATES, Candidates, generate
from linkage.tlu.solver import record_rank

Inputs = Sequence[EncodedTable | str | Path]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class CandidateOptions:
    """What every engine is asked for: pairs with Dice >= ``threshold`` (within one party,
    >= ``dedupe_threshold`` when ``dedupe``), found by ``strategy`` (auto, none, keys, lsh)."""

    threshold: float
    strategy: str
    dedupe: bool
    dedupe_threshold: float | None  # None unless dedupe
    seed: int
    max_block: int
    max_candidates: int | None = DEFAULT_MAX_CANDIDATES  # per record (None: no cap)
    warn_cap: bool = True  # warn when the cap bites (always in the details)


class Engine(Protocol):
    """A candidate engine (see the module docstring)."""

    name: str

    def load(self, inputs: Inputs) -> tuple[list[EncodedTable], list[str]]:
        """The inputs as tables (display names beside them), in party order."""
        ...

    def candidates(
        self, encs: Sequence[EncodedTable], opts: CandidateOptions, warn: Warn
    ) -> Candidates:
        """Scored candidate pairs over the concatenated records of ``encs``."""
        ...

    def describe(self) -> dict[str, int]:
        """Where the scoring ran (e.g. threads, workers): for the statistics."""
        ...

    def close(self) -> None: ...


def load_tables(inputs: Inputs) -> tuple[list[EncodedTable], list[str]]:
    """Read encoded files (or take tables); names are file names or ``party P``."""
    encs, names = [], []
    for item in inputs:
        if isinstance(item, EncodedTable):
            encs.append(item)
            names.append(f"party {item.party}")
        else:
            encs.append(read_encoded(item))
            names.append(Path(item).name)
    return encs, names


def block_key_arrays(
    encs: Sequence[EncodedTable], offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(keys uint64, owner record index int64) over all records, or None without keys."""
    if not all(e.has_block_keys for e in encs):
        return None
    keys_parts, owner_parts = [], []
    for p, e in enumerate(encs):
        col = e.table.column("block_keys").combine_chunks()
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
        lens = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
        keys_parts.append(flat)
        owner_parts.append(np.repeat(np.arange(len(e), dtype=np.int64) + offsets[p], lens))
    return np.concatenate(keys_parts), np.concatenate(owner_parts)


class InProcessEngine:
    """Candidates in this process, on numba threads (:func:`linkage.tlu.blocking.generate`)."""

    name = "in-process"

    def load(self, inputs: Inputs) -> tuple[list[EncodedTable], list[str]]:
        return load_tables(inputs)

    def candidates(
        self, encs: Sequence[EncodedTable], opts: CandidateOptions, warn: Warn
    ) -> Candidates:
        import numba  # here, not at module level: see linkage.tlu.blocking

        from linkage.kernels.popcount import popcount_rows

        sizes = [len(e) for e in encs]
        offsets = np.zeros(len(encs) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        filters = np.ascontiguousarray(np.concatenate([e.filters for e in encs]))
        party = np.repeat(np.arange(len(encs), dtype=np.int32), sizes)
        return generate(
            filters,
            offsets,
            party,
            popcount_rows(filters),
            opts.threshold,
            strategy=opts.strategy,
            dedupe=opts.dedupe,
            block_keys=block_key_arrays(encs, offsets),
            seed=opts.seed,
            parallel=numba.get_num_threads() > 1,
            max_block=opts.max_block,
            dedupe_threshold=opts.dedupe_threshold,
            warn=warn,
            max_candidates=opts.max_candidates,
            warn_cap=opts.warn_cap,
            rank=lambda: record_rank([e.party for e in encs], [e.record_ids for e in encs]),
        )

    def describe(self) -> dict[str, int]:
        import numba

        return {"threads": numba.get_num_threads()}

    def close(self) -> None:
        pass
