"""A CSV with one field longer than Arrow's 1 MB read block is read (issue 10.6: it was
``malformed CSV (straddling object straddles two block boundaries (try to increase block
size?))``, naming an option that does not exist); a streamed file says what it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkage.errors import InputError
from linkage.partner import reader
from linkage.partner.reader import InputFile

BIG = 5 * 2**20


def _huge(tmp_path: Path) -> Path:
    p = tmp_path / "huge.csv"
    with open(p, "w") as f:
        f.write("record_id,notes\n")
        for i in range(3):
            f.write(f"r{i},short\n")
        f.write("r3," + "x" * BIG + "\n")
        f.write("r4,short\n")
    return p


def test_a_field_of_5_mb_is_read(tmp_path: Path) -> None:
    cols = InputFile(_huge(tmp_path)).read_columns(["record_id", "notes"])
    assert cols["record_id"].to_pylist() == ["r0", "r1", "r2", "r3", "r4"]
    assert len(cols["notes"][3].as_py()) == BIG


def test_streamed_file_with_a_huge_field_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "IN_MEMORY_CSV_BYTES", 1024)  # stream it
    with pytest.raises(InputError) as info:
        list(InputFile(_huge(tmp_path)).iter_batches(["record_id", "notes"], batch_size=1000))
    msg = str(info.value)
    assert "huge.csv" in msg and "a field of more than" in msg and "block size" not in msg
