"""The linkage map's filter file (``<map>.filters``, linkage.tlu.linkage_map.filters): the
same filters as ``records.clk`` by rix; trusted only when its header names the map's id,
version and digest, else rebuilt from DuckDB; a map whose stored filters disagree with its
digest is refused. Crash points around it are in test_linkage_map_crash.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from test_linkage_map_data import Population, make_population, subset

from linkage.errors import InputError
from linkage.tlu.linkage_map import map_create, map_info, map_links, map_update
from linkage.tlu.linkage_map.filters import HEADER, Header, filters_path
from linkage.tlu.linkage_map.records import filters_from_blobs


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("filt") / "synth", 500, 2)


def check_filter_file(m: Path) -> None:
    """The filter file holds exactly the stored filters and names the current version."""
    with duckdb.connect(str(m), read_only=True) as con:
        t = con.sql("SELECT clk FROM records ORDER BY rix").to_arrow_table()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    words = int(meta["filter_length"]) // 64
    want = filters_from_blobs(t.column("clk"), words)
    p = filters_path(m)
    assert p.stat().st_mode & 0o077 == 0
    got = np.fromfile(p, "<u8", offset=HEADER).reshape(-1, words)
    assert (got[: len(want)] == want).all()
    h = Header.read(p)
    assert h is not None and h.version == int(meta["current_version"])
    assert h.digest.hex() == meta["filters_digest"] and h.map_id.hex() == meta["map_id"]


def _base(tmp_path: Path, pop: Population) -> tuple[Path, list]:
    a, b = pop.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [subset(a, np.arange(len(a) - 30)), b], dedupe=True, seed=1)
    return m, [subset(a, np.arange(20, len(a)))]  # 30 new, 20 retired


def test_create_and_update_keep_the_filter_file(tmp_path: Path, pop: Population) -> None:
    m, upd = _base(tmp_path, pop)
    check_filter_file(m)
    s = map_update(m, upd)
    assert not s["filters_rebuilt"]
    check_filter_file(m)
    s = map_update(m, [], delta=True, deletions=_deletions(tmp_path, pop))  # adds no rows
    assert not s["filters_rebuilt"]
    check_filter_file(m)


def _deletions(tmp_path: Path, pop: Population) -> Path:
    a = pop.encs[0]
    p = tmp_path / "gone.csv"
    p.write_text(f"party,record_id\n{a.party},{a.record_ids[25].as_py()}\n")
    return p


def test_missing_stale_or_foreign_filter_file_is_rebuilt(tmp_path: Path, pop: Population) -> None:
    m, upd = _base(tmp_path, pop)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = ref_dir / "m.duckdb"
    shutil.copy(m, ref)
    shutil.copy(filters_path(m), filters_path(ref))
    map_update(ref, upd)
    v1 = tmp_path / "v1.filters"
    shutil.copy(filters_path(m), v1)
    # missing
    filters_path(m).unlink()
    s = map_update(m, upd)
    assert s["filters_rebuilt"] and map_links(m).equals(map_links(ref))
    check_filter_file(m)
    # stale: the copy of version 1 beside a map at version 2
    shutil.copy(v1, filters_path(m))
    s = map_update(m, [pop.encs[0]])
    assert s["filters_rebuilt"]
    check_filter_file(m)
    # another map's file (another map id), even of the same version and rows
    other = tmp_path / "o.duckdb"
    map_create(other, pop.encs, dedupe=True, seed=1)
    shutil.copy(filters_path(other), filters_path(m))
    assert map_update(m, [pop.encs[0]])["filters_rebuilt"]
    check_filter_file(m)


def test_filters_that_disagree_with_the_digest_are_refused(tmp_path: Path, pop: Population) -> None:
    m, upd = _base(tmp_path, pop)
    filters_path(m).unlink()
    with duckdb.connect(str(m)) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'filters_digest'", ["00" * 16])
    with pytest.raises(InputError, match="do not match the map's digest"):
        map_update(m, upd)
    assert map_info(m)["current_version"] == 1


def test_map_without_filter_file_meta_gets_one(tmp_path: Path, pop: Population) -> None:
    """A map made before the filter file (no map_id / filters_digest in meta)."""
    m, upd = _base(tmp_path, pop)
    filters_path(m).unlink()
    with duckdb.connect(str(m)) as con:
        con.execute("DELETE FROM meta WHERE key IN ('map_id', 'filters_digest')")
    assert map_update(m, upd)["filters_rebuilt"]
    check_filter_file(m)
    assert not map_update(m, [pop.encs[0]])["filters_rebuilt"]


_BLAS_CHECK = """
import sys, threading
import numpy as np
from linkage.tlu.linkage_map.update import _start_numba
t = threading.Thread(target=_start_numba)
t.start()
t.join()
import numba.np.arraymath as am
assert "scipy.linalg" not in sys.modules, "numba's start-up imported scipy.linalg"
assert am._HAVE_BLAS is True
from numba import njit
dot = njit(lambda a, b: np.correlate(a, b))
assert float(dot(np.arange(3.0), np.ones(3))[0]) == 3.0
assert "scipy.linalg" in sys.modules  # imported by the BLAS kernel's compilation
"""


def test_update_start_up_defers_scipy_blas_check() -> None:
    """The update's numba start-up does not import scipy.linalg (numba's BLAS check), and
    numba still finds BLAS for a kernel compiled after it."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    r = subprocess.run([sys.executable, "-c", _BLAS_CHECK], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
