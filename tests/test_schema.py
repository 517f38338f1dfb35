"""The linkage schema: validation errors name the JSON path; template; fingerprint."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from linkage.errors import LinkageError, SchemaError
from linkage.schema import Schema
from linkage.schema_template import template_json, uk_person_template

UK_FIELDS = ["given_name", "surname", "date_of_birth", "sex", "postcode", "address", "nhs_number"]


def minimal() -> dict[str, Any]:
    return {
        "linkage_schema": 1,
        "fields": [{"name": "surname", "normaliser": "name", "bits_per_token": 10}],
    }


# -- template -----------------------------------------------------------------------------------
def test_template_validates_and_has_uk_fields() -> None:
    s = Schema.from_dict(uk_person_template())
    assert s.field_names == UK_FIELDS
    assert s.filter_length == 1024
    assert s.block_keys
    text = template_json("uk-person")
    assert Schema.from_dict(json.loads(text)).fingerprint == s.fingerprint
    assert "description" in text  # commented
    for name in UK_FIELDS:
        assert name in s.summary()


def test_unknown_template_is_refused() -> None:
    with pytest.raises(SchemaError, match="unknown template"):
        template_json("us-person")


def test_to_json_round_trip_keeps_fingerprint_and_descriptions() -> None:
    s = Schema.from_dict(uk_person_template())
    again = Schema.from_dict(json.loads(s.to_json()))
    assert again.fingerprint == s.fingerprint
    assert again.description == s.description != ""
    assert [f.description for f in again.fields] == [f.description for f in s.fields]
    assert again.fields[0].description != ""


def test_to_json_keeps_block_key_descriptions() -> None:
    s = Schema.from_dict(uk_person_template())
    again = Schema.from_dict(json.loads(s.to_json()))
    assert [b.description for b in again.block_keys] == [b.description for b in s.block_keys]


# -- validation errors name the JSON path --------------------------------------------------
def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return edit


def _del(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]

    return edit


BAD = [
    (_set(["fields", 0, "tokeniser", "q"], 5), "$.fields[0].tokeniser.q", "1..3"),
    (_set(["fields", 0, "tokeniser", "q"], "2"), "$.fields[0].tokeniser.q", "integer"),
    (_set(["fields", 1, "tokeniser", "padding"], "yes"), "$.fields[1].tokeniser.padding", "true"),
    (_set(["fields", 0, "tokeniser", "type"], "soundex"), "$.fields[0].tokeniser.type", "qgram"),
    (_set(["fields", 0, "tokeniser", "type"], "date"), "$.fields[0].tokeniser.type", "date"),
    (_set(["fields", 0, "tokeniser", "type"], "numeric"), "$.fields[0].tokeniser.type", "integer"),
    (_set(["fields", 2, "tokeniser", "parts"], ["week"]), "$.fields[2].tokeniser.parts[0]", "day"),
    (_set(["fields", 2, "tokeniser", "parts"], []), "$.fields[2].tokeniser.parts", "non-empty"),
    (_set(["fields", 2, "tokeniser", "parts"], ["day", "day"]), "$.fields[2].tokeniser.parts", ""),
    (_set(["fields", 1, "normaliser"], "foo"), "$.fields[1].normaliser", "name"),
    (_del(["fields", 1, "normaliser"]), "$.fields[1].normaliser", "missing"),
    (_del(["fields", 1, "name"]), "$.fields[1].name", "missing"),
    (_set(["fields", 1, "name"], "given_name"), "$.fields[1].name", "duplicate"),
    (_set(["fields", 1, "name"], "sur name"), "$.fields[1].name", "letters"),
    (_set(["fields", 1, "name"], 7), "$.fields[1].name", "string"),
    (_set(["fields", 0, "bits_per_token"], 0), "$.fields[0].bits_per_token", "1..256"),
    (_set(["fields", 0, "bits_per_token"], 300), "$.fields[0].bits_per_token", "1..256"),
    (_set(["fields", 0, "bits_per_token"], True), "$.fields[0].bits_per_token", "integer"),
    (_set(["fields", 0, "bits_per_token"], 2.5), "$.fields[0].bits_per_token", "integer"),
    (_set(["fields", 0, "bit_budget"], 30), "$.fields[0]", "exactly one"),
    (_del(["fields", 0, "bits_per_token"]), "$.fields[0]", "exactly one"),
    (_set(["fields", 5, "bit_budget"], -1), "$.fields[5].bit_budget", "integer in"),
    (_set(["fields", 0, "missing"], "NK"), "$.fields[0].missing", "list"),
    (_set(["fields", 0, "missing"], ["NK", 3]), "$.fields[0].missing[1]", "string"),
    (_set(["fields", 0, "colour"], "red"), "$.fields[0].colour", "unknown key"),
    (_set(["fields", 0, "salt"], {"field": "nope"}), "$.fields[0].salt.field", "unknown field"),
    (_set(["fields", 0, "salt"], {"field": "given_name"}), "$.fields[0].salt.field", "itself"),
    (
        _set(["fields", 0, "salt"], {"field": "surname", "transform": "year"}),
        "$.fields[0].salt.transform",
        "date",
    ),
    (
        _set(["fields", 0, "salt"], {"field": "surname", "transform": "outward"}),
        "$.fields[0].salt.transform",
        "postcode",
    ),
    (
        _set(["fields", 0, "salt"], {"field": "surname", "transform": "colour"}),
        "$.fields[0].salt.transform",
        "expected one of",
    ),
    (_set(["fields", 0, "salt"], []), "$.fields[0].salt", "non-empty"),
    (
        _set(["fields", 0, "salt"], [{"field": "date_of_birth", "transform": "year"}, "sex"]),
        "$.fields[0].salt[1]",
        "object",
    ),
    (
        _set(["fields", 0, "salt"], [{"field": "sex"}, {"field": "nope"}]),
        "$.fields[0].salt[1].field",
        "unknown field",
    ),
    (
        _set(["fields", 0, "salt"], [{"field": "sex"}, {"field": "surname", "transform": "month"}]),
        "$.fields[0].salt[1].transform",
        "date",
    ),
    (
        _set(["fields", 0, "salt"], [{"field": "sex"}, {"field": "sex", "transform": "value"}]),
        "$.fields[0].salt[1]",
        "duplicate",
    ),
    (_set(["fields", 0, "salt"], {"transform": "value"}), "$.fields[0].salt.field", "missing"),
    (_set(["fields"], []), "$.fields", "non-empty"),
    (_set(["fields"], {"a": 1}), "$.fields", "non-empty"),
    (_del(["fields"]), "$.fields", "missing"),
    (_set(["fields", 3], "sex"), "$.fields[3]", "object"),
    (_set(["filter", "length"], 1000), "$.filter.length", "multiple of 64"),
    (_set(["filter", "length"], "big"), "$.filter.length", "integer"),
    (_set(["filter", "length"], 0), "$.filter.length", "integer in"),
    (_set(["filter", "hashing"], "double"), "$.filter.hashing", "keyed-random"),
    (_set(["filter", "xor_folds"], 1), "$.filter.xor_folds", "unknown key"),
    (_set(["linkage_schema"], 2), "$.linkage_schema", "version"),
    (_del(["linkage_schema"]), "$.linkage_schema", "missing"),
    (_set(["colour"], "red"), "$.colour", "unknown key"),
    (_set(["description"], 5), "$.description", "string"),
    (_set(["block_keys"], {}), "$.block_keys", "list"),
    (_set(["block_keys", 0, "parts", 0, "field"], "nope"), "$.block_keys[0].parts[0].field", ""),
    (
        _set(["block_keys", 1, "parts", 0, "field"], "surname"),  # outward of a name
        "$.block_keys[1].parts[0].transform",
        "postcode",
    ),
    (
        _set(["block_keys", 0, "parts", 0, "transform"], "metaphone"),
        "$.block_keys[0].parts[0].transform",
        "soundex",
    ),
    (
        _set(["block_keys", 0, "parts", 1, "field"], "surname"),  # year of a name
        "$.block_keys[0].parts[1].transform",
        "date",
    ),
    (_set(["block_keys", 0, "parts"], []), "$.block_keys[0].parts", "non-empty"),
    (_set(["block_keys", 1, "name"], "surname_soundex_yob"), "$.block_keys[1].name", "duplicate"),
    (_del(["block_keys", 1, "name"]), "$.block_keys[1].name", "missing"),
]


@pytest.mark.parametrize(("edit", "path", "expected"), BAD)
def test_validation_error_names_json_path(
    edit: Callable[[dict[str, Any]], None], path: str, expected: str
) -> None:
    doc = uk_person_template()
    edit(doc)
    with pytest.raises(SchemaError) as exc:
        Schema.from_dict(doc)
    msg = str(exc.value)
    assert msg.startswith(path + ":"), msg
    assert expected in msg
    assert "\n" not in msg
    assert isinstance(exc.value, LinkageError)


@pytest.mark.parametrize("doc", [[], "schema", None, 3])
def test_top_level_must_be_an_object(doc: Any) -> None:
    with pytest.raises(SchemaError, match=r"^\$: expected a JSON object"):
        Schema.from_dict(doc)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SchemaError, match=r"nope\.json: schema file not found"):
        Schema.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "linkage_schema": 1,\n  "fields": [,]\n}\n')
    with pytest.raises(SchemaError, match=r"bad\.json: not valid JSON at line 3, column"):
        Schema.load(bad)
    wrong = tmp_path / "wrong.json"
    doc = minimal()
    doc["fields"][0]["bits_per_token"] = 0
    wrong.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"wrong\.json: \$\.fields\[0\]\.bits_per_token: "):
        Schema.load(wrong)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(SchemaError, match=r"bin\.json"):
        Schema.load(binary)
    with pytest.raises(SchemaError, match="cannot read"):
        Schema.load(tmp_path)


def test_load_reads_a_valid_file(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(template_json("uk-person"), encoding="utf-8")
    assert Schema.load(p) == Schema.from_dict(uk_person_template())


# -- defaults -----------------------------------------------------------------------------------
def test_defaults_filled_in() -> None:
    s = Schema.from_dict(minimal())
    f = s.fields[0]
    assert s.filter_length == 1024 and s.hashing == "keyed-random"
    assert f.tokeniser.type == "qgram" and f.tokeniser.q == 2 and f.tokeniser.padding
    assert f.salt is None and f.missing == () and s.block_keys == ()


def test_tokeniser_may_be_a_bare_string() -> None:
    doc = minimal()
    doc["fields"][0]["tokeniser"] = "exact"
    assert Schema.from_dict(doc).fields[0].tokeniser.type == "exact"


# -- fingerprint ---------------------------------------------------------------------------------
def test_fingerprint_is_sha256_of_canonical_form() -> None:
    canonical = {
        "linkage_schema": 1,
        "filter": {"length": 1024, "hashing": "keyed-random"},
        "fields": [
            {
                "name": "surname",
                "normaliser": "name",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "missing": [],
                "salt": None,
                "bits_per_token": 10,
            }
        ],
        "block_keys": [],
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    fp = Schema.from_dict(minimal()).fingerprint
    assert fp == hashlib.sha256(blob).hexdigest()
    # pinned: a change here changes every partner's encodings
    assert fp == "ded8ecbe6c35511307e195c8311001f77758cd2af063bbc316bf2c1f90008c76"


def test_fingerprint_stable_and_unchanged_by_non_semantic_edits() -> None:
    base = Schema.from_dict(uk_person_template()).fingerprint
    assert Schema.from_dict(uk_person_template()).fingerprint == base
    doc = uk_person_template()
    doc["description"] = "something else entirely"
    doc["filter"]["description"] = "x"
    doc["_comment"] = "comments start with an underscore"
    for f in doc["fields"]:
        f["description"] = "changed"
        f["_note"] = 1
    for b in doc["block_keys"]:
        b.pop("description", None)
    doc["fields"][0]["missing"] = [*reversed(doc["fields"][0]["missing"]), "NK"]
    doc["fields"][0]["tokeniser"] = {"padding": True, "q": 2, "type": "qgram"}  # key order
    doc["filter"]["hashing"] = "keyed-random"
    assert Schema.from_dict(doc).fingerprint == base
    reordered = json.loads(json.dumps(uk_person_template(), sort_keys=True))
    assert Schema.from_dict(reordered).fingerprint == base


SEMANTIC = {
    "length": _set(["filter", "length"], 2048),
    "q": _set(["fields", 0, "tokeniser", "q"], 3),
    "padding": _set(["fields", 0, "tokeniser", "padding"], False),
    "tokeniser": _set(["fields", 0, "tokeniser"], {"type": "exact"}),
    "bits": _set(["fields", 0, "bits_per_token"], 17),
    "budget": _set(["fields", 5, "bit_budget"], 121),
    "budget_vs_bits": lambda d: (
        d["fields"][0].pop("bits_per_token"),
        d["fields"][0].update(bit_budget=16),
    ),
    "normaliser": _set(["fields", 5, "normaliser"], "none"),
    "missing": _set(["fields", 0, "missing"], ["UNKNOWN"]),
    "salt": _set(["fields", 0, "salt"], {"field": "date_of_birth", "transform": "year"}),
    "salt_value": _set(["fields", 0, "salt"], {"field": "date_of_birth"}),
    "salt_parts": _set(["fields", 0, "salt"], [{"field": "date_of_birth"}, {"field": "sex"}]),
    "salt_part_order": _set(["fields", 0, "salt"], [{"field": "sex"}, {"field": "date_of_birth"}]),
    "salt_soundex": _set(["fields", 1, "salt"], {"field": "given_name", "transform": "soundex"}),
    "match_threshold": _set(["match"], {"threshold": 0.123}),
    "date_parts": _set(["fields", 2, "tokeniser", "parts"], ["day", "month", "year"]),
    "field_name": lambda d: (
        d["fields"][5].update(name="address_lines"),
        d["min_evidence"]["groups"][2].update(fields=["postcode", "address_lines"]),
    ),
    "field_order": lambda d: d["fields"].insert(0, d["fields"].pop(1)),
    "drop_field": lambda d: (
        d["fields"].pop(),
        d.update(block_keys=[b for b in d["block_keys"] if b["name"] != "nhs_number"]),
        d["min_evidence"]["groups"].pop(),
    ),
    "min_evidence_at_least": _set(["min_evidence", "at_least"], 3),
    "min_evidence_need": _set(["min_evidence", "groups", 0, "need"], "any"),
    "min_evidence_weight": _set(["min_evidence", "groups", 3, "weight"], 1),
    "no_min_evidence": lambda d: d.pop("min_evidence"),
    "block_transform": _set(["block_keys", 0, "parts", 0, "transform"], "initial"),
    "block_name": _set(["block_keys", 0, "name"], "other"),
    "drop_block": lambda d: d["block_keys"].pop(),
    "no_blocks": _set(["block_keys"], []),
}


def test_fingerprint_changed_by_every_semantic_change() -> None:
    base = Schema.from_dict(uk_person_template()).fingerprint
    seen = {base: "base"}
    for name, edit in SEMANTIC.items():
        doc = copy.deepcopy(uk_person_template())
        edit(doc)
        fp = Schema.from_dict(doc).fingerprint
        assert fp not in seen, (name, seen.get(fp))
        seen[fp] = name
