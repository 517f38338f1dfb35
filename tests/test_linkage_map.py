"""The persistent linkage map (linkage.tlu.linkage_map): create equals match, monthly
updates stay within 0.002 F1 of a full relink, ids stay stable and every id change is
explained, bad input and other secrets are refused without touching the map, locking,
per-project pseudonyms, the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_linkage_map_data import (
    Population,
    entity_of,
    make_population,
    months,
    partition,
    subset,
)

from linkage.cli import main
from linkage.encoded import EncodedTable
from linkage.errors import CompatibilityError, InputError, LinkageError
from linkage.lab.quality import evaluate
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.tlu.linkage_map import ids as idrules
from linkage.tlu.linkage_map import (
    map_changes,
    map_create,
    map_export,
    map_history,
    map_info,
    map_keygen,
    map_links,
    map_update,
)
from linkage.tlu.linker import match

OPTS = {"dedupe": True}


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> Population:
    return make_population(tmp_path_factory.mktemp("pop") / "synth")


@pytest.fixture(scope="module")
def monthly(pop: Population) -> list[list[EncodedTable]]:
    return months(pop, 3)


def _f1(links: pa.Table, truth: Path) -> float:
    r = evaluate(links, truth, within_party=True)
    allp = r.all_pairs
    assert allp is not None
    return allp.f1


def test_create_equals_match(tmp_path: Path, pop: Population) -> None:
    s = map_create(tmp_path / "m.duckdb", pop.encs, seed=1, **OPTS)
    ref = match(pop.encs, seed=1, **OPTS)
    links = map_links(tmp_path / "m.duckdb", tmp_path / "links.parquet")
    assert partition(links) == partition(ref.links)
    assert s["entities"] == ref.stats.entities
    assert (tmp_path / "links.parquet").stat().st_mode & 0o077 == 0
    info = map_info(tmp_path / "m.duckdb")
    assert info["current_version"] == 1
    assert info["meta"]["schema_fingerprint"] == pop.encs[0].meta["schema_fingerprint"]
    assert sum(info["records_per_party"].values()) == sum(len(e) for e in pop.encs)
    with pytest.raises(LinkageError, match="already exists"):
        map_create(tmp_path / "m.duckdb", pop.encs, **OPTS)


@pytest.mark.parametrize("blocking", ["auto", "keys", "lsh"])
def test_monthly_updates_match_relink_and_keep_ids(
    tmp_path: Path, pop: Population, monthly: list[list[EncodedTable]], blocking: str
) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, monthly[0], seed=3, blocking=blocking, **OPTS)
    before = map_links(m)
    for k, extracts in enumerate(monthly[1:], start=2):
        for e in extracts:  # one party at a time, as partners send them
            s = map_update(m, [e])
            after = map_links(m)
            v = s["version"]
            _check_stable(before, after, map_changes(m, since=v - 1))
            before = after
        assert k  # months applied
    final = monthly[-1]
    relink = match(final, seed=3, blocking=blocking, **OPTS)
    f_map, f_relink = _f1(before, pop.truth), _f1(relink.links, pop.truth)
    assert abs(f_map - f_relink) <= 0.002, (f_map, f_relink)
    # the map's pair graph is the relink's: the partitions agree up to solver ties
    diff = partition(before) ^ partition(relink.links)
    assert len(diff) <= 0.002 * len(partition(relink.links)) * 2, len(diff)
    # earlier versions stay readable
    first = match(monthly[0], seed=3, blocking=blocking, **OPTS).links
    assert partition(map_links(m, version=1)) == partition(first)


def _check_stable(before: pa.Table, after: pa.Table, changes: pa.Table) -> None:
    """Same record set -> same id (100%); every record's id change has a merged/split event."""
    old_groups = {g: e for e, g in _groups(before).items()}
    new_groups = {g: e for e, g in _groups(after).items()}
    kept = [g for g in old_groups if g in new_groups]
    assert kept
    assert all(old_groups[g] == new_groups[g] for g in kept)
    events = {
        (c, a, b)
        for c, a, b in zip(
            changes.column("change").to_pylist(),
            changes.column("entity_id").to_pylist(),
            changes.column("related_entity_id").to_pylist(),
            strict=True,
        )
    }
    e_old, e_new = entity_of(before), entity_of(after)
    for rec, old in e_old.items():
        new = e_new.get(rec)
        if new is not None and new != old:
            assert ("merged", old, new) in events or ("split", old, new) in events, rec
    retired = {a for c, a, _ in events if c == "retired"}
    alive = set(e_new.values())
    for old in set(e_old.values()) - alive:
        assert old in retired or any(c == "merged" and a == old for c, a, _ in events)


