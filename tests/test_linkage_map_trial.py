"""Findings of a second new user's trial of the linkage map (each test failed before its fix).

1. The map path is never one of the inputs (with or without ``--force``).
2. ``map create`` takes the lock an update takes, and never replaces a file that appeared
   while it worked (without ``--force``).
7. A map held by another program (``duckdb -readonly``) is named as such.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population, subset

from linkage.cli import main
from linkage.errors import InputError, LinkageError
from linkage.tlu.linkage_map import map_create, map_info, map_update


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("trial") / "synth", people=300, parties=3)


@pytest.fixture(scope="module")
def files(pop: Population, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("files")
    out = []
    for enc in pop.encs:
        f = d / f"{enc.party}.parquet"
        enc.write(f)
        out.append(f)
    return out


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


# -- 1. the map path is never an input ------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_create_refuses_an_input_as_the_map(tmp_path: Path, files: list[Path], force: bool) -> None:
    a = tmp_path / "a.parquet"
    a.write_bytes(files[0].read_bytes())
    before = a.read_bytes()
    rc, out = _cli("map", "create", a, a, files[1], "-q", *(["--force"] if force else []))
    assert rc == 2, out
    assert "would overwrite the input" in out
    assert a.read_bytes() == before
    # the map's side files are its outputs too
    m = tmp_path / "m.duckdb"
    side = tmp_path / "m.duckdb.filters"
    side.write_bytes(files[0].read_bytes())
    with pytest.raises(LinkageError, match="would overwrite the input"):
        map_create(m, [side, files[1]], force=True)
    assert not m.exists()


def test_create_refuses_a_map_name_not_ending_in_duckdb(tmp_path: Path, files: list[Path]) -> None:
    """``map create --force a.parquet b.parquet c.parquet`` (the map's name forgotten) would
    replace a partner's file."""
    a = tmp_path / "a.parquet"
    a.write_bytes(files[0].read_bytes())
    rc, out = _cli("map", "create", "--force", a, files[1], files[2], "-q")
    assert rc == 2 and "give a name ending in .duckdb" in out, out
    assert a.read_bytes() == files[0].read_bytes()


# -- 2. create takes the map's lock; a file that appears meanwhile is kept ------------------

HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("held", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder() -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path, read_only: bool) -> None:
        p = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), "ro" if read_only else "rw"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "held"

    yield hold
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("read_only", [False, True])
def test_create_force_refuses_a_map_in_use(
    tmp_path: Path, files: list[Path], holder: object, read_only: bool
) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, files[:2], seed=1)
    before = m.read_bytes()
    holder(m, read_only)  # type: ignore[operator]
    rc, out = _cli("map", "create", m, *files[:2], "--force", "-q", "--seed", "2")
    assert rc == 2, out
    assert "in use" in out and "another process" in out
    assert m.read_bytes() == before


def test_create_does_not_replace_a_map_that_appeared_meanwhile(
    tmp_path: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two creates to one new path: the second to finish fails, the first's map is kept."""
    from linkage.tlu.linkage_map import build

    m = tmp_path / "m.duckdb"
    real = build.version_row

    def other_create_first(*a: object, **k: object) -> object:
        # another process's create finishes while this one still works
        code = "import sys; from linkage.tlu.linkage_map import map_create; "
        code += "map_create(sys.argv[1], sys.argv[2:], seed=9)"
        subprocess.run([sys.executable, "-c", code, str(m), *map(str, files[1:])], check=True)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "version_row", other_create_first)
    with pytest.raises(LinkageError, match="appeared while the map was being created"):
        map_create(m, files[:2], seed=1)
    assert map_info(m)["meta"]["seed"] == "9"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.duckdb", "m.duckdb.filters", "m.duckdb.keys"
    ]  # fmt: skip


# -- 7. another program holds the map -------------------------------------------------------


def test_update_names_another_program_holding_the_map(
    tmp_path: Path, pop: Population, holder: object
) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [subset(a, np.arange(len(a) - 5)), pop.encs[1]], seed=1)
    holder(m, True)  # type: ignore[operator]
    with pytest.raises(InputError, match=r"another process \(an update, or a program with"):
        map_update(m, [a])


