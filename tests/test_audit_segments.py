"""linkage audit, frequency alignment of a segmented file's field segments: equal segments are
equal field values, so the linkage unit can align each field's frequencies with a public
population's (docs/quality.md, "What the linkage unit learns")."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import linkage
from linkage.lab.audit import frequency
from linkage.lab.audit.plaintext import normalise_table, unpack
from linkage.lab.audit.runner import audit, file_segments, run_frequency
from linkage.lab.audit.scenario import Scenario, file_scenario
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.segments import with_segments

SECRET = linkage.Secret(hashlib.sha256(b"audit segments test").digest())
# skewed name distributions: the commonest names stand apart by frequency rank
SURNAMES = {"SMITH": 0.20, "JONES": 0.12, "TAYLOR": 0.07, "BROWN": 0.04}
GIVEN = {"JOHN": 0.16, "MARY": 0.10, "DAVID": 0.06, "SARAH": 0.035}
TAIL = 0.4  # share of records drawn from a long tail of rare names


def _names(rng: np.random.Generator, top: dict[str, float], tail: list[str], n: int) -> list[str]:
    names = list(top) + tail
    p = np.array(list(top.values()) + [TAIL / len(tail)] * len(tail))
    return [names[i] for i in rng.choice(len(names), size=n, p=p / p.sum())]


def _people(n: int, seed: int, prefix: str) -> pa.Table:
    """``n`` people with skewed names; other fields random; NHS number missing throughout
    (an empty segment: no item)."""
    rng = np.random.default_rng(seed)
    tail_rng = np.random.default_rng(99)  # the same rare names for the file and the reference
    letters = np.array(list("ABCDEFGHIKLMNOPRSTUVWY"))
    tail = ["".join(tail_rng.choice(letters, size=7)) for _ in range(600)]
    dob = np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, size=n)
    return pa.table({
        "record_id": [f"{prefix}{i}" for i in range(n)],
        "given_name": _names(rng, GIVEN, tail, n),
        "surname": _names(rng, SURNAMES, tail[::-1], n),
        "date_of_birth": [str(d) for d in dob],
        "sex": list(rng.choice(["F", "M"], size=n)),
        "postcode": [f"L{rng.integers(1, 30)} {rng.integers(1, 9)}AB" for _ in range(n)],
        "address": [f"{rng.integers(1, 200)} HIGH STREET" for _ in range(n)],
        "nhs_number": pa.nulls(n, pa.string()),
    })  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A segmented and a record-layout file of the same 1,500 people, their plaintext, and an
    attacker's reference of 3,000 other people from the same distribution."""
    d = tmp_path_factory.mktemp("audit_segments")
    pacsv.write_csv(_people(1500, 1, "p"), d / "plain.csv")
    pacsv.write_csv(_people(3000, 2, "r"), d / "ref.csv")
    out: dict[str, Any] = {"dir": d}
    for name, doc in (("seg", with_segments(uk_person_unhardened())),
                      ("rec", uk_person_unhardened())):  # fmt: skip
        sch = Schema.from_dict(doc)
        linkage.encode_file(d / "plain.csv", d / f"{name}.parquet", sch, SECRET, party="p")
        out[name] = sch
    return out


def _audit(files: dict[str, Any], name: str) -> Any:
    d = files["dir"]
    return audit(files[name], encoded=d / f"{name}.parquet", plaintext=d / "plain.csv",
                 reference=d / "ref.csv", attacks="frequency")  # fmt: skip


def test_common_names_are_named_from_their_segments(files: dict[str, Any]) -> None:
    r = _audit(files, "seg")
    a = r.attack("frequency")
    sur, giv = a.per_field["segment:surname"], a.per_field["segment:given_name"]
    assert sur["reidentified"] >= 0.35 and giv["reidentified"] >= 0.25, (sur, giv)
    assert sur["precision"] >= 0.6 and giv["precision"] >= 0.5, (sur, giv)
    assert a.per_field["segment:nhs_number"]["guesses"] == 0  # empty segments: no item
    # every SMITH / JOHN record is named right at a cautious setting
    sc = file_scenario(files["dir"] / "seg.parquet", files["dir"] / "plain.csv", files["seg"],
                       reference=files["dir"] / "ref.csv")  # fmt: skip
    for field, top_name in (("surname", "SMITH"), ("given_name", "JOHN")):
        seg = next(s for s in files["seg"].segments if s.field == field)
        enc = frequency.segment_items(sc.filters, seg.start, seg.bits)
        ref = frequency.segment_values(sc.schema, field, sc.reference)
        guess = frequency.value_of(frequency.align(enc, list(ref), top=20, min_gap=0.2))
        truth = sc.truth.values[field]
        assert (guess[truth == top_name] == top_name).all()
        assert (truth[guess == top_name] == top_name).all()
    text = r.to_text()
    assert "segment surname: " in text and "field segments" in text
    assert "segment:" not in text and "; worst: segment " in text
    assert "segment" in a.label()
    assert "segment:surname" in r.to_dict()["attacks"][0]["per_field"]


def test_record_layout_has_no_segment_rows(files: dict[str, Any]) -> None:
    a = _audit(files, "rec").attack("frequency")
    assert "whole_filter" in a.per_field
    assert not [k for k in a.per_field if k.startswith("segment:")]
    assert "segment" not in a.title
    assert file_segments(files["rec"], files["dir"] / "rec.parquet", 1024) == ()
    assert file_segments(files["rec"], None, 1024) == ()


