"""`linkage audit` as a fresh user meets it: mode (a) with an extract's own column names,
summaries that say what ran, and refused settings (one Error line, exit 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import linkage
from linkage.cli import main
from linkage.errors import InputError
from linkage.lab.audit.runner import audit
from linkage.lab.synthetic import encode_arguments, encode_options
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened

FAST = ["--attacks", "frequency,graph", "--graph-sample", "300", "--overlaps", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A synthetic extract with its own column names (forename, post_code, ...), encoded
    with the options its manifest gives, and the schema."""
    d = tmp_path_factory.mktemp("audit_a")
    linkage.synth(d / "s", 400, 1, overlap=1.0, seed=1, fmt="csv")
    party = json.loads((d / "s" / "manifest.json").read_text())["parties"][0]
    schema = d / "schema.json"
    schema.write_text(json.dumps(uk_person_unhardened()))
    a = encode_arguments(party)
    extract = d / "s" / party["file"]
    enc = d / "enc.parquet"
    linkage.encode_file(
        extract, enc, Schema.load(schema), linkage.Secret(hashlib.sha256(b"t").digest()),
        party=a["party"], columns=a["columns"], date_formats=a["date_formats"],
    )  # fmt: skip
    return {"dir": d, "schema": schema, "extract": extract, "enc": enc, "party": party, "a": a}


def _run(*args: Any) -> Any:
    return CliRunner().invoke(main, ["audit", *map(str, args)])


def _one_error(res: Any) -> str:
    assert res.exit_code == 2, res.output
    assert res.output.count("Error:") == 1 and "Traceback" not in res.output, res.output
    return str(res.output)


def test_own_column_names_are_refused_without_a_mapping(files: dict[str, Any]) -> None:
    """Before: every unmapped field was silently missing and the audit said 0.4%."""
    out = _one_error(
        _run(files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *FAST)
    )
    assert files["extract"].name in out and "given_name" in out and "--column" in out


def test_column_options_as_for_encode(files: dict[str, Any]) -> None:
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    res = _run(files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *opts, *FAST)
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("Worst case"))
    assert line.startswith("Worst case: graph matching (100% overlap, list of other people): ")
    assert "300 of 300 records re-identified (100.0%)" in line


def test_mapping_errors(files: dict[str, Any]) -> None:
    base = [files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *FAST]
    out = _one_error(_run(*base, "--column", "nickname=forename"))
    assert "unknown schema field 'nickname'" in out
    out = _one_error(_run(*base, "--column", "given_name=first"))
    assert "'first'" in out and "not found" in out
    _one_error(_run(*base, "--column", "given_name"))  # not FIELD=COLUMN
    # the library too
    a = files["a"]
    with pytest.raises(InputError, match="unknown schema field"):
        audit(files["schema"], encoded=files["enc"], plaintext=files["extract"],
              columns={**a["columns"], "x": "forename"}, attacks="frequency")  # fmt: skip


def test_absent_fields_mirror_encode(files: dict[str, Any]) -> None:
    d: Path = files["dir"]
    a = files["a"]
    t = pacsv.read_csv(files["extract"]).drop_columns(["nhs_no"])
    pacsv.write_csv(t, d / "no_nhs.csv")
    enc = d / "enc_no_nhs.parquet"
    cols = {k: v for k, v in a["columns"].items() if k != "nhs_number"}
    linkage.encode_file(
        d / "no_nhs.csv", enc, Schema.load(files["schema"]),
        linkage.Secret(hashlib.sha256(b"t").digest()), party="p", columns=cols,
        date_formats=a["date_formats"], absent=["nhs_number"],
    )  # fmt: skip
    opts = [o for k, v in cols.items() for o in ("--column", f"{k}={v}")]
    base = [enc, "-s", files["schema"], "--plaintext", d / "no_nhs.csv", *opts, *FAST]
    assert "nhs_number" in _one_error(_run(*base))
    res = _run(*base, "--absent", "nhs_number")
    assert res.exit_code == 0, res.output


