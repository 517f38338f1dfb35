"""What an update changes: new extracts compared with the map's current records, by record
id and digest (added, changed, unchanged, retired), plus an optional deletions list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from linkage.tlu.linker import party_key


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
    """party -> record ids (with the row of the deletions file they came from: data rows
    counted from 1, the header not counted). ``rows``: the file's data rows."""

    name: str
    by_party: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    rows: int = 0


def _other_delimiter(header: list[str]) -> str:
    """A hint when a one-column header holds another delimiter (a deletions list saved
    from a spreadsheet with ``;`` or tabs): the list must be comma-separated."""
    if len(header) == 1:
        for d, what in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if d in header[0]:
                return f"; its header is separated by {what}: save it comma-separated"
    return ""


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
    names = [c.strip().lower() for c in table.column_names]  # Party, Record_ID: the same
    if len(set(names)) == len(names):
        table = table.rename_columns(names)
    for col in ("party", "record_id"):
        if col not in table.column_names:
            raise InputError(
                f"{name}: column {col!r} is missing (need party, record_id)"
                + _other_delimiter(table.column_names)
            )
    parties = table.column("party").cast(pa.string()).to_pylist()
    rids = table.column("record_id").cast(pa.string()).to_pylist()
    out = Deletions(name, rows=len(parties))
    seen: set[tuple[str, str]] = set()
    # data rows counted from 1, the header not counted (the README's convention, as encode)
    for row, (p_, r_) in enumerate(zip(parties, rids, strict=True), start=1):
        if not p_ or r_ is None or r_ == "":
            raise InputError(f"{name}: row {row}: party and record_id must not be empty")
        if (p_, r_) in seen:
            raise InputError(f"{name}: row {row}: record {r_!r} of party {p_!r} listed twice")
        seen.add((p_, r_))
        out.by_party.setdefault(p_, []).append((r_, row))
    return out


MIN_SHARED = 0.10  # of a party's current records that a full extract must still hold
MAX_CHANGE = 0.25  # of a party's current records an update may retire or change
MIN_MASS_CHANGE = 10  # records: below this many, never a mass change (a small party's month)


@dataclass(frozen=True)
class Guards:
    """The update's refusals a user may override: ``replace_all`` (a full extract sharing
    under :data:`MIN_SHARED` of its party's record ids), ``allow_mass_change`` (an update
    retiring or changing over :data:`MAX_CHANGE` of a party's records), ``reapply`` (a file
    already applied to its party, or older than the last one applied), ``new_party`` (a new
    party named like an existing one, or holding its record ids: :func:`check_new_party`)."""

    replace_all: bool = False
    allow_mass_change: bool = False
    reapply: bool = False
    max_candidates: int | str | None = "stored"  # or a raised cap (None: none), stored
    new_party: bool = False

    def given(self) -> list[str]:
        """The overrides given, as their CLI options (kept in the version log)."""
        flags = ("replace_all", "allow_mass_change", "reapply", "new_party")
        out = [f"--{k.replace('_', '-')}" for k in flags if getattr(self, k)]
        if self.max_candidates != "stored":
            cap = self.max_candidates
            out.append("--no-max-candidates" if cap is None else f"--max-candidates {cap}")
        return out


def check_overlap(name: str, party: str, shared: int, current: int, incoming: int) -> None:
    """InputError when a full extract of ``party`` shares under :data:`MIN_SHARED` of the
    party's ``current`` record ids (none at all included, whatever the party's size):
    applying it would retire (nearly) the party's whole population. The likely cause is
    another party's file encoded with this party's name (``--party``), a delta sent without
    ``--delta``, or a change of record-id scheme; ``--replace-all`` confirms the latter."""
    if current == 0 or incoming == 0 or shared >= MIN_SHARED * current:
        return
    raise InputError(
        f"{name}: this full extract of party {party!r} shares only {shared} of the party's "
        f"{current} current record ids with the map, so applying it would retire "
        f"{current - shared} records and add {incoming - shared}. Is it another party's "
        f"extract encoded with --party {party}, or a delta (give --delta)? Nothing was "
        "applied. If the party really renumbered its records, give --replace-all"
    )


NEW_PARTY_SHARED = 0.5  # of a new party's record ids: at least this many current elsewhere
NEW_PARTY_FEW = 10  # shared record ids: this many or fewer never make a new party suspect


