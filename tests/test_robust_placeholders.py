"""Issue 10 item 2: placeholders are compared after parsing, and frequent values are flagged.

``01-01-1900`` was encoded as a real date (only ``01/01/1900`` and ``1900-01-01`` were
missing), so two household members with an unknown date of birth looked like one person. A
value on an implausible share of an extract's rows is a suspected placeholder: reported in the
summary and rejects (never the value), and encoded as missing on request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import TODAY

from linkage import encode
from linkage.errors import InputError
from linkage.partner.normalisers import MISSING, OK, DateFormat, normalise
from linkage.partner.placeholders import frequent_values
from linkage.partner.values import REASONS
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret

SECRET = Secret(hashlib.sha256(b"placeholder test secret").digest())
SCHEMA = Schema.from_dict(uk_person_unhardened())


@pytest.mark.parametrize(
    "fmt, value",
    [
        ("%d-%m-%Y", "01-01-1900"),
        ("%Y/%m/%d", "1900/01/01"),
        ("%Y%m%d", "19000101"),
        ("%d.%m.%Y", "1.1.1900"),
        ("%d-%b-%Y", "01-Jan-1900"),
        ("%d %B %Y", "1 January 1900"),
        ("%d/%m/%y", "01/01/00"),  # two-digit year: 2000, a real date, not the placeholder
    ],
)
def test_date_placeholder_is_compared_after_parsing(fmt: str, value: str) -> None:
    f = SCHEMA.field("date_of_birth")
    got = normalise("date", [value, None], missing=f.missing,
                    date_format=DateFormat(fmt), today=TODAY)  # fmt: skip
    if fmt == "%d/%m/%y":
        assert got.status[0] == OK
    else:  # missing, and reported as a known placeholder
        assert REASONS[int(got.status[0])].startswith("known placeholder date")


@pytest.mark.parametrize(
    "value", ["n/a", "N.A.", "Not-Known", "not known", "n.k.", "NULL ", "None"]
)
def test_name_sentinels_are_compared_after_normalising(value: str) -> None:
    f = SCHEMA.field("surname")
    assert normalise("name", [value, "Smith"], missing=f.missing).status.tolist() == [MISSING, OK]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    cols = ["record_id", *SCHEMA.field_names]
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})


def _person(i: int, **kw: Any) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    d = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 25000)))
    rec = {
        "record_id": f"r{i}",
        "given_name": "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 6)),
        "surname": "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 7)),
        "date_of_birth": d.strftime("%d-%m-%Y"),
        "sex": "F",
        "postcode": f"L{1 + i % 9} {1 + i % 8}JQ",
        "address": f"{i} High Street",
    }
    rec.update(kw)
    return rec


def _encode(rows: list[dict[str, Any]], **kw: Any) -> tuple[Any, list[tuple[str, str, str]]]:
    rejects: list[tuple[str, str, str]] = []
    enc = encode(_table(rows), SCHEMA, SECRET, party="p", rejects=rejects, today=TODAY,
                 date_formats={"date_of_birth": "%d-%m-%Y"}, **kw)  # fmt: skip
    return enc, rejects


def test_household_with_placeholder_dob_is_not_one_person() -> None:
    a = _person(1, given_name="ANN", surname="SMITH", address="1 HIGH ST", postcode="L1 8JQ")
    b = dict(a, record_id="r2", given_name="BOB")
    enc, _ = _encode([dict(a, date_of_birth="01-01-1900"), dict(b, date_of_birth="01-01-1900")])
    ref, _ = _encode([dict(a, date_of_birth=None), dict(b, date_of_birth=None)])
    np.testing.assert_array_equal(enc.filters, ref.filters)  # the placeholder sets no bit


def test_frequent_date_of_birth_is_reported_and_optionally_missing() -> None:
    rows = [_person(i) for i in range(1000)]
    for r in rows[:150]:  # 15% of rows: an unknown date of birth defaulted by the source
        r["date_of_birth"] = "01-01-1970"
    enc, rejects = _encode(rows)
    flagged = {r[0] for r in rejects if r[1] == "date_of_birth" and "placeholder" in r[2]}
    assert flagged == {f"r{i}" for i in range(150)}
    assert all("kept" in r[2] for r in rejects if r[1] == "date_of_birth")
    kept = enc.filters
    enc2, rejects2 = _encode(rows, suspected_placeholders="missing")
    ref, _ = _encode([dict(r, date_of_birth=None) if i < 150 else r for i, r in enumerate(rows)])
    np.testing.assert_array_equal(enc2.filters, ref.filters)
    assert not np.array_equal(kept, enc2.filters)
    assert all("treated as missing" in r[2] for r in rejects2 if r[1] == "date_of_birth")


def test_frequent_values_summary_and_no_false_alarm(tmp_path: Any) -> None:
    from linkage.partner.pipeline import encode_file
    from linkage.report.text import encode_summary_lines

    rows = [_person(i) for i in range(600)]
    for r in rows[:90]:
        r["postcode"] = "ce1 9zz" if r["record_id"] != "r0" else "CE19ZZ"  # two spellings
    src = tmp_path / "in.csv"
    pacsv.write_csv(_table(rows), src)
    s = encode_file(src, tmp_path / "o.parquet", SCHEMA, SECRET, party="p", today=TODAY)
    assert s.suspected_placeholders == [("postcode", 90, 0.15)]
    text = "\n".join(encode_summary_lines(s, 1024))
    assert "one value on 90 rows (15.0%)" in text and "CE1" not in text
    clean = [_person(i) for i in range(600)]
    src2 = tmp_path / "clean.csv"
    pacsv.write_csv(_table(clean), src2)
    s2 = encode_file(src2, tmp_path / "o2.parquet", SCHEMA, SECRET, party="p", today=TODAY)
    assert s2.suspected_placeholders == []


def test_frequent_values_thresholds() -> None:
    f = SCHEMA.field("surname")
    common = ["SMITH"] * 40 + [f"N{i}" for i in range(960)]  # 4%: a real common surname
    assert frequent_values(f, pa.array(common)) == []
    fake = ["BABY"] * 60 + [f"N{i}" for i in range(940)]  # 6%
    (hit,) = frequent_values(f, pa.array(fake))
    assert (hit.field, hit.value, hit.rows) == ("surname", "BABY", 60)
    assert frequent_values(SCHEMA.field("sex"), pa.array(["F"] * 1000)) == []
    assert frequent_values(f, pa.array(["X"] * 40)) == []  # too few rows to judge
    assert frequent_values(f, pa.array([None] * 200, pa.string())) == []


def test_bad_mode_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="--suspected-placeholders"):
        _encode([_person(1)], suspected_placeholders="drop")


# -- known placeholders: NHS pseudo-postcodes and the NHS test number range --------------------
@pytest.mark.parametrize(
    "value", ["ZZ99 3VZ", "zz993vz", "ZZ99 3WZ", "ZZ99 3CZ", "ZZ99 3GZ", "ZZ99 1WZ", "ZZ99 2WZ",
              "ZZ99 6CZ", " zz99  4qz "],
)  # fmt: skip
def test_nhs_pseudo_postcodes_are_missing_with_their_reason(value: str) -> None:
    got = normalise("postcode", [value, "L1 8JQ"])
    assert got.values.to_pylist() == [None, "L1 8JQ"]
    assert REASONS[int(got.status[0])].startswith("NHS pseudo-postcode")


def test_pseudo_postcode_below_the_frequency_check_is_no_location_evidence() -> None:
    # 31 of 1,246 rows (2.5%): under the frequent-value check's 50 rows, so never flagged
    rows = [_person(i) for i in range(1246)]
    for r in rows[:31]:
        r.update(date_of_birth=None, address=None, postcode="ZZ99 3VZ")  # a name + NFA
    enc, rejects = _encode(rows)
    kept = set(enc.record_ids.to_pylist())
    assert not kept & {f"r{i}" for i in range(31)} and len(kept) == 1246 - 31
    why = {(r[0], r[2]) for r in rejects if r[1] == "postcode"}
    assert ("r0", REASONS[16]) in why and REASONS[16].startswith("NHS pseudo-postcode")
    assert all("ZZ99" not in r[2] for r in rejects)


def test_nhs_test_range_is_not_a_real_number() -> None:
    got = normalise("nhs_number", ["999 000 0018", "9990000018", "9434765919"])
    assert got.values.to_pylist() == [None, None, "9434765919"]
    assert REASONS[int(got.status[0])].startswith("NHS number in the test range")


# -- issue 10 robustness 3: a principled floor; naturally shared fields are not checked --------


def test_small_extract_placeholders_are_found() -> None:
    # 1,383 rows: a date of birth on 30 (2.2%), a postcode on 38 (2.7%), an NHS number on 20
    # were hidden by the old undocumented floor of 50 rows
    n = 1383
    dob = [f"{1 + i % 28:02d}-{1 + i // 28 % 12:02d}-{1930 + i // 336}" for i in range(n)]
    pc = [f"L{1 + i % 9} {1 + i // 9 % 9}{chr(65 + i // 81 % 26)}Q" for i in range(n)]
    nhs = [None] * n
    for i in range(30):
        dob[i] = "01-07-1970"
    for i in range(38):
        pc[i] = "CF10 1AA"
    for i in range(20):
        nhs[i] = "9434765919"
    fmt = DateFormat("%d-%m-%Y")
    (d,) = frequent_values(SCHEMA.field("date_of_birth"), pa.array(dob), date_format=fmt)
    assert d.rows == 30
    (p,) = frequent_values(SCHEMA.field("postcode"), pa.array(pc))
    assert (p.value, p.rows) == ("CF10 1AA", 38)
    (h,) = frequent_values(SCHEMA.field("nhs_number"), pa.array(nhs, pa.string()))
    assert h.rows == 20
    # below the documented absolute minimum of 10 rows nothing is suspected
    assert frequent_values(SCHEMA.field("nhs_number"), pa.array(nhs[11:40], pa.string())) == []


def test_synthetic_extracts_have_no_suspects(tmp_path: Any) -> None:
    import pyarrow.csv as pc_csv

    from linkage.lab.synthetic import synth
    from linkage.partner.dates import detect_date_format
    from linkage.schema import Field

    synth(tmp_path / "s", 3000, 2, seed=3)
    fields = ["given_name", "surname", "date_of_birth", "postcode", "address", "nhs_number"]
    headers = {
        "council_a": ["forename", "surname", "dob", "post_code", "address_line_1", "nhs_no",
                      "town"],
        "council_b": ["first_name", "last_name", "birth_date", "postcode", "street_address",
                      "nhs_number", "city"],
    }  # fmt: skip
    address = SCHEMA.field("address")
    town_fields = [
        Field("town", "text", address.tokeniser, bit_budget=40),
        Field("town", "name", address.tokeniser, bit_budget=40),
    ]
    for party, names in headers.items():
        opts = pc_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
        t = pc_csv.read_csv(tmp_path / "s" / f"{party}.csv", convert_options=opts)
        for f, c in zip(fields, names, strict=False):
            fmt = detect_date_format(t[c]) if f == "date_of_birth" else None
            assert frequent_values(SCHEMA.field(f), t[c], date_format=fmt) == [], (party, f)
        for f in town_fields:  # towns are legitimately frequent (2-17% of rows each)
            assert frequent_values(f, t[names[-1]]) == [], (party, f.normaliser)


@pytest.mark.parametrize("value", ["1899-12-30", "1899-12-31", "1900-01-01"])
@pytest.mark.parametrize("template", ["hardened", "unhardened"])
def test_spreadsheet_day_zero_is_a_known_placeholder(value: str, template: str) -> None:
    from linkage.schema_template import uk_person_template

    doc = uk_person_template() if template == "hardened" else uk_person_unhardened()
    f = Schema.from_dict(doc).field("date_of_birth")
    out = normalise("date", pa.array([value, "1971-03-14"]), missing=f.missing,
                    date_format=DateFormat("%Y-%m-%d"), today=TODAY)  # fmt: skip
    assert out.values.to_pylist() == [None, "1971-03-14"]
    # missing, and reported as a known placeholder (not as an unparseable or early date)
    assert REASONS[int(out.status[0])].startswith("known placeholder date")


def test_many_suspects_in_one_field_are_one_summary_line() -> None:
    """A small area's extract can put many postcodes over the share: one line, not one each."""
    from types import SimpleNamespace

    from linkage.report.text import MAX_SUSPECT_LINES, encode_summary_lines

    base = dict(party="p", rows_read=1000, rows_encoded=1000, rows_left_out=0, rows_unlinkable=0,
                mean_bits_set=100.0, date_formats={}, absent_fields=[], problems={})  # fmt: skip
    many = [("postcode", 20 + i, (20 + i) / 1000) for i in range(MAX_SUSPECT_LINES + 2)]
    few = [("date_of_birth", 40, 0.04)]
    s = SimpleNamespace(**base, suspected_placeholders=many + few)
    lines = encode_summary_lines(s, 1024)  # type: ignore[arg-type]
    post = [x for x in lines if x.startswith("field postcode")]
    assert post == [
        "field postcode: 5 values each on 2.0-2.4% of rows (110 rows in all): suspected "
        "placeholders, or values that cluster naturally in this extract (e.g. a small area's "
        "postcodes) (listed in --rejects; --suspected-placeholders missing encodes them as "
        "missing)"
    ]
    assert [x for x in lines if x.startswith("field date_of_birth")] == [
        "field date_of_birth: one value on 40 rows (4.0%): suspected placeholder (listed in "
        "--rejects; --suspected-placeholders missing encodes it as missing)"
    ]
