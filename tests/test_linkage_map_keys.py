"""The linkage map's block-key index (``<map>.keys``, linkage.tlu.linkage_map.keyindex): the
stored block keys sorted, so an update finds the current records sharing a key with its new
ones by binary search. Trusted only when its header names the map's id and the token of the
map's version; rebuilt from ``record_keys`` otherwise. Its lookups give exactly the pairs
DuckDB's join gave. Crash points around it are in test_linkage_map_crash.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
from test_linkage_map_data import Population, make_population, months, subset

import linkage.tlu.linkage_map.keyindex as keyindex
from linkage.tlu.linkage_map import map_create, map_links, map_update
from linkage.tlu.linkage_map.candidates import NewSet, _key_pairs
from linkage.tlu.linkage_map.filters import filters_path
from linkage.tlu.linkage_map.keyindex import HEADER, KeyHeader, KeyIndex, keys_path
from linkage.tlu.linkage_map.records import block_keys
from linkage.tlu.linkage_map.store import open_map


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("keys") / "synth", 500, 2)


def check_key_index(m: Path) -> None:
    """The index is trusted by the map and holds every current record's block keys (and
    only retired records' besides), each segment sorted by key."""
    with duckdb.connect(str(m), read_only=True) as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        want = con.execute("SELECT key, rix FROM record_keys ORDER BY rix, key").fetchall()
        current = {r for (r,) in con.execute("SELECT rix FROM records WHERE valid_to IS NULL")
                   .fetchall()}  # fmt: skip
    p = keys_path(m)
    assert p.stat().st_mode & 0o077 == 0
    h = KeyHeader.read(p)
    assert h is not None
    assert h.map_id.hex() == meta["map_id"] and h.token.hex() == meta["keys_token"]
    body = np.fromfile(p, "<u8", offset=HEADER)
    got = []
    start = 0
    for end in h.ends:
        n = end - start
        k, r = body[2 * start : 2 * start + n], body[2 * start + n : 2 * end].view(np.int64)
        assert (np.diff(k.astype(np.float64)) >= 0).all() and (k[1:] >= k[:-1]).all()
        got += [(int(a), int(b)) for a, b in zip(k, r, strict=True) if int(b) in current]
        start = end
    assert sorted(got, key=lambda t: (t[1], t[0])) == [(int(k), int(r)) for k, r in want]


def _keys_map(tmp_path: Path, pop: Population, name: str = "m.duckdb") -> Path:
    a, b = pop.encs
    m = tmp_path / name
    map_create(m, [subset(a, np.arange(len(a) - 40)), b], blocking="keys", dedupe=True, seed=1)
    return m


def _copy(m: Path, to: Path, with_index: bool = True) -> Path:
    shutil.copy(m, to)
    shutil.copy(filters_path(m), filters_path(to))
    if with_index:
        shutil.copy(keys_path(m), keys_path(to))
    return to


def test_create_writes_a_trusted_index(tmp_path: Path, pop: Population) -> None:
    m = _keys_map(tmp_path, pop)
    check_key_index(m)
    a = pop.encs[0]
    s = map_update(m, [subset(a, np.arange(len(a) - 40, len(a)))], delta=True)
    assert not s["keys_rebuilt"] and s["strategy"] == "keys"
    check_key_index(m)


def test_index_lookup_equals_the_join(tmp_path: Path, pop: Population) -> None:
    """After updates that add, change and retire records, the index's (new row, rix) pairs
    are the DuckDB join's, current records only."""
    m = _keys_map(tmp_path, pop)
    for extracts in months(pop, 2)[1:]:
        map_update(m, extracts, allow_mass_change=True)  # the map was made from all records
    check_key_index(m)
    b = pop.encs[1]
    ka = block_keys(b)
    assert ka is not None
    store = open_map(m)
    try:
        node_pix = np.full(store.max_rix() + 1, -1, np.int64)
        cur = store.arrow("SELECT rix, pix FROM records WHERE valid_to IS NULL")
        node_pix[cur.column("rix").to_numpy()] = cur.column("pix").to_numpy()
        new = NewSet(b.filters, np.zeros(len(b), np.int64), np.arange(len(b)), ka)
        idx = KeyIndex(store, bytes.fromhex(store.meta["map_id"]))
        assert not idx.rebuilt and len(idx.ends) == 3  # create + two updates
        i1, r1 = _key_pairs(store, new, node_pix, idx)
        i0, r0 = _key_pairs(store, new, node_pix, None)
    finally:
        store.close()
    assert len(i1) > 0 and (np.diff(r1) >= 0).all()  # in rix order
    assert sorted(zip(i1.tolist(), r1.tolist(), strict=True)) == sorted(
        zip(i0.tolist(), r0.tolist(), strict=True)
    )


