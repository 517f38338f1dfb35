"""Tests for linkage.synth (linkage.lab): synthetic populations with ground truth."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import LinkageError
from linkage.identifiers import nhs_is_valid
from linkage.lab.corrupt import (
    keyboard_typo,
    ocr_typo,
    phonetic_misspelling,
    postcode_typo,
    strip_accents,
)
from linkage.lab.rates import PARTY_NAMES, POSTCODE_REGEX, RATES
from linkage.lab.synthetic import (
    TEMPLATE_FIELDS,
    SynthError,
    encode_arguments,
    encode_options,
    synth,
)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _load(out: Path) -> tuple[dict, dict[str, list[dict[str, str]]], dict[tuple[str, str], str]]:
    """manifest, records per party (logical field names + record_id), truth map."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    records: dict[str, list[dict[str, str]]] = {}
    for p in manifest["parties"]:
        rows = _read(out / p["file"])
        back = {v: k for k, v in p["columns"].items()}
        back[p["record_id_column"]] = "record_id"
        records[p["name"]] = [{back[k]: v for k, v in r.items()} for r in rows]
    truth = {(r["party"], r["record_id"]): r["person_id"] for r in _read(out / "truth.csv")}
    return manifest, records, truth


def _log(out: Path) -> dict[tuple[str, str], set[str]]:
    return {
        (r["party"], r["record_id"]): set(filter(None, r["corruptions"].split(";")))
        for r in _read(out / "corruptions.csv")
    }


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "medium"
    synth(out, 3000, 5, corruption="high", seed=3, corruption_log=True)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "clean"
    synth(out, 1500, 8, corruption="none", duplicates=0.05, seed=11)
    return out


# ---------------------------------------------------------------------------------------------
# String corruptions


_names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'- ëŁó"),
                 min_size=0, max_size=12)  # fmt: skip


@settings(max_examples=200)
@given(_names, st.integers(0, (1 << 20) - 1))
def test_typos_are_total_and_change_alphabetic_strings(s: str, v: int) -> None:
    for fn in (keyboard_typo, ocr_typo, phonetic_misspelling, postcode_typo):
        out = fn(s, v)
        assert isinstance(out, str)
        assert fn(s, v) == out  # deterministic in (s, v)
    if sum(c.isascii() and c.isalpha() for c in s) >= 2:
        assert keyboard_typo(s, v) != s
        assert phonetic_misspelling(s, v) != s


def test_strip_accents_and_examples() -> None:
    assert strip_accents("Zoë Łukasz Ó Briain Siân Müller") == "Zoe Lukasz O Briain Sian Muller"
    assert phonetic_misspelling("Philip", 0) != "Philip"
    assert ocr_typo("Sam", 0) in {"5am", "Sarn"} or ocr_typo("Sam", 0) != "Sam"


# ---------------------------------------------------------------------------------------------
# Output structure


def test_files_and_truth_cover_every_record_once(medium: Path) -> None:
    manifest, records, truth = _load(medium)
    truth_rows = _read(medium / "truth.csv")
    assert list(truth_rows[0]) == ["party", "record_id", "person_id"]
    assert len(truth_rows) == len(truth) == manifest["records"]
    seen = set()
    for p in manifest["parties"]:
        recs = records[p["name"]]
        assert len(recs) == p["records"] == p["persons"] + p["duplicates"]
        ids = [r["record_id"] for r in recs]
        assert len(set(ids)) == len(ids)
        seen |= {(p["name"], i) for i in ids}
        persons = [truth[(p["name"], i)] for i in ids]
        assert len(set(persons)) == p["persons"]
    assert seen == set(truth)
    expected = [p["file"] for p in manifest["parties"]]
    expected += ["truth.csv", "manifest.json", "corruptions.csv"]
    assert sorted(f.name for f in medium.iterdir()) == sorted(expected)


