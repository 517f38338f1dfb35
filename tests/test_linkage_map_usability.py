"""Findings of a new user's trial of the linkage map (each test failed before its fix).

1. ``map create`` takes the files' recommended threshold as ``match`` does: same partition
   with default options on hardened encodings (it used 0.7: cross-party F1 0.887 vs 0.979).
2. A full extract that shares (almost) no record ids with its party's current records (most
   likely another party's file encoded under this party's name) is refused unless
   ``replace_all``; it used to retire the party's whole population silently.
3. ``map info`` after an update with a deletions list (it crashed with KeyError).
5. Version 1's entity ids are ``created`` events (``changes --since 0``, the map report);
   ``map create`` writes the filter file with the map and leaves none when it fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population, partition, subset

from linkage.cli import main
from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.lab.synthetic import encode_arguments, synth
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_template
from linkage.secret import Secret
from linkage.tlu.linkage_map import (
    map_changes,
    map_create,
    map_history,
    map_info,
    map_links,
    map_update,
)
from linkage.tlu.linkage_map.filters import filters_path
from linkage.tlu.linker import match

SECRET = Secret(hashlib.sha256(b"map-usability-secret").digest())


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("pop") / "synth", people=600, parties=3)


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two parties' files encoded with the hardened default template (threshold 0.55)."""
    d = tmp_path_factory.mktemp("hardened")
    synth(d / "synth", people=500, parties=2, corruption="medium", seed=3)
    manifest = json.loads((d / "synth" / "manifest.json").read_text())
    schema = Schema.from_dict(uk_person_template())
    paths = []
    for p in manifest["parties"]:
        enc = encode(d / "synth" / p["file"], schema, SECRET, rejects=[], **encode_arguments(p))
        path = d / f"{enc.party}.parquet"
        enc.write(path)
        paths.append(path)
    return paths


# -- 1. the recommended threshold ---------------------------------------------------------


