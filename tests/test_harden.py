"""The schema's hardening section and its application by the partner encoder (issue 12)."""

from __future__ import annotations

import csv
import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from jit_parity import same_with_and_without_jit

from linkage.encoded import EncodedTable, read_encoded, write_encoded
from linkage.errors import SchemaError
from linkage.kernels import harden as hk
from linkage.lab.synthetic import synth
from linkage.partner.encoder import Encoder
from linkage.partner.harden import Hardener, step_keys
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_template, uk_person_unhardened
from linkage.secret import Secret
from linkage.tlu.linker import match

# random-looking 32-byte secrets (typed or repetitive secrets are refused)
SECRET = Secret(hashlib.sha256(b"harden-test-secret").digest())
OTHER = Secret(hashlib.sha256(b"harden-test-other-secret").digest())

ALL_STEPS = [
    {"type": "diffusion", "taps": 5, "output_bits": 1024},
    {"type": "rule90", "steps": 2},
    {"type": "balance"},
    {"type": "xor_fold"},
    {"type": "blip", "epsilon": 2.0, "k": 10, "description": "randomised response"},
]


def small_schema(hardening: list[dict] | None = None, length: int = 512) -> Schema:
    doc: dict = {
        "linkage_schema": 1,
        "filter": {"length": length},
        "fields": [
            {"name": "given_name", "normaliser": "name", "bits_per_token": 10},
            {"name": "surname", "normaliser": "name", "bits_per_token": 10},
        ],
    }
    if hardening is not None:
        doc["hardening"] = hardening
    return Schema.from_dict(doc)


def people(n: int = 12) -> pa.Table:
    given = ["ANN", "BOB", "CARA", "DEV", "EVE", "FINN", "GUS", "HAL", "IDA", "JO", "KAI", "LU"]
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "given_name": [given[i % len(given)] for i in range(n)],
            "surname": [f"SMITH{chr(65 + i % 26)}" for i in range(n)],
        }
    )


def unhardened(schema: Schema, secret: Secret, t: pa.Table) -> np.ndarray:
    """The schema's filters before hardening (field keys are bound to the fingerprint,
    hardening included, so these differ from a schema without the hardening section)."""
    enc = Encoder(schema, secret)
    enc.hardener = None
    cols = {f: t.column(f).combine_chunks() for f in ("given_name", "surname")}
    return enc.encode_batch(cols, t.num_rows).filters


# schema field -> synth manifest field
SYNTH_FIELDS = {
    "given_name": "given",
    "surname": "family",
    "date_of_birth": "dob",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs",
}


def encode_parties(pop: Path, manifest: dict, schema: Schema) -> list[EncodedTable]:
    out = []
    for p in manifest["parties"]:
        cols = {f: p["columns"][s] for f, s in SYNTH_FIELDS.items() if s in p["columns"]}
        out.append(
            encode(
                pop / p["file"],
                schema,
                SECRET,
                party=p["name"],
                id_column=p["record_id_column"],
                columns=cols,
                date_formats={"date_of_birth": p["date_format"]},
                rejects=[],
            )
        )
    return out


def linked_pairs(encs: list[EncodedTable], threshold: float) -> set[tuple[tuple, tuple]]:
    """Cross-party pairs of records that the linkage puts in one entity."""
    d = match(encs, seed=1, blocking="none", threshold=threshold).links.to_pydict()
    groups: dict[str, list[tuple[str, str]]] = {}
    for e, p, r in zip(d["entity_id"], d["party"], d["record_id"], strict=True):
        groups.setdefault(e, []).append((p, r))
    return {
        (a, b) for recs in groups.values() for a in recs for b in recs if a < b and a[0] != b[0]
    }


def by_id(enc) -> dict[str, bytes]:
    ids = enc.table.column("record_id").to_pylist()
    return {r: enc.filters[i].tobytes() for i, r in enumerate(ids)}


