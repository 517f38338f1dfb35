"""What an update changes: new extracts compared with the map's current records, by record
id and digest (added, changed, unchanged, retired), plus an optional deletions list."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage._csv_errors import csv_problem
from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.tlu.linkage_map.records import digests
from linkage.tlu.linkage_map.store import MapStore


@dataclass
class PartyDiff:
    """One party's changes. Row numbers index the new extract; rix are stored records."""

    party: str
    pix: int
    enc: EncodedTable | None
    digest: np.ndarray  # S16 per row of enc
    new_rows: np.ndarray  # rows to store (added + changed), in file order
    changed_old: np.ndarray  # rix of the previous version of each changed row (-1: added)
    retired: np.ndarray  # rix retired without a successor (missing or deleted)
    unchanged: int = 0
    is_new_party: bool = False

    @property
    def added(self) -> int:
        return int((self.changed_old < 0).sum())

    @property
    def changed(self) -> int:
        return int((self.changed_old >= 0).sum())


@dataclass
class Deletions:
    """party -> record ids (with the 1-based row of the deletions file they came from)."""

    name: str
    by_party: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def read_deletions(src: str | Path | pa.Table) -> Deletions:
    """A CSV or Parquet file (or Table) with columns ``party, record_id``."""
    name = "deletions" if isinstance(src, pa.Table) else Path(src).name
    if isinstance(src, pa.Table):
        table = src
    else:
        p = Path(src)
        if not p.is_file():
            raise InputError(f"{p}: file not found")
        try:
            with open(p, "rb") as f:
                parquet = f.read(4) == b"PAR1"
            if parquet:
                table = pq.read_table(p)
            else:
                opts = pacsv.ConvertOptions(
                    column_types={"party": pa.string(), "record_id": pa.string()}
                )
                table = pacsv.read_csv(p, convert_options=opts)
            table.column_names  # noqa: B018 (a header that is not UTF-8 fails here)
        except UnicodeDecodeError:
            raise InputError(
                f"{p}: cannot read the deletions list (not valid UTF-8 text)"
            ) from None
        except pa.ArrowInvalid as exc:
            problem = csv_problem(exc, p) if not parquet else "not a Parquet file"
            raise InputError(f"{p}: cannot read the deletions list ({problem})") from None
        except OSError as exc:
            raise InputError(f"{p}: cannot read the deletions list ({exc.strerror})") from None
    for col in ("party", "record_id"):
        if col not in table.column_names:
            raise InputError(f"{name}: column {col!r} is missing (need party, record_id)")
    parties = table.column("party").cast(pa.string()).to_pylist()
    rids = table.column("record_id").cast(pa.string()).to_pylist()
    out = Deletions(name)
    seen: set[tuple[str, str]] = set()
    for row, (p_, r_) in enumerate(zip(parties, rids, strict=True), start=2):
        if not p_ or r_ is None or r_ == "":
            raise InputError(f"{name}: row {row}: party and record_id must not be empty")
        if (p_, r_) in seen:
            raise InputError(f"{name}: row {row}: record {r_!r} of party {p_!r} listed twice")
        seen.add((p_, r_))
        out.by_party.setdefault(p_, []).append((r_, row))
    return out


MIN_SHARED = 0.10  # of a party's current records that a full extract must still hold ...
MIN_RECORDS = 50  # ... when the party has at least this many (smaller: at least one)


def check_overlap(name: str, party: str, shared: int, current: int, incoming: int) -> None:
    """InputError when a full extract of ``party`` shares no record id with the party's
    ``current`` records, or under :data:`MIN_SHARED` of them when there are at least
    :data:`MIN_RECORDS`: applying it would retire (nearly) the party's whole population.
    The likely cause is another party's file encoded with this party's name (``--party``)
    or a change of record-id scheme; ``--replace-all`` confirms the latter."""
    if current == 0 or incoming == 0:
        return
    few = shared == 0 or (current >= MIN_RECORDS and shared < MIN_SHARED * current)
    if not few:
        return
    raise InputError(
        f"{name}: this full extract of party {party!r} shares only {shared} of the party's "
        f"{current} current record ids with the map, so applying it would retire "
        f"{current - shared} records and add {incoming - shared}. Is it another party's "
        f"extract encoded with --party {party}, or a delta (give --delta)? Nothing was "
        "applied. If the party really renumbered its records, give --replace-all "
        "(replace_all=True)"
    )