def test_map_create_and_match_agree_with_default_options_on_hardened_files(
    tmp_path: Path, hardened: list[Path]
) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, hardened, dedupe=True, seed=7)
    ref = match(hardened, dedupe=True, seed=7)
    assert ref.stats.threshold == 0.55
    assert partition(map_links(m)) == partition(ref.links)
    assert float(map_info(m)["meta"]["threshold"]) == 0.55
    # the CLI: no 0.7 default, the map records the files' threshold
    cli = tmp_path / "cli.duckdb"
    res = CliRunner().invoke(main, ["map", "create", str(cli), *map(str, hardened), "--dedupe",
                                    "--seed", "7", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert partition(map_links(cli)) == partition(ref.links)
    help_text = CliRunner().invoke(main, ["map", "create", "--help"]).output
    assert "default: 0.7" not in help_text


# -- 3. map info after deletions ----------------------------------------------------------


def _with_deletions(tmp_path: Path, pop: Population) -> Path:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, pop.encs, seed=2, dedupe=True)
    dels = tmp_path / "gone.csv"
    gone = a.record_ids.to_pylist()[:7]
    dels.write_text("party,record_id\n" + "".join(f"{a.party},{r}\n" for r in gone))
    map_update(m, [], delta=True, deletions=dels)
    return m


def test_map_info_after_an_update_with_deletions(tmp_path: Path, pop: Population) -> None:
    m = _with_deletions(tmp_path, pop)
    info = map_info(m)
    v2 = info["versions"][1]
    assert v2["sources"] == [{"file": "gone.csv", "deletions": 7}]
    assert v2["retired"] == 7
    r = CliRunner()
    res = r.invoke(main, ["map", "info", str(m)])
    assert res.exit_code == 0, res.output
    assert "gone.csv (7 deletions)" in res.output
    res = r.invoke(main, ["map", "info", str(m), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["versions"][1]["sources"][0]["deletions"] == 7


def test_map_report_after_deletions(tmp_path: Path, pop: Population) -> None:
    from linkage.report import write_map_report

    m = _with_deletions(tmp_path, pop)
    out = write_map_report(tmp_path / "r.html", m)
    assert out.stat().st_size > 0


def _info_json(m: Path) -> Any:
    res = CliRunner().invoke(main, ["map", "info", str(m), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _keep(enc: EncodedTable, n: int) -> EncodedTable:
    return subset(enc, np.arange(n))


# -- 2. another party's extract under this party's name ------------------------------------


def _as_party(enc: EncodedTable, party: str) -> EncodedTable:
    return EncodedTable(enc.table, dict(enc.meta, party=party))


def test_full_extract_of_another_party_is_refused(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a, b = pop.encs[0], pop.encs[1]
    map_create(m, [a, b], seed=1, dedupe=True)
    before = map_links(m)
    b_as_a = _as_party(b, a.party)
    with pytest.raises(InputError, match=r"shares only 0 of .* --replace-all") as err:
        map_update(m, [b_as_a])
    assert "Nothing was applied" in str(err.value)
    # almost no overlap: 5% of a's ids plus b's records
    few = pa.concat_tables([_keep(a, len(a) // 20).table, b_as_a.table])
    mixed = EncodedTable(few, dict(a.meta, record_count=str(few.num_rows)))
    with pytest.raises(InputError, match=rf"shares only {len(a) // 20} of the party's {len(a)}"):
        map_update(m, [mixed])
    assert map_info(m)["current_version"] == 1
    assert map_links(m).equals(before)
    # a usual month (most ids kept) and a delta are not refused; --replace-all confirms
    assert map_update(m, [_keep(a, len(a) - 30)])["retired"] == 30
    s = map_update(m, [b_as_a], replace_all=True)
    assert s["retired"] == len(a) - 30 and s["added"] == len(b)


def test_small_party_sharing_no_ids_is_refused(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a, b = pop.encs[0], pop.encs[1]
    map_create(m, [_keep(a, 20), b], seed=1, dedupe=True)
    with pytest.raises(InputError, match="shares only 0 of the party's 20"):
        map_update(m, [_as_party(_keep(b, 20), a.party)])
    # 1 of 20 shared (under 10%): refused too, whatever the party's size
    with pytest.raises(InputError, match="shares only 1 of the party's 20"):
        map_update(m, [_keep(a, 1)])
    # 2 of 20: a retirement of 90% (over 20%) needs --allow-mass-change
    with pytest.raises(InputError, match=r"would retire 18 and change 0 .* --allow-mass-change"):
        map_update(m, [_keep(a, 2)])
    assert map_update(m, [_keep(a, 2)], allow_mass_change=True)["retired"] == 18


def test_cli_refuses_the_wrong_party_file_with_one_error(tmp_path: Path, pop: Population) -> None:
    a, b = pop.encs[0], pop.encs[1]
    fa, fb, wrong = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "b_as_a.parquet"
    a.write(fa)
    b.write(fb)
    _as_party(b, a.party).write(wrong)
    m = str(tmp_path / "m.duckdb")
    r = CliRunner()
    assert r.invoke(main, ["map", "create", m, str(fa), str(fb), "-q"]).exit_code == 0
    res = r.invoke(main, ["map", "update", m, str(wrong)])
    assert res.exit_code == 2, res.output
    assert res.output.count("Error:") == 1 and "b_as_a.parquet" in res.output
    assert "--replace-all" in res.output and "Traceback" not in res.output
    assert _info_json(Path(m))["current_version"] == 1
    res = r.invoke(main, ["map", "update", m, str(wrong), "--replace-all", "-q"])
    assert res.exit_code == 0, res.output
    assert _info_json(Path(m))["current_version"] == 2


# -- 5. version 1's events; the filter file at create ---------------------------------------


def test_version_1_creations_are_changes_since_0(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    s = map_create(m, pop.encs, seed=4, dedupe=True)
    ch = map_changes(m, since=0)
    assert ch.num_rows == s["entities"]
    assert set(ch.column("change").to_pylist()) == {"created"}
    assert set(ch.column("version").to_pylist()) == {1}
    assert sum(ch.column("records").to_pylist()) == s["records"]
    assert map_changes(m, since=1).num_rows == 0
    e = ch.column("entity_id")[0].as_py()
    assert map_history(m, e)["events"][0]["change"] == "created"
    map_update(m, [subset(pop.encs[0], np.arange(40, len(pop.encs[0])))])
    assert map_changes(m, since=0).num_rows == s["entities"] + map_changes(m, since=1).num_rows
    # a map made before create stored them: derived from version 1's memberships
    import duckdb

    con = duckdb.connect(str(m))
    con.execute("DELETE FROM events WHERE version = 1")
    con.close()
    assert map_changes(m, since=0).slice(0, s["entities"]).equals(ch)


def test_map_report_counts_version_1_ids(tmp_path: Path, pop: Population) -> None:
    from linkage.report import Disclosure, write_map_report

    m = tmp_path / "m.duckdb"
    s = map_create(m, pop.encs, seed=4, dedupe=True)
    exact = Disclosure(min_count=1, round_to=1)
    html = write_map_report(tmp_path / "r.html", m, disclosure=exact).read_text()
    row = html[html.index("<td>1</td>") :]
    cells = [c.split("</td>")[0] for c in row.split("<td")[1:13]]
    cells = [c.split(">", 1)[1] if ">" in c else c for c in cells]
    assert cells[8].replace(",", "") == str(s["entities"]), cells  # ids created


def test_create_writes_the_filter_file_and_leaves_none_on_failure(
    tmp_path: Path, pop: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkage.tlu.linkage_map import build

    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs[:2], seed=1, dedupe=True)
    assert filters_path(m).is_file()
    kept = filters_path(m).read_bytes()

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("killed after the filter file was written")

    monkeypatch.setattr(build, "version_row", boom)
    other = tmp_path / "other.duckdb"
    with pytest.raises(RuntimeError):
        map_create(other, pop.encs[:2], seed=1, dedupe=True)
    with pytest.raises(RuntimeError):  # replacing a map: the old one keeps its filter file
        map_create(m, pop.encs[1:], seed=2, dedupe=True, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.duckdb", "m.duckdb.filters", "m.duckdb.keys"
    ]  # fmt: skip
    assert filters_path(m).read_bytes() == kept
    monkeypatch.undo()
    assert not map_update(m, [pop.encs[2]])["filters_rebuilt"]


def test_mass_change_counts_deletions_and_spares_a_small_partys_month(
    tmp_path: Path, pop: Population
) -> None:
    """A tester's deletions list holding every current id of a party retired all of it (rc
    0); and a party of 11 records with 3 changes in a month (27%) was refused."""
    m = tmp_path / "m.duckdb"
    a, b = pop.encs[0], pop.encs[1]
    map_create(m, [_keep(a, 11), b], seed=1, dedupe=True)
    # a small party's month: 3 of 11 retired (27%, but at most 10 records): applied
    assert map_update(m, [_keep(a, 8)])["retired"] == 3
    # the party's whole id list sent as its deletions: refused, nothing applied
    big = tmp_path / "all.csv"
    ids = b.record_ids.to_pylist()
    big.write_text("party,record_id\n" + "".join(f"{b.party},{r}\n" for r in ids))
    with pytest.raises(InputError, match=rf"delta .* would retire {len(ids)} and change 0"):
        map_update(m, [], delta=True, deletions=big)
    assert map_info(m)["current_version"] == 2
    s = map_update(m, [], delta=True, deletions=big, allow_mass_change=True)
    assert s["retired"] == len(ids)
    # the override is in the version log (an audit trail), not in the earlier versions'
    log = map_info(m)["versions"]
    assert {"overrides": ["--allow-mass-change"]} in log[-1]["sources"]
    assert all("overrides" not in src for v in log[:-1] for src in v["sources"])
    r = CliRunner().invoke(main, ["map", "info", str(m)])
    assert "overrides given --allow-mass-change" in r.output, r.output


def test_map_commands_that_only_say_what_they_wrote_take_quiet(
    tmp_path: Path, pop: Population
) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs, seed=2)
    runs = {
        "links": ["map", "links", str(m), "-o", "{out}.parquet"],
        "changes": ["map", "changes", str(m), "--since", "0", "-o", "{out}.parquet"],
        "keygen": ["map", "keygen", "-o", "{out}.key"],
        "export": ["map", "export", str(m), "--project", "p1", "--key-file",
                   str(tmp_path / "keygen-loud.key"), "-o", "{out}.parquet"],
    }  # fmt: skip
    for name, args in runs.items():  # keygen first: export uses its key
        for quiet in (False, True):
            out = str(tmp_path / f"{name}-{'quiet' if quiet else 'loud'}")
            argv = [a.replace("{out}", out) for a in args] + (["-q"] if quiet else [])
            res = CliRunner().invoke(main, argv)
            assert res.exit_code == 0, (name, res.output)
            assert (res.output == "") == quiet, (name, quiet, res.output)
            assert list(tmp_path.glob(f"{name}-{'quiet' if quiet else 'loud'}.*")), name
