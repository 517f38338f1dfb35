"""Issue 10 item 1: records with almost no identifying data are never linked.

The schema's ``min_evidence`` rule is enforced by the partner: records below it are left out of
the encoded file and listed in the rejects as "too little identifying information"; common null
spellings (NULL, N/A, NONE, -, ?, UNKNOWN, whitespace) are missing values in the template.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from conftest import TODAY

from linkage import encode, match
from linkage.errors import InputError, SchemaError
from linkage.evidence import TOO_LITTLE_EVIDENCE
from linkage.partner.pipeline import encode_file
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret

SECRET = Secret(hashlib.sha256(b"evidence test secret").digest())
COLS = ["given_name", "surname", "date_of_birth", "sex", "postcode", "address", "nhs_number"]


def _table(rows: list[list[str | None]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    data = {"record_id": pa.array(cols[0], pa.string())}
    for name, col in zip(COLS, cols[1:], strict=True):
        data[name] = pa.array(col, pa.string())
    return pa.table(data)


def _encode(rows: list[list[str | None]], party: str = "p", schema: Schema | None = None) -> Any:
    rejects: list[tuple[str, str, str]] = []
    schema = schema or Schema.from_dict(uk_person_unhardened())
    enc = encode(
        _table(rows), schema, SECRET, party=party, rejects=rejects, today=TODAY,
        date_formats={"date_of_birth": "%Y-%m-%d"},
    )  # fmt: skip
    return enc, rejects


FULL = ["Ann", "Smith", "1980-02-03", "F", "L1 8JQ", "1 High St", None]


def test_the_issue_example_is_unlinkable() -> None:
    # a1,,,,M,,,  and  b1,,,,M,,,  linked at Dice 1.0 before
    rows = [["a1", None, None, None, "M", None, None, None], ["x", *FULL]]
    enc, rejects = _encode(rows)
    assert enc.record_ids.to_pylist() == ["x"]
    assert ("a1", "*", TOO_LITTLE_EVIDENCE) in rejects
    enc_b, _ = _encode([["b1", None, None, None, "M", None, None, None], ["y", *FULL]], "q")
    res = match([enc, enc_b], threshold=0.7)
    linked = res.links.to_pydict()
    assert "a1" not in linked["record_id"] and "b1" not in linked["record_id"]


@pytest.mark.parametrize("null", ["NULL", "null", " N/A ", "NONE", "-", "?", "UNKNOWN", "   "])
def test_null_spellings_give_no_evidence_and_never_merge(null: str) -> None:
    # six records of one party with only sex and null names: one entity under dedupe before
    rows = [[f"r{i}", null, null, null, "M", null, null, null] for i in range(6)]
    rows.append(["ok", *FULL])
    enc, rejects = _encode(rows)
    assert enc.record_ids.to_pylist() == ["ok"]
    assert sum(r[2] == TOO_LITTLE_EVIDENCE for r in rejects) == 6


@pytest.mark.parametrize(
    "row, linkable",
    [
        (["Ann", "Smith", None, None, None, None, None], False),  # a full name alone
        (["Ann", None, "1980-02-03", "F", None, None, None], False),  # given name + DOB
        ([None, "Smith", None, "F", "L1 8JQ", None, None], False),  # surname + postcode
        (["Ann", "NULL", "1980-02-03", "F", None, None, None], False),  # NULL is no surname
        (["Ann", "Smith", "1980-02-03", None, None, None, None], True),  # name + DOB
        (["Ann", "Smith", None, None, None, "1 High St", None], True),  # name + address
        ([None, None, "1980-02-03", None, "L1 8JQ", None, None], True),  # DOB + postcode
        ([None, None, None, None, None, None, "9434765919"], True),  # a valid NHS number
        ([None, None, None, "M", None, None, "9434765918"], False),  # invalid: missing
    ],
)
def test_min_evidence_rule_of_the_template(row: list[str | None], linkable: bool) -> None:
    enc, rejects = _encode([["r", *row], ["ok", *FULL]])
    assert ("r" in enc.record_ids.to_pylist()) is linkable
    assert (("r", "*", TOO_LITTLE_EVIDENCE) in rejects) is not linkable


def test_unlinkable_rows_are_counted_in_the_summary_and_rejects(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", *COLS])
        w.writerow(["a1", "", "", "", "M", "", "", ""])
        w.writerow(["a2", "NULL", "NULL", "", "M", "", "", ""])
        w.writerow(["ok", *[v or "" for v in FULL]])
    out, rej = tmp_path / "out.parquet", tmp_path / "rej.csv"
    schema = Schema.from_dict(uk_person_unhardened())
    summary = encode_file(src, out, schema, SECRET, party="p", rejects_path=rej, today=TODAY)
    assert summary.rows_unlinkable == 2
    assert summary.rows_encoded == 1
    assert summary.problems[("*", TOO_LITTLE_EVIDENCE)] == 2
    with open(rej, newline="") as fh:
        reasons = {r["record_id"]: r["reason"] for r in csv.DictReader(fh)}
    assert reasons["a1"] == reasons["a2"] == TOO_LITTLE_EVIDENCE
    from linkage.report.text import encode_summary_lines

    assert "2 unlinkable" in encode_summary_lines(summary, 1024)[0]


def test_only_unlinkable_rows_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("record_id,given_name,surname,date_of_birth,sex,postcode,address,nhs_number\n"
                   "a1,,,,M,,,\nb1,,,,F,,,\n")  # fmt: skip
    schema = Schema.from_dict(uk_person_unhardened())
    with pytest.raises(InputError, match="enough identifying information"):
        encode_file(src, tmp_path / "o.parquet", schema, SECRET, party="p", today=TODAY)
    assert not (tmp_path / "o.parquet").exists()


# -- the schema section ---------------------------------------------------------------------------
def _doc(**ev: Any) -> dict[str, Any]:
    d = uk_person_unhardened()
    d["min_evidence"].update(ev)
    return d


def test_min_evidence_is_in_the_fingerprint_only_when_present() -> None:
    base = Schema.from_dict(uk_person_unhardened())
    assert "min_evidence" in base.canonical()
    stricter = Schema.from_dict(_doc(at_least=3))
    assert stricter.fingerprint != base.fingerprint
    no_rule = copy.deepcopy(uk_person_unhardened())
    del no_rule["min_evidence"]
    s = Schema.from_dict(no_rule)
    assert "min_evidence" not in s.canonical()  # older schemas keep their fingerprints
    assert "min_evidence: none" in s.summary()
    desc = _doc()
    desc["min_evidence"]["description"] = "changed words"
    assert Schema.from_dict(desc).fingerprint == base.fingerprint
    assert Schema.from_dict(json.loads(base.to_json())).min_evidence == base.min_evidence


@pytest.mark.parametrize(
    "change, path",
    [
        ({"at_least": 0}, "$.min_evidence.at_least"),
        ({"at_least": "2"}, "$.min_evidence.at_least"),
        ({"at_least": 99}, "$.min_evidence.at_least"),  # unreachable
        ({"groups": []}, "$.min_evidence.groups"),
        ({"groups": [{"name": "x", "fields": ["shoe"]}]}, "$.min_evidence.groups[0].fields[0]"),
        ({"groups": [{"name": "x", "fields": ["surname"], "need": "most"}]},
         "$.min_evidence.groups[0].need"),
        ({"groups": [{"name": "x", "fields": ["surname"], "weight": 0}]},
         "$.min_evidence.groups[0].weight"),
        ({"groups": [{"fields": ["surname"]}]}, "$.min_evidence.groups[0].name"),
        ({"colour": 1}, "$.min_evidence.colour"),
    ],
)  # fmt: skip
def test_min_evidence_errors_name_the_json_path(change: dict[str, Any], path: str) -> None:
    with pytest.raises(SchemaError) as exc:
        Schema.from_dict(_doc(**change))
    assert str(exc.value).startswith(path + ":")


def test_template_missing_values_cover_common_null_spellings() -> None:
    s = Schema.from_dict(uk_person_unhardened())
    for f in s.fields:
        upper = {m.upper() for m in f.missing}
        assert {"NULL", "N/A", "NONE", "-", "?", "UNKNOWN"} <= upper, f.name


def test_evidence_score_reference() -> None:
    s = Schema.from_dict(uk_person_unhardened())
    rule = s.min_evidence
    assert rule is not None
    rng = np.random.default_rng(3)
    present = {f: rng.random(200) < 0.5 for f in COLS}
    got = rule.score(present, 200)
    for i in range(200):
        p = {f: bool(present[f][i]) for f in COLS}
        want = (p["given_name"] and p["surname"]) + p["date_of_birth"]
        want += p["postcode"] or p["address"]
        want += 2 * p["nhs_number"]
        assert got[i] == want


@pytest.mark.parametrize(
    "placeholder",
    ["NO FIXED ABODE", "No Fixed Abode", "N.F.A.", "nfa", "Address unknown", "HOMELESS"],
)
@pytest.mark.parametrize("template", ["hardened", "unhardened"])
def test_an_address_placeholder_is_no_evidence(placeholder: str, template: str) -> None:
    # issue 10 robustness 4: John,Smith,,,,NO FIXED ABODE, linked across parties at Dice 1.0
    from linkage.schema_template import uk_person_template

    schema = Schema.from_dict(
        uk_person_template() if template == "hardened" else uk_person_unhardened()
    )
    rows = [["j1", "John", "Smith", None, None, None, placeholder, None], ["x", *FULL]]
    enc, rejects = _encode(rows, schema=schema)
    assert enc.record_ids.to_pylist() == ["x"]
    assert ("j1", "*", TOO_LITTLE_EVIDENCE) in rejects
