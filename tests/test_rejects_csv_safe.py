"""CSV outputs people open in a spreadsheet never carry a live formula (OWASP "CSV Injection";
new-user finding: a record id `=HYPERLINK(...)` went into the rejects CSV as it was), while
Parquet outputs keep record ids exact."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from linkage._files import spreadsheet_safe
from linkage.cli import main
from linkage.encoded import read_encoded
from linkage.schema_template import uk_person_unhardened
from linkage.secret import ENV_VAR, secret_text

IDS = ['=HYPERLINK("http://x","y")', "+2", "-1", "@x", "\tt", "\rr", "'q", "=1+1", "plain"]


def _unquote(cell: str) -> str:
    """What the docs tell a reader to do: remove one leading quote."""
    return cell[1:] if cell.startswith("'") else cell


@pytest.mark.parametrize("cell", IDS)
def test_formula_cells_are_neutralised(cell: str) -> None:
    out = spreadsheet_safe(cell)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert _unquote(out) == cell


@given(st.text(max_size=12))
def test_neutralising_is_undone_exactly(cell: str) -> None:
    out = spreadsheet_safe(cell)
    assert _unquote(out) == cell
    assert out == cell or out == "'" + cell


def test_rejects_csv_has_no_formula_and_parquet_keeps_ids(tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    key.write_text(secret_text(hashlib.sha256(b"rejects").digest()))
    key.chmod(0o600)
    (tmp_path / "schema.json").write_text(json.dumps(uk_person_unhardened()))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["record_id", "given_name", "surname", "date_of_birth", "nhs_number"])
    # encode refuses ids with control characters (a tab or CR at either end included), so
    # the formula-like ids that reach the rejects are the printable ones
    ids = [i for i in IDS if i not in ("\rr", "\tt")]
    names = ["Ann", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus"]
    for i, (rid, name) in enumerate(zip(ids, names, strict=True)):
        w.writerow([rid, name, f"Surname{i}", f"19{50 + i}-01-0{i + 1}", "1234567890"])
    (tmp_path / "in.csv").write_text(buf.getvalue(), encoding="utf-8")
    args = ["encode", str(tmp_path / "in.csv"), "-s", str(tmp_path / "schema.json"),
            "--secret-file", str(key), "--party", "a", "-o", str(tmp_path / "a.parquet"),
            "--rejects", str(tmp_path / "rejects.csv")]  # fmt: skip
    for f in ("sex", "postcode", "address"):
        args += ["--absent", f]
    r = CliRunner().invoke(main, args, env={ENV_VAR: None})
    assert r.exit_code == 0, r.output
    with open(tmp_path / "rejects.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    listed = {_unquote(row[0]) for row in rows if row[1] == "nhs_number"}
    assert listed == set(ids)  # every id, recoverable exactly
    got = read_encoded(tmp_path / "a.parquet").record_ids.to_pylist()
    assert sorted(got) == sorted(ids)  # Parquet: exact
