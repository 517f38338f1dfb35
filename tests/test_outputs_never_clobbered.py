"""Every output goes through linkage._files: checked before any work, an existing file refused
without --force / force=True, written atomically with mode 0600 (new-user finding: `linkage
map links|changes|export -o` and `evaluate --report` replaced existing files silently); map
readers wait for an update with --wait, as the error they print suggests."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population

from linkage._files import OutputError
from linkage.cli import main
from linkage.secret import ENV_VAR
from linkage.tlu.linkage_map import (
    map_changes,
    map_create,
    map_export,
    map_keygen,
    map_links,
)

OLD = b"an earlier file, not to be lost"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("pop") / "synth", people=200, parties=2)


@pytest.fixture(scope="module")
def mapped(pop: Population, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("map")
    m = d / "m.duckdb"
    map_create(m, pop.encs, seed=1, dedupe=True)
    map_keygen(d / "tlu.key")
    return m, d / "tlu.key"


def _cli(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(main, args, env={ENV_VAR: None})
    return r.exit_code, r.output


def _old(path: Path) -> Path:
    path.write_bytes(OLD)
    path.chmod(0o644)
    return path


def _writers(mapped: tuple[Path, Path]) -> dict[str, object]:
    m, key = mapped
    return {
        "links": lambda out, **kw: map_links(m, out, **kw),
        "changes": lambda out, **kw: map_changes(m, out, since=0, **kw),
        "export": lambda out, **kw: map_export(m, project="p", key_file=key, output=out, **kw),
    }


@pytest.mark.parametrize("verb", ["links", "changes", "export"])
def test_library_map_outputs_refuse_an_existing_file(
    tmp_path: Path, mapped: tuple[Path, Path], verb: str
) -> None:
    write = _writers(mapped)[verb]
    out = _old(tmp_path / "x.parquet")
    with pytest.raises(OutputError, match="already exists"):
        write(out)  # type: ignore[operator]
    assert out.read_bytes() == OLD
    write(out, force=True)  # type: ignore[operator]
    assert out.read_bytes() != OLD and out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]  # no temporary left


@pytest.mark.parametrize("verb", ["links", "changes", "export"])
def test_cli_map_outputs_refuse_an_existing_file(
    tmp_path: Path, mapped: tuple[Path, Path], verb: str
) -> None:
    m, key = mapped
    out = _old(tmp_path / "x.parquet")
    args = {
        "links": ["map", "links", str(m), "-o", str(out)],
        "changes": ["map", "changes", str(m), "--since", "0", "-o", str(out)],
        "export": ["map", "export", str(m), "--project", "p", "--key-file", str(key),
                   "-o", str(out)],
    }[verb]  # fmt: skip
    code, text = _cli(args)
    assert code == 2 and "already exists" in text and "--force" in text, text
    assert out.read_bytes() == OLD
    code, text = _cli([*args, "--force"])
    assert code == 0, text
    assert out.read_bytes() != OLD and out.stat().st_mode & 0o777 == 0o600


def test_map_output_is_checked_before_the_map_is_read(tmp_path: Path) -> None:
    """The output is refused first (no work, no map needed), and the map is never an output."""
    out = _old(tmp_path / "x.parquet")
    with pytest.raises(OutputError, match="already exists"):
        map_links(tmp_path / "missing.duckdb", out)
    code, text = _cli(["map", "links", str(tmp_path / "m.duckdb"), "-o", str(tmp_path / "m.pq"),
                       "--force"])  # fmt: skip
    assert code == 2 and "no such map" in text  # (a fresh output: the map is then opened)


def test_cli_evaluate_report_refuses_an_existing_file(tmp_path: Path, mapped: tuple[Path, Path],
                                                      pop: Population) -> None:  # fmt: skip
    m, _ = mapped
    links = tmp_path / "links.parquet"
    assert _cli(["map", "links", str(m), "-o", str(links)])[0] == 0
    report = _old(tmp_path / "r.html")
    args = ["evaluate", str(links), "--truth", str(pop.truth), "--report", str(report)]
    code, text = _cli(args)
    assert code == 2 and "already exists" in text and "--force" in text, text
    assert report.read_bytes() == OLD
    code, text = _cli([*args, "--force"])
    assert code == 0, text
    assert report.read_bytes() != OLD and report.stat().st_mode & 0o777 == 0o600


def test_tlu_key_goes_through_files(tmp_path: Path) -> None:
    key = tmp_path / "tlu.key"
    map_keygen(key)
    first = key.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        map_keygen(key)
    assert key.read_bytes() == first
    map_keygen(key, force=True)
    assert key.read_bytes() != first and key.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["tlu.key"]


# -- no writer bypasses linkage._files ----------------------------------------------------------
_WRITE = re.compile(
    r"os\.replace\(|os\.rename\(|(?:pq|pacsv|parquet|csv)\.write_(?:table|csv)\("
    r"|\.write_text\(|\.write_bytes\("
    r"|\bopen\([^)]*['\"][wax]b?['\"]|os\.open\((?!os\.devnull)"
)  # /dev/null (stdout after a closed pipe, linkage.cli.common) is no output
# the map's own storage (DuckDB file and its filter file), created and updated in place under
# the map's lock and transaction; not an output a user names with -o
_OWN_STORAGE = {"linkage/tlu/linkage_map/filters.py", "linkage/tlu/linkage_map/store.py"}


def test_every_writer_goes_through_files() -> None:
    """A module that writes a file does so into a temporary of atomic_outputs (or a temporary
    folder of new_temp_dir), so it must use them."""
    bad = []
    for path in sorted((ROOT / "linkage").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "linkage/_files.py" or rel in _OWN_STORAGE:
            continue
        text = path.read_text(encoding="utf-8")
        if _WRITE.search(text) and not re.search(r"atomic_outputs|new_temp_dir", text):
            bad.append(rel)
        if "os.replace(" in text or "os.rename(" in text:
            bad.append(f"{rel} (renames files itself)")
    assert not bad, bad


# -- readers wait for an update (--wait), as the lock message says -------------------------------
@contextlib.contextmanager
def _holding(m: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the map's lock (an open write transaction) for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(m)!r})
            con.execute("BEGIN TRANSACTION")
            print("held", flush=True)
            time.sleep(float(sys.argv[1]))
        """), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def held(mapped: tuple[Path, Path]) -> Iterator[subprocess.Popen[str]]:
    with _holding(mapped[0], 1.5) as holder:
        yield holder


