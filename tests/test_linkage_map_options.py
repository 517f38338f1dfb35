"""Match options the linkage map cannot carry from one update to the next are refused, never
silently dropped: field-aware scoring (segmented encodings) and a per-record candidate cap
(``max_candidates``) that bites. Segmented encodings linked by Dice (``scoring="dice"``)
keep the map equal to ``match(scoring="dice")``."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_linkage_map_data import Population, make_population, partition, subset

from linkage.cli import main
from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.tlu.linkage_map import map_create, map_info, map_links, map_update
from linkage.tlu.linker import match


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("seg") / "synth", 400, 2, segmented=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("plain") / "synth", 400, 2)


def test_segmented_encodings_are_linked_by_dice_and_said_so(
    tmp_path: Path, seg: Population
) -> None:
    """Before: map create linked segmented files field-aware (match's default) and updates
    continued by Dice: the map drifted from a relink without a word. Now ``auto`` links them
    by Dice and says so (a warning, or the ``warn`` callback); ``fields`` is refused."""
    a, b = seg.encs
    m = tmp_path / "m.duckdb"
    with pytest.raises(InputError, match="does not support field-aware scoring"):
        map_create(m, [a, b], scoring="fields")
    assert not m.exists()
    notes: list[str] = []
    map_create(m, [a, b], max_candidates=None, warn=notes.append)  # scoring="auto"
    assert any("whole-filter Dice" in n for n in notes), notes
    assert map_info(m)["meta"]["scoring"] == "dice"
    with pytest.warns(UserWarning, match="segmented filter layout"):
        map_create(m, [a, b], max_candidates=None, force=True)
    m.unlink()
    m.with_name(m.name + ".filters").unlink()
    n = len(a)
    map_create(m, [subset(a, np.arange(n - 40)), b], scoring="dice", seed=2)
    assert map_info(m)["meta"]["scoring"] == "dice"
    map_update(m, [a])  # 40 new records of party a
    relink = match([a, b], scoring="dice", seed=2)
    assert relink.field_scores is None
    diff = partition(map_links(m)) ^ partition(relink.links)
    assert len(diff) <= 4, len(diff)  # solver ties at most


def test_map_made_without_scoring_refuses_segmented_updates(
    tmp_path: Path, seg: Population
) -> None:
    """A map made before the scoring was stored (its create was field-aware): refused."""
    a, b = seg.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [subset(a, np.arange(len(a) - 10)), b], scoring="dice")
    with duckdb.connect(str(m)) as con:
        con.execute("DELETE FROM meta WHERE key = 'scoring'")
    with pytest.raises(InputError, match="made without --scoring dice"):
        map_update(m, [a])
    assert map_info(m)["current_version"] == 1


def _with_copies(enc: EncodedTable, row: int, copies: int, prefix: str) -> EncodedTable:
    """``enc`` plus ``copies`` records with row ``row``'s encoding under new ids."""
    t = enc.table
    extra = t.take(pa.array(np.full(copies, row)))
    ids = pa.array([f"{prefix}{i}" for i in range(copies)], t.schema.field("record_id").type)
    i = t.schema.get_field_index("record_id")
    extra = extra.set_column(i, t.schema.field(i), ids)
    meta = dict(enc.meta, record_count=str(len(t) + copies))
    return EncodedTable(pa.concat_tables([t, extra]), meta)


def _max_degree(m: Path) -> int:
    with duckdb.connect(str(m), read_only=True) as con:
        got = con.execute(
            "SELECT max(n) FROM (SELECT x, count(*) AS n FROM "
            "(SELECT a AS x FROM pairs UNION ALL SELECT b FROM pairs) GROUP BY x)"
        ).fetchall()
    return int(got[0][0])


def test_cap_that_bites_at_create_is_refused(tmp_path: Path, plain: Population) -> None:
    a, b = plain.encs
    a5 = _with_copies(a, 0, 5, "copy")  # six records alike: five within-party pairs each
    m = tmp_path / "m.duckdb"
    with pytest.raises(InputError, match="more than 3 candidate pairs"):
        map_create(m, [a5, b], dedupe=True, max_candidates=3)
    assert not m.exists()
    map_create(m, [a5, b], dedupe=True, max_candidates=None, seed=1)  # no cap: exact
    assert map_info(m)["meta"]["max_candidates"] == ""
    ref = match([a5, b], dedupe=True, max_candidates=None, seed=1)
    assert partition(map_links(m)) == partition(ref.links)


def test_update_that_would_make_the_cap_bite_is_refused(tmp_path: Path, plain: Population) -> None:
    """Before: updates ignored the cap, so the map kept pairs a relink drops."""
    a, b = plain.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [a, b], dedupe=True, seed=1)
    k = _max_degree(m)
    m.unlink()
    map_create(m, [a, b], dedupe=True, seed=1, max_candidates=k)  # the cap does not bite
    grown = _with_copies(a, 0, k + 1, "dup")
    # a relink of the grown extract would cap record a[0]'s pairs
    capped = match([grown, b], dedupe=True, seed=1, max_candidates=k)
    assert capped.stats.blocking_detail.get("capped_records")
    with pytest.raises(InputError, match=f"more than {k} candidate pairs"):
        map_update(m, [grown])
    assert map_info(m)["current_version"] == 1
    assert map_update(m, [_with_copies(a, 0, 0, "none")])["version"] == 2  # nothing new: fine


