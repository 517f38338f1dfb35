"""CLI pieces not covered elsewhere: the progress bar, synth through the CLI, the public API."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from linkage.cli import _Bar, main
from linkage.encoded import EncodedTable


def test_progress_bar_starts_when_total_known(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    bar = _Bar(True, "encoding x")
    bar.update(0, 10)
    bar.update(4, 10)
    bar.update(6, 10)
    bar.close()
    assert "encoding x" in buf.getvalue()
    off = _Bar(False, "quiet")
    off.update(0, 10)
    off.update(5, 10)
    off.close()
    assert off.bar is None


def test_synth_cli_writes_extracts_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "s"
    r = CliRunner().invoke(
        main, ["synth", "-o", str(out), "--people", "50", "--parties", "2", "--seed", "1"]
    )
    assert r.exit_code == 0, r.output
    truth = pacsv.read_csv(out / "truth.csv")
    assert truth.column_names == ["party", "record_id", "person_id"]
    assert sorted(p.name for p in out.glob("*.csv")) == [
        "council_a.csv",
        "council_b.csv",
        "truth.csv",
    ]
    again = CliRunner().invoke(
        main, ["synth", "-o", str(out), "--people", "50", "--parties", "2", "--seed", "1"]
    )
    assert again.exit_code == 2 and again.output.startswith("Error:")


def test_synth_cli_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["synth", "-o", str(tmp_path / "x"), "--people", "0", "--parties", "2"]
    )
    assert r.exit_code == 2
    assert r.output.startswith("Error:") and "Traceback" not in r.output
    assert not (tmp_path / "x").exists()


# -- issue 10: CLI words, evaluate's sweep floor, first-run compile notice ------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MAPS = {
    "council_a": ("record_id", {"given_name": "forename", "date_of_birth": "dob", "sex": "gender",
                                "address": "address_line_1", "postcode": "post_code",
                                "nhs_number": "nhs_no"}),
    "council_b": ("id", {"given_name": "first_name", "surname": "last_name",
                         "date_of_birth": "birth_date", "address": "street_address"}),
}  # fmt: skip


def _encode_examples(doc: dict[str, Any], label: bytes) -> list[EncodedTable]:
    """The example extracts encoded with schema ``doc`` under a test secret."""
    import hashlib

    from linkage.partner.pipeline import encode
    from linkage.schema import Schema
    from linkage.secret import Secret

    schema = Schema.from_dict(doc)
    secret = Secret(hashlib.sha256(label).digest())
    return [
        encode(str(EXAMPLES / f"{party}.csv"), schema, secret, party=party, id_column=idc,
               columns=cols)
        for party, (idc, cols) in MAPS.items()
    ]  # fmt: skip


@pytest.fixture(scope="module")
def matched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from linkage.schema_template import uk_person_unhardened
    from linkage.tlu.linker import match

    d = tmp_path_factory.mktemp("matched")
    encs = _encode_examples(uk_person_unhardened(), b"cli misc")
    match(encs, seed=1, threshold=0.7).write(d / "links.parquet", d / "pairs.parquet")
    return d


def test_evaluate_sweep_below_the_match_threshold_is_refused(matched: Path) -> None:
    base = ["evaluate", str(matched / "links.parquet"), "--truth", str(EXAMPLES / "truth.csv"),
            "--pairs", str(matched / "pairs.parquet")]  # fmt: skip
    r = CliRunner().invoke(main, [*base, "--sweep", "0.5:0.9:0.1"])
    assert r.exit_code == 2 and r.output.startswith("Error:"), r.output
    assert "matched at threshold 0.7" in r.output and "--threshold 0.5" in r.output
    r = CliRunner().invoke(main, [*base, "--sweep", "0.7:0.9:0.1"])
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def matched_fields(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples encoded with the segmented layout and matched field by field."""
    from linkage.schema_template import uk_person_fields_template
    from linkage.tlu.linker import match

    d = tmp_path_factory.mktemp("matched_fields")
    result = match(_encode_examples(uk_person_fields_template(), b"cli misc fields"), seed=1)
    assert result.stats.scoring == "fields"
    result.write(d / "links.parquet", d / "pairs.parquet")
    return d


def test_pairs_metadata_records_the_scoring(matched: Path, matched_fields: Path) -> None:
    import pyarrow.parquet as pq

    for d, scoring in ((matched, b"dice"), (matched_fields, b"fields")):
        for name in ("links.parquet", "pairs.parquet"):
            assert pq.read_metadata(d / name).metadata[b"linkage.scoring"] == scoring