READERS = {
    "links": lambda m, k, d: ["links", m, "-o", f"{d}/l.parquet"],
    "changes": lambda m, k, d: ["changes", m, "--since", "0", "-o", f"{d}/c.parquet"],
    "history": lambda m, k, d: ["history", m, "--entity", "0123456789abcdef"],
    "info": lambda m, k, d: ["info", m],
    "export": lambda m, k, d: [
        "export",
        m,
        "--project",
        "p",
        "--key-file",
        k,
        "-o",
        f"{d}/e.parquet",
    ],
}


def test_every_map_command_that_opens_a_map_has_wait() -> None:
    group = main.commands["map"]
    assert isinstance(group, click.Group)
    for name in [*READERS, "update"]:
        opts = {o for p in group.commands[name].params for o in getattr(p, "opts", [])}
        assert "--wait" in opts, name


def test_readers_blocked_by_an_update_name_their_own_wait_and_use_it(
    tmp_path: Path, mapped: tuple[Path, Path], held: subprocess.Popen[str]
) -> None:
    m, key = mapped
    for name, make in READERS.items():
        code, text = _cli(["map", *make(str(m), str(key), str(tmp_path))])
        assert code == 2 and "give --wait SECONDS" in text, (name, text)
    # with --wait the reader waits for the holder (1.5 s) and then reads
    code, text = _cli(["map", "info", str(m), "--wait", "30"])
    assert code == 0 and "version 1" in text, text


def test_a_wait_too_short_says_it_waited(mapped: tuple[Path, Path]) -> None:
    m, _ = mapped
    with _holding(m, 60):
        code, text = _cli(["map", "info", str(m), "--wait", "0.3"])
    assert code == 2 and "waited 0.3 s" in text and "longer --wait" in text, text
    assert "give --wait SECONDS" not in text, text
