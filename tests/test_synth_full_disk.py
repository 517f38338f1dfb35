"""``linkage synth`` on a full disk names the output folder (issue 10.3: it said only
``Error: No space left on device``) and leaves nothing behind."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.lab import synthetic


def test_synth_on_a_full_disk_names_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*a: Any, **k: Any) -> None:  # pyarrow's write error carries no file name
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28]")

    monkeypatch.setattr(synthetic.pacsv, "write_csv", full)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["synth", "-o", str(out), "--people", "200", "--parties", "2", "--format", "csv"]
    )
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()[-1]
    assert line == f"Error: cannot write {out}: No space left on device", res.output
    assert list(tmp_path.iterdir()) == []
