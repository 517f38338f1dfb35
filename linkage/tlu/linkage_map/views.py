"""Reading a map: links at a version, changes since a version, an entity's history, info.

All readers open the map read-only (several may run at once; none while an update holds
the map: ``wait`` seconds are waited for it, as by :func:`~.update.map_update`). Outputs are
checked before any work (an existing file is refused unless ``force``) and written
atomically, mode 0600, through :mod:`linkage._files`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from linkage._files import PARQUET, Output, atomic_outputs, check_outputs
from linkage.encoded import metadata_bytes
from linkage.errors import InputError
from linkage.tlu.linkage_map.store import EVENTS, MapStore, open_map, parse_id

CHANGE_KINDS = ("created", "merged", "split", "retired")


def check_output(
    output: str | Path | None, map_path: str | Path, *, force: bool = False
) -> Path | None:
    """Refuse ``output`` before any work (see :func:`linkage._files.check_outputs`): an
    existing file unless ``force``, the map itself, a name not ending in .parquet."""
    if output is None:
        return None
    (out,) = check_outputs([Output(Path(output), "output", PARQUET)], [map_path], force=force)
    return out


def write_table(
    table: pa.Table, output: str | Path, meta: dict[str, str], force: bool = False
) -> None:
    """Parquet with ``linkage.`` metadata, atomically, mode 0600 (links are personal data).
    ``output`` was checked by :func:`check_output` with the same ``force``."""
    (out,) = check_outputs([Output(Path(output), "output", PARQUET)], force=force)
    with atomic_outputs(out) as (tmp,):
        pq.write_table(table.replace_schema_metadata(metadata_bytes(meta)), tmp, compression="zstd")


def out_meta(store: MapStore, version: int, **extra: str) -> dict[str, str]:
    m = store.meta
    meta = {
        "schema_fingerprint": m["schema_fingerprint"],
        "key_check": m["key_check"],
        "filter_length": m["filter_length"],
        "map_version": str(version),
        "threshold": m["threshold"],
    }
    meta.update(extra)
    return meta


def links_at(store: MapStore, version: int) -> pa.Table:
    """``entity_id, party, record_id`` of every record current at ``version`` (sorted by
    party index then record row, so the output does not depend on storage order)."""
    return store.arrow(
        "SELECT printf('%016x', m.entity) AS entity_id, p.party, r.record_id "
        "FROM membership m JOIN records r USING (rix) JOIN parties p USING (pix) "
        "WHERE m.valid_from <= $v AND (m.valid_to IS NULL OR m.valid_to > $v) "
        "ORDER BY r.pix, r.rix",
        {"v": version},
    )


def map_links(
    map_path: str | Path,
    output: str | Path | None = None,
    *,
    version: int | None = None,
    force: bool = False,
    wait: float = 0.0,
) -> pa.Table:
    """The linkage map's links (``entity_id, party, record_id``) at ``version`` (default:
    current); written to ``output`` (Parquet) when given, an existing file only with
    ``force``. Same columns as ``linkage match``. ``wait``: seconds to wait for an update
    that holds the map."""
    check_output(output, map_path, force=force)
    store = open_map(map_path, wait=wait)
    try:
        v = store.check_version(version)
        table = links_at(store, v)
        if output is not None:
            meta = out_meta(store, v, record_count=str(table.num_rows))
            write_table(table, output, meta, force=force)
        return table
    finally:
        store.close()


def map_changes(
    map_path: str | Path,
    output: str | Path | None = None,
    *,
    since: int = 1,
    force: bool = False,
    wait: float = 0.0,
) -> pa.Table:
    """Entity changes in versions after ``since``: ``version, change, entity_id,
    related_entity_id, records``. ``change``: created (a new id; related empty), merged
    (``entity_id`` merged into ``related_entity_id``), split (``records`` records of
    ``entity_id`` now belong to ``related_entity_id``), retired (no records left).
    ``output``, ``force`` and ``wait`` as in :func:`map_links`."""
    check_output(output, map_path, force=force)
    store = open_map(map_path, wait=wait)
    try:
        if not 0 <= since <= store.version:
            raise InputError(
                f"{store.path}: --since must be between 0 and {store.version} (the map's "
                f"versions), got {since}"
            )
        table = store.arrow(
            "SELECT version, change, printf('%016x', entity) AS entity_id, "
            "CASE WHEN related IS NULL THEN NULL ELSE printf('%016x', related) END "
            f"AS related_entity_id, records FROM {EVENTS} WHERE version > $s "
            "ORDER BY version, change, entity_id, related_entity_id",
            {"s": since},
        )
        if output is not None:
            meta = out_meta(store, store.version, since=str(since))
            write_table(table, output, meta, force=force)
        return table
    finally:
        store.close()


def map_history(map_path: str | Path, entity: str, *, wait: float = 0.0) -> dict[str, Any]:
    """One entity's story: when issued, its fate, its events and every record that was
    ever a member (party, record_id, valid_from, valid_to). ``wait`` as in :func:`map_links`."""
    e = parse_id(entity)
    store = open_map(map_path, wait=wait)
    try:
        row = store.sql(
            "SELECT first_version, ended, fate, successor FROM entities WHERE entity = ?", e
        )
        if not row:
            raise InputError(f"{store.path}: no entity {entity!r} in this map")
        first, ended, fate, succ = row[0]
        events = store.sql(
            "SELECT version, change, printf('%016x', entity), "
            "CASE WHEN related IS NULL THEN NULL ELSE printf('%016x', related) END, records "
            f"FROM {EVENTS} WHERE entity = ? OR related = ? ORDER BY version, change",
            e,
            e,
        )
        members = store.sql(
            "SELECT p.party, r.record_id, m.valid_from, m.valid_to FROM membership m "
            "JOIN records r USING (rix) JOIN parties p USING (pix) WHERE m.entity = ? "
            "ORDER BY m.valid_from, p.party, r.record_id",
            e,
        )
        return {
            "entity_id": f"{e:016x}",
            "first_version": first,
            "ended": ended,
            "fate": fate,
            "successor": None if succ is None else f"{succ:016x}",
            "events": [
                {"version": v, "change": c, "entity_id": a, "related_entity_id": b, "records": n}
                for v, c, a, b, n in events
            ],
            "records": [
                {"party": p, "record_id": r, "valid_from": f, "valid_to": t}
                for p, r, f, t in members
            ],
        }
    finally:
        store.close()


def map_info(map_path: str | Path, *, wait: float = 0.0) -> dict[str, Any]:
    """Metadata, the version log and current counts of a map. ``wait`` as in
    :func:`map_links`."""
    store = open_map(map_path, wait=wait)
    try:
        versions = store.arrow("SELECT * EXCLUDE (sources) FROM versions ORDER BY version")
        sources = dict(store.sql("SELECT version, sources FROM versions"))
        log = versions.to_pylist()
        for r in log:
            # stored as UTC without a zone (DuckDB TIMESTAMP): said so
            r["created"] = r["created"].isoformat() + "Z" if r["created"] else None
            r["sources"] = json.loads(sources[r["version"]] or "[]")
        per_party = dict(
            store.sql(
                "SELECT p.party, count(*) FROM records r JOIN parties p USING (pix) "
                "WHERE r.valid_to IS NULL GROUP BY p.party ORDER BY p.party"
            )
        )
        entities = store.sql("SELECT count(DISTINCT entity) FROM membership WHERE valid_to IS NULL")
        pairs = store.sql("SELECT count(*) FROM pairs")
        return {
            "path": str(store.path),
            "meta": dict(store.meta),
            "current_version": store.version,
            "records_per_party": per_party,
            "entities": int(entities[0][0]),
            "pairs": int(pairs[0][0]),
            "versions": log,
        }
    finally:
        store.close()


def info_lines(info: dict[str, Any]) -> list[str]:
    """Human-readable summary of :func:`map_info`."""
    m = info["meta"]
    lines = [
        f"map {info['path']} (format {m['map_format_version']}), version {info['current_version']}",
        f"schema {m['schema_fingerprint'][:16]}..., filter length {m['filter_length']}, "
        f"threshold {m['threshold']}, dedupe {m['dedupe']}, solver {m['solver']}, "
        f"blocking {m['blocking']}",
        f"{sum(info['records_per_party'].values())} records, {info['entities']} entities, "
        f"{info['pairs']} scored pairs",
    ]
    for p, n in info["records_per_party"].items():
        lines.append(f"  {p}: {n} records")
    lines.append("versions:")
    for r in info["versions"]:
        files = ", ".join(_source_text(s) for s in r["sources"])
        lines.append(
            f"  {r['version']} {r['created']} {r['verb']} by {r['operator']}: {files}; "
            f"+{r['added']} ~{r['changed']} -{r['retired']}, {r['entities']} entities"
        )
    return lines


def _source_text(source: dict[str, Any]) -> str:
    """One version-log source: an encoded file (``records``) or a deletions list
    (``deletions``); either key may be absent from maps written by other versions."""
    if "overrides" in source:  # the guards the operator overrode (map update's options)
        return "overrides given " + " ".join(map(str, source["overrides"]))
    name = str(source.get("file", "?"))
    if "deletions" in source:
        return f"{name} ({source['deletions']} deletions)"
    if "records" in source:
        return f"{name} ({source['records']})"
    return name
