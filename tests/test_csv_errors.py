"""CSV inputs that cannot be read are one error naming the file (and row), never quoting the
file's content (robustness issue 10, items 4 and 5; each test failed before its fix).

pyarrow's CSV messages end with the offending row (``Expected 1 columns, got 2: <row>``):
record data that must never reach a terminal or a log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from linkage._csv_errors import csv_problem
from linkage.cli import main
from linkage.errors import InputError
from linkage.lab.audit.scenario import _read_plain_csv
from linkage.lab.tables import read_table
from linkage.tlu.linkage_map.diff import read_deletions

SECRETISH = "Jane Q Smith 1970-01-01"


def _ragged(tmp_path: Path) -> Path:
    p = tmp_path / "ragged.csv"
    p.write_text(f"party,record_id,person_id\nA,1,p1\nA,2,p2,{SECRETISH}\n")
    return p


def _junk(tmp_path: Path) -> Path:
    p = tmp_path / "junk.csv"
    p.write_bytes(bytes(range(128, 256)) * 4 + b"\n" + bytes(range(128, 256)) * 3)
    return p


def _no_data_in(msg: str) -> None:
    assert SECRETISH not in msg and "\n" not in msg
    assert all(ord(c) < 128 for c in msg), msg


def test_csv_problem_never_quotes_the_row(tmp_path: Path) -> None:
    exc = pa.ArrowInvalid(f"CSV parse error: Expected 3 columns, got 4: A,2,p2,{SECRETISH}")
    msg = csv_problem(exc, _ragged(tmp_path))
    assert msg == "malformed CSV: row 2: 4 fields where the header has 3"
    conv = pa.ArrowInvalid(
        f"In CSV column #1: CSV conversion error to int64: invalid value '{SECRETISH}'"
    )
    assert csv_problem(conv) == "a value in column 2 is not a valid int64"


def test_truth_file_errors_name_file_and_row(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_table(_ragged(tmp_path), "truth", ["party", "record_id", "person_id"], True)
    assert "ragged.csv" in str(info.value) and "row 2" in str(info.value)
    _no_data_in(str(info.value))
    with pytest.raises(InputError) as info:
        read_table(_junk(tmp_path), "truth", ["party", "record_id", "person_id"], True)
    assert "junk.csv" in str(info.value)
    _no_data_in(str(info.value))


def test_semicolon_truth_file_gets_the_delimiter_hint(tmp_path: Path) -> None:
    p = tmp_path / "semi.csv"
    p.write_text("party;record_id;person_id\nA;1;p1\n")
    with pytest.raises(InputError, match="semicolon-separated"):
        read_table(p, "truth", ["party", "record_id", "person_id"], True)


def test_evaluate_cli_junk_truth_is_one_error(tmp_path: Path) -> None:
    links = tmp_path / "links.parquet"
    pq.write_table(pa.table({"party": ["A"], "record_id": ["1"], "entity_id": ["e"]}), links)
    for bad in (_ragged(tmp_path), _junk(tmp_path)):
        res = CliRunner().invoke(main, ["evaluate", str(links), "--truth", str(bad)])
        assert res.exit_code == 2, res.output
        assert res.output.count("Error:") == 1 and bad.name in res.output
        _no_data_in(res.output.strip())


def test_deletions_list_errors_never_quote_rows(tmp_path: Path) -> None:
    p = tmp_path / "dels.csv"
    p.write_text(f"party,record_id\nA,1\nA,2,{SECRETISH}\n")
    with pytest.raises(InputError) as info:
        read_deletions(p)
    assert "dels.csv" in str(info.value) and "row 2" in str(info.value)
    _no_data_in(str(info.value))
    with pytest.raises(InputError) as info:
        read_deletions(_junk(tmp_path))
    assert "junk.csv" in str(info.value)
    _no_data_in(str(info.value))


@pytest.mark.parametrize(("sep", "what"), [(";", "semicolons"), ("\t", "tabs")])
def test_deletions_list_with_another_delimiter_says_so(tmp_path: Path, sep: str, what: str) -> None:
    p = tmp_path / "dels.csv"
    p.write_text(f"party{sep}record_id\nA{sep}1\n")
    with pytest.raises(InputError) as info:
        read_deletions(p)
    msg = str(info.value)
    assert "column 'party' is missing" in msg and f"separated by {what}" in msg, msg
    assert "save it comma-separated" in msg


def test_deletions_header_case_and_spaces_do_not_matter(tmp_path: Path) -> None:
    p = tmp_path / "dels.csv"
    p.write_text("Party, Record_ID\nA,1\nA,2\n")
    got = read_deletions(p)
    assert got.by_party == {"A": [("1", 1), ("2", 2)]}, got.by_party


def test_audit_plaintext_and_reference_junk_is_one_error(tmp_path: Path) -> None:
    for bad in (_junk(tmp_path), _ragged(tmp_path)):
        with pytest.raises(InputError) as info:
            _read_plain_csv(bad)
        assert bad.name in str(info.value)
        _no_data_in(str(info.value))
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(os.urandom(64))
    with pytest.raises(InputError, match=r"fake\.parquet"):
        _read_plain_csv(fake)
