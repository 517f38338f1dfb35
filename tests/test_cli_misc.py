"""CLI pieces not covered elsewhere: the progress bar, synth through the CLI, the public API."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from linkage.cli import _Bar, main


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
