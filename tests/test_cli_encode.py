"""``linkage encode`` (and schema/keygen) through click's CliRunner, checked via the library.

Every file-level problem exits 2 with one line starting "Error:", no traceback, and leaves
no output, rejects or temporary file behind. No input value (raw or normalised) and no secret
byte appears in the output or the rejects file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from linkage.cli import main
from linkage.encoded import read_encoded
from linkage.partner.pipeline import encode
from linkage.partner.values import REASONS
from linkage.schema import Schema
from linkage.schema_template import uk_person_template, uk_person_unhardened
from linkage.secret import ENV_VAR, Secret, secret_text

KEY = hashlib.sha256(b"cli-TEST-secret").digest()
KEY_TEXT = secret_text(KEY)
HEADER = [
    "record_id",
    "given_name",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
]
# Distinctive values: none of them (raw or normalised) may appear in any output.
ROWS = [
    ["p-001", "Xanthippe", "Quackenbush-Ülrich", "14/03/1971", "F", "ze2 9qx",
     "77 Sunnyvale Crescent", "943 476 5919"],
    ["p-002", "Bartholomew", "Fitzwilliamson", "25/12/1985", "Male", "L1 8JQ",
     "Flat 9, Marigold Towers", "4010232137"],
    ["p-003", "Zoë", "O'Shaughnessy", "02/11/1990", "2", "SW1A 1AA",
     "1 Featherstonehaugh Mews", ""],
    ["p-004", "Ignatius", "Wolstenholme", "31/02/1962", "1", "not a postcode",
     "3 Quillfeather Lane", "1234567890"],
    ["p-005", "", "", "", "", "", "", ""],
]  # fmt: skip
RAW_VALUES = [v for row in ROWS for v in row[1:] if len(v) >= 4]
NORMALISED = [
    "XANTHIPPE",
    "QUACKENBUSHULRICH",
    "1971-03-14",
    "ZE2 9QX",
    "77 SUNNYVALE CRESCENT",
    "9434765919",
    "BARTHOLOMEW",
    "FITZWILLIAMSON",
    "1985-12-25",
    "FLAT 9 MARIGOLD TOWERS",
    "4010232137",
    "OSHAUGHNESSY",
    "1990-11-02",
    "FEATHERSTONEHAUGH",
    "IGNATIUS",
    "WOLSTENHOLME",
    "QUILLFEATHER",
]


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "secret.key").write_text(KEY_TEXT + "\n")
    (tmp_path / "secret.key").chmod(0o600)
    (tmp_path / "schema.json").write_text(json.dumps(uk_person_unhardened()), encoding="utf-8")
    write_csv(tmp_path / "in.csv", ROWS)
    return tmp_path


def run(args: Sequence[str], env: dict[str, str | None] | None = None) -> Result:
    full_env: dict[str, str | None] = {ENV_VAR: None}
    full_env.update(env or {})
    return CliRunner().invoke(main, list(args), env=full_env, catch_exceptions=True)


def encode_args(work: Path, inp: str = "in.csv", *extra: str, secret: bool = True) -> list[str]:
    args = [
        "encode",
        str(work / inp),
        "-s",
        str(work / "schema.json"),
        "--party",
        "council_a",
        "-o",
        str(work / "out.parquet"),
        "--rejects",
        str(work / "rejects.csv"),
        "--quiet",
    ]
    if secret:
        args += ["--secret-file", str(work / "secret.key")]
    return args + list(extra)


def clear_outputs(work: Path) -> None:
    """Remove the outputs of a run (a new run refuses to replace them without --force)."""
    for name in ("out.parquet", "rejects.csv"):
        (work / name).unlink(missing_ok=True)


def assert_clean_error(r: Result, *needles: str) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("Error:"), r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], lines[0]
    assert KEY_TEXT not in r.output and KEY_TEXT.split(":")[1][:9] not in r.output
    return lines[0]


def assert_no_outputs(work: Path, inputs: Sequence[str]) -> None:
    left = sorted(p.name for p in work.iterdir())
    assert left == sorted({"secret.key", "schema.json", *inputs}), left


# -- the happy path ----------------------------------------------------------------------------
def test_encode_writes_readable_output(work: Path) -> None:
    r = run(encode_args(work))
    assert r.exit_code == 0, r.output
    enc = read_encoded(work / "out.parquet")
    assert enc.record_ids.to_pylist() == ["p-001", "p-002", "p-003", "p-004"]  # p-005 is empty
    assert enc.filters.shape == (4, 16) and enc.has_block_keys
    assert enc.party == "council_a" and enc.filter_length == 1024
    schema = Schema.load(work / "schema.json")
    secret = Secret(KEY)
    assert enc.meta["schema_fingerprint"] == schema.fingerprint
    assert enc.meta["key_check"] == secret.key_check(schema.fingerprint)
    assert enc.meta["record_count"] == "4"
    for k in ("format_version", "package_version", "created"):
        assert enc.meta[k]
    # the CLI only calls the library: same filters and block keys as linkage.encode
    lib = encode(
        pa.table({h: [row[i] for row in ROWS] for i, h in enumerate(HEADER)}),
        schema,
        secret,
        party="council_a",
    )
    np.testing.assert_array_equal(enc.filters, lib.filters)
    assert enc.table.column("block_keys").to_pylist() == lib.table.column("block_keys").to_pylist()
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["secret.key", "schema.json", "in.csv", "out.parquet", "rejects.csv"]
    )


def test_rejects_list_row_problems_without_values(work: Path) -> None:
    r = run(encode_args(work))
    assert r.exit_code == 0, r.output
    with open(work / "rejects.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["record_id", "field", "reason"]
    got = {tuple(x) for x in rows[1:]}
    assert ("p-004", "date_of_birth", "impossible date") in got
    assert ("p-004", "postcode", "invalid UK postcode") in got
    assert ("p-004", "nhs_number", "NHS number fails the mod-11 check") in got
    assert ("p-005", "*", "no usable field") in got
    assert not any(rid in {"p-001", "p-002", "p-003"} for rid, _, _ in got)
    # p-004 is still encoded from its valid fields
    assert "p-004" in read_encoded(work / "out.parquet").record_ids.to_pylist()


@pytest.mark.parametrize(
    "placeholder",
    ["1900-01-01", "01-01-1900", "19000101", "01-Jan-1900", "01.01.1900", "1900-01-01 00:00:00",
     "N.A.", "N/K", "NOT APPLICABLE"],
)  # fmt: skip
@pytest.mark.parametrize("given", [False, True])
def test_placeholder_date_in_another_spelling_is_missing(
    work: Path, placeholder: str, given: bool
) -> None:
    rows = [[*ROWS[i][:3], placeholder if i == 1 else ROWS[i][3], *ROWS[i][4:]] for i in range(4)]
    write_csv(work / "ph.csv", rows)
    extra = ["--date-format", "date_of_birth=%d/%m/%Y"] if given else []
    r = run(encode_args(work, "ph.csv", *extra))
    assert r.exit_code == 0, r.output
    with open(work / "rejects.csv", newline="", encoding="utf-8") as fh:
        got = {tuple(x) for x in list(csv.reader(fh))[1:]}
    mine = {(f, why) for rid, f, why in got if rid == "p-002"}
    if placeholder.upper() in ("N.A.", "N/K", "NOT APPLICABLE"):  # missing-value words
        assert not mine, got
    else:  # a placeholder date: missing, reported as one (not as unparseable)
        assert mine == {("date_of_birth", REASONS[18])}, got
    assert len(read_encoded(work / "out.parquet")) == 4


def test_a_few_unparseable_dates_stay_row_problems(work: Path) -> None:
    rows = [*ROWS[:3], [*ROWS[3][:3], "1962-02-28", *ROWS[3][4:]]]
    write_csv(work / "few.csv", rows)
    r = run(encode_args(work, "few.csv", "--date-format", "date_of_birth=%d/%m/%Y"))
    assert r.exit_code == 0, r.output
    with open(work / "rejects.csv", newline="", encoding="utf-8") as fh:
        got = {tuple(x) for x in list(csv.reader(fh))[1:]}
    assert ("p-004", "date_of_birth", "unparseable date") in got


def test_summary_on_stderr_unless_quiet(work: Path) -> None:
    args = [a for a in encode_args(work) if a != "--quiet"]
    r = run(args)
    assert r.exit_code == 0
    assert "5 rows read, 4 encoded, 1 left out" in r.output
    assert "mean bits set" in r.output
    assert "impossible date: 1" in r.output
    assert not any(v in r.output for v in RAW_VALUES + NORMALISED)
    r = run(encode_args(work, "in.csv", "--force"))
    # --quiet: nothing but the unhardened-schema warning (this fixture pins that template)
    assert r.exit_code == 0 and r.output.startswith("Warning: this schema has no hardening")
    assert len(r.output.strip().splitlines()) == 1


def test_no_plaintext_in_outputs(work: Path) -> None:
    r = run(encode_args(work))
    assert r.exit_code == 0, r.output
    blobs = [(work / "out.parquet").read_bytes(), (work / "rejects.csv").read_bytes()]
    # also the decompressed contents: every cell and every metadata entry
    table = pq.read_table(work / "out.parquet")
    md = pq.read_metadata(work / "out.parquet").metadata or {}
    decoded = json.dumps(
        {
            "ids": table.column("record_id").to_pylist(),
            "meta": {k.decode(): v.decode() for k, v in md.items()},
            "cols": table.column_names,
        }
    ).encode()
    blobs.append(decoded)
    blobs.append(b"".join(x or b"" for x in table.column("clk").to_pylist()))
    assert set(table.column_names) == {"record_id", "clk", "block_keys"}
    needles = set(RAW_VALUES + NORMALISED)
    needles |= {v.lower() for v in needles} | {v.upper() for v in needles}
    for blob in blobs:
        for v in needles:
            assert v.encode("utf-8") not in blob, v
        assert KEY not in blob and KEY.hex().encode() not in blob
        assert KEY_TEXT.split(":")[1].encode() not in blob


def test_secret_from_environment(work: Path) -> None:
    r = run(encode_args(work, secret=False), env={ENV_VAR: KEY_TEXT})
    assert r.exit_code == 0, r.output
    via_env = read_encoded(work / "out.parquet")
    os.rename(work / "out.parquet", work / "env.parquet")
    clear_outputs(work)
    r = run(encode_args(work))
    assert r.exit_code == 0, r.output
    via_file = read_encoded(work / "out.parquet")
    assert via_env.meta["key_check"] == via_file.meta["key_check"]
    np.testing.assert_array_equal(via_env.filters, via_file.filters)


def test_column_mapping_and_parquet_input_and_bom(work: Path) -> None:
    assert run(encode_args(work)).exit_code == 0
    base = read_encoded(work / "out.parquet").filters
    clear_outputs(work)
    header = [("addr_line_1" if h == "address" else h) for h in HEADER]
    header[0] = "ID"
    write_csv(work / "mapped.csv", ROWS, header)
    r = run(encode_args(work, "mapped.csv", "--column", "address=addr_line_1", "--id-column", "ID"))
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_encoded(work / "out.parquet").filters, base)
    clear_outputs(work)
    pq.write_table(
        pa.table({h: [row[i] for row in ROWS] for i, h in enumerate(HEADER)}), work / "in.parquet"
    )
    r = run(encode_args(work, "in.parquet"))
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_encoded(work / "out.parquet").filters, base)
    clear_outputs(work)
    bom = work / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (work / "in.csv").read_bytes().replace(b",", b";"))
    r = run(encode_args(work, "bom.csv", "--delimiter", ";"))
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_encoded(work / "out.parquet").filters, base)


def test_explicit_date_format_resolves_ambiguity(work: Path) -> None:
    rows = [[*row[:3], "01/02/1980", *row[4:]] for row in ROWS[:3]]
    write_csv(work / "amb.csv", rows)
    r = run(encode_args(work, "amb.csv", "--date-format", "date_of_birth=%d/%m/%Y"))
    assert r.exit_code == 0, r.output
    assert len(read_encoded(work / "out.parquet")) == 3


# -- every bad input: one-line error, exit 2, nothing left behind ------------------------------
def _rows_with(i: int, value: str) -> list[list[str]]:
    return [[*row[:i], value, *row[i + 1 :]] for row in ROWS[:3]]


Setup = Callable[[Path], tuple[list[str], list[str], dict[str, str | None]]]


def _csv(name: str, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Setup:
    def setup(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
        write_csv(work / name, rows, header)
        return encode_args(work, name), [name], {}

    return setup


def _raw(name: str, data: bytes) -> Setup:
    def setup(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
        (work / name).write_bytes(data)
        return encode_args(work, name), [name], {}

    return setup


def _extra(*extra: str) -> Setup:
    def setup(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
        write_csv(work / "in.csv", ROWS)
        return encode_args(work, "in.csv", *extra), ["in.csv"], {}

    return setup


def _bad_schema(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    doc = uk_person_unhardened()
    doc["fields"][0]["tokeniser"]["q"] = 9
    (work / "schema.json").write_text(json.dumps(doc))
    write_csv(work / "in.csv", ROWS)
    return encode_args(work), ["in.csv"], {}


def _no_secret(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "in.csv", ROWS)
    return encode_args(work, secret=False), ["in.csv"], {}


def _typed_secret_file(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    (work / "secret.key").write_bytes(b"short-secret")
    write_csv(work / "in.csv", ROWS)
    return encode_args(work), ["in.csv"], {}


def _typed_secret_env(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "in.csv", ROWS)
    return encode_args(work, secret=False), ["in.csv"], {ENV_VAR: "short-secret"}


def _missing_secret_file(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "in.csv", ROWS)
    args = [*encode_args(work, secret=False), "--secret-file", str(work / "nope.key")]
    return args, ["in.csv"], {}


def _missing_input(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    return encode_args(work, "absent.csv"), [], {}


def _non_utf8(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "bad.csv", ROWS[:3])
    data = (work / "bad.csv").read_bytes().replace(b"Fitzwilliamson", b"Fitz\xe9illiamson")
    (work / "bad.csv").write_bytes(data)
    return encode_args(work, "bad.csv"), ["bad.csv"], {}


def _all_unusable(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "in.csv", [["a", *[""] * 7], ["b", "", "", "", "U", "", "", ""]])
    return encode_args(work), ["in.csv"], {}


ISO_ROWS = [[*row[:3], d, *row[4:]] for row, d in zip(ROWS[:4], ["1971-03-14", "1985-12-25",
            "1990-11-02", "1962-02-28"], strict=True)]  # fmt: skip


def _wrong_date_format(work: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    write_csv(work / "iso.csv", ISO_ROWS)
    return encode_args(work, "iso.csv", "--date-format", "date_of_birth=%d/%m/%Y"), ["iso.csv"], {}


BAD_INPUTS: dict[str, tuple[Setup, tuple[str, ...]]] = {
    "--date-format that fits no value": (
        _wrong_date_format,
        ("iso.csv", "'date_of_birth'", "reads only 0 of 4 dates", "%Y-%m-%d"),
    ),
    "one row in another date format": (
        _csv("mixed.csv", [ROWS[0], ISO_ROWS[1], ROWS[2], ROWS[3]]),
        ("mixed.csv", "'date_of_birth'", "%d/%m/%Y", "fits 3 of 4", "not row 2", "--date-format"),
    ),
    "missing id column": (
        _csv("noid.csv", [r[1:] for r in ROWS], HEADER[1:]),
        ("id column 'record_id' not found",),
    ),
    "duplicate ids": (
        _csv("dup.csv", [*ROWS[:3], ["p-002", *ROWS[3][1:]]]),
        ("duplicate record ids", "row 4 repeats row 2"),
    ),
    "empty id": (_csv("empty_id.csv", [*ROWS[:2], ["", *ROWS[2][1:]]]), ("row 3", "empty")),
    "blank id": (_csv("blank_id.csv", [*ROWS[:2], ["  ", *ROWS[2][1:]]]), ("row 3",)),
    "escape code in an id": (
        _csv("esc_id.csv", [*ROWS[:2], ["p-\x1b[31m3", *ROWS[2][1:]]]),
        ("row 3", "'record_id'", "control character"),
    ),
    "line break in an id": (
        _csv("nl_id.csv", [ROWS[0], ["p-\n2", *ROWS[1][1:]]]),
        ("row 2", "control character"),
    ),
    "escape ending an id": (
        _csv("esc_end_id.csv", [ROWS[0], ["p-2\x1b", *ROWS[1][1:]]]),
        ("row 2", "control character"),
    ),
    "tab starting an id": (
        _csv("tab_id.csv", [ROWS[0], ["\tp-2", *ROWS[1][1:]]]),
        ("row 2", "control character"),
    ),
    "text-direction override in an id": (
        _csv("bidi_id.csv", [ROWS[0], ["p-\u202e2", *ROWS[1][1:]]]),
        ("row 2", "text-direction override"),
    ),
    "unknown --column field": (_extra("--column", "colour=address"), ("unknown schema field",)),
    "mapped column absent": (_extra("--column", "address=addr_line_1"), ("'addr_line_1'",)),
    "schema field without a column": (
        _csv("nocol.csv", [r[:-1] for r in ROWS], HEADER[:-1]),
        ("nhs_number", "--column"),
    ),
    "unknown --date-format field": (_extra("--date-format", "dob=%d/%m/%Y"), ("unknown",)),
    "--date-format on a non-date field": (
        _extra("--date-format", "surname=%d/%m/%Y"),
        ("not a date field",),
    ),
    "bad --date-format": (_extra("--date-format", "date_of_birth=%Q"), ("date_of_birth",)),
    "unreadable file (missing)": (_missing_input, ("absent.csv", "not found")),
    "unreadable parquet": (_raw("junk.parquet", b"PAR1 this is not parquet"), ("junk.parquet",)),
    "non-UTF-8 bytes": (_non_utf8, ("bad.csv", "row 2", "UTF-8", "'surname'")),
    "non-UTF-8 header": (_raw("hdr.csv", b"record_id,sur\xffname\n1,x\n"), ("header", "UTF-8")),
    "empty file": (_raw("empty.csv", b""), ("empty.csv", "empty")),
    "header-only file": (_raw("hdr_only.csv", (",".join(HEADER) + "\n").encode()), ("no data",)),
    "ragged row": (
        _raw("ragged.csv", (",".join(HEADER) + "\np-1,a,b\n").encode()),
        ("row 1", "columns"),
    ),
    "ambiguous date format": (
        _csv("amb.csv", _rows_with(3, "01/02/1980")),
        ("date_of_birth", "--date-format"),
    ),
    "no usable row": (_all_unusable, ("no row has a usable field",)),
    "bad schema": (_bad_schema, ("schema.json", "$.fields[0].tokeniser.q")),
    "missing secret": (_no_secret, ("--secret-file", ENV_VAR)),
    "missing secret file": (_missing_secret_file, ("nope.key", "not found")),
    "typed secret file": (_typed_secret_file, ("secret.key", "linkage keygen")),
    "typed secret env": (_typed_secret_env, (ENV_VAR, "linkage keygen")),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_error_and_no_output(work: Path, case: str) -> None:
    setup, needles = BAD_INPUTS[case]
    os.remove(work / "in.csv")
    args, inputs, env = setup(work)
    r = run(args, env)
    line = assert_clean_error(r, *needles)
    assert_no_outputs(work, inputs)
    for v in RAW_VALUES + NORMALISED + ["short-secret", "Fitz"]:
        assert v not in line, (v, line)


def test_a_pipe_is_refused_with_a_way_forward(work: Path) -> None:
    """`gpg -d x.gpg | linkage encode /dev/stdin`: said to be a pipe (it was 'file is
    empty'), in a subprocess with a timeout, since opening a FIFO without a writer blocks."""
    import subprocess
    import sys

    fifo = work / "extract.csv"
    os.mkfifo(fifo)
    code = "import sys; from linkage._console import main; sys.argv[0] = 'linkage'; main()"
    args = encode_args(work, "extract.csv")
    for where in (str(fifo), "-"):
        args[1] = where
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert "read more than once, so write it to a file first" in r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_failed_run_keeps_an_existing_output(work: Path) -> None:
    (work / "out.parquet").write_bytes(b"previous")
    write_csv(work / "dup.csv", [ROWS[0], ROWS[0]])
    r = run(encode_args(work, "dup.csv", "--force"))
    assert_clean_error(r, "duplicate")
    assert (work / "out.parquet").read_bytes() == b"previous"
    assert not (work / "rejects.csv").exists()
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_output_over_input_is_refused(work: Path) -> None:
    args = encode_args(work)
    args[args.index("-o") + 1] = str(work / "in.csv")
    before = (work / "in.csv").read_bytes()
    assert_clean_error(run(args), "overwrite")
    assert (work / "in.csv").read_bytes() == before


@pytest.mark.parametrize("party", ["", "a/b", "x" * 65, " council_a", "council_a "])
def test_bad_party(work: Path, party: str) -> None:
    args = encode_args(work)
    args[args.index("--party") + 1] = party
    assert_clean_error(run(args), "--party")
    assert_no_outputs(work, ["in.csv"])


def test_secret_value_is_not_an_option(work: Path) -> None:
    r = run([*encode_args(work, secret=False), "--secret", KEY_TEXT])
    assert r.exit_code == 2
    assert "No such option" in r.output
    assert_no_outputs(work, ["in.csv"])


# -- schema commands ------------------------------------------------------------------------------
def test_schema_init_and_check(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    r = run(["schema", "init", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert Schema.load(out) == Schema.from_dict(uk_person_template())
    r = run(["schema", "check", str(out)])
    assert r.exit_code == 0
    assert "fingerprint" in r.output and "given_name" in r.output
    r = run(["schema", "init", "-o", str(out)])
    assert_clean_error(r, "already exists")
    assert run(["schema", "init", "-o", str(out), "--force"]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schema.json"]


def test_schema_check_bad_schema(tmp_path: Path) -> None:
    doc = uk_person_unhardened()
    doc["fields"][2]["tokeniser"]["parts"] = ["week"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    assert_clean_error(run(["schema", "check", str(p)]), "$.fields[2].tokeniser.parts[0]")
    assert_clean_error(run(["schema", "check", str(tmp_path / "none.json")]), "not found")


# -- help ---------------------------------------------------------------------------------------
def _commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = [(path, group)]
    if isinstance(group, click.Group):
        for name, cmd in sorted(group.commands.items()):
            out += _commands(cmd, (*path, name))
    return out


COMMANDS = _commands(main)


def test_command_tree_has_the_partner_commands() -> None:
    paths = {p for p, _ in COMMANDS}
    for p in [(), ("keygen",), ("schema",), ("schema", "init"), ("schema", "check"), ("encode",)]:
        assert p in paths


@pytest.mark.parametrize(
    ("path", "cmd"), COMMANDS, ids=[" ".join(p) or "linkage" for p, _ in COMMANDS]
)
def test_help_for_every_command(path: tuple[str, ...], cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
    for flag in ("--help", "-h"):
        r = run([*path, flag])
        assert r.exit_code == 0, r.output
        assert r.output.startswith("Usage:")
        assert "Traceback" not in r.output


def _options_without_help() -> list[str]:
    return [
        f"{' '.join(path)} {opt.opts[0]}"
        for path, cmd in COMMANDS
        for opt in cmd.params
        if isinstance(opt, click.Option)
        and not opt.hidden
        and not (opt.help or "").strip()
        and opt.opts[0] not in ("--help", "--version")
    ]


def test_partner_options_have_help() -> None:
    partner = [o for o in _options_without_help() if o.split()[0] in {"keygen", "schema"}]
    assert partner == []


def test_every_option_has_help() -> None:
    assert _options_without_help() == []


# -- more file-level edge cases ---------------------------------------------------------------
def test_crlf_csv_and_parquet_dates(work: Path) -> None:
    assert run(encode_args(work)).exit_code == 0
    base = read_encoded(work / "out.parquet")
    clear_outputs(work)
    (work / "crlf.csv").write_bytes((work / "in.csv").read_bytes().replace(b"\n", b"\r\n"))
    r = run(encode_args(work, "crlf.csv"))
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_encoded(work / "out.parquet").filters, base.filters)
    clear_outputs(work)
    cols: dict[str, Any] = {h: [row[i] for row in ROWS[:3]] for i, h in enumerate(HEADER)}
    cols["date_of_birth"] = pa.array([dt.date(1971, 3, 14), dt.date(1985, 12, 25), None])
    pq.write_table(pa.table(cols), work / "typed.parquet")
    r = run(encode_args(work, "typed.parquet"))
    assert r.exit_code == 0, r.output
    got = read_encoded(work / "out.parquet").filters
    np.testing.assert_array_equal(got[:2], base.filters[:2])
    assert not (got[2] == base.filters[2]).all()  # p-003's date of birth is missing here


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_input(work: Path) -> None:
    (work / "in.csv").chmod(0)
    try:
        assert_clean_error(run(encode_args(work)), "in.csv")
    finally:
        (work / "in.csv").chmod(0o600)
    assert_no_outputs(work, ["in.csv"])


def test_non_utf8_row_number_counts_records(work: Path) -> None:
    rows = [[*ROWS[0][:6], "Line one\nLine two", ROWS[0][7]], ROWS[1], ROWS[2]]
    write_csv(work / "q.csv", rows)
    data = (work / "q.csv").read_bytes().replace(b"O'Shaughnessy", b"O'Sh\xffaughnessy")
    (work / "q.csv").write_bytes(data)
    assert_clean_error(run(encode_args(work, "q.csv")), "row 3,")


def test_directory_input_is_a_one_line_error(work: Path) -> None:
    (work / "dir.csv").mkdir()
    assert_clean_error(run(encode_args(work, "dir.csv")), "dir.csv")


def test_rejects_in_missing_directory_is_a_clean_error(work: Path) -> None:
    args = encode_args(work)
    args[args.index("--rejects") + 1] = str(work / "nodir" / "rejects.csv")
    assert_clean_error(run(args), "nodir")
    assert_no_outputs(work, ["in.csv"])


def test_rejects_same_as_output_is_refused(work: Path) -> None:
    args = encode_args(work)
    args[args.index("--rejects") + 1] = str(work / "out.parquet")
    assert_clean_error(run(args), "rejects")
    assert_no_outputs(work, ["in.csv"])


def test_rejects_same_as_input_is_refused(work: Path) -> None:
    before = (work / "in.csv").read_bytes()
    args = encode_args(work)
    args[args.index("--rejects") + 1] = str(work / "in.csv")
    r = run(args)
    assert (work / "in.csv").read_bytes() == before
    assert_clean_error(r, "rejects")


# -- outputs (issue 10): refused when they exist, named by format, private, OS errors ------------
@pytest.mark.parametrize("existing", ["out.parquet", "rejects.csv", "secret.key"])
def test_existing_outputs_are_refused_unless_force(work: Path, existing: str) -> None:
    args = encode_args(work)
    if existing == "secret.key":  # `-o secret.key` once replaced the project secret
        args[args.index("-o") + 1] = str(work / "secret.key")
        before = (work / "secret.key").read_bytes()
        assert_clean_error(run(args), "secret.key")
        assert (work / "secret.key").read_bytes() == before
        return
    (work / existing).write_text("earlier")
    assert_clean_error(run(args), existing, "already exists", "--force")
    assert (work / existing).read_text() == "earlier"
    assert_no_outputs(work, ["in.csv", existing])
    r = run([*args, "--force"])
    assert r.exit_code == 0, r.output
    read_encoded(work / "out.parquet")


@pytest.mark.parametrize(
    ("option", "name"),
    [("-o", "out.csv"), ("-o", "out"), ("-o", "secret.key"), ("--rejects", "rejects.parquet"),
     ("--rejects", "rejects.txt")],
)  # fmt: skip
def test_output_names_must_say_their_format(work: Path, option: str, name: str) -> None:
    args = encode_args(work, "in.csv", "--force")
    args[args.index(option) + 1] = str(work / name)
    line = assert_clean_error(run(args), name, "give a name ending in")
    assert ("Parquet" in line) == (option == "-o")
    assert_no_outputs(work, ["in.csv"])


def test_outputs_are_private(work: Path) -> None:
    old = os.umask(0o022)
    try:
        assert run(encode_args(work)).exit_code == 0
    finally:
        os.umask(old)
    for name in ("out.parquet", "rejects.csv"):
        assert (work / name).stat().st_mode & 0o777 == 0o600, name


@pytest.mark.parametrize(
    "exc",
    [OSError("IOError: [errno 28] No space left on device"),
     OSError(28, "No space left on device"), PermissionError(13, "Permission denied")],
)  # fmt: skip
def test_os_error_while_writing(work: Path, monkeypatch: pytest.MonkeyPatch, exc: OSError) -> None:
    def fail(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", fail)
    line = assert_clean_error(run(encode_args(work)), "out.parquet", os.strerror(exc.errno or 28))
    assert ".partial" not in line and "None" not in line
    assert_no_outputs(work, ["in.csv"])


# -- column mappings that cannot be what the user meant ----------------------------------------
@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--column", "nhs_number=nhs_number", "--absent", "nhs_number"],
         ["field nhs_number is both mapped", "--absent nhs_number"]),
        (["--date-format", "date_of_birth=%d/%m/%Y", "--absent", "date_of_birth"],
         ["declared --absent date_of_birth but given --date-format"]),
        (["--column", "surname=given_name"],
         ["column 'given_name' is mapped to fields given_name and surname"]),
    ],
)  # fmt: skip
def test_contradictory_column_mappings_are_refused(
    work: Path, extra: list[str], needles: list[str]
) -> None:
    r = run(encode_args(work, "in.csv", *extra))
    assert_clean_error(r, *needles)
    assert_no_outputs(work, ["in.csv"])


def test_a_field_mostly_rejected_warns_of_a_wrong_mapping(work: Path) -> None:
    rows = [[f"p-{i:03d}", "Ann", "Smith", "21/02/1970", "F", "SW1A 1AA", "1 Road", ""]
            for i in range(10)]  # fmt: skip
    for i, row in enumerate(rows):
        row[5] = f"{row[1]} {i}"  # the postcode column holds names: a wrong export
    write_csv(work / "names.csv", rows)
    r = run(encode_args(work, "names.csv"))
    assert r.exit_code == 0, r.output
    warn = [line for line in r.output.splitlines() if line.startswith("Warning: field postcode")]
    assert len(warn) == 1, r.output
    assert "10 of the 10 values given (100%) were rejected" in warn[0]
    assert "--column postcode=COLUMN" in warn[0]
    clear_outputs(work)
    for row in rows[3:]:  # mostly blank: the share is of the values given, not of the rows
        row[5] = ""
    write_csv(work / "names.csv", rows)
    r = run(encode_args(work, "names.csv"))
    assert r.exit_code == 0, r.output
    assert "Warning: field postcode: 3 of the 3 values given (100%)" in r.output, r.output
    clear_outputs(work)
    r = run(encode_args(work))  # 1 bad postcode in 5 rows: an ordinary row problem
    assert r.exit_code == 0 and "Warning: field postcode" not in r.output, r.output


def test_two_digit_years_are_read_with_a_warning(work: Path) -> None:
    rows = [list(r) for r in ROWS[:4]]
    for r, d in zip(rows, ["14-Mar-71", "25-Dec-85", "02-Nov-90", "28-Feb-62"], strict=True):
        r[3] = d
    write_csv(work / "yy.csv", rows)
    r = run(encode_args(work, "yy.csv"))
    assert r.exit_code == 0, r.output
    warn = [line for line in r.output.splitlines() if "two-digit years" in line]
    assert len(warn) == 1 and warn[0].startswith("Warning: field date_of_birth"), r.output
    assert "%d-%b-%y" in warn[0]
    clear_outputs(work)
    r = run(encode_args(work))  # four-digit years: no warning
    assert r.exit_code == 0 and "two-digit" not in r.output, r.output


def test_a_name_field_of_a_few_values_warns_of_a_wrong_mapping(work: Path) -> None:
    """A second tester's --column surname=gender: valid names (M, F), nothing rejected, and
    nothing said. A name column of a handful of values over hundreds of rows is implausible."""
    rows = []
    for i in range(250):
        r = list(ROWS[i % 4])
        r[0] = f"p-{i:03d}"
        r[2] = f"Surname{i}"
        rows.append([*r, "MF"[i % 2]])
    write_csv(work / "g.csv", rows, [*HEADER, "gender"])
    r = run(encode_args(work, "g.csv", "--column", "surname=gender"))
    assert r.exit_code == 0, r.output
    warn = [line for line in r.output.splitlines() if "distinct values" in line]
    assert warn == ["Warning: field surname: only 2 distinct values in the 250 rows that give "
                    "one; names vary far more: is the right column mapped to it (--column "
                    "surname=COLUMN)?"], r.output  # fmt: skip
    clear_outputs(work)
    r = run(encode_args(work, "g.csv"))  # the real surname column: 250 distinct
    assert r.exit_code == 0 and "distinct values" not in r.output, r.output
