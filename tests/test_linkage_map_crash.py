"""Crash safety of ``map update``: a process killed with SIGKILL at any point of an update
leaves the map at its previous version, readable and equal to what it was.

The child process runs a real update; it is killed either at a named point of the update
(:func:`linkage.tlu.linkage_map.update._checkpoint`, patched in the child only: after the
diff, after the solve, after the new rows reach the filter file and the key index, inside the
transaction after each group of writes, just before the commit, after it, between the two
files' headers) or after a random delay.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_linkage_map_data import make_population, subset
from test_linkage_map_filters import check_filter_file
from test_linkage_map_keys import check_key_index

from linkage.tlu.linkage_map import map_create, map_info, map_links, map_update
from linkage.tlu.linkage_map.filters import filters_path
from linkage.tlu.linkage_map.keyindex import keys_path

# before the transaction (after the filter file's new rows), inside it (after the first and
# the last writes), at the commit
POINTS = ["solved", "filters-written", "records-inserted", "memberships-written",
          "before-commit"]  # fmt: skip


def child_script(signal_name: str, call: str) -> str:
    """A child process that runs ``call`` (an update of map argv[1] with file argv[2]) and
    sends itself ``signal_name`` at the update's checkpoint named argv[3] ("-": none)."""
    return textwrap.dedent(
        f"""
        import os, signal, sys
        import linkage.tlu.linkage_map.update as u
        point = sys.argv[3]
        if point != "-":
            def _signal(name):
                if name == point:
                    os.kill(os.getpid(), signal.{signal_name})
            u._checkpoint = _signal
        print("start", flush=True)
        {call}
        print("done", flush=True)
        """
    )


CHILD = child_script("SIGKILL", "u.map_update(sys.argv[1], [sys.argv[2]])")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("crash")
    pop = make_population(d / "synth", people=800, parties=2)
    a = pop.encs[0]
    base = d / "base.duckdb"
    map_create(base, [subset(a, np.arange(len(a) - 80)), pop.encs[1]], dedupe=True, seed=1)
    new = d / "a.parquet"
    subset(a, np.arange(30, len(a))).write(new)  # 80 new records, 30 retired
    return d, base, new


def _run(map_path: Path, new: Path, point: str, delay: float | None = None) -> int:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(map_path), str(new), point],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if delay is not None:
        assert p.stdout is not None
        p.stdout.readline()  # imports done
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
    p.communicate(timeout=120)
    return p.returncode


def _copy(base: Path, to: Path) -> Path:
    """The map, its filter file and its key index."""
    to.write_bytes(base.read_bytes())
    for side in (filters_path, keys_path):
        side(to).write_bytes(side(base).read_bytes())
        side(to).chmod(0o600)
    return to


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_point_keeps_previous_version(
    setup: tuple[Path, Path, Path], point: str
) -> None:
    d, base, new = setup
    m = _copy(base, d / f"m-{point}.duckdb")
    before = map_links(m)
    rc = _run(m, new, point)
    assert rc == -signal.SIGKILL
    assert map_info(m)["current_version"] == 1
    assert map_links(m).equals(before)
    if point in ("filters-written", POINTS[-1]):  # the map still takes the update afterwards
        assert _run(m, new, "-") == 0
        assert map_info(m)["current_version"] == 2
        check_filter_file(m)
        check_key_index(m)
        done = _copy(base, d / f"clean-{point}.duckdb")
        assert _run(done, new, "-") == 0
        assert map_links(m).equals(map_links(done))


def test_kill_after_commit_before_the_filter_header(setup: tuple[Path, Path, Path]) -> None:
    """Killed between the DuckDB commit and the filter file's header: version 2, and the next
    update rebuilds the filter file (its header still names version 1) and goes on."""
    d, base, new = setup
    m = _copy(base, d / "m-committed.duckdb")
    assert _run(m, new, "committed") == -signal.SIGKILL
    assert map_info(m)["current_version"] == 2
    done = _copy(base, d / "clean-committed.duckdb")
    assert _run(done, new, "-") == 0
    assert map_links(m).equals(map_links(done))
    s = map_update(m, [new], delta=True, reapply=True)  # nothing new: unchanged records
    assert s["filters_rebuilt"] and s["keys_rebuilt"] and s["version"] == 3
    check_filter_file(m)
    check_key_index(m)


def test_kill_between_the_filter_header_and_the_key_header(
    setup: tuple[Path, Path, Path],
) -> None:
    """Killed after the filter file's header, before the key index's: the next update trusts
    the filter file and rebuilds the key index (its token is the previous version's)."""
    d, base, new = setup
    m = _copy(base, d / "m-filters-synced.duckdb")
    assert _run(m, new, "filters-synced") == -signal.SIGKILL
    assert map_info(m)["current_version"] == 2
    check_filter_file(m)
    s = map_update(m, [new], delta=True, reapply=True)
    assert not s["filters_rebuilt"] and s["keys_rebuilt"] and s["version"] == 3
    check_key_index(m)


def test_kill_at_random_times(setup: tuple[Path, Path, Path]) -> None:
    """Killed before the commit: version 1 as it was; after it (the process may still be
    closing): version 2, equal to an update that ran to the end."""
    d, base, new = setup
    rng = np.random.default_rng(7)
    before = map_links(base)
    done = _copy(base, d / "done.duckdb")
    assert _run(done, new, "-") == 0
    after = map_links(done)
    for i, delay in enumerate(rng.uniform(0.5, 2.5, size=2)):
        m = _copy(base, d / f"r{i}.duckdb")
        rc = _run(m, new, "-", delay=float(delay))
        assert rc in (0, -signal.SIGKILL)
        v = map_info(m)["current_version"]
        assert v in (1, 2) and (rc == -signal.SIGKILL or v == 2)
        assert map_links(m).equals(before if v == 1 else after)
