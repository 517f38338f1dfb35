"""A mistyped party name in ``map update`` (``--party council-a`` for ``council_a``) added the
whole extract as a new party, everyone in it twice (a tester's finding, rc 0). A party not
yet in the map that is named like an existing one, or holds most of an existing party's
current record ids, is refused unless ``new_party`` (``--new-party``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population, subset

from linkage.cli import main
from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.tlu.linkage_map import map_create, map_info, map_links, map_update
from linkage.tlu.linker import party_key


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("pop") / "synth", people=300, parties=3)


def _as_party(enc: EncodedTable, party: str) -> EncodedTable:
    return EncodedTable(enc.table, dict(enc.meta, party=party))


def _keep(enc: EncodedTable, n: int) -> EncodedTable:
    return subset(enc, np.arange(n))


def _mixed(ids_of: EncodedTable, n: int, rest: EncodedTable, party: str) -> EncodedTable:
    """``n`` records of ``ids_of`` (their ids) then every record of ``rest``, as ``party``."""
    t = pa.concat_tables([_keep(ids_of, n).table, rest.table])
    return EncodedTable(t, dict(rest.meta, party=party, record_count=str(t.num_rows)))


def _renamed(enc: EncodedTable, n: int, prefix: str) -> EncodedTable:
    """The first ``n`` records of ``enc`` under new record ids (``prefix`` + row)."""
    t = _keep(enc, n).table
    i = t.column_names.index("record_id")
    t = t.set_column(i, t.schema.field(i), pa.array([f"{prefix}{k}" for k in range(n)]))
    return EncodedTable(t, dict(enc.meta, record_count=str(n)))


def test_party_key_ignores_case_spaces_and_punctuation() -> None:
    assert party_key("council-a") == party_key("council_a") == party_key("Council A")
    assert party_key("council_a") != party_key("council_b")
    assert party_key("--") == "--"  # nothing left: the name itself
    assert party_key("council_\uff41") == party_key("council_a")  # fullwidth a (NFKC)


def test_two_new_parties_named_alike_in_one_update_are_refused(
    tmp_path: Path, pop: Population
) -> None:
    """A second tester's `map update m nhs.parquet NHS.parquet`: both new, alike only to each
    other; refused before anything is read from the map, --new-party or not."""
    m = tmp_path / "m.duckdb"
    a, b, c = pop.encs
    map_create(m, [a, b], seed=1)
    for flag in (False, True):
        with pytest.raises(InputError, match="differ only in case, spaces or punctuation"):
            map_update(m, [_as_party(c, "nhs"), _as_party(c, "NHS")], new_party=flag)
    assert map_info(m)["current_version"] == 1


def test_mistyped_party_name_is_refused(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a, b, c = pop.encs
    assert (a.party, b.party) == ("council_a", "council_b")
    map_create(m, [a, b], seed=7)
    before = map_links(m)
    n = len(a)
    with pytest.raises(InputError) as err:
        map_update(m, [_as_party(a, "council-a")])
    msg = str(err.value)
    assert msg.startswith("party council-a: party 'council-a' is not in the map"), msg
    assert f"{n:,} of its {n:,} records are current records of party 'council_a'" in msg
    assert "differs from party 'council_a' only in case, spaces or punctuation" in msg
    assert "--party council_a" in msg and "Nothing was applied" in msg
    assert "--new-party" in msg
    # the name alone (unrelated ids): "Council A" with party c's records
    alike = r"'Council A' is not in the map.* differs from party 'council_a' only"
    with pytest.raises(InputError, match=alike):
        map_update(m, [_as_party(c, "Council A")])
    # the ids alone (a distinct name): council_b's records as "nhs2"
    with pytest.raises(InputError, match=rf"{len(b):,} of its {len(b):,} records are current "
                       "records of party 'council_b'"):  # fmt: skip
        map_update(m, [_as_party(b, "nhs2")])
    # a delta is no different
    with pytest.raises(InputError, match="--new-party"):
        map_update(m, [_as_party(_keep(a, 40), "council-a")], delta=True)
    assert map_info(m)["current_version"] == 1
    assert map_links(m).equals(before)


def test_new_parties_pass_and_the_override_is_recorded(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a, b, c = pop.encs
    map_create(m, [a, b], seed=7)
    # a new party with unrelated ids and a distinct name needs no flag
    assert map_update(m, [c])["added"] == len(c)
    # a handful of shared ids (10) is no evidence; 11 of 21 (over half) is
    assert map_update(m, [_mixed(a, 10, _keep(b, 0), "d")])["added"] == 10
    with pytest.raises(InputError, match="11 of its 21 records are current records of party "
                       "'council_a'"):  # fmt: skip
        map_update(m, [_mixed(a, 11, _renamed(c, 10, "e"), "e")])
    # under half: 11 of 23 passes
    assert map_update(m, [_mixed(a, 11, _renamed(c, 12, "f"), "f")])["added"] == 23
    # a new party that numbers its records like another, its own people (other encodings):
    # the ids alone are no evidence (a second tester's finding), so it needs no flag
    t = c.table.set_column(c.table.column_names.index("record_id"), "record_id",
                           a.record_ids.slice(0, len(c)))  # fmt: skip
    assert map_update(m, [EncodedTable(t, dict(c.meta, party="g"))])["added"] == len(c)
    # a copy of council_b's records under another name: --new-party confirms it anyway
    s = map_update(m, [_as_party(b, "nhs2")], new_party=True)
    assert s["added"] == len(b)
    log = map_info(m)["versions"]
    assert {"overrides": ["--new-party"]} in log[-1]["sources"]
    assert all("overrides" not in src for v in log[:-1] for src in v["sources"])


def test_cli_refuses_a_mistyped_party_with_one_error(tmp_path: Path, pop: Population) -> None:
    a, b = pop.encs[0], pop.encs[1]
    fa, fb, typo = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "a2_typo.parquet"
    a.write(fa)
    b.write(fb)
    _as_party(_keep(a, len(a) - 5), "council-a").write(typo)
    m = str(tmp_path / "m.duckdb")
    r = CliRunner()
    assert r.invoke(main, ["map", "create", m, str(fa), str(fb), "-q"]).exit_code == 0
    res = r.invoke(main, ["map", "update", m, str(typo)])
    assert res.exit_code == 2, res.output
    assert res.output.count("Error:") == 1 and "Traceback" not in res.output
    assert "a2_typo.parquet: party 'council-a'" in res.output, res.output
    assert "--new-party" in res.output
    info = json.loads(r.invoke(main, ["map", "info", m, "--json"]).output)
    assert info["current_version"] == 1
    res = r.invoke(main, ["map", "update", m, str(typo), "--new-party", "-q"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["map", "info", m])
    assert "overrides given --new-party" in res.output, res.output