def test_ids_are_opaque(medium: Path) -> None:
    _, _, truth = _load(medium)
    # record ids are not shared across parties for the same person, and person ids do not
    # appear as record ids
    pids = set(truth.values())
    assert all(rid not in pids for _, rid in truth)
    by_person: dict[str, set[str]] = defaultdict(set)
    for (_, rid), pid in truth.items():
        by_person[pid].add(rid)
    assert any(len(v) > 1 for v in by_person.values())


def test_column_names_differ_across_26_parties(tmp_path: Path) -> None:
    synth(tmp_path / "all", 60, 26, seed=1)
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert [p["name"] for p in manifest["parties"]] == list(PARTY_NAMES)
    headers = [tuple(_read_header(tmp_path / "all" / p["file"])) for p in manifest["parties"]]
    assert len(set(headers)) == 26
    formats = {p["date_format"] for p in manifest["parties"]}
    assert len(formats) >= 6
    assert "%y" not in "".join(formats)  # no two-digit years: ages 0-100 make them ambiguous


def _read_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def test_determinism_per_seed(tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    synth(tmp_path / "a", 400, 3, seed=5, corruption="high", corruption_log=True)
    synth(tmp_path / "b", 400, 3, seed=5, corruption="high", corruption_log=True)
    synth(tmp_path / "c", 400, 3, seed=6, corruption="high", corruption_log=True)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k != "manifest.json")
    assert a["manifest.json"] != c["manifest.json"]


def test_parquet_matches_csv(tmp_path: Path) -> None:
    synth(tmp_path / "csv", 300, 2, seed=2)
    synth(tmp_path / "pq", 300, 2, seed=2, fmt="parquet")
    for name in PARTY_NAMES[:2]:
        rows = _read(tmp_path / "csv" / f"{name}.csv")
        table = pq.read_table(tmp_path / "pq" / f"{name}.parquet").to_pylist()
        assert [{k: (v or "") for k, v in r.items()} for r in table] == rows
    assert (tmp_path / "csv" / "truth.csv").read_bytes() == (
        tmp_path / "pq" / "truth.csv"
    ).read_bytes()


# ---------------------------------------------------------------------------------------------
# Content


def _norm(rec: dict[str, str], party: dict) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    sex_back = {v: k for k, v in party["sex_coding"].items()}
    for fld in ("given", "family", "dob", "sex", "address", "town", "postcode", "nhs"):
        if fld not in rec:
            continue
        v = rec[fld]
        if fld == "dob":
            v = datetime.strptime(v, party["date_format"]).date().isoformat()
        elif fld == "sex":
            v = sex_back[v]
        elif fld == "nhs":
            v = v.replace(" ", "")
        out[fld] = v
    return out


def test_no_corruption_means_records_agree(clean: Path) -> None:
    manifest, records, truth = _load(clean)
    by_person: dict[str, list[dict[str, str | None]]] = defaultdict(list)
    for p in manifest["parties"]:
        for r in records[p["name"]]:
            by_person[truth[(p["name"], r["record_id"])]].append(_norm(r, p))
    multi = 0
    for recs in by_person.values():
        for fld in ("given", "family", "dob", "sex", "address", "town", "postcode", "nhs"):
            values = {r[fld] for r in recs if fld in r}
            assert len(values) <= 1, (fld, values)
            assert "" not in values  # nothing missing without corruption
        multi += len(recs) > 1
    assert multi > 1000
    # every party with an NHS column holds a valid, distinct number per person
    nhs = {recs[0]["nhs"] for recs in by_person.values() if "nhs" in recs[0]}
    assert all(nhs_is_valid(x) for x in nhs if x)
    per_person = [next((r["nhs"] for r in recs if "nhs" in r), None) for recs in by_person.values()]
    present = [x for x in per_person if x]
    assert len(set(present)) == len(present)