def test_mode_b_reads_the_layout_the_encoder_writes(files: dict[str, Any]) -> None:
    segs = file_segments(files["seg"], None, files["seg"].output_length)
    assert segs == file_segments(files["seg"], files["dir"] / "seg.parquet", 0)
    assert [s.field for s in segs] == list(files["seg"].field_names)
    # per-segment diffusion (the fields template): the wire layout, twice as long
    from linkage.schema_template import uk_person_fields_template

    a = audit(uk_person_fields_template(), people=300, attacks="frequency").attack("frequency")
    assert {k for k in a.per_field if k.startswith("segment:")} == {
        f"segment:{f}" for f in files["seg"].field_names}  # fmt: skip


def test_row_order_does_not_change_the_guesses(files: dict[str, Any]) -> None:
    d = files["dir"]
    sc = file_scenario(d / "seg.parquet", d / "plain.csv", files["seg"], reference=d / "ref.csv")
    segs = file_segments(files["seg"], d / "seg.parquet", 0)
    rng = np.random.default_rng(5)
    p, q = rng.permutation(sc.truth.n), rng.permutation(sc.reference.n)
    bk = None if sc.block_keys is None else [sc.block_keys[i] for i in p]
    shuffled = Scenario(sc.schema, sc.filters[p], bk, sc.truth.take(p), sc.reference.take(q),
                        sc.mode)  # fmt: skip
    x = unpack(sc.filters)
    a, b = run_frequency(sc, x, segs), run_frequency(shuffled, x[p], segs)
    assert a.per_field == b.per_field and a.reidentified == b.reidentified
    # per record: each record keeps its guess, also where counts tie (min_gap 0)
    seg = segs[1]
    enc = frequency.segment_items(sc.filters, seg.start, seg.bits)
    ref = list(frequency.segment_values(sc.schema, seg.field, sc.reference))
    g = frequency.align(enc, ref, top=500, min_gap=0.0)
    g2 = frequency.align([enc[i] for i in p], [ref[i] for i in q], top=500, min_gap=0.0)
    assert list(g[p]) == list(g2)


def test_segment_values_follow_the_encoder() -> None:
    """Values the encoder writes into the same segment share one item; a salted field's
    item carries its salt (each (value, salt) pair is its own segment)."""
    doc = with_segments(uk_person_unhardened())
    next(f for f in doc["fields"] if f["name"] == "surname")["salt"] = {
        "field": "date_of_birth", "transform": "year"}  # fmt: skip
    sch = Schema.from_dict(doc)
    rows = {
        "record_id": ["a", "b", "c", "d", "e"],
        "given_name": ["ANNA", "ANNNA", "ANNA", "BOB", "EVE"],
        "surname": ["SMITH", "SMITH", "SMITH", "JONES", "JONES"],
        "date_of_birth": ["1990-01-02", "1990-03-04", "1991-01-02", "1990-01-02", None],
        "sex": ["F", "F", "F", "M", None],
        "postcode": ["L1 8JQ"] * 5,
        "address": ["1 HIGH STREET"] * 5,
        "nhs_number": [None, None, None, None, "9434765919"],  # valid: e has evidence
    }
    table = pa.table(rows)
    enc = linkage.encode(table, sch, SECRET, party="p")
    assert enc.record_ids.to_pylist() == rows["record_id"]
    filters = np.asarray(enc.filters)
    plain = normalise_table(table, sch)
    for s in sch.segments:
        items = frequency.segment_items(filters, s.start, s.bits)
        vals = frequency.segment_values(sch, s.field, plain)
        for i in range(5):  # same segment <-> same item; empty segment <-> no item
            assert (items[i] is None) == (vals[i] is None), (s.field, i)
            for j in range(5):
                same = items[i] is not None and items[i] == items[j]
                assert same == (vals[i] is not None and vals[i] == vals[j]), (s.field, i, j)
    giv = frequency.segment_values(sch, "given_name", plain)
    assert giv[0] == giv[1] == "ANNA"  # ANNA and ANNNA: the same bigram set, one segment
    sur = frequency.segment_values(sch, "surname", plain)
    assert sur[0] == "SMITH\x1e1990" and sur[2] == "SMITH\x1e1991" and sur[4] is None
    assert list(frequency.value_of(sur)) == ["SMITH", "SMITH", "SMITH", "JONES", None]


def test_block_keys_are_placed_when_one_key_is_absent_from_every_record() -> None:
    """A council extract without NHS numbers: no record lists every block key, so the key
    positions are guessed per choice of the present keys (before: no guesses at all)."""
    from linkage.lab.audit.frequency import block_key_hypotheses, block_key_items

    names = ["a", "b", "nhs"]
    rows = [np.array([10 + i % 3, 20 + i % 5], np.uint64) for i in range(30)]  # nhs absent
    assert all(v is None for v in block_key_items(rows, names)["a"])  # the old gap
    hyps = block_key_hypotheses(rows, names)
    assert len(hyps) == 3  # which 2 of the 3 keys are present
    right = [h for h in hyps if h["a"][0] == 10 and h["b"][0] == 20]
    assert right and all(v is None for v in right[0]["nhs"])
    full = [np.array([1, 2, 3], np.uint64), np.array([1, 3], np.uint64)]
    assert block_key_hypotheses(full, names) == [block_key_items(full, names)]
    assert block_key_hypotheses([np.array([], np.uint64)], names) == []


def test_a_category_segment_is_not_counted_as_reidentification(files: dict[str, Any]) -> None:
    """The sex segment names M/F for nearly every record: value disclosure, shown per item,
    but the headline (and its "worst:" item) is the worst segment that names a person."""
    a = _audit(files, "seg").attack("frequency")
    assert a.category == ("segment:sex",)
    counted = [v["reidentified"] for k, v in a.per_field.items() if k != "segment:sex"]
    assert a.reidentified == max(counted)
    assert a.worst_item() != "segment sex"
    text = "\n".join(a.lines())
    assert "segment sex: value named for" in text and "not counted" in text
    assert a.to_dict()["category"] == ["segment:sex"]