@pytest.mark.parametrize("damage", ["missing", "other-map", "old-copy", "no-token", "short"])
def test_a_stale_index_is_rebuilt(tmp_path: Path, pop: Population, damage: str) -> None:
    """Missing, another map's, a copy from the previous version, a map made before the
    index (no token), a truncated file: rebuilt, and the update links as with a good one."""
    a = pop.encs[0]
    delta = subset(a, np.arange(len(a) - 40, len(a)))
    m = _keys_map(tmp_path, pop)
    good = _copy(m, tmp_path / "good.duckdb")
    v1_index = keys_path(m).read_bytes()
    if damage == "missing":
        keys_path(m).unlink()
    elif damage == "other-map":
        other = _keys_map(tmp_path, pop, "other.duckdb")
        shutil.copy(keys_path(other), keys_path(m))
    elif damage == "old-copy":  # the map at version 2 with its version-1 index
        map_update(m, [subset(a, np.arange(len(a) - 40, len(a) - 20))], delta=True)
        map_update(good, [subset(a, np.arange(len(a) - 40, len(a) - 20))], delta=True)
        keys_path(m).write_bytes(v1_index)
        delta = subset(a, np.arange(len(a) - 20, len(a)))
    elif damage == "no-token":
        with duckdb.connect(str(m)) as con:
            con.execute("DELETE FROM meta WHERE key = 'keys_token'")
    else:
        with open(keys_path(m), "r+b") as f:
            f.truncate(HEADER + 100)
    s = map_update(m, [delta], delta=True)
    assert s["keys_rebuilt"]
    check_key_index(m)
    assert not s["filters_rebuilt"] or damage == "other-map"
    g = map_update(good, [delta], delta=True)
    assert not g["keys_rebuilt"]
    assert map_links(m).equals(map_links(good))
    assert not map_update(m, [pop.encs[1]])["keys_rebuilt"]  # trusted again


def test_full_segments_rebuild_after_the_commit(
    tmp_path: Path, pop: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyindex, "MAX_SEGMENTS", 2)
    a = pop.encs[0]
    m = _keys_map(tmp_path, pop)
    s = map_update(m, [subset(a, np.arange(len(a) - 40, len(a) - 20))], delta=True)
    assert not s["keys_rebuilt"]
    assert len(KeyHeader.read(keys_path(m)).ends) == 2  # type: ignore[union-attr]
    s = map_update(m, [subset(a, np.arange(len(a) - 20, len(a)))], delta=True)
    assert s["keys_rebuilt"] and s["added"] == 20
    assert len(KeyHeader.read(keys_path(m)).ends) == 1  # type: ignore[union-attr]
    check_key_index(m)


def test_pairs_with_many_new_rows_fall_back_to_a_lexsort(tmp_path: Path, pop: Population) -> None:
    """Row numbers too wide to pack with the rix into one int64 are sorted by two keys."""
    m = _keys_map(tmp_path, pop)
    store = open_map(m)
    try:
        idx = KeyIndex(store, bytes.fromhex(store.meta["map_id"]))
        ka = block_keys(pop.encs[1])
        assert ka is not None
        i, r = idx.pairs(ka.keys, ka.owner)
        wide = ka.owner + (1 << 60)
        iw, rw = idx.pairs(ka.keys, wide)
    finally:
        store.close()
    assert (rw == r).all() and (iw - (1 << 60) == i).all()