def test_cli_map_create_scoring_and_cap(tmp_path: Path, seg: Population) -> None:
    files = []
    for e in seg.encs:
        f = tmp_path / f"{e.party}.parquet"
        e.write(f)
        files.append(str(f))
    m = str(tmp_path / "m.duckdb")
    r = CliRunner()
    res = r.invoke(main, ["map", "create", m, *files, "-q", "--no-max-candidates"])
    assert res.exit_code == 0, res.output  # auto: linked by Dice, and it says so
    assert "segmented filter layout" in res.output and "whole-filter Dice" in res.output
    res = r.invoke(main, ["map", "create", m, *files, "-q", "--scoring", "dice",
                          "--no-max-candidates", "--force"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "segmented filter layout" not in res.output
    res = r.invoke(main, ["map", "create", m, *files, "-q", "--scoring", "fields", "--force"])
    assert res.exit_code != 0 and "does not support field-aware scoring" in res.output
    meta = map_info(m)["meta"]
    assert (meta["scoring"], meta["max_candidates"]) == ("dice", "")


def test_an_update_the_cap_refuses_can_raise_the_cap(tmp_path: Path, plain: Population) -> None:
    """Before: the error said to create the map with a higher cap (no way forward for an
    existing map) in library words (max_candidates=None). Now the update names the cap it
    needs, and ``map update --max-candidates N`` raises the map's cap (stored; never lowered)."""
    a, b = plain.encs
    m = tmp_path / "m.duckdb"
    map_create(m, [a, b], dedupe=True, seed=1)
    k = _max_degree(m)
    m.unlink()
    map_create(m, [a, b], dedupe=True, seed=1, max_candidates=k)
    grown = _with_copies(a, 0, k + 1, "dup")
    f = tmp_path / "grown.parquet"
    grown.write(f)
    r = CliRunner()
    res = r.invoke(main, ["map", "update", str(m), str(f), "-q"])
    assert res.exit_code == 2, res.output
    need = int(res.output.split("(the most: ")[1].split(")")[0])
    assert f"give --max-candidates {need} (or more" in res.output, res.output
    assert "max_candidates=" not in res.output and "Create the map" not in res.output
    res = r.invoke(main, ["map", "update", str(m), str(f), "-q", "--max-candidates", str(k - 1)])
    assert res.exit_code == 2 and "never lower it" in res.output, res.output
    res = r.invoke(main, ["map", "update", str(m), str(f), "-q", "--max-candidates", str(need)])
    assert res.exit_code == 0, res.output
    assert map_info(m)["meta"]["max_candidates"] == str(need)
    relink = match([grown, b], dedupe=True, seed=1, max_candidates=need)
    assert partition(map_links(m)) == partition(relink.links)
    assert map_update(m, [a], max_candidates=None, allow_mass_change=True)["version"] == 3
    assert map_info(m)["meta"]["max_candidates"] == ""


@pytest.mark.parametrize("cmd", ["create", "update"])
def test_cap_and_no_cap_together_are_a_usage_error(tmp_path: Path, cmd: str) -> None:
    """`--max-candidates 10 --no-max-candidates` was accepted, "no cap" silently won and was
    stored for good (a cap is never lowered)."""
    from linkage.cli import main

    m, a = str(tmp_path / "m.duckdb"), str(tmp_path / "a.parquet")
    args = ["map", cmd, m, a, "--max-candidates", "10", "--no-max-candidates"]
    if cmd == "create":
        args.insert(4, str(tmp_path / "b.parquet"))
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert "give --max-candidates or --no-max-candidates, not both" in r.output
    assert not (tmp_path / "m.duckdb").exists()
