"""Messy CSVs (issue 10 items 12, 13, 15): CR line endings, Excel leftovers (unnamed empty
columns, rows of only commas), other delimiters, compressed or non-CSV files."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_cli_encode import HEADER, ROWS, encode_args, work  # noqa: F401 (fixture)

from linkage.cli import main
from linkage.errors import InputError
from linkage.partner.pipeline import encode
from linkage.partner.reader import InputFile
from linkage.schema import Schema
from linkage.secret import ENV_VAR, Secret

GOOD = [r for r in ROWS if any(r[1:])]  # rows with some value


def csv_bytes(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER, *, sep: str = ",",
              end: str = "\n") -> bytes:  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator=end)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def filters_of(path: Path, uk_schema: Schema, secret: Secret, **kw: object) -> np.ndarray:
    enc = encode(str(path), uk_schema, secret, party="p", **kw)  # type: ignore[arg-type]
    order = np.argsort(enc.record_ids.to_numpy(zero_copy_only=False))
    return enc.filters[order]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    p = tmp_path / "clean.csv"
    p.write_bytes(csv_bytes(GOOD))
    return p


# -- line endings (item 12) -----------------------------------------------------------------------
@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"])
def test_line_endings_give_the_same_encodings(
    tmp_path: Path, clean: Path, uk_schema: Schema, secret: Secret, end: str
) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(csv_bytes(GOOD, end=end))
    src = InputFile(p)
    assert src.columns == HEADER
    np.testing.assert_array_equal(
        filters_of(p, uk_schema, secret), filters_of(clean, uk_schema, secret)
    )


def test_cr_only_with_a_quoted_newline_in_the_header(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b'"record\ridentifier",surname\r1,Smith\r2,Jones\r')
    src = InputFile(p)
    assert src.columns == ["record\ridentifier", "surname"]
    assert src.read_columns(["surname"])["surname"].to_pylist() == ["Smith", "Jones"]


# -- Excel leftovers (item 13) --------------------------------------------------------------------
def _excel(rows: Sequence[Sequence[str]], extra: int = 3, blank_rows: int = 2) -> bytes:
    header = [*HEADER, *[""] * extra]
    body = [[*r, *[""] * extra] for r in rows]
    body += [[""] * len(header)] * blank_rows
    return csv_bytes(body, header)


def test_unnamed_empty_columns_and_comma_rows_are_ignored_and_counted(
    tmp_path: Path, clean: Path, uk_schema: Schema, secret: Secret
) -> None:
    p = tmp_path / "excel.csv"
    p.write_bytes(_excel(GOOD))
    src = InputFile(p)
    assert src.columns == HEADER and src.unnamed_columns == 3
    assert len(src.read_columns(["record_id"])["record_id"]) == len(GOOD)
    assert src.blank_rows == 2
    np.testing.assert_array_equal(
        filters_of(p, uk_schema, secret), filters_of(clean, uk_schema, secret)
    )


def test_blank_rows_in_the_middle_and_whitespace_only_rows(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    blank = ["", " ", "\u00a0", "", "\t", "", "", ""]
    p.write_bytes(csv_bytes([GOOD[0], blank, [""] * 8, GOOD[1]]))
    src = InputFile(p)
    assert src.read_columns(["record_id"])["record_id"].to_pylist() == ["p-001", "p-002"]
    assert src.blank_rows == 2


def test_streaming_path_skips_blank_rows_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linkage.partner.reader as reader

    monkeypatch.setattr(reader, "IN_MEMORY_CSV_BYTES", 0)
    p = tmp_path / "excel.csv"
    p.write_bytes(_excel(GOOD, blank_rows=3))
    src = InputFile(p)
    ids = [v for _, b in src.iter_batches(["record_id"], 1000) for v in b["record_id"].to_pylist()]
    assert ids == [r[0] for r in GOOD] and src.blank_rows == 3


def test_an_unnamed_column_with_values_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    rows = [[*r, ""] for r in GOOD]
    rows[1][-1] = "stray"
    p.write_bytes(csv_bytes(rows, [*HEADER, ""]))
    with pytest.raises(InputError, match="column 9 has no name") as exc:
        InputFile(p).read_columns(["record_id"])
    assert "stray" not in str(exc.value)


def test_duplicate_names_are_named(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b"record_id,surname,surname,,\n1,a,b,,\n")
    with pytest.raises(InputError, match=r"duplicate column name\(s\) in header: 'surname'$"):
        InputFile(p)


def test_cli_summary_counts_what_was_ignored(work: Path) -> None:  # noqa: F811
    (work / "in.csv").write_bytes(_excel(GOOD))
    args = [a for a in encode_args(work) if a != "--quiet"]
    r = CliRunner().invoke(main, args, env={ENV_VAR: None})
    assert r.exit_code == 0, r.output
    assert "ignored: 2 all-empty rows, 3 unnamed empty columns" in r.output


# -- other delimiters, other kinds of file (item 15) ----------------------------------------------
@pytest.mark.parametrize(("sep", "option"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_other_delimiter_is_suggested(tmp_path: Path, sep: str, option: str) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(csv_bytes(GOOD, sep=sep))
    with pytest.raises(InputError, match=f"give --delimiter {option}") as exc:
        InputFile(p)
    assert str(p) in str(exc.value)
    given = "tab" if sep == "\t" else sep
    assert InputFile(p, delimiter=given).columns == HEADER


def test_comma_file_read_with_semicolon_suggests_comma(tmp_path: Path, clean: Path) -> None:
    with pytest.raises(InputError, match="comma-separated: give --delimiter ','"):
        InputFile(clean, delimiter=";")


def test_cli_semicolon_file(work: Path) -> None:  # noqa: F811
    (work / "in.csv").write_bytes(csv_bytes(GOOD, sep=";"))
    r = CliRunner().invoke(main, encode_args(work), env={ENV_VAR: None})
    assert r.exit_code == 2 and "--delimiter ';'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, encode_args(work, "in.csv", "--delimiter", ";"),
                           env={ENV_VAR: None})  # fmt: skip
    assert r.exit_code == 0, r.output


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("sheet.xml", data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (gzip.compress, "gzip-compressed"),
        (bz2.compress, "bzip2-compressed"),
        (lzma.compress, "xz-compressed"),
        (_zip, "ZIP archive"),
        (lambda d: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + d, "Excel .xls"),
        (lambda d: d.decode().encode("utf-16"), "UTF-16"),
        (lambda d: b"\x28\xb5\x2f\xfd" + d, "zstd"),
    ],
)
def test_compressed_or_binary_files_are_named(tmp_path: Path, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "extract.csv"
    p.write_bytes(make(csv_bytes(GOOD)))
    with pytest.raises(InputError, match=needle) as exc:
        InputFile(p)
    assert "not valid UTF-8" not in str(exc.value) and str(p) in str(exc.value)


def test_parquet_with_a_csv_name_is_read_as_parquet(tmp_path: Path) -> None:
    p = tmp_path / "extract.csv"
    pq.write_table(pa.table({"record_id": ["1", "2"], "surname": ["a", "b"]}), p)
    src = InputFile(p)
    assert src.is_parquet and src.read_columns(["surname"])["surname"].to_pylist() == ["a", "b"]


# -- Excel leftovers of the wrong width (issue 10 robustness 2) ----------------------------------
@pytest.mark.parametrize(
    "line",
    [",,,,", ",,,,,,,,,,,,", "   ", "\t", "\u00a0", "\u200b", "\u3000", "\ufeff", '"",,'],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_blank_row_of_any_width_is_ignored_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, stream: bool
) -> None:
    import linkage.partner.reader as reader

    if stream:
        monkeypatch.setattr(reader, "IN_MEMORY_CSV_BYTES", 0)
    body = csv_bytes(GOOD[:2]).decode().splitlines()
    p = tmp_path / "x.csv"
    p.write_text("\n".join([body[0], body[1], line, body[2], line]) + "\n", encoding="utf-8")
    src = InputFile(p)
    ids = [v for _, b in src.iter_batches(["record_id"], 1000) for v in b["record_id"].to_pylist()]
    assert ids == [GOOD[0][0], GOOD[1][0]]
    assert src.blank_rows == 2


def test_trailing_empty_cells_beyond_the_header_are_ignored(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    text = csv_bytes(GOOD).decode().splitlines()
    p.write_text("\n".join([text[0]] + [t + ",," for t in text[1:]]) + "\n", encoding="utf-8")
    assert InputFile(p).read_columns(["record_id"])["record_id"].to_pylist() == [r[0] for r in GOOD]


def test_a_header_ending_in_commas_over_rows_without_them(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    text = csv_bytes(GOOD).decode().splitlines()
    p.write_text("\n".join([text[0] + ",,", *text[1:]]) + "\n", encoding="utf-8")
    src = InputFile(p)
    assert src.unnamed_columns == 2
    assert src.read_columns(["record_id"])["record_id"].to_pylist() == [r[0] for r in GOOD]


@pytest.mark.parametrize("suffix", [",x", ",,stray", ""])
def test_a_row_with_content_and_the_wrong_width_is_still_an_error(
    tmp_path: Path, suffix: str
) -> None:
    p = tmp_path / "x.csv"
    text = csv_bytes(GOOD).decode().splitlines()
    bad = text[2] + suffix if suffix else text[2].rsplit(",", 1)[0]  # wider, or one named short
    p.write_text("\n".join([text[0], text[1], bad, *text[3:]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 2 has"):
        InputFile(p).read_columns(["record_id"])