# -- schema -------------------------------------------------------------------------------------
def test_hardened_schema_round_trips_and_changes_the_fingerprint():
    plain = small_schema()
    hard = small_schema(ALL_STEPS)
    assert "hardening" not in plain.canonical()  # schemas without it keep their fingerprint
    assert not plain.hardening and plain.output_length == plain.filter_length == 512
    assert hard.fingerprint != plain.fingerprint
    # 512 -diffusion-> 1024 -rule90-> 1024 -balance-> 2048 -xor_fold-> 1024 -blip-> 1024
    assert hard.output_length == 1024
    again = Schema.from_dict(json.loads(hard.to_json()))
    assert again.hardening == hard.hardening and again.fingerprint == hard.fingerprint
    assert again.hardening.steps[-1].description == "randomised response"
    assert "hardening steps" in hard.summary()
    # defaults are filled in, so spelling them out gives the same fingerprint
    explicit = small_schema([{"type": "diffusion", "taps": 8, "output_bits": 512}])
    assert small_schema([{"type": "diffusion"}]).fingerprint == explicit.fingerprint
    assert small_schema([{"type": "diffusion", "taps": 9}]).fingerprint != explicit.fingerprint
    blip = small_schema([{"type": "blip", "epsilon": 2, "k": 10}]).hardening.steps[0]
    assert blip.flip == pytest.approx(hk.blip_flip_probability(2.0, 10))


def test_uk_template_is_hardened_and_the_opt_out_is_not():
    assert [st.type for st in Schema.from_dict(uk_person_template()).hardening.steps] == [
        "diffusion"
    ]
    assert not Schema.from_dict(uk_person_unhardened()).hardening


@pytest.mark.parametrize(
    ("steps", "path", "message"),
    [
        ({"type": "diffusion"}, "$.hardening", "expected a list of steps"),
        ([{"taps": 3}], "$.hardening[0].type", "missing"),
        ([{"type": "shuffle"}], "$.hardening[0].type", "expected one of"),
        ([{"type": "xor_fold", "taps": 3}], "$.hardening[0].taps", "unknown key"),
        ([{"type": "diffusion", "taps": 0}], "$.hardening[0].taps", "1..64"),
        ([{"type": "diffusion", "output_bits": 1000}], "$.hardening[0].output_bits", "multiple"),
        ([{"type": "rule90", "steps": 0}], "$.hardening[0].steps", "1..64"),
        ([{"type": "balance", "permute": "yes"}], "$.hardening[0].permute", "true or false"),
        ([{"type": "blip"}], "$.hardening[0]", "exactly one of"),
        ([{"type": "blip", "flip_probability": 0.6}], "$.hardening[0].flip_probability", "0.5"),
        ([{"type": "blip", "epsilon": 1}], "$.hardening[0].k", "missing"),
        ([{"type": "blip", "epsilon": -1, "k": 2}], "$.hardening[0].epsilon", "positive"),
        (
            [{"type": "diffusion", "output_bits": 64}, {"type": "xor_fold"}],
            "$.hardening[1]",
            "multiple of 128",
        ),
        ([{"type": "balance"}] * 8, "$.hardening[7]", "at most 65536"),
    ],
)
def test_hardening_validation_names_the_path(steps, path, message):
    with pytest.raises(SchemaError) as ei:
        small_schema(steps)
    assert str(ei.value).startswith(path + ":") and message in str(ei.value), str(ei.value)


# -- keyed tables -------------------------------------------------------------------------------
def test_taps_and_permutations_are_keyed_by_secret_and_schema():
    schema = small_schema(ALL_STEPS)
    a, b, c = Hardener(schema, SECRET), Hardener(schema, SECRET), Hardener(schema, OTHER)
    taps_a, perm_a = a.plan[0][1], a.plan[2][1]
    np.testing.assert_array_equal(taps_a, b.plan[0][1])
    assert taps_a.shape == (1024, 5) and taps_a.max() < 512
    assert (taps_a != c.plan[0][1]).mean() > 0.9  # another secret, another mapping
    assert not np.array_equal(perm_a, c.plan[2][1])
    # another schema (another project) under the same secret: another mapping too
    other_schema = small_schema([{"type": "diffusion", "taps": 5, "output_bits": 1024}], 512)
    other = Hardener(other_schema, SECRET)
    assert (taps_a != other.plan[0][1]).mean() > 0.9
    keys = step_keys(schema, SECRET)
    assert len(set(keys)) == len(ALL_STEPS)
    np.testing.assert_array_equal(taps_a, hk.diffusion_taps(keys[0], 512, 1024, 5))