def test_parquet_plaintext_and_reference_checked(files: dict[str, Any]) -> None:
    d: Path = files["dir"]
    pq.write_table(pacsv.read_csv(files["extract"]), d / "plain.parquet")
    a = files["a"]
    r = audit(files["schema"], encoded=files["enc"], plaintext=d / "plain.parquet",
              columns=a["columns"], attacks="graph", graph_sample=300, overlaps=(1.0,))  # fmt: skip
    assert r.worst is not None and r.worst > 0.9
    # a reference with other column names is refused, naming it
    pacsv.write_csv(pa.table({"x": ["1"]}), d / "ref.csv")
    with pytest.raises(InputError, match=r"ref\.csv: column 'forename'"):
        audit(files["schema"], encoded=files["enc"], plaintext=files["extract"],
              reference=d / "ref.csv", columns=a["columns"], attacks="frequency")  # fmt: skip


def test_wrong_date_format_is_refused(files: dict[str, Any]) -> None:
    a = files["a"]
    with pytest.raises(InputError, match="--date-format date_of_birth"):
        audit(files["schema"], encoded=files["enc"], plaintext=files["extract"],
              columns=a["columns"], date_formats={"date_of_birth": "%d/%m/%Y"},
              attacks="frequency")  # fmt: skip


def test_plaintext_ids_checked(files: dict[str, Any]) -> None:
    d: Path = files["dir"]
    a = files["a"]
    t = pacsv.read_csv(files["extract"], convert_options=pacsv.ConvertOptions(
        column_types={"record_id": pa.string()}))  # fmt: skip
    pacsv.write_csv(t.slice(0, 100), d / "short.csv")
    with pytest.raises(InputError) as info:
        audit(files["schema"], encoded=files["enc"], plaintext=d / "short.csv",
              columns=a["columns"], attacks="frequency")  # fmt: skip
    msg = str(info.value)
    assert "short.csv" in msg and f"{t.num_rows - 100:,} of the {t.num_rows:,}" in msg
    pacsv.write_csv(pa.concat_tables([t, t.slice(5, 1)]), d / "dup.csv")
    with pytest.raises(InputError) as info:
        audit(files["schema"], encoded=files["enc"], plaintext=d / "dup.csv",
              columns=a["columns"], attacks="frequency")  # fmt: skip
    msg = str(info.value)
    assert "dup.csv" in msg and f"row {t.num_rows + 1}" in msg and "row 6" in msg
    assert t.column("record_id")[5].as_py() not in msg


def test_json_never_overwrites_an_input(files: dict[str, Any]) -> None:
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    base = [files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *opts, *FAST]
    before = files["schema"].read_bytes()
    out = _one_error(_run(*base, "--json", files["schema"], "--force"))
    assert files["schema"].name in out and "audit:" not in out
    assert files["schema"].read_bytes() == before


def _schema_file(tmp_path: Path) -> Path:
    p = tmp_path / "schema.json"
    p.write_text(json.dumps(uk_person_unhardened()))
    return p


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--attacks", ""], "name at least one attack"),
        (["--overlaps", ""], "at least one overlap"),
        (["--overlaps", ",,"], "expected numbers like 1,0.5,0.25, got ',,'"),
        (["--overlaps", ",1"], "expected numbers like 1,0.5,0.25, got ',1'"),
        (["--overlaps", "1,,0.5"], "expected numbers like 1,0.5,0.25"),
        (["--overlaps", "0.01"], "2,000/0.01 = 200,000 records"),
        (["--graph-sample", "-1"], "--graph-sample must be at least 50"),
        (["--graph-sample", "10"], "--graph-sample must be at least 50"),
        (["--people", "10"], "--people must be in 50..2,000,000"),
        (["--people", "100000000"], "--people must be in 50..2,000,000"),
    ],
)
def test_settings_refused(tmp_path: Path, args: list[str], words: str) -> None:
    out = _one_error(_run("-s", _schema_file(tmp_path), "--people", "100", *args))
    assert words in out and "audit:" not in out


def test_library_settings_refused() -> None:
    s = uk_person_unhardened()
    with pytest.raises(InputError, match="at least one overlap"):
        audit(s, people=100, overlaps=())
    with pytest.raises(InputError, match="--graph-sample must be at least 50"):
        audit(s, people=100, graph_sample=-1)
    with pytest.raises(InputError, match="name at least one attack"):
        audit(s, people=100, attacks=())


