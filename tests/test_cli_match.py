"""``linkage match`` end to end through click's CliRunner.

keygen -> schema init -> synth -> encode each extract (--column / --date-format from the
manifest) -> match --pairs; outputs checked through pyarrow and the library. Bad inputs exit 2
with one "Error:" line and leave no output (nor a temporary file) behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from linkage.cli import main
from linkage.encoded import read_encoded
from linkage.lab.synthetic import encode_options
from linkage.schema_template import HARDENED_THRESHOLD
from linkage.secret import ENV_VAR
from linkage.tlu.linker import match


def run(args: Sequence[object]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={ENV_VAR: None})


def ok(args: Sequence[object]) -> Result:
    r = run(args)
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def encode_args(work: Path, p: dict, secret: Path, schema: Path, out: Path) -> list:
    return [
        "encode", work / "pop" / p["file"], "-s", schema, "--secret-file", secret,
        "-o", out, "--quiet", *encode_options(p),
    ]  # fmt: skip


@dataclass
class Work:
    dir: Path
    manifest: dict
    encoded: list[Path]
    links: Path
    pairs: Path
    match_result: Result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Work:
    d = tmp_path_factory.mktemp("cli_match")
    ok(["keygen", "-o", d / "secret.key"])
    ok(["keygen", "-o", d / "other.key"])
    ok(["schema", "init", "-o", d / "schema.json"])
    ok(["synth", "-o", d / "pop", "--people", "300", "--parties", "3",
        "--corruption", "low", "--seed", "4", "--quiet"])  # fmt: skip
    manifest = json.loads((d / "pop" / "manifest.json").read_text())
    encoded = []
    for p in manifest["parties"]:
        out = d / f"{p['name']}.parquet"
        ok(encode_args(d, p, d / "secret.key", d / "schema.json", out))
        encoded.append(out)
    links, pairs = d / "links.parquet", d / "pairs.parquet"
    r = ok(["match", *encoded, "-o", links, "--pairs", pairs, "--seed", "5"])
    return Work(d, manifest, encoded, links, pairs, r)


def assert_clean_error(r: Result, *needles: str) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("Error:"), r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def assert_nothing_written(out_dir: Path) -> None:
    assert list(out_dir.iterdir()) == [], sorted(p.name for p in out_dir.iterdir())


# -- the happy path ----------------------------------------------------------------------------
def test_links_cover_every_encoded_record(work: Work) -> None:
    links = pq.read_table(work.links)
    assert links.column_names == ["entity_id", "party", "record_id"]
    encs = [read_encoded(p) for p in work.encoded]
    want = {(e.party, r) for e in encs for r in e.record_ids.to_pylist()}
    got = list(zip(links["party"].to_pylist(), links["record_id"].to_pylist(), strict=True))
    assert len(got) == len(set(got)) == len(want) and set(got) == want
    # one record per party per entity (no --dedupe), and some entities span all three parties
    per = pc.value_counts(
        pc.binary_join_element_wise(links["entity_id"], links["party"], "|")
    ).field("counts")
    assert pc.max(per).as_py() == 1
    sizes = pc.value_counts(links["entity_id"]).field("counts")
    assert pc.max(sizes).as_py() == 3
    # every synth record was encoded (a row with no usable field would be left out)
    extracted = sum(p["records"] for p in work.manifest["parties"])
    assert 0.99 * extracted <= len(want) <= extracted


def test_pairs_file(work: Work) -> None:
    pairs = pq.read_table(work.pairs)
    assert pairs.column_names == ["party_a", "record_id_a", "party_b", "record_id_b", "score"]
    assert pairs.num_rows > 100
    # the threshold the (hardened) template recommends, carried in the encoded files
    assert pc.min(pairs["score"]).as_py() >= HARDENED_THRESHOLD
    links = pq.read_table(work.links).to_pylist()
    ent = {(r["party"], r["record_id"]): r["entity_id"] for r in links}
    for row in pairs.to_pylist():
        a = ent[(row["party_a"], row["record_id_a"])]
        assert a == ent[(row["party_b"], row["record_id_b"])]


def test_cli_equals_library(work: Work) -> None:
    lib = match(work.encoded, seed=5)
    assert pq.read_table(work.links).equals(lib.links)
    assert pq.read_table(work.pairs).equals(lib.pairs)


def test_summary_on_stderr(work: Work) -> None:
    out = work.match_result.output
    assert "linked:" in out
    for p in work.manifest["parties"]:
        assert p["name"] in out
    assert "blocking none" in out and "entities" in out
    assert f"wrote {work.links}" in out and str(work.pairs) in out


def test_quiet_and_no_pairs_unless_asked(work: Work, tmp_path: Path) -> None:
    links = tmp_path / "links.parquet"
    r = ok(["match", *work.encoded, "-o", links, "--quiet", "--seed", "5"])
    assert r.output == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["links.parquet"]  # no scores file
    assert pq.read_table(links).equals(pq.read_table(work.links))


def test_options_reach_the_library(work: Work, tmp_path: Path) -> None:
    links = tmp_path / "links.parquet"
    pairs = tmp_path / "pairs.parquet"
    ok(["match", *work.encoded, "-o", links, "--pairs", pairs, "--seed", "5", "--threads", "1",
        "--blocking", "lsh", "--threshold", "0.85", "--dedupe", "--dedupe-threshold", "0.9",
        "--quiet"])  # fmt: skip
    lib = match(
        work.encoded, seed=5, threads=2, blocking="lsh", threshold=0.85, dedupe=True,
        dedupe_threshold=0.9,
    )  # fmt: skip
    assert pq.read_table(links).equals(lib.links)
    assert pq.read_table(pairs).equals(lib.pairs)
    assert pc.min(pq.read_table(pairs)["score"]).as_py() >= 0.85


def test_dedupe_one_file(work: Work, tmp_path: Path) -> None:
    links = tmp_path / "links.parquet"
    ok(["match", work.encoded[0], "--dedupe", "-o", links, "--quiet"])
    t = pq.read_table(links)
    assert t.num_rows == len(read_encoded(work.encoded[0]))


def test_oversize_block_warning(work: Work, tmp_path: Path) -> None:
    # a limit just under the largest block: few oversize blocks (each costs an all-pairs call)
    keys = pa.chunked_array(
        [read_encoded(p).table["block_keys"].combine_chunks().flatten() for p in work.encoded]
    )
    largest = pc.max(pc.value_counts(keys).field("counts")).as_py()
    limit = largest - 1
    links = tmp_path / "links.parquet"
    r = ok(["match", *work.encoded, "-o", links, "--blocking", "keys", "--max-block", limit,
            "--seed", "5"])  # fmt: skip
    warn = [line for line in r.output.splitlines() if line.startswith("Warning:")]
    assert len(warn) == 1, r.output
    assert f"--max-block {limit} (largest {largest} records)" in warn[0]
    assert "not dropped" in warn[0]
    full = match(work.encoded, seed=5, blocking="keys")
    assert pq.read_table(links).equals(full.links)


def test_help_says_scores_are_sensitive() -> None:
    r = ok(["match", "--help"])
    text = " ".join(r.output.split())
    assert "Scores are sensitive" in text
    assert "--pairs" in text and "--dedupe" in text and "--blocking" in text


# -- bad inputs: exit 2, one line, nothing written ---------------------------------------------
@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def match_into(out_dir: Path, *inputs: Path | str, extra: Sequence[object] = ()) -> Result:
    return run(
        ["match", *inputs, "-o", out_dir / "links.parquet", "--pairs", out_dir / "pairs.parquet",
         *extra]
    )  # fmt: skip


def test_different_secret(work: Work, out_dir: Path, tmp_path: Path) -> None:
    p = work.manifest["parties"][1]
    other = tmp_path / "other_key.parquet"
    ok(encode_args(work.dir, p, work.dir / "other.key", work.dir / "schema.json", other))
    r = match_into(out_dir, work.encoded[0], other)
    assert_clean_error(r, "different secret", work.encoded[0].name, "other_key.parquet")
    assert_nothing_written(out_dir)


def test_same_party_twice(work: Work, out_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.parquet"
    shutil.copy(work.encoded[0], copy)
    r = match_into(out_dir, work.encoded[0], copy)
    assert_clean_error(r, "party name", work.encoded[0].name, "copy.parquet")
    assert_nothing_written(out_dir)


def test_not_an_encoded_file(work: Work, out_dir: Path, tmp_path: Path) -> None:
    csv_extract = work.dir / "pop" / work.manifest["parties"][0]["file"]
    r = match_into(out_dir, work.encoded[0], csv_extract)
    assert_clean_error(r, csv_extract.name)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"record_id": ["x"]}), plain)
    r = match_into(out_dir, work.encoded[0], plain)
    assert_clean_error(r, "not a linkage encoded file", "plain.parquet")
    r = match_into(out_dir, work.encoded[0], tmp_path / "missing.parquet")
    assert_clean_error(r, "missing.parquet", "not found")
    assert_nothing_written(out_dir)


def test_optimal_solver_limits_are_said_before_any_work(work: Work, out_dir: Path) -> None:
    """Three parties, or --dedupe, with --solver optimal: one error in the command line's
    words, naming the parties (it was 'solver='optimal' ... got party index 2' after the
    candidate search); the same through map create."""
    r = match_into(out_dir, *work.encoded, extra=["--solver", "optimal"])
    names = ", ".join(p["name"] for p in work.manifest["parties"])
    assert_clean_error(r, "--solver optimal links exactly two parties", f"3 ({names})",
                       "--solver greedy")  # fmt: skip
    r = match_into(out_dir, *work.encoded[:2], extra=["--solver", "optimal", "--dedupe"])
    assert_clean_error(r, "--solver optimal cannot --dedupe")
    assert_nothing_written(out_dir)
    r = run(["map", "create", out_dir / "m.duckdb", *work.encoded, "--solver", "optimal"])
    assert_clean_error(r, "--solver optimal links exactly two parties")
    assert_nothing_written(out_dir)


def test_parties_named_alike_are_refused(work: Work, out_dir: Path, tmp_path: Path) -> None:
    """One partner's extract encoded twice, once with a mistyped --party ('council-a' beside
    'council_a', 'COUNCIL A', a fullwidth letter): one error naming both files, in match and
    map create (a second tester's finding; map update compares with the map's parties)."""
    p = work.manifest["parties"][0]
    good = p["name"]
    for typo in (good.replace("_", "-"), good.upper().replace("_", " "),
                 good[:-1] + chr(ord(good[-1]) + 0xFEE0)):  # fmt: skip
        out = tmp_path / "typo.parquet"
        out.unlink(missing_ok=True)
        args = encode_args(work.dir, p, work.dir / "secret.key", work.dir / "schema.json", out)
        args[args.index("--party") + 1] = typo
        ok(args)
        r = match_into(out_dir, work.encoded[0], out, work.encoded[1])
        assert_clean_error(r, "typo.parquet", work.encoded[0].name, "mistyped --party")
        assert_nothing_written(out_dir)
        r = run(["map", "create", out_dir / "m.duckdb", work.encoded[0], out])
        assert_clean_error(r, "differ only in case, spaces or punctuation")
        assert_nothing_written(out_dir)


def test_one_file_without_dedupe(work: Work, out_dir: Path) -> None:
    r = match_into(out_dir, work.encoded[0])
    assert_clean_error(r, "--dedupe")
    assert_nothing_written(out_dir)


def test_keys_blocking_without_block_keys(work: Work, out_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((work.dir / "schema.json").read_text())
    doc["block_keys"] = []
    schema = tmp_path / "nokeys.json"
    schema.write_text(json.dumps(doc))
    files = []
    for p in work.manifest["parties"][:2]:
        out = tmp_path / f"{p['name']}_nokeys.parquet"
        ok(encode_args(work.dir, p, work.dir / "secret.key", schema, out))
        files.append(out)
    r = match_into(out_dir, *files, extra=["--blocking", "keys"])
    assert_clean_error(r, "block keys")
    assert_nothing_written(out_dir)
    # with the files of the main schema: a different schema
    r = match_into(out_dir, work.encoded[0], files[1])
    assert_clean_error(r, "different schema")
    assert_nothing_written(out_dir)


@pytest.mark.parametrize(
    "extra",
    [["--threshold", "1.5"], ["--blocking", "magic"], ["--threads", "0"], ["--max-block", "1"],
     ["--dedupe-threshold", "-1"], ["--scoring", "fields"], ["--scoring", "psychic"]],
)  # fmt: skip
def test_bad_options(work: Work, out_dir: Path, extra: list[str]) -> None:
    r = match_into(out_dir, *work.encoded, extra=extra)
    assert r.exit_code == 2, r.output
    assert "Error" in r.output and "Traceback" not in r.output
    assert_nothing_written(out_dir)


def test_missing_output_directory(work: Work, tmp_path: Path) -> None:
    r = run(["match", *work.encoded, "-o", tmp_path / "no_such_dir" / "links.parquet"])
    assert_clean_error(r, "no_such_dir")


def test_pairs_failure_leaves_no_links(work: Work, out_dir: Path) -> None:
    """If the pairs file cannot be written, the run fails and leaves no links file behind."""
    r = run(["match", *work.encoded, "-o", out_dir / "links.parquet",
             "--pairs", out_dir / "no_such_dir" / "pairs.parquet"])  # fmt: skip
    assert_clean_error(r, "no_such_dir")
    assert_nothing_written(out_dir)


# -- outputs: refused when they exist, named by format, private, OS errors (issue 10) --------------
def test_existing_outputs_are_refused_unless_force(work: Work, out_dir: Path) -> None:
    links, pairs = out_dir / "links.parquet", out_dir / "pairs.parquet"
    links.write_text("not to be clobbered")
    r = run(["match", *work.encoded, "-o", links, "--pairs", pairs])
    assert_clean_error(r, str(links), "already exists", "--force")
    assert links.read_text() == "not to be clobbered" and not pairs.exists()
    ok(["match", *work.encoded, "-o", links, "--pairs", pairs, "--force", "--seed", "5"])
    assert pq.read_table(links).equals(pq.read_table(work.links))
    assert sorted(p.name for p in out_dir.iterdir()) == ["links.parquet", "pairs.parquet"]


@pytest.mark.parametrize(
    ("links", "pairs", "bad"),
    [("links.csv", None, "links.csv"), ("links.parquet", "pairs.csv", "pairs.csv"),
     ("links", None, "links"), ("links.json", "pairs.parquet", "links.json")],
)  # fmt: skip
def test_output_names_must_say_parquet(
    work: Work, out_dir: Path, links: str, pairs: str | None, bad: str
) -> None:
    extra = ["--pairs", out_dir / pairs] if pairs else []
    r = run(["match", *work.encoded, "-o", out_dir / links, *extra])
    assert_clean_error(r, bad, "Parquet", ".parquet")
    assert_nothing_written(out_dir)


def test_outputs_are_private(work: Work) -> None:
    for p in [work.links, work.pairs, *work.encoded, work.dir / "secret.key"]:
        assert p.stat().st_mode & 0o777 == 0o600, p


def test_disk_full_while_writing(
    work: Work, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet

    def full(*a: object, **k: object) -> None:
        raise OSError("IOError: [errno 28] No space left on device")  # as Arrow says it

    links, pairs = out_dir / "links.parquet", out_dir / "pairs.parquet"
    links.write_text("old links")
    monkeypatch.setattr(pyarrow.parquet, "write_table", full)
    r = run(["match", *work.encoded, "-o", links, "--pairs", pairs, "--force"])
    line = assert_clean_error(r, str(links), "No space left on device")
    assert ".partial" not in line
    assert links.read_text() == "old links"
    assert sorted(p.name for p in out_dir.iterdir()) == ["links.parquet"]