def _current(store: MapStore, pix: int, ids: pa.Array | None) -> pa.Table:
    """Current (rix, record_id, digest) of a party; only ``ids`` when given."""
    if ids is None:
        return store.arrow(
            "SELECT rix, record_id, digest FROM records WHERE pix = $p AND valid_to IS NULL",
            {"p": pix},
        )
    with store.temp("_ids", pa.table({"record_id": ids})):
        return store.arrow(
            "SELECT rix, record_id, digest FROM records WHERE pix = $p AND valid_to IS NULL "
            "AND record_id IN (SELECT record_id FROM _ids)",
            {"p": pix},
        )


def party_diff(
    store: MapStore,
    enc: EncodedTable | None,
    party: str,
    pix: int | None,
    next_pix: int,
    *,
    delta: bool,
    deleted: list[tuple[str, int]],
    deletions_name: str,
    name: str = "the extract",
    replace_all: bool = False,
) -> PartyDiff:
    """Compare one party's new extract (``name``: its file, for errors) or only its
    deletions with the map. A full extract that shares (almost) no record ids with the
    party's current records is refused unless ``replace_all`` (see :func:`check_overlap`)."""
    is_new = pix is None
    if pix is None:
        pix = next_pix
        if deleted:
            _raw, row = deleted[0]
            raise InputError(f"{deletions_name}: row {row}: party {party!r} is not in the map")
    none = np.zeros(0, np.int64)
    if enc is not None:
        ids = enc.record_ids
        dig = digests(enc)
    else:
        ids = pa.array([], pa.string())
        dig = np.zeros(0, "S16")
    if is_new:
        return PartyDiff(
            party,
            pix,
            enc,
            dig,
            np.arange(len(ids), dtype=np.int64),
            np.full(len(ids), -1, np.int64),
            none,
            0,
            True,
        )
    del_ids = pa.array([r for r, _ in deleted], pa.string())
    lookup = pa.concat_arrays([ids, del_ids]) if delta else None
    cur = _current(store, pix, lookup)
    cur_ids = cur.column("record_id").combine_chunks()
    cur_rix = cur.column("rix").to_numpy()
    cur_dig = np.array(cur.column("digest").to_pylist(), dtype="S16") if cur.num_rows else dig[:0]
    pos = pc.fill_null(pc.index_in(ids, value_set=cur_ids), -1)
    pos = pos.to_numpy(zero_copy_only=False).astype(np.int64)
    known = pos >= 0
    same = np.zeros(len(ids), bool)
    same[known] = cur_dig[pos[known]] == dig[known]
    new_rows = np.flatnonzero(~same)
    changed_old = np.full(len(new_rows), -1, np.int64)
    hit = known[new_rows]
    changed_old[hit] = cur_rix[pos[new_rows][hit]]
    if delta:
        retired = []
        in_file = set(ids.to_pylist()) if deleted else set()
        cur_map = dict(zip(cur_ids.to_pylist(), cur_rix.tolist(), strict=True)) if deleted else {}
        for rid, row in deleted:
            if rid in in_file:
                raise InputError(
                    f"{deletions_name}: row {row}: record {rid!r} of party {party!r} is both "
                    "deleted and in the delta extract"
                )
            if rid not in cur_map:
                raise InputError(
                    f"{deletions_name}: row {row}: record {rid!r} of party {party!r} is not a "
                    "current record of the map"
                )
            retired.append(cur_map[rid])
        retired_rix = np.array(retired, np.int64)
    else:
        gone = ~pc.is_in(cur_ids, value_set=ids).to_numpy(zero_copy_only=False)
        retired_rix = cur_rix[gone].astype(np.int64)
        if not replace_all:
            check_overlap(name, party, int(known.sum()), len(cur_ids), len(ids))
    return PartyDiff(
        party, pix, enc, dig, new_rows, changed_old.astype(np.int64), retired_rix, int(same.sum())
    )