def test_attacks_string_is_not_split_into_letters() -> None:
    r = audit(uk_person_unhardened(), people=100, attacks="leaks", overlaps=(1.0, 1.0))
    assert [a.name for a in r.attacks] == ["leaks"]


def test_no_reidentifying_attack_says_so(tmp_path: Path) -> None:
    res = _run("-s", _schema_file(tmp_path), "--people", "100", "--attacks", "leaks",
               "--json", tmp_path / "a.json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Worst case: not measured" in res.output and "0.0%" not in res.output
    assert json.loads((tmp_path / "a.json").read_text())["worst"] is None


def test_skipped_graph_runs_are_noted() -> None:
    """A population list at 25% of a 100-record file holds 25 encoded records: under 50."""
    r = audit(uk_person_unhardened(), people=100, attacks="graph", graph_sample=50,
              overlaps=(0.25,))  # fmt: skip
    g = r.attack("graph")
    assert "skipped" in g.note and "25% overlap, list of the file's population" in g.note
    r = audit(uk_person_unhardened(), people=60, attacks="graph", graph_sample=50,
              overlaps=(0.5,))  # fmt: skip
    g = r.attack("graph")
    if g.reidentified is None:  # every run skipped: no 0% worst case
        assert r.worst is None and "not measured" in r.to_text()


def test_text_gives_counts_and_na_precision(files: dict[str, Any]) -> None:
    from linkage.lab.audit.results import AttackResult, AuditResult

    a = AttackResult("frequency", "Frequency", 0.0, None, 500, 0.1,
                     per_field={"whole_filter": {"reidentified": 0.0, "precision": 0.0,
                                                 "guesses": 0.0}})  # fmt: skip
    g = AttackResult("graph", "Graph", 3 / 500, 1.0, 500, 0.1,
                     settings={"overlap": 1.0, "list": "others"})  # fmt: skip
    text = AuditResult("f" * 64, "schema", 500, 500, 0, (a, g), 1.0).to_text()
    assert "whole filter: 0 of 500 (0.0%) re-identified, precision n/a" in text
    assert "(precision n/a)" in text
    assert ("Worst case: graph matching (100% overlap, list of other people): 3 of 500 records "
            "re-identified (0.6%)") in text  # fmt: skip


def test_text_names_the_worst_item_of_the_frequency_attack() -> None:
    """The frequency headline is its worst item's figure: it names the item, as the "Worst
    case" line does, and segment labels are spelt one way ("segment surname") everywhere."""
    from linkage.lab.audit.results import AttackResult, AuditResult

    per = {
        "whole_filter": {"reidentified": 0.0, "precision": 0.0, "guesses": 0.0},
        "block_key:sx_yob": {"reidentified": 0.01, "precision": 0.5, "guesses": 40.0},
        "segment:surname": {"reidentified": 0.02, "precision": 0.6, "guesses": 70.0},
        "segment:given_name": {"reidentified": 0.039, "precision": 0.7, "guesses": 110.0},
    }
    a = AttackResult("frequency", "Frequency alignment", 0.039, 0.7, 2000, 0.1, per_field=per)
    text = AuditResult("f" * 64, "file", 2000, 3000, 0, (a,), 1.0).to_text()
    assert ("Frequency alignment [frequency]: 78 of 2,000 (3.9%) re-identified (precision "
            "70.0%; worst: segment given_name)") in text  # fmt: skip
    assert "Worst case: frequency alignment (segment given_name): 78 of 2,000" in text
    assert "  segment surname: 40 of 2,000" in text and "  block key sx_yob: " in text
    assert "  whole filter: 0 of 2,000" in text
    assert "segment:" not in text and "block_key:" not in text
    assert a.to_dict()["per_field"].keys() == per.keys()  # JSON keeps its keys


def test_mode_options_are_not_silently_ignored(files: dict[str, Any], tmp_path: Path) -> None:
    """A tester forgot ENCODED and got a synthetic audit of the schema with --plaintext
    ignored; and --people was ignored beside an encoded file."""
    out = _one_error(_run("-s", files["schema"], "--plaintext", files["extract"], "--people",
                          "60", "--attacks", "leaks"))  # fmt: skip
    assert "--plaintext and --reference belong to an encoded file" in out
    out = _one_error(_run("-s", files["schema"], "--reference", files["extract"], "--people",
                          "60", "--attacks", "leaks"))  # fmt: skip
    assert "ENCODED" in out
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    base = [files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *opts, *FAST]
    out = _one_error(_run(*base, "--people", "500"))
    assert "--people is for a schema audit" in out


def test_empty_reference_is_refused(files: dict[str, Any], tmp_path: Path) -> None:
    """A header-only reference gave frequency and pattern mining 0.0% with exit 0."""
    header = files["extract"].read_text(encoding="utf-8").splitlines()[0]
    empty = tmp_path / "ref.csv"
    empty.write_text(header + "\n", encoding="utf-8")
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    out = _one_error(_run(files["enc"], "-s", files["schema"], "--plaintext", files["extract"],
                          *opts, "--reference", empty, "--attacks", "patterns"))  # fmt: skip
    assert "ref.csv" in out and "no records" in out


def test_reference_does_not_shrink_with_fewer_overlaps(files: dict[str, Any]) -> None:
    """Trimming --overlaps took the attacker's reference from 6,000 to 2,000 records and
    pattern mining from 80% to 4%: the reference is sized as for the default overlaps."""
    a = files["a"]
    kw = {
        "encoded": files["enc"],
        "plaintext": files["extract"],
        "attacks": "leaks",
        "graph_sample": 300,
        "columns": a["columns"],
        "date_formats": a["date_formats"],
    }
    full = audit(files["schema"], **kw)  # fmt: skip
    trimmed = audit(files["schema"], overlaps=(1.0,), **kw)
    assert trimmed.reference_records == full.reference_records >= 4 * 300 - 300


def test_worst_case_says_when_graph_matching_did_not_run() -> None:
    """A 10-record file: graph matching is skipped (under 50 records) and the headline read
    "0 of 10 (0.0%)" as if the file had been attacked by it."""
    from linkage.lab.audit.results import AttackResult, AuditResult

    per = {"whole_filter": {"reidentified": 0.0, "precision": 0.0, "guesses": 0.0}}
    a = AttackResult("frequency", "Frequency alignment", 0.0, None, 10, 0.1, per_field=per)
    g = AttackResult("graph", "Graph matching", None, None, 10, 0.0, note="skipped")
    line = AuditResult("f" * 64, "file", 10, 100, 0, (a, g), 1.0).worst_line()
    assert line.startswith("Worst case: frequency alignment (whole filter): 0 of 10")
    assert "not run: graph matching (too few records" in line
    ran = AttackResult("graph", "Graph matching", 0.0, None, 60, 0.1, metrics={"runs": 1.0})
    line = AuditResult("f" * 64, "file", 60, 100, 0, (a, ran), 1.0).worst_line()
    assert "not run" not in line


def test_zero_byte_plaintext_says_empty(files: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    out = _one_error(_run(files["enc"], "-s", files["schema"], "--plaintext", empty, *FAST))
    assert "empty.csv: the file is empty" in out


def test_verdict_and_fail_above(files: dict[str, Any], tmp_path: Path) -> None:
    """The text says where the worst case stands against the 1% target, and --fail-above
    gives scripts an exit status (1: above; outputs written first), errors keep 2."""
    from linkage.lab.audit.results import TARGET
    from linkage.report.audit_report import DEFAULT_TARGET

    assert TARGET == DEFAULT_TARGET == 0.01
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    base = [files["enc"], "-s", files["schema"], "--plaintext", files["extract"], *opts, *FAST]
    js = tmp_path / "a.json"
    res = _run(*base, "--fail-above", "1", "--json", js)
    assert res.exit_code == 1, res.output
    assert "Against the 1% target: ABOVE it" in res.output and "above --fail-above 1%" in res.output
    doc = json.loads(js.read_text())
    assert doc["above_target"] is True and doc["target"] == 0.01
    res = _run(*base, "--fail-above", "100")
    assert res.exit_code == 0, res.output
    _one_error(_run(*base, "--fail-above", "101"))


def test_leak_statistics_are_explained_and_flagged_on_small_files(tmp_path: Path) -> None:
    """A 10-record file printed cooc_pairs_over_0.3: 411,521 with no word of what it means;
    the HTML report showed the numbers without the caveat the text gave."""
    from linkage.report.audit_report import write_audit_report

    small_result = audit(uk_person_unhardened(), people=60, attacks="leaks")
    small = small_result.attack("leaks")
    assert "cooc_*" in small.note and "mostly chance" in small.note
    big_result = audit(uk_person_unhardened(), people=300, attacks="leaks")
    big = big_result.attack("leaks")
    assert "cooc_*" in big.note and "mostly chance" not in big.note
    html = write_audit_report(tmp_path / "small.html", small_result).read_text()
    assert "mostly chance" in html
    html = write_audit_report(tmp_path / "big.html", big_result).read_text()
    assert "mostly chance" not in html


def test_unmeasured_is_not_a_pass(tmp_path: Path) -> None:
    """A tester's 10-49-record files passed --fail-above 1 (exit 0, "at or below") although
    graph matching never ran; a 1-record file crashed in the leak statistics."""
    from linkage.lab.audit.results import AttackResult, AuditResult

    per = {"whole_filter": {"reidentified": 0.0, "precision": 0.0, "guesses": 0.0}}
    a = AttackResult("frequency", "Frequency alignment", 0.0, None, 10, 0.1, per_field=per)
    g = AttackResult("graph", "Graph matching", None, None, 10, 0.0, note="skipped")
    r = AuditResult("f" * 64, "file", 10, 100, 0, (a, g), 1.0)
    assert r.above() is None and r.skipped() == ["graph"]
    assert "not measured (graph matching did not run" in r.verdict_line()
    assert r.to_dict()["not_run"] == ["graph"] and r.to_dict()["above_target"] is None
    hit = AttackResult("frequency", "Frequency alignment", 0.1, 1.0, 10, 0.1, per_field=per)
    assert AuditResult("f" * 64, "file", 10, 100, 0, (hit, g), 1.0).above() is True
    leaks_only = AuditResult("f" * 64, "file", 10, 100, 0, (), 1.0)
    assert "no re-identifying attack ran" in leaks_only.verdict_line()
    res = _run("-s", _schema_file(tmp_path), "--people", "100", "--attacks", "leaks",
               "--fail-above", "1")  # fmt: skip
    assert res.exit_code == 1 and "not measured against --fail-above 1%" in res.output


def test_one_record_file_is_audited(tmp_path: Path) -> None:
    import numpy as np

    from linkage.lab.audit import leaks
    from linkage.lab.audit.scenario import synthetic_scenario

    sc = synthetic_scenario(Schema.from_dict(uk_person_unhardened()), 60, seed=0)
    x = np.unpackbits(sc.filters[:1].view(np.uint8), axis=1, bitorder="little").astype(bool)
    m = leaks.scored_stats(x, sc.truth.take(np.arange(1)), sc.schema, 0)  # was ZeroDivision
    assert m["neighbour_overlap_at_10"] == 0.0


def test_header_only_and_tiny_inputs_are_refused(files: dict[str, Any], tmp_path: Path) -> None:
    """A header-only CSV without a trailing newline read as "malformed CSV"; a 0-row Parquet
    plaintext as missing ids; a 3-record reference ran as the attacker's population."""
    lines = files["extract"].read_text(encoding="utf-8").splitlines()
    opts = [o for o in encode_options(files["party"]) if o not in ("--party", "council_a")]
    base = [files["enc"], "-s", files["schema"], *opts, *FAST]
    bare = tmp_path / "bare.csv"
    bare.write_text(lines[0], encoding="utf-8")  # no newline at all
    out = _one_error(_run(*base, "--plaintext", bare))
    assert "bare.csv: no records" in out
    zero = tmp_path / "zero.parquet"
    pq.write_table(pacsv.read_csv(files["extract"]).slice(0, 0), zero)
    assert "zero.parquet: no records" in _one_error(_run(*base, "--plaintext", zero))
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    out = _one_error(_run(*base, "--plaintext", files["extract"], "--reference", tiny))
    assert "tiny.csv: the reference has 3 records" in out and "at least 50" in out