def test_households_share_address_and_postcode(clean: Path) -> None:
    manifest, records, _ = _load(clean)
    pc_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    sector_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in manifest["parties"]:
        for r in records[p["name"]]:
            pc_of[(r["address"], r["town"])].add(r["postcode"])
            street = r["address"].split(" ", 1)[1]
            sector_of[(street, r["postcode"].split(" ")[0])].add(r["postcode"][:-2])
    assert all(len(v) == 1 for v in pc_of.values())
    # addresses shared by several people exist (households)
    assert sum(len(v) for v in sector_of.values()) == len(sector_of)


def test_postcodes_and_nhs_valid_where_uncorrupted(medium: Path) -> None:
    manifest, records, _ = _load(medium)
    log = _log(medium)
    regex = re.compile(POSTCODE_REGEX)
    n_pc = n_nhs = 0
    for p in manifest["parties"]:
        for r in records[p["name"]]:
            kinds = log[(p["name"], r["record_id"])]
            if r["postcode"] and not any(k.endswith(":postcode") for k in kinds):
                assert regex.match(r["postcode"]), r["postcode"]
                n_pc += 1
            if r.get("nhs"):
                # mod 11 catches every single-digit change and adjacent transposition
                assert nhs_is_valid(r["nhs"]) == ("nhs_typo:nhs" not in kinds), r["nhs"]
                n_nhs += 1
    assert n_pc > 5000 and n_nhs > 1000


def test_names_are_diverse_and_non_ascii(medium: Path) -> None:
    _, records, _ = _load(medium)
    given_names = {r["given"] for recs in records.values() for r in recs}
    family = {r["family"] for recs in records.values() for r in recs}
    assert len(given_names) > 300 and len(family) > 300
    assert any(not n.isascii() for n in given_names | family)


def test_rates_roughly_as_documented(tmp_path: Path) -> None:
    out = tmp_path / "rates"
    synth(out, 12000, 3, corruption="medium", seed=7, corruption_log=True, duplicates=0.05)
    manifest, records, _ = _load(out)
    log = _log(out)
    n = manifest["records"]
    counts: dict[str, int] = defaultdict(int)
    for kinds in log.values():
        for k in kinds:
            counts[k] += 1

    def close(observed: int, rate: float, total: int) -> None:
        sd = (total * rate * (1 - rate)) ** 0.5
        assert abs(observed - total * rate) <= 5 * sd + 3, (observed, total * rate)

    rate = {k: v["medium"] for k, v in RATES.items()}
    for fld in ("given", "family", "dob", "sex", "address", "town", "postcode"):
        close(counts[f"missing:{fld}"], rate["missing"], n)
        col = [r[fld] for recs in records.values() for r in recs]
        close(sum(v == "" for v in col), rate["missing"], n)
    close(counts["moved:address"], rate["moved"], n)
    close(counts["postcode_typo:postcode"], rate["postcode_typo"], n)
    # spelling errors: a few draws leave the value unchanged, so allow a small shortfall
    for kind in ("keyboard_typo:family", "phonetic:family", "format_noise:family"):
        expected = rate[kind.split(":")[0]]
        assert (
            0.85 * expected * n - 5 * (n * expected) ** 0.5
            < counts[kind]
            <= expected * n + 5 * (n * expected) ** 0.5
        )
    health = [p for p in manifest["parties"] if p["name"] == "nhs"]
    others = [p for p in manifest["parties"] if p["name"] != "nhs" and "nhs" in p["columns"]]
    for group, r in ((health, rate["missing"]), (others, rate["nhs_missing"])):
        total = sum(p["records"] for p in group)
        missing = sum(r_["nhs"] == "" for p in group for r_ in records[p["name"]])
        close(missing, r, total)
    for p in manifest["parties"]:
        assert abs(p["duplicates"] - 0.05 * p["persons"]) <= 5 * (0.05 * p["persons"]) ** 0.5 + 3
        assert abs(p["overlap"] - 0.7) <= 0.1 + 1e-9
        assert p["persons"] == round(p["overlap"] * 12000)


def test_duplicates_are_separate_records(medium: Path) -> None:
    manifest, records, truth = _load(medium)
    for p in manifest["parties"]:
        persons = [truth[(p["name"], r["record_id"])] for r in records[p["name"]]]
        assert len(persons) - len(set(persons)) == p["duplicates"] > 0


