"""The linkage map's filter file (``<map>.filters``, linkage.tlu.linkage_map.filters): the
same filters as ``records.clk`` by rix; trusted only when its header names the map's id,
version and digest, else rebuilt from DuckDB; a map whose stored filters disagree with its
digest is refused. Crash points around it are in test_linkage_map_crash.py."""

from __future__ import annotations

import json
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
from linkage.tlu.linkage_map.startup import _start_numba
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


_KERNELS_CALLED = """
import json, sys
from numba.core.registry import CPUDispatcher
import linkage.tlu.linkage_map.startup as startup
from linkage.tlu.linkage_map import map_update
if sys.argv[3] == "without":  # what the update itself calls, nothing preloaded
    startup.update_kernel_signatures = lambda: []
map_update(sys.argv[1], [sys.argv[2]], delta=True)
import gc
seen = {}
for o in gc.get_objects():
    if isinstance(o, CPUDispatcher) and o.overloads:
        seen[o.py_func.__module__ + "." + o.__name__] = sorted(str(s) for s in o.overloads)
print(json.dumps(seen))
"""


def test_update_start_up_loads_the_kernels_the_update_calls(
    tmp_path: Path, pop: Population
) -> None:
    """The start-up thread loads, from numba's cache, the machine code of exactly the kernel
    signatures an update calls (a signature that drifted would be loaded for nothing while
    the update loads its own at its first call)."""
    from linkage.tlu.linkage_map.startup import update_kernel_signatures

    a, b = pop.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [subset(a, np.arange(len(a) - 30)), b], blocking="keys", seed=1)  # as at scale
    delta = tmp_path / "delta.parquet"
    subset(a, np.arange(len(a) - 30, len(a))).write(delta)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_NUM_THREADS"] = "2"
    runs = {}
    for mode in ("without", "with"):
        shutil.copy(m, tmp_path / f"{mode}.duckdb")
        shutil.copy(filters_path(m), filters_path(tmp_path / f"{mode}.duckdb"))
        r = subprocess.run(
            [sys.executable, "-c", _KERNELS_CALLED, str(tmp_path / f"{mode}.duckdb"), str(delta),
             mode],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        runs[mode] = json.loads(r.stdout.strip().splitlines()[-1])
    called = {(k, s) for k, sigs in runs["without"].items() for s in sigs}
    listed = {
        (f"{k.py_func.__module__}.{k.__name__}", str(tuple(sig)))
        for k, sig in update_kernel_signatures()
    }
    assert listed, "nothing to preload"
    assert called - listed <= {(k, s) for k, s in called if k.endswith("popcount_rows")}
    assert listed <= {(k, s) for k, sigs in runs["with"].items() for s in sigs}


_IMPORTS = """
import sys
import linkage.cli
import linkage.tlu.linkage_map
from linkage.tlu.linkage_map import map_update
from linkage.tlu.linkage_map.update import map_update
loaded = [m for m in sys.modules if m == "numba" or m.startswith(("numba.", "linkage.kernels"))]
assert not loaded, loaded
"""


def test_update_imports_no_numba() -> None:
    """The update's module-level imports (the CLI, the map package, what they import) load
    neither numba nor a kernel: the update imports them on its start-up thread, beside its
    DuckDB work (linkage_map/startup.py; docs/linkage-map.md, Performance)."""
    r = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


_NO_JIT_UPDATE = """
import sys
from linkage.tlu.linkage_map import map_update
s = map_update(sys.argv[1], [sys.argv[2]], delta=True)
assert s["added"] == int(sys.argv[3]), s
import numba
assert numba.config.DISABLE_JIT
"""


def test_update_without_jit(tmp_path: Path, pop: Population) -> None:
    """An update runs under NUMBA_DISABLE_JIT=1 (the start-up thread only imports)."""
    a, b = pop.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [subset(a, np.arange(len(a) - 20)), b], seed=1)
    delta = tmp_path / "delta.parquet"
    subset(a, np.arange(len(a) - 20, len(a))).write(delta)
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    r = subprocess.run(
        [sys.executable, "-c", _NO_JIT_UPDATE, str(m), str(delta), "20"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    check_filter_file(m)
