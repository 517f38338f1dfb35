"""Ctrl-C (SIGINT) during ``map update``: the map is one transaction, so it is at the previous
version or the new one, and the CLI says which ("interrupted; the map M is at version N (this
update was / was not applied)", exit 130), whatever DuckDB turned the interrupt into (its
"Query interrupted", a failed commit). Before, it said "no output written" after a commit,
"internal error (RuntimeError)" or "the file system refused a write".

The child runs the CLI; it interrupts itself at a named point of the update
(:func:`linkage.tlu.linkage_map.update._checkpoint`) or is sent SIGINT after a delay.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_linkage_map_crash import _copy, child_script
from test_linkage_map_data import make_population, subset

from linkage.tlu.linkage_map import map_create, map_info

CHILD = child_script(
    "SIGINT",
    "from linkage.cli import main; main(['map', 'update', sys.argv[1], sys.argv[2], '-q'])",
)

POINTS = ["diffed", "solved", "filters-written", "records-inserted", "before-commit",
          "committed", "filters-synced"]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("interrupt")
    pop = make_population(d / "synth", people=800, parties=2)
    a = pop.encs[0]
    base = d / "base.duckdb"
    map_create(base, [subset(a, np.arange(len(a) - 80)), pop.encs[1]], dedupe=True, seed=1)
    new = d / "a.parquet"
    subset(a, np.arange(30, len(a))).write(new)
    return d, base, new


def _run(m: Path, new: Path, point: str, delay: float | None = None) -> tuple[int, str]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(m), str(new), point],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if delay is not None:
        assert p.stdout is not None
        p.stdout.readline()
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=120)
    return p.returncode, err


def _check(m: Path, rc: int, err: str) -> int:
    v = map_info(m)["current_version"]
    assert v in (1, 2)
    if rc == 0 or (rc == -signal.SIGINT and not err):
        # -SIGINT with nothing said: the signal came as the interpreter was exiting, after
        # it had put back the default handler (seen once in CI, a delay of 0.6 s on a loaded
        # machine): the update had finished, as with rc 0
        assert v == 2, err
        return v
    assert rc == 130, err
    said = re.search(
        r"interrupted; the map (.+) is at version (\d+) \(this update was (not )?applied\)", err
    )
    assert said is not None, err
    assert said.group(1) == str(m) and int(said.group(2)) == v
    assert (said.group(3) is None) == (v == 2), err
    assert err.count("Error:") == 1 and "internal error" not in err and "refused" not in err
    return v


@pytest.mark.parametrize("point", POINTS)
def test_interrupt_at_each_point_says_the_map_version(
    setup: tuple[Path, Path, Path], point: str
) -> None:
    d, base, new = setup
    m = _copy(base, d / f"m-{point}.duckdb")
    rc, err = _run(m, new, point)
    assert rc == 130, err
    v = _check(m, rc, err)
    assert v == (2 if point in ("committed", "filters-synced") else 1)


def test_interrupt_at_several_delays(setup: tuple[Path, Path, Path]) -> None:
    d, base, new = setup
    for i, delay in enumerate([0.2, 0.6, 1.0, 1.4, 1.8]):
        m = _copy(base, d / f"delay{i}.duckdb")
        rc, err = _run(m, new, "-", delay=delay)
        _check(m, rc, err)
