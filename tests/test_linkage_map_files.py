"""The map's files on disk (robustness issue 10; each test failed before its fix).

1. Every file ``map create`` / ``map update`` writes (the map, its ``.wal``, the filter file,
   the ``.partial`` temporaries and their WALs) is 0600 from creation, whatever the umask.
2. A write that fails (a full disk) is one error naming the map, nothing is left behind and
   the map stays at its previous version with a trusted filter file.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population, subset
from test_linkage_map_filters import check_filter_file
from test_linkage_map_keys import check_key_index

from linkage._files import OutputError
from linkage.cli import main
from linkage.tlu.linkage_map import map_create, map_info, map_update
from linkage.tlu.linkage_map import update as update_mod
from linkage.tlu.linkage_map.filters import filters_path
from linkage.tlu.linkage_map.keyindex import keys_path
from linkage.tlu.linkage_map.store import MapStore


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("pop") / "synth", people=300, parties=2)


class _Watcher:
    """Polls a folder from a thread: the loosest mode seen of each file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.modes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir(self.folder):
                try:
                    mode = stat.S_IMODE(entry.stat().st_mode)
                except FileNotFoundError:
                    continue
                self.modes[entry.name] = self.modes.get(entry.name, 0) | mode

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_every_map_file_is_private_from_creation(
    tmp_path: Path, pop: Population, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    m = out / "m.duckdb"
    seen: list[str] = []
    real_insert = MapStore.insert

    def slow_insert(self: MapStore, table: str, data: Any) -> None:  # let the watcher look
        real_insert(self, table, data)
        seen.extend(os.listdir(out))

    monkeypatch.setattr(MapStore, "insert", slow_insert)
    a = pop.encs[0]
    with _Watcher(out) as w:
        map_create(m, [subset(a, np.arange(len(a) - 40)), pop.encs[1]], seed=1, dedupe=True)
        map_update(m, [a])
    # the temporaries and the WAL were there while the map was written
    assert {f".m.duckdb.{os.getpid()}.partial{e}" for e in ("", ".wal")} <= set(seen)
    for name in seen:
        w.modes.setdefault(name, 0)
    loose = {n: oct(mode) for n, mode in w.modes.items() if mode & 0o077}
    assert not loose, loose
    assert {"m.duckdb", "m.duckdb.filters", "m.duckdb.keys"} <= set(w.modes)
    assert os.umask(0o022) == 0o022  # restored after create and update


def test_update_chmods_a_loose_map_and_wal(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs[:1], seed=1, dedupe=True)
    os.chmod(m, 0o644)
    map_update(m, pop.encs[1:])
    assert stat.S_IMODE(m.stat().st_mode) == 0o600


def _boom_at(point: str, exc: BaseException) -> Any:
    def check(name: str) -> None:
        if name == point:
            raise exc

    return check


@pytest.mark.parametrize(
    "exc",
    [
        duckdb.IOException("Could not write file: No space left on device"),
        duckdb.TransactionException("Failed to commit: could not write"),
    ],
)
def test_update_that_cannot_write_names_the_map_and_keeps_it(
    tmp_path: Path, pop: Population, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [subset(a, np.arange(len(a) - 40)), pop.encs[1]], seed=1, dedupe=True)
    kept = filters_path(m).read_bytes()
    kept_keys = keys_path(m).read_bytes()
    monkeypatch.setattr(update_mod, "_checkpoint", _boom_at("before-commit", exc))
    with pytest.raises(OutputError, match=re.escape(f"cannot write {m}")) as info:
        map_update(m, [a])
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.duckdb", "m.duckdb.filters", "m.duckdb.keys"
    ]  # fmt: skip
    assert map_info(m)["current_version"] == 1
    assert filters_path(m).read_bytes() == kept  # the unused new rows were cut off
    assert keys_path(m).read_bytes() == kept_keys  # and the unused new keys
    check_filter_file(m)
    check_key_index(m)
    s = map_update(m, [a])
    assert not s["filters_rebuilt"] and not s["keys_rebuilt"]


def test_filter_rows_that_cannot_be_written_leave_the_file_as_it_was(
    tmp_path: Path, pop: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [subset(a, np.arange(len(a) - 40)), pop.encs[1]], seed=1, dedupe=True)
    kept = filters_path(m).read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"m\.duckdb\.filters: No space left on device"):
        map_update(m, [a])
    monkeypatch.undo()
    assert filters_path(m).read_bytes() == kept
    assert map_info(m)["current_version"] == 1


def test_create_that_cannot_write_names_the_map_and_leaves_nothing(
    tmp_path: Path, pop: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*a: Any, **k: Any) -> None:
        raise duckdb.IOException("Could not write file: No space left on device")

    monkeypatch.setattr(MapStore, "insert", full)
    m = tmp_path / "m.duckdb"
    with pytest.raises(OutputError, match=re.escape(f"cannot write {m}: No space left on device")):
        map_create(m, pop.encs, seed=1, dedupe=True)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "small"
    d.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_create_on_a_full_disk_is_one_error(
    tmp_path: Path, pop: Population, small_disk: Path
) -> None:
    files = []
    for i, enc in enumerate(pop.encs):
        files.append(str(tmp_path / f"{i}.parquet"))
        enc.write(files[-1])
    m = small_disk / "m.duckdb"
    res = CliRunner().invoke(main, ["map", "create", str(m), *files, "-q"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and str(m) in lines[0] and "internal error" not in res.output
    assert list(small_disk.iterdir()) == []