# ---------------------------------------------------------------------------------------------
# Arguments and atomic output


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"people": 0}, "people"),
        ({"people": 2.5}, "people"),
        ({"people": True}, "people"),
        ({"parties": 0}, "parties"),
        ({"parties": 27}, "parties"),
        ({"overlap": 1.5}, "overlap"),
        ({"overlap": float("nan")}, "overlap"),
        ({"duplicates": -0.1}, "duplicates"),
        ({"corruption": "extreme"}, "corruption"),
        ({"seed": -1}, "seed"),
        ({"fmt": "xlsx"}, "format"),
    ],
)
def test_validation(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"people": 10, "parties": 2} | kwargs
    people, parties = args.pop("people"), args.pop("parties")
    with pytest.raises(SynthError, match=message) as err:
        synth(tmp_path / "x", people, parties, **args)
    assert isinstance(err.value, LinkageError)
    assert not (tmp_path / "x").exists()


def test_refuses_foreign_directory_and_replaces_own_output(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SynthError, match="not empty"):
        synth(foreign, 10, 2)
    with pytest.raises(SynthError, match="no linkage synth output"):
        synth(foreign, 10, 2, overwrite=True)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]

    out = tmp_path / "out"
    synth(out, 50, 3, seed=1)
    with pytest.raises(SynthError, match="not empty"):
        synth(out, 50, 2, seed=1)
    synth(out, 50, 2, seed=1, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "council_a.csv", "council_b.csv", "manifest.json", "truth.csv",
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_progress_callback(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    synth(tmp_path / "p", 50, 2, progress=lambda stage, frac: seen.append((stage, frac)))
    fracs = [f for _, f in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and seen[-1][0] == "done"


def test_tiny_and_edge_arguments(tmp_path: Path) -> None:
    s = synth(tmp_path / "one", 1, 1, overlap=1.0, duplicates=1.0, corruption="high")
    assert s.people == 1
    assert s.parties[0].persons in (0, 1)
    s = synth(tmp_path / "zero", 20, 2, overlap=0.0)
    assert all(p.records <= 2 for p in s.parties)


def test_docs_table_matches_rates() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "synth.md").read_text(encoding="utf-8")
    table = {}
    for line in doc.splitlines():
        m = re.match(r"^\| `(\w+)` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if m:
            table[m.group(1)] = dict(
                zip(("none", "low", "medium", "high"), map(float, m.groups()[1:]), strict=True)
            )
    assert table == RATES


def test_encode_arguments_encode_every_party(tmp_path: Path) -> None:
    """The one synth -> uk-person field map: each party (party 4 holds no NHS numbers) encodes
    every record with the template, with the dob format given, not detected."""
    from linkage.partner.pipeline import encode
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_unhardened
    from linkage.secret import Secret

    schema = Schema.from_dict(uk_person_unhardened())
    assert set(TEMPLATE_FIELDS) == {f.name for f in schema.fields}
    synth(tmp_path / "pop", 60, 5, corruption="none", seed=2)
    manifest = json.loads((tmp_path / "pop" / "manifest.json").read_text(encoding="utf-8"))
    secret = Secret(hashlib.sha256(b"synth-test").digest())
    for p in manifest["parties"]:
        args = encode_arguments(p)
        assert args["party"] == p["name"] and args["id_column"] == p["record_id_column"]
        assert args["absent"] == ([] if "nhs" in p["columns"] else ["nhs_number"])
        assert args["date_formats"] == {"date_of_birth": p["date_format"]}
        rejects: list = []
        enc = encode(tmp_path / "pop" / p["file"], schema, secret, rejects=rejects, **args)
        assert enc.party == p["name"] and len(enc.record_ids) == p["records"]
        opts = encode_options(p)
        assert opts[:4] == ["--party", p["name"], "--id-column", p["record_id_column"]]
        assert ("--absent" in opts) == ("nhs" not in p["columns"])