# -- encoding -----------------------------------------------------------------------------------
def test_encode_writes_wire_length_and_applies_the_steps(tmp_path: Path):
    schema = small_schema(
        [{"type": "diffusion", "taps": 5, "output_bits": 1024}, {"type": "balance"}]
    )
    t = people()
    hard = encode(t, schema, SECRET, party="a")
    assert hard.meta["filter_length"] == "2048" and hard.filters.shape == (12, 32)
    assert (np.bitwise_count(hard.filters).sum(axis=1) == 1024).all()  # balanced
    # the same as hardening the schema's unhardened filters by hand
    raw = unhardened(schema, SECRET, t)
    assert raw.shape == (12, 8)
    np.testing.assert_array_equal(hard.filters, Hardener(schema, SECRET).apply(raw))
    assert hard.meta["schema_fingerprint"] == schema.fingerprint
    write_encoded(hard, tmp_path / "a.parquet")
    back = read_encoded(tmp_path / "a.parquet")
    assert back.filter_length == 2048
    np.testing.assert_array_equal(back.filters, hard.filters)


def test_blip_noise_depends_on_record_id_not_on_order_or_batches():
    schema = small_schema([{"type": "blip", "flip_probability": 0.1}])
    t = people(40)
    a = encode(t, schema, SECRET, party="a")
    b = encode(t.take(pa.array(np.arange(40)[::-1])), schema, SECRET, party="a", batch_size=7)
    assert by_id(a) == by_id(b)
    noise = a.filters ^ unhardened(schema, SECRET, t)
    flips = int(np.bitwise_count(noise).sum())
    assert 0.08 * noise.size * 64 < flips < 0.12 * noise.size * 64
    # another secret: other noise
    other = encode(t, schema, OTHER, party="a").filters ^ unhardened(schema, OTHER, t)
    assert not np.array_equal(noise, other)


def test_blip_needs_record_ids():
    h = Hardener(small_schema([{"type": "blip", "flip_probability": 0.1}]), SECRET)
    assert h.needs_ids
    with pytest.raises(ValueError, match="record id"):
        h.apply(np.zeros((2, 8), dtype=np.uint64))


def test_diffusion_links_the_same_people(tmp_path: Path):
    """On a small low-corruption population, diffusion with t = 4 (threshold 0.6 instead of
    0.7: diffusion pulls unrelated pairs' Dice towards 1/2) links the pairs that the plain
    encoding links (at most 5% differ; a few pairs near the threshold move), as correctly."""
    pop = tmp_path / "pop"
    synth(pop, people=300, parties=2, corruption="low", seed=2)
    manifest = json.loads((pop / "manifest.json").read_text())
    with open(pop / "truth.csv", newline="", encoding="utf-8") as fh:
        person = {(r["party"], r["record_id"]): r["person_id"] for r in csv.DictReader(fh)}
    doc = uk_person_unhardened()
    base = linked_pairs(encode_parties(pop, manifest, Schema.from_dict(doc)), 0.7)
    doc["hardening"] = [{"type": "diffusion", "taps": 4}]
    encs = encode_parties(pop, manifest, Schema.from_dict(doc))
    assert encs[0].meta["filter_length"] == "1024"
    hard = linked_pairs(encs, 0.6)
    assert len(base) > 100 and len(hard ^ base) <= 0.05 * len(base), (hard - base, base - hard)
    true_hard = sum(person[a] == person[b] for a, b in hard)
    true_base = sum(person[a] == person[b] for a, b in base)
    assert true_hard >= 0.97 * len(hard) and true_hard >= true_base - 3


def test_encode_with_hardening_without_jit():
    code = textwrap.dedent(
        f"""
        import numpy as np
        import pyarrow as pa
        from linkage.partner.pipeline import encode
        from linkage.schema import Schema
        import hashlib
        from linkage.secret import Secret
        doc = {{
            "linkage_schema": 1,
            "filter": {{"length": 128}},
            "fields": [{{"name": "given_name", "normaliser": "name", "bits_per_token": 6}}],
            "hardening": {ALL_STEPS!r},
        }}
        t = pa.table({{"record_id": ["a", "b", "c"], "given_name": ["ANN", "BOB", "ANNE"]}})
        enc = encode(t, Schema.from_dict(doc), Secret(hashlib.sha256(b"x").digest()), party="p")
        assert enc.meta["filter_length"] == "1024", enc.meta
        np.savez(OUT, filters=enc.filters)
        """
    )
    out = same_with_and_without_jit(code)
    assert out["filters"].shape == (3, 16) and out["filters"].any()