# -- 6. a damaged map file ------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "header"])
def test_damaged_map_is_one_clear_error(
    tmp_path: Path, pop: Population, files: list[Path], damage: str
) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [subset(a, np.arange(len(a) - 5)), pop.encs[1]], seed=1)
    data = bytearray(m.read_bytes())
    if damage == "overwritten":  # every block after the headers
        for at in range(3 * 4096 + 100, len(data), 8192):
            data[at : at + 64] = b"x" * 64
    elif damage == "header":
        data[4096 + 8 : 4096 + 200] = b"z" * 192
    else:
        data = data[: len(data) // 2]
    m.write_bytes(bytes(data))
    for args in (["info", m], ["update", m, files[0], "-q"],
                 ["links", m, "-o", tmp_path / "l.parquet"]):  # fmt: skip
        rc, out = _cli("map", *args)
        assert rc == 2, (args, out)
        assert f"{m}: the map file is damaged" in out and "restore it from a backup" in out
        assert out.count("Error:") == 1 and "internal error" not in out


# -- 4. a file applied twice, an older file, a truncated extract, a mass change -------------


def _map_of(tmp_path: Path, pop: Population) -> tuple[Path, list[Path]]:
    """A map of party a's first 200 records and party b; a's files for two months."""
    a, b = pop.encs[0], pop.encs[1]
    m = tmp_path / "m.duckdb"
    map_create(m, [subset(a, np.arange(200)), b], seed=1, dedupe=True)
    months = []
    for k, n in enumerate([205, 210]):
        f = tmp_path / f"a_{k}.parquet"
        subset(a, np.arange(n)).write(f)
        months.append(f)
    return m, months


def test_a_file_already_applied_is_refused(tmp_path: Path, pop: Population) -> None:
    m, (jan, feb) = _map_of(tmp_path, pop)
    assert map_update(m, [jan])["version"] == 2
    with pytest.raises(InputError, match=r"a_0.parquet: .* already applied .* as version 2"):
        map_update(m, [jan])
    with pytest.raises(InputError, match="already applied"):  # as a delta too
        map_update(m, [jan], delta=True)
    assert map_update(m, [feb])["version"] == 3
    rc, out = _cli("map", "update", m, jan, "-q")
    assert rc == 2 and "--reapply" in out and "reapply=" not in out, out
    assert map_info(m)["current_version"] == 3
    assert map_update(m, [jan], reapply=True)["retired"] == 5  # undoing February


def test_a_file_encoded_before_the_last_one_applied_is_refused(
    tmp_path: Path, pop: Population
) -> None:
    from linkage.encoded import EncodedTable

    m, _ = _map_of(tmp_path, pop)
    a = pop.encs[0]
    new = EncodedTable(subset(a, np.arange(203)).table, dict(a.meta, created="2030-01-01T00:00:00"))
    new.write(tmp_path / "new.parquet")
    old = EncodedTable(subset(a, np.arange(206)).table, dict(a.meta, created="2029-12-01T00:00:00"))
    old.write(tmp_path / "old.parquet")
    map_update(m, [tmp_path / "new.parquet"])
    with pytest.raises(InputError, match=r"old.parquet: .* encoded at 2029-12-01.* older extract"):
        map_update(m, [tmp_path / "old.parquet"])
    assert map_update(m, [tmp_path / "old.parquet"], reapply=True)["added"] == 3


def test_a_truncated_extract_or_a_mass_change_is_refused(tmp_path: Path, pop: Population) -> None:
    from test_linkage_map_data import with_changed

    m, _ = _map_of(tmp_path, pop)
    a = pop.encs[0]
    trunc = tmp_path / "trunc.parquet"
    subset(a, np.arange(120)).write(trunc)  # 80 of 200 retired: 40%
    rc, out = _cli("map", "update", m, trunc, "-q")
    assert rc == 2 and "would retire 80 and change 0 of the party's 200" in out, out
    assert "--allow-mass-change" in out and "allow_mass_change" not in out
    assert map_info(m)["current_version"] == 1
    changed = with_changed(pop, subset(a, np.arange(200)), 100, seed=3)  # a mapping mistake
    with pytest.raises(InputError, match=r"would retire 0 and change \d+ of the party's 200"):
        map_update(m, [changed])
    with pytest.raises(InputError, match=r"this delta .* would retire 0 and change"):
        map_update(m, [changed], delta=True)
    # 20% is allowed; more with the flag
    assert map_update(m, [subset(a, np.arange(160))])["retired"] == 40
    rc, out = _cli("map", "update", m, trunc, "-q", "--allow-mass-change")
    assert rc == 0, out
    assert map_info(m)["current_version"] == 3


# -- 8. --solver optimal and a third party --------------------------------------------------


def test_an_optimal_map_refuses_a_third_party_in_cli_words(
    tmp_path: Path, files: list[Path]
) -> None:
    m = tmp_path / "m.duckdb"
    rc, out = _cli("map", "create", m, *files[:2], "--solver", "optimal", "-q")
    assert rc == 0, out
    rc, out = _cli("map", "update", m, files[2], "-q")
    assert rc == 2, out
    assert "third party" in out and "--solver optimal" in out and "--solver greedy" in out
    assert "solver=" not in out and "index" not in out
    assert map_info(m)["current_version"] == 1
    rc, out = _cli("map", "create", "--help")
    assert "never takes a third party" in " ".join(out.split())


# -- 9. row numbers of the deletions list; a deletions list with no rows ---------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_deletion_rows_count_data_rows_from_1(tmp_path: Path, pop: Population, fmt: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [a, pop.encs[1]], seed=1)
    ids = a.record_ids.to_pylist()
    rows = {"party": [a.party, a.party, a.party], "record_id": [ids[0], "nope", ids[1]]}
    dels = tmp_path / f"gone.{fmt}"
    if fmt == "csv":
        lines = [f"{p},{r}\n" for p, r in zip(rows["party"], rows["record_id"], strict=True)]
        dels.write_text("party,record_id\n" + "".join(lines))
    else:
        pq.write_table(pa.table(rows), dels)
    with pytest.raises(InputError, match=rf"gone.{fmt}: row 2: record 'nope'"):
        map_update(m, [], delta=True, deletions=dels)
    empty = tmp_path / "empty.csv"
    empty.write_text("party,record_id\n")
    rc, out = _cli("map", "update", m, "--delta", "--deletions", empty, "-q")
    assert rc == 2 and "empty.csv: the deletions list has no rows" in out, out


# -- 10. temporary files of a killed create ---------------------------------------------------

KILLED_CREATE = textwrap.dedent(
    """
    import os, signal, sys
    import linkage.tlu.linkage_map.build as b
    def _killed(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    b.version_row = _killed  # after the map's rows, the filter file and the key index
    b.map_create(sys.argv[1], sys.argv[2:], seed=1)
    """
)


def _partials(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".partial" in p.name)


def test_partials_of_a_killed_create_are_removed_by_the_next_create_or_update(
    tmp_path: Path, files: list[Path]
) -> None:
    m = tmp_path / "m.duckdb"
    p = subprocess.Popen([sys.executable, "-c", KILLED_CREATE, str(m), *map(str, files[:2])])
    assert p.wait() == -9
    left = _partials(tmp_path)
    assert any(".filters." in n for n in left) and any(n.endswith(".partial") for n in left)
    # a live process's temporary files are never touched
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = tmp_path / f".m.duckdb.{live.pid}.partial"
        mine.write_bytes(b"in progress")
        map_create(m, files[:2], seed=1)
        assert _partials(tmp_path) == [mine.name]
        dead = tmp_path / f".m.duckdb.keys.{p.pid}.partial"  # the killed create's
        dead.write_bytes(b"left")
        map_update(m, [files[2]])
        assert _partials(tmp_path) == [mine.name]
    finally:
        live.kill()
        live.wait()


# -- minor findings ------------------------------------------------------------------------


def test_minor_wording(tmp_path: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    m = tmp_path / "m.duckdb"
    rc, out = _cli("map", "create", m, *files[:2], "-q", "--blocking", "keys", "--max-block", "2")
    assert rc == 0 and "--max-block" not in out, out  # -q: no --max-block warning
    rc, out = _cli("map", "create", m, *files[:2], "--blocking", "keys", "--max-block", "2",
                   "--force")  # fmt: skip
    assert rc == 0 and "exceed --max-block 2" in out, out
    # --since out of range names the map
    rc, out = _cli("map", "changes", m, "--since", "99", "-o", tmp_path / "c.parquet")
    assert rc == 2 and f"{m}: --since must be between 0 and 1" in out, out
    # the version log's times say their zone
    rc, out = _cli("map", "info", m, "--json")
    assert json.loads(out)["versions"][0]["created"].endswith("Z")
    # keygen never writes a file named "-"
    rc, out = _cli("map", "keygen", "-o", "-")
    assert rc == 2 and "never to standard output" in out and not (tmp_path / "-").exists()
    # a CSV given as an input
    csv = tmp_path / "a.csv"
    csv.write_text("id,name\n1,x\n")
    for args in (["create", tmp_path / "n.duckdb", csv, files[1]], ["update", m, csv]):
        rc, out = _cli("map", *args, "-q")
        assert rc == 2 and "encode it first with `linkage encode`" in out, out
        assert "ArrowInvalid" not in out
    # a directory where the filter file goes
    d = tmp_path / "n.duckdb.filters"
    d.mkdir()
    rc, out = _cli("map", "create", tmp_path / "n.duckdb", *files[:2], "-q")
    assert rc == 2 and f"{d}: the map's filter file is a directory" in out, out
    assert ".partial" not in out
    (tmp_path / "m.duckdb.keys").unlink()
    (tmp_path / "m.duckdb.keys").mkdir()
    rc, out = _cli("map", "update", m, files[2], "-q")
    assert rc == 2 and "m.duckdb.keys: the map's key index is a directory" in out, out


def test_override_flags_are_named_once(tmp_path: Path, pop: Population) -> None:
    from linkage.encoded import EncodedTable

    a, b = pop.encs[0], pop.encs[1]
    m = tmp_path / "m.duckdb"
    map_create(m, [a, b], seed=1)
    wrong = tmp_path / "b_as_a.parquet"
    EncodedTable(b.table, dict(b.meta, party=a.party)).write(wrong)
    rc, out = _cli("map", "update", m, wrong, "-q")
    assert rc == 2 and out.count("--replace-all") == 1, out


def test_key_text_as_key_file_is_not_echoed_and_project_is_exact(tmp_path: Path) -> None:
    """A tester passed the TLU key's hex as --key-file (the error repeated it) and
    --project "study42 " (silently other pseudonyms than "study42")."""
    import base64
    import secrets

    from linkage.errors import InputError
    from linkage.tlu.linkage_map.pseudonyms import pseudonyms, read_tlu_key

    for text in (secrets.token_hex(32), base64.b64encode(secrets.token_bytes(32)).decode()):
        with pytest.raises(InputError, match="looks like a key itself") as exc:
            read_tlu_key(text)
        assert text not in str(exc.value)
    with pytest.raises(InputError, match="not found"):
        read_tlu_key(tmp_path / "tlu.key")  # an ordinary missing file is still named
    ids = np.arange(3, dtype=np.uint64)
    key = bytes(32)
    assert len(pseudonyms(ids, key, "study42")) == 3
    for bad in ("study42 ", " study42", "study\t42", "study42\n"):
        with pytest.raises(InputError, match="give the name exactly"):
            pseudonyms(ids, key, bad)


def test_create_force_never_wipes_out_an_update_applied_meanwhile(
    tmp_path: Path, pop: Population
) -> None:
    """A tester's `map create --force` finished after an update had applied version 3 to the
    map it replaced: the update, reported as done (rc 0), was silently lost."""
    from linkage._files import OutputError
    from linkage.tlu.linkage_map.store import new_map

    m, months = _map_of(tmp_path, pop)
    with (
        pytest.raises(OutputError, match="changed while the new map was built"),
        new_map(m, force=True),
    ):
        assert map_update(m, [months[0]])["version"] == 2  # while the create builds
    assert map_info(m)["current_version"] == 2  # the update stands
    assert not list(tmp_path.glob(".m.duckdb.*partial*"))
    with new_map(m, force=True):  # nothing changed meanwhile: replaced
        pass


def test_an_emptied_or_zeroed_map_is_damaged_and_another_file_is_not_a_map(
    tmp_path: Path,
) -> None:
    """A map truncated to 0 bytes or with its first 4 KB zeroed read "cannot open the map (IO
    Error: ... not a valid DuckDB database file!)", not the documented "damaged"."""
    for name, data in (("e.duckdb", b""), ("z.duckdb", bytes(8192))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=r"the map file is damaged .* restore it"):
            map_info(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a map, just some text\n")
    with pytest.raises(InputError, match="not a linkage map"):
        map_info(tmp_path / "notes.txt")
