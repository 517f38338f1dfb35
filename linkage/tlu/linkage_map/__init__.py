"""The persistent linkage map at the TLU: a DuckDB file that keeps encoded records, scored
pairs and every record's entity id with its history, updated extract by extract.

Verbs (the CLI's ``linkage map ...`` subcommands call these):

- :func:`map_create`: a full link (the match flow) stored as version 1.
- :func:`map_update`: new extracts (full or delta) applied as the next version; only the
  affected components are re-clustered; stable entity ids (:mod:`.ids`).
- :func:`map_links`, :func:`map_changes`, :func:`map_history`, :func:`map_info`: readers.
- :func:`map_export`: per-project pseudonyms under the TLU key; :func:`map_keygen` makes
  that key.

Never imports the partner side or the encoding secret. See docs/linkage-map.md.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from linkage.tlu.linkage_map.build import map_create
from linkage.tlu.linkage_map.pseudonyms import pseudonyms, read_tlu_key, write_tlu_key
from linkage.tlu.linkage_map.store import open_map
from linkage.tlu.linkage_map.update import map_update
from linkage.tlu.linkage_map.views import (
    check_output,
    map_changes,
    map_history,
    map_info,
    map_links,
    out_meta,
    write_table,
)

__all__ = [
    "map_changes",
    "map_create",
    "map_export",
    "map_history",
    "map_info",
    "map_keygen",
    "map_links",
    "map_update",
]


def map_keygen(output: str | Path, *, force: bool = False) -> None:
    """Write a new 32-byte TLU key (mode 0600) for :func:`map_export`. It is the TLU's own
    key: keep it at the TLU, never with the partners' secret."""
    write_tlu_key(output, force=force)


def map_export(
    map_path: str | Path,
    *,
    project: str,
    key_file: str | Path,
    output: str | Path | None = None,
    version: int | None = None,
    force: bool = False,
    wait: float = 0.0,
) -> pa.Table:
    """``party, record_id, pseudonym`` for every record current at ``version`` (default:
    current): the entity id's pseudonym for ``project`` (see :mod:`.pseudonyms`). Written
    to ``output`` (Parquet, mode 0600) when given, an existing file only with ``force``;
    ``wait``: seconds to wait for an update that holds the map."""
    check_output(output, map_path, force=force)
    key = read_tlu_key(key_file)
    store = open_map(map_path, wait=wait)
    try:
        v = store.check_version(version)
        t = store.arrow(
            "SELECT m.entity, p.party, r.record_id FROM membership m JOIN records r USING (rix) "
            "JOIN parties p USING (pix) WHERE m.valid_from <= $v AND "
            "(m.valid_to IS NULL OR m.valid_to > $v) ORDER BY r.pix, r.rix",
            {"v": v},
        )
        out = pa.table(
            {
                "party": t.column("party"),
                "record_id": t.column("record_id"),
                "pseudonym": pseudonyms(t.column("entity").to_numpy(), key, project),
            }
        )
        if output is not None:
            meta = out_meta(store, v, project=project)
            meta.pop("key_check", None)
            write_table(out, output, meta, force=force)
        return out
    finally:
        store.close()
