"""The result of a match: the linkage map (links), matched pairs and typed statistics.

``links`` has ``entity_id, party, record_id`` for every input record (singletons included);
``pairs`` has ``party_a, record_id_a, party_b, record_id_b, score`` for matched pairs.
Written files carry metadata like encoded files do (``linkage.`` keys in the Parquet
footer): format version, schema fingerprint, key-check value, parties and counts, so a later
step (evaluation, an incremental update) can check that it belongs to the same project.
Similarity scores are sensitive (they help re-identification): write pairs only when needed.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from linkage._files import PARQUET, Output, atomic_outputs, check_outputs
from linkage.encoded import EncodedTable, metadata_bytes

LINKS_FORMAT_VERSION = "1"


@dataclass
class MatchStats:
    """Figures of one match (counts are exact; seconds are wall-clock per stage).

    ``reduction_ratio`` = 1 - candidates / possible pairs (Christen, TKDE 2012).
    ``entities_by_size``: entity size -> number of entities of that size.
    ``score_histogram``: binned Dice scores of the candidate pairs (``edges``, ``counts``,
    ``scope``: "all candidates" when blocking scored pairs below the threshold, counted there
    from a 1-in-``sample_stride`` sample, else "at or above the threshold"; see
    :meth:`linkage.tlu.blocking.Candidates.score_histogram`); never single scores.
    ``memory``: stage -> peak resident memory of the process after that stage (bytes; the
    high-water mark so far, ``getrusage`` ru_maxrss). ``stub_records``: party -> records the
    partner left out of its file for too little evidence, when the files say (metadata key
    ``rows_unlinkable``); None when no file does.
    """

    records_per_party: dict[str, int]
    threshold: float
    dedupe_threshold: float | None
    blocking: str
    blocking_detail: dict[str, object]
    candidates: int
    possible_pairs: int
    reduction_ratio: float
    pairs_above_threshold: int
    matched_pairs: int
    entities: int
    entities_by_size: dict[int, int]
    engine: str
    threads: int
    workers: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    score_histogram: dict[str, object] | None = None
    memory: dict[str, int] = field(default_factory=dict)
    stub_records: dict[str, int] | None = None
    scoring: str = "dice"
    """``dice`` (pairs at or above ``threshold``) or ``fields`` (field-aware: candidates at
    Dice >= ``threshold``, the candidate threshold, linked by match probability)."""

    def __getitem__(self, key: str) -> object:
        """Dict-style read access (``stats["threshold"]``), for scripts written before."""
        return getattr(self, key)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class LinkageResult:
    """Links (every record's entity) and matched pairs, as pyarrow Tables, plus statistics
    and the project metadata the inputs carried (schema fingerprint, key-check...)."""

    links: pa.Table
    pairs: pa.Table
    stats: MatchStats
    meta: dict[str, str] = field(default_factory=dict)
    field_scores: Any = None
    """With field-aware scoring: :class:`linkage.tlu.scoring.rescore.FieldScores` of the
    candidate pairs (the model, levels, weights), for waterfalls; else None."""

    def links_meta(self) -> dict[str, str]:
        """Metadata written with the links: format version, schema fingerprint, key-check,
        filter length, parties with their record counts, entity count, threshold, scoring
        (``dice`` or ``fields``), creation time."""
        from linkage import __version__

        meta = {_CARRIED[k]: v for k, v in self.meta.items() if k in _CARRIED}
        meta.update(
            {
                "links_format_version": LINKS_FORMAT_VERSION,
                "parties": json.dumps(self.stats.records_per_party),
                "record_count": str(self.links.num_rows),
                "entity_count": str(self.stats.entities),
                "threshold": repr(self.stats.threshold),
                "scoring": self.stats.scoring,  # "fields": scores are match probabilities
                "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
                "package_version": __version__,
            }
        )
        return meta

    def write(
        self, links_path: str | Path, pairs_path: str | Path | None = None, *, force: bool = False
    ) -> None:
        """Write links (and pairs, if a path is given) as Parquet with metadata, mode 0600,
        all or nothing (:func:`linkage._files.atomic_outputs`; both files carry the same
        ``run_id``). Raises :class:`~linkage._files.OutputError` if a path exists (unless
        ``force``), does not end in ``.parquet`` or cannot be written."""
        meta = self.links_meta()
        meta["run_id"] = secrets.token_hex(16)
        footer = metadata_bytes(meta)
        outputs = [Output(Path(links_path), "links file", PARQUET)]
        tables = [self.links]
        if pairs_path is not None:
            outputs.append(Output(Path(pairs_path), "pairs file", PARQUET))
            tables.append(self.pairs)
        paths = check_outputs(outputs, force=force)
        with atomic_outputs(*paths) as temps:
            for table, tmp in zip(tables, temps, strict=True):
                pq.write_table(table.replace_schema_metadata(footer), tmp, compression="zstd")


def check_output_paths(
    paths: Sequence[str | Path], inputs: Sequence[str | Path] = (), *, force: bool = False
) -> None:
    """Fail early (before any work) on links/pairs outputs that cannot be written, would
    clobber an input or an existing file (unless ``force``), or are not named ``.parquet``."""
    check_outputs([Output(Path(p), "output", PARQUET) for p in paths], inputs, force=force)


STUB_META_KEY = "rows_unlinkable"  # encoded-file metadata: rows left out for too little evidence


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes (``getrusage`` ru_maxrss)."""
    import resource
    import sys

    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(ru if sys.platform == "darwin" else ru * 1024)


def stub_records(encs: Sequence[EncodedTable]) -> dict[str, int] | None:
    """party -> count of rows its partner left out as stubs (metadata ``rows_unlinkable``),
    or None when no input says."""
    out = {
        e.party: int(e.meta[STUB_META_KEY])
        for e in encs
        if str(e.meta.get(STUB_META_KEY, "")).isdigit()
    }
    return out or None


_CARRIED = {  # encoded-file metadata -> links metadata
    "format_version": "encoded_format_version",
    "schema_fingerprint": "schema_fingerprint",
    "key_check": "key_check",
    "filter_length": "filter_length",
}