def check_new_party(
    store: MapStore,
    name: str,
    party: str,
    ids: pa.Array,
    dig: np.ndarray,
    parties: dict[str, int],
) -> None:
    """InputError when ``party`` (not yet in the map; ``parties``: the map's) looks like an
    existing party under a mistyped ``--party``: its name equals an existing party's once
    case, spaces, punctuation and Unicode compatibility forms are ignored
    (:func:`~linkage.tlu.linker.party_key`), or at least :data:`NEW_PARTY_SHARED` of its
    records (and over :data:`NEW_PARTY_FEW`) are current records of one existing party:
    the same record id with the same encoding (``dig``: the records' digests, as
    :func:`.records.digests`). Applied, such a file would add that party's people a second
    time. Record ids are per party, so a genuinely new party that numbers its rows like an
    existing one shares ids but not encodings, and passes; ``--new-party`` confirms a new
    party the check doubts."""
    key = party_key(party)
    alike = sorted(p for p in parties if party_key(p) == key)
    shared: dict[str, int] = {}
    if len(ids) and parties:
        new = pa.table({"record_id": ids.cast(pa.string()), "digest": pa.array(dig.tolist())})
        with store.temp("_np", new):
            rows = store.sql(
                "SELECT r.pix, count(*) FROM records r JOIN _np n ON r.record_id = n.record_id "
                "AND r.digest = n.digest WHERE r.valid_to IS NULL GROUP BY r.pix"
            )
        by_pix = {pix: p for p, pix in parties.items()}
        shared = {by_pix[int(pix)]: int(n) for pix, n in rows}
    most = sorted(shared.items(), key=lambda t: (-t[1], t[0]))
    by_ids = [p for p, n in most if n > NEW_PARTY_FEW and n >= NEW_PARTY_SHARED * len(ids)]
    if not alike and not by_ids:
        return
    other = by_ids[0] if by_ids else alike[0]
    why = []
    if other in alike:
        why.append(f"its name differs from party {other!r} only in case, spaces or punctuation")
    if shared.get(other):
        why.append(
            f"{shared[other]:,} of its {len(ids):,} records are current records of party "
            f"{other!r} (the same record id, encoded the same)"
        )
    raise InputError(
        f"{name}: party {party!r} is not in the map, so this update would add it as a new "
        f"party, but {' and '.join(why)}. Was the file encoded with a mistyped --party? "
        f"Then encode it again with --party {other}: as it is, it would add the records of "
        f"party {other!r} a second time, under a new party. Nothing was applied. If "
        f"{party!r} really is a new party, give --new-party"
    )


def check_mass_change(d: PartyDiff, name: str, current: int, delta: bool) -> None:
    """InputError when the update would retire (records missing from a full extract) or
    change over :data:`MAX_CHANGE` of the party's ``current`` records (and more than
    :data:`MIN_MASS_CHANGE`, so a small party's ordinary month passes): a truncated extract,
    a column mapped to the wrong field at encoding, or a partner's whole id list sent as its
    deletions would otherwise be applied silently (and re-sending the right file re-adds the
    retired records under new entity ids). Deletions count like missing records."""
    if d.is_new_party or current == 0:
        return
    retired = len(d.retired)
    n = retired + d.changed
    if n <= max(MAX_CHANGE * current, MIN_MASS_CHANGE):
        return
    what = "delta" if delta else "full extract"
    raise InputError(
        f"{name}: this {what} of party {d.party!r} would retire {retired} and change "
        f"{d.changed} of the party's {current} current records ({100 * n / current:.2f}%; "
        f"an update may retire or change at most {MAX_CHANGE:.0%} of a party's records "
        "unless told). A truncated extract, a column mapped to the wrong field when it "
        "was encoded, or the whole id list sent as deletions? Nothing was applied. If the "
        "change is real, give --allow-mass-change"
    )


def check_reapplied(store: MapStore, sources: list[dict[str, Any]]) -> None:
    """InputError when a file was already applied to its party (its SHA-256 is in the
    version log) or was encoded before the file last applied to that party (an older
    month's extract?). ``--reapply`` applies it anyway (say, to undo a later update)."""
    applied: dict[tuple[str, str], int] = {}
    newest: dict[str, tuple[str, int]] = {}
    for version, text in store.sql("SELECT version, sources FROM versions ORDER BY version"):
        for src in json.loads(text or "[]"):
            party = src.get("party")
            if party is None:
                continue
            if src.get("sha256"):
                applied.setdefault((party, src["sha256"]), int(version))
            created = src.get("encoded_created")
            if created and (party not in newest or not _before(str(created), newest[party][0])):
                newest[party] = (str(created), int(version))
    for src in sources:
        party, name = src.get("party"), src.get("file")
        v = applied.get((party, src.get("sha256")))  # type: ignore[arg-type]
        if v is not None:
            raise InputError(
                f"{name}: this file was already applied to party {party!r} as version {v} "
                "(the same SHA-256). Nothing was applied. To apply it again (say, to undo a "
                "later update), give --reapply"
            )
        created = src.get("encoded_created")
        last = newest.get(party) if party is not None else None
        if created and last is not None and _before(str(created), last[0]):
            raise InputError(
                f"{name}: this file of party {party!r} was encoded at {created}, before the "
                f"file applied as version {last[1]} (encoded at {last[0]}): an older extract? "
                "Nothing was applied. To apply it anyway, give --reapply"
            )


def _before(a: str, b: str) -> bool:
    import datetime as dt

    try:
        ta, tb = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
        if (ta.tzinfo is None) != (tb.tzinfo is None):
            return False
        return ta < tb
    except ValueError:
        return False


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
    new_party: bool = False,
) -> PartyDiff:
    """Compare one party's new extract (``name``: its file, for errors) or only its
    deletions with the map. A full extract that shares (almost) no record ids with the
    party's current records is refused unless ``replace_all`` (see :func:`check_overlap`);
    a new party that looks like an existing one unless ``new_party``
    (:func:`check_new_party`)."""
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
        if enc is not None and not new_party:
            check_new_party(store, name, party, ids, dig, store.parties())
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