def _groups(links: pa.Table) -> dict[str, frozenset[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = {}
    for rec, e in entity_of(links).items():
        groups.setdefault(e, set()).add(rec)
    return {e: frozenset(g) for e, g in groups.items()}


def test_delta_and_deletions(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    n = len(a)
    map_create(m, [subset(a, np.arange(n - 50)), *pop.encs[1:]], seed=2, **OPTS)
    gone = a.record_ids.to_pylist()[:5]
    dels = tmp_path / "gone.csv"
    dels.write_text("party,record_id\n" + "".join(f"{a.party},{r}\n" for r in gone))
    s = map_update(m, [subset(a, np.arange(n - 50, n))], delta=True, deletions=dels)
    assert (s["added"], s["retired"], s["changed"]) == (50, 5, 0)
    links = map_links(m)
    recs = set(entity_of(links))
    assert all((a.party, r) not in recs for r in gone)
    assert len(links) == sum(len(e) for e in pop.encs) - 5
    full = map_links(m, version=1)
    assert len(full) == sum(len(e) for e in pop.encs) - 50
    # a deletion of a record the map does not hold: refused, nothing applied
    dels.write_text(f"party,record_id\n{a.party},{gone[0]}\n")
    with pytest.raises(InputError, match=r"gone.csv: row 1: .* not a current record"):
        map_update(m, [], delta=True, deletions=dels)
    assert map_info(m)["current_version"] == 2
    with pytest.raises(InputError, match="needs --delta"):
        map_update(m, [], deletions=dels)


def test_refuses_other_secret_and_schema(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs[:2], **OPTS)
    schema = Schema.from_dict(uk_person_unhardened())
    import json

    from linkage.lab.synthetic import encode_arguments

    p = json.loads((pop.dir / "manifest.json").read_text())["parties"][2]
    other = encode(
        pop.dir / p["file"],
        schema,
        Secret(hashlib.sha256(b"another secret").digest()),
        rejects=[],
        **encode_arguments(p),
    )
    with pytest.raises(CompatibilityError, match="different secret than the map"):
        map_update(m, [other])
    meta = dict(pop.encs[2].meta, schema_fingerprint="0" * 64)
    with pytest.raises(CompatibilityError, match="different schema"):
        map_update(m, [EncodedTable(pop.encs[2].table, meta)])
    assert map_info(m)["current_version"] == 1
    assert len(map_links(m)) == len(pop.encs[0]) + len(pop.encs[1])


def test_second_update_fails_clearly_while_one_holds_the_map(
    tmp_path: Path, pop: Population
) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs[:2], **OPTS)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(m)!r})
            con.execute("BEGIN TRANSACTION")
            print("held", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="in use by another process"):
            map_update(m, [pop.encs[2]])
    finally:
        holder.kill()
        holder.wait()
    assert map_update(m, [pop.encs[2]])["version"] == 2


def test_id_rules() -> None:
    fresh = iter(range(100, 200))

    def new(n: int) -> np.ndarray:
        return np.array([next(fresh) for _ in range(n)], np.uint64)

    # merge: entities 7 (version 1, 2 records) and 9 (version 2, 3 records) join: 7 survives
    labels = np.array([0, 0, 0, 0, 0])
    prev = np.array([7, 7, 9, 9, 9], np.uint64)
    a = idrules.assign(labels, prev, np.array([7, 9], np.uint64), np.array([1, 2]),
                       np.array([2, 3]), new, rank=np.arange(5))  # fmt: skip
    assert a.cluster_ids.tolist() == [7]
    assert ("merged", 9, 7, 3) in a.events and a.ended == {9: ("merged", 7)}
    # split: 7's 3 records go to cluster 0, 2 to cluster 1: cluster 0 keeps 7
    labels = np.array([1, 0, 0, 1, 0])
    prev = np.full(5, 7, np.uint64)
    a = idrules.assign(labels, prev, np.array([7], np.uint64), np.array([1]), np.array([5]), new,
                       rank=np.arange(5))  # fmt: skip
    assert a.cluster_ids[0] == 7 and a.cluster_ids[1] >= 100
    assert ("split", 7, int(a.cluster_ids[1]), 2) in a.events
    # retired: entity 5 lost all records; a new record gets a fresh id
    a = idrules.assign(np.array([0]), np.array([0], np.uint64), np.array([5], np.uint64),
                       np.array([1]), np.array([1]), new, rank=np.arange(1))  # fmt: skip
    assert ("retired", 5, 0, 1) in a.events and a.cluster_ids[0] >= 100
    # fresh ids avoid ids already issued
    ids = idrules.new_ids(50, lambda c: c % 2 == 0, seed=1, version=3)
    assert len(set(ids.tolist())) == 50 and (ids % 2 == 1).all()