def test_evaluate_sweep_over_field_aware_pairs_speaks_of_probabilities(
    matched_fields: Path,
) -> None:
    d = matched_fields
    base = ["evaluate", str(d / "links.parquet"), "--truth", str(EXAMPLES / "truth.csv"),
            "--pairs", str(d / "pairs.parquet")]  # fmt: skip
    r = CliRunner().invoke(main, [*base, "--sweep", "0.3:0.9:0.1"])
    assert r.exit_code == 2 and r.output.startswith("Error:"), r.output
    out = " ".join(r.output.split())
    assert "match probabilities" in out and "coherent clusters at probability 0.5" in out
    assert "--threshold" not in out and "matched at threshold" not in out
    r = CliRunner().invoke(main, [*base, "--sweep", "0.5:0.9:0.1"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "match probabilities, not Dice" in out and "not by a threshold option" in out
    assert "best F1" in out and "at match probability" in out and "P(match)" in out
    assert "--threshold" not in out and "match threshold" not in out
    assert "holds no pairs below score" in out  # the Dice note, without its advice
    html = d / "eval.html"  # the HTML report's sweep speaks of probabilities too
    r = CliRunner().invoke(main, [*base, "--sweep", "0.5:0.9:0.1", "--report", str(html)])
    assert r.exit_code == 0, r.output
    page = html.read_text(encoding="utf-8")
    assert "match probability (field-aware scoring" in page and "Dice similarity" not in page


def test_evaluate_has_no_candidates_option_and_speaks_cli(matched: Path) -> None:
    args = ["evaluate", str(matched / "links.parquet"), "--truth", str(EXAMPLES / "truth.csv")]
    r = CliRunner().invoke(main, [*args, "--candidates", "c.parquet"])
    assert r.exit_code == 2 and "No such option" in r.output
    out = CliRunner().invoke(main, args).output
    assert "within_party=" not in out
    if "within-party duplicate pairs" in out:
        assert "--within-party" in out


def test_synth_refusal_names_the_cli_option(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x.txt").write_text("x")
    r = CliRunner().invoke(main, ["synth", "-o", str(tmp_path / "s"), "--people", "5",
                                  "--parties", "1"])  # fmt: skip
    assert r.exit_code == 2 and "--force" in r.output and "overwrite=True" not in r.output


def test_first_run_says_kernels_are_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkage import cli
    from linkage.kernels import dice

    dispatchers = [
        v for v in vars(dice).values() if hasattr(getattr(v, "_cache", None), "_cache_path")
    ]
    if not dispatchers:
        pytest.skip("numba JIT disabled: nothing is compiled")
    monkeypatch.setattr(dispatchers[0]._cache, "_cache_path", str(tmp_path))  # an empty cache
    assert cli._kernels_uncached(["dice"]) is True
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    cli._say_if_compiling(False, "dice")
    assert "compiling kernels (first run only" in buf.getvalue()
    buf.truncate(0)
    cli._say_if_compiling(True, "dice")  # --quiet
    assert buf.getvalue() == ""


_IMPORT_INTERRUPTED = r"""
import importlib.abc, sys

class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "linkage.cli":  # as if Ctrl-C came while the command line was importing
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from linkage._console import main
main()
"""


def test_ctrl_c_while_the_command_line_imports_is_one_line_and_130() -> None:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-c", _IMPORT_INTERRUPTED], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines() == ["Error: interrupted while starting; nothing was done"]
    assert "Traceback" not in r.stderr


def test_the_console_script_is_the_interrupt_safe_launcher() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"linkage": "linkage._console:main"}
    from linkage._console import main as launcher

    assert callable(launcher)


def test_a_closed_output_pipe_exits_quietly(tmp_path: Path) -> None:
    """`linkage ... | head -1`: the reader goes away before the command writes; no
    'Error: Broken pipe' and no traceback, status 141 as a shell's SIGPIPE death."""
    import subprocess

    schema = tmp_path / "schema.json"
    assert CliRunner().invoke(main, ["schema", "init", "-o", str(schema)]).exit_code == 0
    code = "import sys; from linkage._console import main; sys.argv[0] = 'linkage'; main()"
    p = subprocess.Popen(
        [sys.executable, "-c", code, "schema", "check", str(schema)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # before the command has imported anything, let alone written
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141, err
    assert err == ""
