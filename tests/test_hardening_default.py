"""Issue 12: generalised salting, the recommended match threshold, the hardened default
template and the unhardened opt-in."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np
import pyarrow as pa

from linkage.encoded import read_encoded
from linkage.lab.audit.plaintext import Plain, salt_of
from linkage.partner.pipeline import encode, encode_file
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.tlu.linker import DEFAULT_THRESHOLD, match

SECRET = Secret(hashlib.sha256(b"test_hardening_default").digest())


def _people(n: int = 40) -> pa.Table:
    given = ["ANNA", "BEN", "CARA", "DAN", "EVE", "FINN", "GWEN", "HUGO"]
    family = ["SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "DAVIES", "EVANS"]
    return pa.table({
        "record_id": [f"r{i}" for i in range(n)],
        "given_name": [given[i % len(given)] for i in range(n)],
        "surname": [family[(i * 3) % len(family)] for i in range(n)],
        "date_of_birth": [f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}" for i in range(n)],
        "sex": ["M" if i % 2 else "F" for i in range(n)],
        "postcode": [f"L{1 + i % 9} {i % 10}AB" for i in range(n)],
        "address": [f"{i} HIGH STREET" for i in range(n)],
        "nhs_number": [None] * n,
    })  # fmt: skip


def _salted(doc: dict[str, Any], salt: Any, fields: tuple[str, ...] = ("given_name",)) -> Schema:
    doc = copy.deepcopy(doc)
    for f in doc["fields"]:
        if f["name"] in fields:
            f["salt"] = salt
    return Schema.from_dict(doc)


def _filters(schema: Schema, table: pa.Table) -> np.ndarray:
    return np.array(encode(table, schema, SECRET, party="a").filters)


# -- generalised salting -------------------------------------------------------------------
def test_one_part_list_is_the_single_salt() -> None:
    base = uk_person_unhardened()
    one = _salted(base, {"field": "date_of_birth", "transform": "year"})
    listed = _salted(base, [{"field": "date_of_birth", "transform": "year"}])
    assert one.fingerprint == listed.fingerprint
    assert one.canonical() == listed.canonical()
    assert np.array_equal(_filters(one, _people()), _filters(listed, _people()))


def test_salt_parts_all_count() -> None:
    """Two records with the same given name and year of birth but a different sex: salted by
    year alone their given-name bits agree; salted by year AND sex they do not."""
    t = _people(2)
    t = t.set_column(1, "given_name", pa.array(["ANNA", "ANNA"]))
    t = t.set_column(3, "date_of_birth", pa.array(["1970-01-01", "1970-05-05"]))
    t = t.set_column(4, "sex", pa.array(["F", "M"]))
    base = uk_person_unhardened()
    base.pop("min_evidence")
    yob = _salted(base, {"field": "date_of_birth", "transform": "year"})
    both = _salted(base, [{"field": "date_of_birth", "transform": "year"}, {"field": "sex"}])

    by_year, by_both = _filters(yob, t), _filters(both, t)
    shared_year = int(np.unpackbits((by_year[0] & by_year[1]).view(np.uint8)).sum())
    shared_both = int(np.unpackbits((by_both[0] & by_both[1]).view(np.uint8)).sum())
    assert shared_both < shared_year - 20  # the given-name bits (3 bigrams x 14) differ


def test_missing_salt_part_drops_the_field() -> None:
    t = _people(2).set_column(4, "sex", pa.array(["F", None]))
    base = uk_person_unhardened()
    both = _salted(base, [{"field": "date_of_birth", "transform": "year"}, {"field": "sex"}])
    without = t.set_column(1, "given_name", pa.array([t.column(1)[0].as_py(), None]))
    a, b = _filters(both, t), _filters(both, without)
    assert np.array_equal(a, b)  # record 2 (no sex) encodes as if it had no given name
    assert not np.array_equal(a, _filters(both, _people(2)))  # record 2 with sex differs
    # the attacker-side plaintext (linkage audit) computes the same salts
    plain = Plain({k: np.array(t.column(k).to_pylist(), object) for k in t.column_names}, 2)
    plain.values["date_of_birth"] = np.array(["1950-01-10", "1951-02-11"], object)
    s = salt_of(both, both.field("given_name"), plain)
    assert s[0] == "1950\x1fF" and s[1] is None


# -- recommended threshold -------------------------------------------------------------------
def _two_files(tmp_path: Any, doc: dict[str, Any]) -> list[Any]:
    schema = Schema.from_dict(doc)
    paths = []
    for party in ("a", "b"):
        src = tmp_path / f"{party}.csv"
        import pyarrow.csv as pacsv

        pacsv.write_csv(_people(), src)
        out = tmp_path / f"{party}.parquet"
        encode_file(src, out, schema, SECRET, party=party, absent=["nhs_number"])
        paths.append(out)
    return paths


def test_match_uses_the_recommended_threshold(tmp_path: Any) -> None:
    doc = uk_person_unhardened()
    doc["match"] = {"threshold": 0.93}
    paths = _two_files(tmp_path, doc)
    assert read_encoded(paths[0]).meta["recommended_threshold"] == "0.93"
    res = match(paths, seed=1)
    assert res.stats.threshold == 0.93
    assert match(paths, seed=1, threshold=0.8).stats.threshold == 0.8


def test_match_default_threshold_without_recommendation(tmp_path: Any) -> None:
    paths = _two_files(tmp_path, uk_person_unhardened())
    assert "recommended_threshold" not in read_encoded(paths[0]).meta
    assert match(paths, seed=1).stats.threshold == DEFAULT_THRESHOLD


# -- the CLI opt-in ----------------------------------------------------------------------------
def test_unhardened_template_is_an_explicit_opt_in_that_warns(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from linkage.cli import main

    out = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["schema", "init", "--template", "uk-person-unhardened",
                                  "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Warning: this schema has no hardening" in r.output and "re-identified" in r.output
    assert not Schema.load(out).hardening
    hard = tmp_path / "h.json"
    r = CliRunner().invoke(main, ["schema", "init", "-o", str(hard)])
    assert r.exit_code == 0 and "Warning" not in r.output
    assert Schema.load(hard).hardening


def test_encode_warns_without_hardening(tmp_path: Any) -> None:
    import pyarrow.csv as pacsv
    from click.testing import CliRunner

    from linkage.cli import main
    from linkage.secret import secret_text

    src = tmp_path / "a.csv"
    pacsv.write_csv(_people(), src)
    key = tmp_path / "secret.key"
    key.write_text(secret_text(hashlib.sha256(b"cli").digest()) + "\n")
    key.chmod(0o600)
    for template, warned, segmented in (
        ("uk-person-unhardened", True, False),
        ("uk-person", False, False),
        ("uk-person-fields", False, True),
    ):
        schema = tmp_path / f"{template}.json"
        r = CliRunner().invoke(main, ["schema", "init", "--template", template, "-o", str(schema)])
        assert ("the segmented layout" in r.output) is segmented, r.output
        r = CliRunner().invoke(main, [
            "encode", str(src), "-o", str(tmp_path / f"{template}.parquet"), "--schema",
            str(schema), "--secret-file", str(key), "--party", "a", "--absent", "nhs_number", "-q",
        ])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert ("Warning: this schema has no hardening" in r.output) is warned
        assert ("Warning: this schema has the segmented layout" in r.output) is segmented
        r = CliRunner().invoke(main, ["schema", "check", str(schema)])
        assert r.exit_code == 0, r.output
        assert ("Warning: this schema has no hardening" in r.output) is warned
        assert ("Warning: this schema has the segmented layout" in r.output) is segmented


def test_map_create_uses_the_recommended_threshold(tmp_path: Any) -> None:
    from linkage.tlu.linkage_map import map_create, map_info

    doc = uk_person_unhardened()
    doc["match"] = {"threshold": 0.93}
    paths = _two_files(tmp_path, doc)
    map_create(tmp_path / "m.duckdb", paths, seed=1)
    assert "0.93" in str(map_info(tmp_path / "m.duckdb"))


def test_weakened_hardening_warns() -> None:
    """Fewer diffusion taps than the default's 8, or hardening without diffusion, earn a
    measured-risk warning (a tester cut the taps to 2 and 4 and saw none; the audit breaks
    both at full overlap); the default and more taps earn none."""
    from linkage.schema_template import SAFE_DIFFUSION_TAPS, risk_warnings, uk_person_template

    def warnings_for(hardening: list[dict[str, Any]]) -> list[str]:
        doc = copy.deepcopy(uk_person_template())
        doc["hardening"] = hardening
        return risk_warnings(Schema.from_dict(doc))

    assert warnings_for(copy.deepcopy(uk_person_template()["hardening"])) == []
    for taps in (1, 2, 4, 5, SAFE_DIFFUSION_TAPS - 1):
        (w,) = warnings_for([{"type": "diffusion", "taps": taps, "output_bits": 2048}])
        assert f"a diffusion step with {taps} tap" in w and "re-identified 100%" in w
        assert ("1 taps" not in w) and (taps == 1 or f"{taps} taps" in w)
    for taps in (SAFE_DIFFUSION_TAPS, 12):
        assert warnings_for([{"type": "diffusion", "taps": taps, "output_bits": 2048}]) == []
    for steps in ([{"type": "xor_fold"}], [{"type": "rule90"}], [{"type": "balance"}],
                  [{"type": "blip", "flip_probability": 0.05}]):  # fmt: skip
        (w,) = warnings_for(steps)
        assert "hardened without diffusion" in w
    assert warnings_for([{"type": "balance"},
                         {"type": "diffusion", "taps": 8, "output_bits": 4096}]) == []  # fmt: skip
    (w,) = warnings_for([])
    assert "no hardening" in w


def test_schema_check_warns_about_few_taps(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from linkage.cli import main
    from linkage.schema_template import uk_person_template

    doc = copy.deepcopy(uk_person_template())
    for step in doc["hardening"]:
        if step["type"] == "diffusion":
            step["taps"] = 4
    p = tmp_path / "taps4.json"
    p.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["schema", "check", str(p)])
    assert r.exit_code == 0, r.output
    assert "Warning: this schema has a diffusion step with 4 taps" in r.output