def test_export_pseudonyms(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    map_create(m, pop.encs[:2], **OPTS)
    key = tmp_path / "tlu.key"
    map_keygen(key)
    assert key.stat().st_mode & 0o777 == 0o600
    a = map_export(m, project="alpha", key_file=key, output=tmp_path / "a.parquet")
    b = map_export(m, project="beta", key_file=key)
    links = map_links(m)
    # same grouping as the entity ids, different values per project, no shared value
    assert partition(a.rename_columns(["party", "record_id", "entity_id"])) == partition(links)
    assert not set(a.column("pseudonym").to_pylist()) & set(b.column("pseudonym").to_pylist())
    assert map_export(m, project="alpha", key_file=key).equals(a)
    key.chmod(0o644)
    with pytest.raises(InputError, match="group or others"):
        map_export(m, project="alpha", key_file=key)


def test_history_and_changes(tmp_path: Path, pop: Population) -> None:
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, pop.encs, seed=4, **OPTS)
    map_update(m, [subset(a, np.arange(40, len(a)))])
    ch = map_changes(m, since=1, output=tmp_path / "ch.parquet")
    assert set(ch.column("change").to_pylist()) <= {"created", "merged", "split", "retired"}
    assert "retired" in ch.column("change").to_pylist()
    e = ch.column("entity_id")[0].as_py()
    h = map_history(m, e)
    assert h["entity_id"] == e and h["records"] and h["events"]
    with pytest.raises(InputError, match="no entity"):
        map_history(m, "0" * 16)
    with pytest.raises(InputError, match="16 hexadecimal"):
        map_history(m, "xyz")


def test_cli(tmp_path: Path, pop: Population) -> None:
    files = []
    for e in pop.encs:
        f = tmp_path / f"{e.party}.parquet"
        e.write(f)
        files.append(str(f))
    m = str(tmp_path / "m.duckdb")
    r = CliRunner()
    created, updated = tmp_path / "created.html", tmp_path / "updated.html"
    res = r.invoke(main, ["map", "create", m, *files[:2], "--dedupe", "--seed", "1",
                          "--report", str(created)])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["map", "update", m, files[2], "--report", str(updated)])
    assert res.exit_code == 0 and "version 2" in res.output, res.output
    assert created.stat().st_size and "<svg" in updated.read_text()
    res = r.invoke(main, ["map", "update", m, files[2], "--report", str(updated)])
    assert res.exit_code == 2 and "--force" in res.output  # an existing report is kept
    out = tmp_path / "links.parquet"
    assert r.invoke(main, ["map", "links", m, "-o", str(out), "--version", "1"]).exit_code == 0
    assert r.invoke(main, ["map", "info", m]).exit_code == 0
    ch = tmp_path / "ch.parquet"
    assert r.invoke(main, ["map", "changes", m, "--since", "1", "-o", str(ch)]).exit_code == 0
    key = tmp_path / "tlu.key"
    assert r.invoke(main, ["map", "keygen", "-o", str(key)]).exit_code == 0
    res = r.invoke(main, ["map", "export", m, "--project", "p", "--key-file", str(key),
                          "-o", str(tmp_path / "ids.parquet")])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["map", "update", str(tmp_path / "nomap.duckdb"), files[0]])
    assert res.exit_code == 2 and res.output.count("Error:") == 1 and "Traceback" not in res.output
    res = r.invoke(main, ["map", "links", m, "-o", str(out), "--version", "9", "--force"])
    assert res.exit_code == 2 and "no version 9" in res.output


def test_package_never_imports_secret_or_partner() -> None:
    code = (
        "import sys, linkage.tlu.linkage_map as m; import linkage.tlu.linkage_map.update; "
        "bad = [k for k in sys.modules if k.startswith(('linkage.secret', 'linkage.partner'))]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_delta_of_only_new_records(tmp_path: Path, pop: Population) -> None:
    """A delta none of whose ids are in the map (the diff once indexed an empty lookup)."""
    m = tmp_path / "m.duckdb"
    a = pop.encs[0]
    map_create(m, [subset(a, np.arange(len(a) - 20)), pop.encs[1]], **OPTS)
    s = map_update(m, [subset(a, np.arange(len(a) - 20, len(a)))], delta=True)
    assert (s["added"], s["changed"], s["retired"]) == (20, 0, 0)
    assert len(map_links(m)) == len(a) + len(pop.encs[1])
