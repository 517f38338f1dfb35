"""linkage.match on synthetic populations (linkage.synth) encoded with the library.

Invariants (every record exactly once; one record per party per entity unless dedupe),
reproducibility (same seed, 1 vs 2 threads), threshold monotonicity, a quality floor from
truth.csv, and the compatibility checks on files (secret, schema, length, party, ids, empty,
not an encoded file).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from engines import each_engine

from linkage.encoded import EncodedTable, read_encoded, write_encoded
from linkage.errors import CompatibilityError, InputError, LinkageError
from linkage.lab.synthetic import encode_arguments, synth
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.tlu.linker import (
    DEFAULT_DEDUPE_THRESHOLD,
    DEFAULT_THRESHOLD,
    LinkageResult,
    check_compatible,
    match,
)

SECRET = Secret(hashlib.sha256(b"match-test-secret-0123456789-ABC").digest())
OTHER_SECRET = Secret(hashlib.sha256(b"another-secret-entirely-98765-xyz").digest())
Rec = tuple[str, str]  # (party, record_id)


@dataclass
class Population:
    dir: Path
    manifest: dict
    encs: list[EncodedTable]
    truth: dict[Rec, str]  # (party, record_id) -> person_id


def encode_party(
    pop_dir: Path, p: dict, schema: Schema, secret: Secret = SECRET, party: str | None = None
) -> EncodedTable:
    args = encode_arguments(p) | ({"party": party} if party else {})
    return encode(pop_dir / p["file"], schema, secret, rejects=[], **args)


def make_population(out: Path, people: int, parties: int, corruption: str = "low") -> Population:
    synth(out, people=people, parties=parties, corruption=corruption, seed=parties)
    manifest = json.loads((out / "manifest.json").read_text())
    schema = Schema.from_dict(uk_person_unhardened())
    encs = [encode_party(out, p, schema) for p in manifest["parties"]]
    with open(out / "truth.csv", newline="", encoding="utf-8") as fh:
        truth = {(r["party"], r["record_id"]): r["person_id"] for r in csv.DictReader(fh)}
    return Population(out, manifest, encs, truth)


@pytest.fixture(scope="module")
def pops(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Population]:
    root = tmp_path_factory.mktemp("pops")
    return {k: make_population(root / f"p{k}", 500, k) for k in (2, 3, 4)}


@pytest.fixture(scope="module")
def pop3(pops: dict[int, Population]) -> Population:
    return pops[3]


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    n = numba.get_num_threads()
    yield
    numba.set_num_threads(n)


# -- helpers -----------------------------------------------------------------------------------
def entities(result: LinkageResult) -> dict[str, list[Rec]]:
    d = result.links.to_pydict()
    out: dict[str, list[Rec]] = {}
    for e, p, r in zip(d["entity_id"], d["party"], d["record_id"], strict=True):
        out.setdefault(e, []).append((p, r))
    return out


def canonical(result: LinkageResult) -> dict[Rec, Rec]:
    """record -> smallest record of its entity (entity ids mapped to canonical labels)."""
    out: dict[Rec, Rec] = {}
    for recs in entities(result).values():
        label = min(recs)
        for r in recs:
            out[r] = label
    return out


def same_entity_pairs(groups: Sequence[Sequence[Rec]], within_party: bool) -> set[tuple[Rec, Rec]]:
    out = set()
    for recs in groups:
        for a, b in itertools.combinations(sorted(recs), 2):
            if within_party or a[0] != b[0]:
                out.add((a, b))
    return out


def precision_recall(result: LinkageResult, truth: dict[Rec, str], dedupe: bool):
    by_person: dict[str, list[Rec]] = {}
    for rec, person in truth.items():
        by_person.setdefault(person, []).append(rec)
    true_pairs = same_entity_pairs(list(by_person.values()), dedupe)
    pred = same_entity_pairs(list(entities(result).values()), dedupe)
    tp = len(pred & true_pairs)
    return tp / max(1, len(pred)), tp / max(1, len(true_pairs))


def dice(x: np.ndarray, y: np.ndarray) -> float:
    c = int(np.bitwise_count(x & y).sum())
    den = int(np.bitwise_count(x).sum() + np.bitwise_count(y).sum())
    return 0.0 if den == 0 else 2.0 * c / den


def small(enc: EncodedTable, n: int = 40) -> EncodedTable:
    return EncodedTable(enc.table.slice(0, n), dict(enc.meta))


# -- invariants --------------------------------------------------------------------------------
@each_engine
@pytest.mark.parametrize("parties", [2, 3, 4])
@pytest.mark.parametrize("dedupe", [False, True])
def test_every_record_once_in_links(linker, pops, parties, dedupe):
    pop = pops[parties]
    res = linker(pop.encs, dedupe=dedupe, seed=1)
    links = res.links
    assert links.column_names == ["entity_id", "party", "record_id"]
    assert all(links.schema.field(c).type == pa.string() for c in links.column_names)
    recs = list(zip(links["party"].to_pylist(), links["record_id"].to_pylist(), strict=True))
    inputs = [(e.party, r) for e in pop.encs for r in e.record_ids.to_pylist()]
    assert len(recs) == len(inputs) == len(set(recs))
    assert set(recs) == set(inputs) == set(pop.truth)
    ents = entities(res)
    if not dedupe:
        for recs_ in ents.values():
            assert len({p for p, _ in recs_}) == len(recs_), recs_
    # stats agree with the tables
    st = res.stats
    assert st["records_per_party"] == {e.party: len(e) for e in pop.encs}
    assert st["entities"] == len(ents)
    assert sum(k * v for k, v in st["entities_by_size"].items()) == len(inputs)  # type: ignore[attr-defined]
    assert st["matched_pairs"] == res.pairs.num_rows
    assert st["blocking"] == "none"  # auto on a small input
    assert st["candidates"] == st["possible_pairs"]


def test_entity_ids_opaque(pop3):
    res = match(pop3.encs, seed=1)
    ids = set(res.links["entity_id"].to_pylist())
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert not ids & {r for _, r in pop3.truth} and not ids & set(pop3.truth.values())


@each_engine
def test_dedupe_may_join_records_of_one_party(linker, pop3):
    res = linker(pop3.encs, dedupe=True, seed=1)
    multi = [
        recs for recs in entities(res).values() if max(Counter(p for p, _ in recs).values()) > 1
    ]
    assert multi, "synth adds duplicates: dedupe should put some in one entity"
    # and they are true duplicates (low corruption)
    good = sum(len({pop3.truth[r] for r in recs}) == 1 for recs in multi)
    assert good >= 0.9 * len(multi)
    assert any(row["party_a"] == row["party_b"] for row in res.pairs.to_pylist()), (
        "a within-party pair is reported"
    )


@each_engine
def test_dedupe_single_file(linker, pop3):
    enc = pop3.encs[0]
    res = linker([enc], dedupe=True, seed=1)
    assert res.links.num_rows == len(enc)
    assert set(res.links["party"].to_pylist()) == {enc.party}
    assert res.pairs.num_rows > 0
    for row in res.pairs.to_pylist():
        assert row["party_a"] == row["party_b"] == enc.party


@each_engine
def test_pairs_are_within_entities_and_scored_exactly(linker, pop3):
    res = linker(pop3.encs, seed=1)
    assert res.pairs.column_names == ["party_a", "record_id_a", "party_b", "record_id_b", "score"]
    lab = canonical(res)
    filt = {
        (e.party, r): f
        for e in pop3.encs
        for r, f in zip(e.record_ids.to_pylist(), e.filters, strict=True)
    }
    rows = res.pairs.to_pylist()
    assert rows
    for row in rows:
        a, b = (row["party_a"], row["record_id_a"]), (row["party_b"], row["record_id_b"])
        assert a[0] != b[0]
        assert lab[a] == lab[b]
        assert row["score"] >= DEFAULT_THRESHOLD == res.stats["threshold"]
        assert row["score"] == dice(filt[a], filt[b])


@each_engine
@pytest.mark.parametrize("dedupe_threshold", [None, 0.75, 0.9])
def test_dedupe_threshold_applies_to_within_party_pairs(linker, pop3, dedupe_threshold):
    res = linker(pop3.encs, seed=1, dedupe=True, threshold=0.7, dedupe_threshold=dedupe_threshold)
    want = max(0.7, DEFAULT_DEDUPE_THRESHOLD) if dedupe_threshold is None else dedupe_threshold
    assert res.stats["dedupe_threshold"] == want
    rows = res.pairs.to_pylist()
    within = [r["score"] for r in rows if r["party_a"] == r["party_b"]]
    cross = [r["score"] for r in rows if r["party_a"] != r["party_b"]]
    assert within and cross
    assert min(within) >= want and min(cross) >= 0.7
    assert min(cross) < want  # cross-party pairs are not held to the dedupe threshold
    assert linker(pop3.encs, seed=1, threshold=0.7).stats["dedupe_threshold"] is None


# -- reproducibility ---------------------------------------------------------------------------
@each_engine
def test_same_seed_same_result(linker, pop3):
    a = linker(pop3.encs, seed=7)
    b = linker(pop3.encs, seed=7)
    assert a.links.equals(b.links)
    assert a.pairs.equals(b.pairs)
    c = linker(pop3.encs, seed=8)
    assert not c.links["entity_id"].equals(a.links["entity_id"])
    assert canonical(c) == canonical(a)


def test_no_seed_random_ids_same_partition(pop3):
    a = match(pop3.encs)
    b = match(pop3.encs)
    assert set(a.links["entity_id"].to_pylist()).isdisjoint(b.links["entity_id"].to_pylist())
    assert canonical(a) == canonical(b)
    assert a.pairs.equals(b.pairs)


@pytest.mark.parametrize("blocking", ["none", "keys", "lsh"])
@pytest.mark.parametrize("dedupe", [False, True])
def test_one_and_two_threads_agree(pop3, blocking, dedupe):
    one = match(pop3.encs, seed=3, threads=1, blocking=blocking, dedupe=dedupe)
    assert one.stats["threads"] == 1
    two = match(pop3.encs, seed=3, threads=2, blocking=blocking, dedupe=dedupe)
    assert two.stats["threads"] == min(2, numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    assert one.links.equals(two.links)
    assert one.pairs.equals(two.pairs)
    assert one.stats["blocking"] == blocking


# -- thresholds and quality --------------------------------------------------------------------
def test_threshold_monotone(pop3):
    counts: list[int] = []
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0):
        res = match(pop3.encs, threshold=t, seed=1, blocking="none")
        counts.append(int(res.stats["pairs_above_threshold"]))  # type: ignore[call-overload]
        low = pc.min(res.pairs["score"]).as_py()
        assert low is None or low >= t
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1] > 0  # identical encodings exist at t = 1


@each_engine
@pytest.mark.parametrize("blocking", ["none", "keys", "lsh"])
def test_quality_low_corruption(linker, pop3, blocking):
    res = linker(pop3.encs, seed=1, blocking=blocking)
    precision, recall = precision_recall(res, pop3.truth, dedupe=False)
    f1 = 2 * precision * recall / (precision + recall)
    assert precision > 0.95 and recall > 0.9 and f1 > 0.9, (precision, recall)


@each_engine
def test_quality_low_corruption_dedupe(linker, pop3):
    res = linker(pop3.encs, seed=1, dedupe=True)
    precision, recall = precision_recall(res, pop3.truth, dedupe=True)
    assert precision > 0.95 and recall > 0.95, (precision, recall)


def test_blocked_pairs_subset_of_exhaustive(pop3):
    def pairs(res: LinkageResult) -> set:
        return {
            ((r["party_a"], r["record_id_a"]), (r["party_b"], r["record_id_b"]), r["score"])
            for r in res.pairs.to_pylist()
        }

    full = match(pop3.encs, seed=1, blocking="none")
    for blocking in ("keys", "lsh"):
        res = match(pop3.encs, seed=1, blocking=blocking)
        assert res.stats["blocking"] == blocking
        assert res.stats["candidates"] < res.stats["possible_pairs"]  # type: ignore[operator]
        # at least most of the exhaustive matches are found (scores are identical)
        assert len(pairs(res) & pairs(full)) >= 0.9 * len(pairs(full))


def test_oversize_blocks_warn_and_keep_pairs(pop3):
    encs = [small(e, 60) for e in pop3.encs]
    warnings: list[str] = []
    a = match(encs, seed=1, blocking="keys", max_block=2, warn=warnings.append)
    b = match(encs, seed=1, blocking="keys")
    assert len(warnings) == 1 and "exceed --max-block 2" in warnings[0]
    assert "not dropped" in warnings[0]
    assert a.links.equals(b.links) and a.pairs.equals(b.pairs)


# -- compatibility errors ----------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path, pop3: Population) -> dict[str, Path]:
    """Small compatible encoded files, one per party (named after the party)."""
    out = {}
    for e in pop3.encs:
        p = tmp_path / f"{e.party}.parquet"
        small(e).write(p)
        out[e.party] = p
    return out


def reencode(pop: Population, i: int, schema_doc: dict, secret: Secret = SECRET) -> EncodedTable:
    e = encode_party(pop.dir, pop.manifest["parties"][i], Schema.from_dict(schema_doc), secret)
    return small(e)


def test_different_secret_names_both_files(tmp_path, pop3, files):
    bad = tmp_path / "nhs_other_key.parquet"
    reencode(pop3, 2, uk_person_unhardened(), OTHER_SECRET).write(bad)
    with pytest.raises(CompatibilityError) as ei:
        match([files["council_a"], bad])
    msg = str(ei.value)
    assert "different secret" in msg
    assert "council_a.parquet" in msg and "nhs_other_key.parquet" in msg


def test_different_secret_in_memory_tables(pop3):
    a = small(pop3.encs[0])
    b = reencode(pop3, 1, uk_person_unhardened(), OTHER_SECRET)
    with pytest.raises(CompatibilityError, match="different secret") as ei:
        match([a, b])
    assert "party council_a" in str(ei.value) and "party council_b" in str(ei.value)


def test_different_schema(tmp_path, pop3, files):
    doc = uk_person_unhardened()
    field = next(f for f in doc["fields"] if "bits_per_token" in f)
    field["bits_per_token"] += 1  # a real change of the schema
    bad = tmp_path / "changed.parquet"
    reencode(pop3, 1, doc).write(bad)
    with pytest.raises(CompatibilityError) as ei:
        match([files["council_a"], bad])
    msg = str(ei.value)
    assert "different schema" in msg and "council_a.parquet" in msg and "changed.parquet" in msg


def test_different_filter_length(tmp_path, pop3, files):
    doc = uk_person_unhardened()
    doc["filter"]["length"] = 512
    for f in doc["fields"]:
        if "bits_per_token" in f:
            f["bits_per_token"] = min(f["bits_per_token"], 8)
        if "bit_budget" in f:
            f["bit_budget"] = 60
    bad = tmp_path / "short.parquet"
    reencode(pop3, 1, doc).write(bad)
    assert read_encoded(bad).filter_length == 512
    with pytest.raises(CompatibilityError) as ei:
        match([files["council_a"], bad])
    msg = str(ei.value)
    assert "council_a.parquet" in msg and "short.parquet" in msg
    assert "different schema" in msg or "different filter length" in msg


def test_different_filter_length_same_fingerprint(tmp_path, files):
    """Only the length differs (a hand-made file): the message names that property."""
    enc = read_encoded(files["council_b"])
    clk = pa.array([b[:64] for b in enc.table["clk"].to_pylist()], pa.binary(64))
    meta = dict(enc.meta, filter_length="512")
    t = enc.table.set_column(enc.table.column_names.index("clk"), "clk", clk)
    bad = tmp_path / "len512.parquet"
    write_encoded(EncodedTable(t, meta), bad)
    with pytest.raises(CompatibilityError) as ei:
        match([files["council_a"], bad])
    msg = str(ei.value)
    assert "different filter length" in msg and "len512.parquet" in msg
    assert "council_a.parquet" in msg


def test_unsupported_format_version(tmp_path, files):
    enc = read_encoded(files["council_b"])
    bad = tmp_path / "v9.parquet"
    write_encoded(EncodedTable(enc.table, dict(enc.meta, format_version="9")), bad)
    with pytest.raises(CompatibilityError, match="format version 9"):
        match([files["council_a"], bad])


def test_same_party_twice(tmp_path, pop3, files):
    again = tmp_path / "council_a_again.parquet"
    e = encode_party(
        pop3.dir, pop3.manifest["parties"][1], Schema.from_dict(uk_person_unhardened()),
        party="council_a",
    )  # fmt: skip
    small(e).write(again)
    with pytest.raises(InputError) as ei:
        match([files["council_a"], again])
    msg = str(ei.value)
    assert "council_a.parquet" in msg and "council_a_again.parquet" in msg
    assert "'council_a'" in msg
    with pytest.raises(InputError, match="party name"):
        match([files["council_a"], files["council_a"]])  # the same file twice


def test_duplicate_record_ids(tmp_path, files):
    enc = read_encoded(files["council_b"])
    t = pa.concat_tables([enc.table, enc.table.slice(0, 1)])
    bad = tmp_path / "dup.parquet"
    write_encoded(EncodedTable(t, enc.meta), bad)
    with pytest.raises(InputError) as ei:
        match([files["council_a"], bad])
    assert "duplicate record ids" in str(ei.value) and "dup.parquet" in str(ei.value)


def test_empty_file(tmp_path, files):
    enc = read_encoded(files["council_b"])
    bad = tmp_path / "empty.parquet"
    write_encoded(EncodedTable(enc.table.slice(0, 0), dict(enc.meta, record_count="0")), bad)
    with pytest.raises(InputError) as ei:
        match([files["council_a"], bad])
    assert "empty.parquet" in str(ei.value) and "no records" in str(ei.value)


def test_one_file_needs_dedupe(files):
    with pytest.raises(InputError, match="--dedupe"):
        match([files["council_a"]])
    with pytest.raises(InputError, match="no encoded files"):
        match([])


def test_not_an_encoded_file(tmp_path, pop3, files):
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"record_id": ["a"], "clk": [b"\0" * 128]}), plain)
    with pytest.raises(InputError) as ei:
        match([files["council_a"], plain])
    assert "plain.parquet" in str(ei.value) and "not a linkage encoded file" in str(ei.value)
    csv_path = pop3.dir / pop3.manifest["parties"][0]["file"]
    with pytest.raises(InputError, match="not a readable Parquet file"):
        match([files["council_a"], csv_path])
    with pytest.raises(InputError, match="not found"):
        match([files["council_a"], tmp_path / "missing.parquet"])


def test_block_keys_in_one_file_only(tmp_path, files):
    enc = read_encoded(files["council_b"])
    bad = tmp_path / "nokeys.parquet"
    write_encoded(EncodedTable(enc.table.drop_columns(["block_keys"]), enc.meta), bad)
    with pytest.raises(CompatibilityError, match=r"nokeys\.parquet"):
        match([files["council_a"], bad])


def test_bad_arguments(files):
    two = [files["council_a"], files["council_b"]]
    for kwargs, needle in (
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"dedupe": True, "dedupe_threshold": 1.2}, "dedupe-threshold"),
        ({"blocking": "magic"}, "unknown blocking"),
        ({"threads": 0}, "threads"),
    ):
        with pytest.raises(LinkageError, match=needle):
            match(two, **kwargs)


def test_check_compatible_accepts_good_files(files):
    encs = [read_encoded(p) for p in files.values()]
    check_compatible(encs, [p.name for p in files.values()], dedupe=False)  # no error
    res = match(list(files.values()), seed=1)
    assert res.links.num_rows == sum(len(e) for e in encs)


def test_disable_jit_same_links(tmp_path, pop3):
    """NUMBA_DISABLE_JIT=1 (pure-Python kernels) gives the same links and pairs."""
    paths = []
    for e in pop3.encs:
        p = tmp_path / f"{e.party}.parquet"
        small(e, 40).write(p)
        paths.append(p)
    code = textwrap.dedent(
        f"""
        from linkage.tlu.linker import match
        d = {str(tmp_path)!r}
        for i, blocking in enumerate(("none", "keys", "lsh")):
            r = match({[str(p) for p in paths]!r}, seed=1, blocking=blocking, dedupe=True)
            r.write(f"{{d}}/links{{i}}.parquet", f"{{d}}/pairs{{i}}.parquet")
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for i, blocking in enumerate(("none", "keys", "lsh")):
        want = match(paths, seed=1, blocking=blocking, dedupe=True)
        assert pq.read_table(tmp_path / f"links{i}.parquet").equals(want.links)
        assert pq.read_table(tmp_path / f"pairs{i}.parquet").equals(want.pairs)
        assert want.pairs.num_rows > 0
