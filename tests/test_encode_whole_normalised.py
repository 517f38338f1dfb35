"""The encoder takes rows of fields the whole-file checks already normalised (extracts of up
to placeholders.SAMPLE_ROWS rows) instead of normalising each batch again: the encoded table
and the rejects must be exactly those of normalising every batch."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from typing import Any

import pyarrow as pa
import pytest

from linkage.partner import placeholders, plan
from linkage.partner.normalisers import normalise, whole_rows
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_template
from linkage.secret import Secret

SECRET = Secret(hashlib.sha256(b"whole-file normalised test secret").digest())
SCHEMA = Schema.from_dict(uk_person_template())


def _messy(n: int, seed: int) -> pa.Table:
    """Repeats across batches, invalid values, sentinels in odd spellings, non-ASCII
    spellings, placeholders on many rows."""
    rnd = random.Random(seed)
    names = ["Ann", "ANN ", "Zoë", "zoe", "N/A", "n.k.", "", "O'Brien", "  mary-jane", "Ｊｏｅ"]
    dobs = ["1980-01-02", "1900-01-01", "2001-02-30", "nk", "", "1975-12-31", "2090-01-01"]
    pcs = ["SW1A 1AA", "sw1a1aa", "ZZ99 3VZ", "XX1", "", "N.A.", "EC1A 1BB", "M1 1AE"]
    nhs = ["9434765919", "943 476 5919", "1234567890", "", "9990000000", "401 023 2137"]
    rows: dict[str, list[Any]] = {k: [] for k in ("record_id", "given_name", "surname",
                                                  "date_of_birth", "sex", "postcode",
                                                  "address", "nhs_number")}  # fmt: skip
    for i in range(n):
        rows["record_id"].append(f"r{i}")
        rows["given_name"].append(rnd.choice(names) + ("" if i % 3 else str(i % 97)))
        rows["surname"].append(rnd.choice(names[::-1]) + ("" if i % 5 else "son"))
        rows["date_of_birth"].append(
            "1950-05-05" if i % 7 == 0 else rnd.choice(dobs) if i % 2 else
            f"19{40 + i % 60}-0{1 + i % 9}-1{i % 9}"
        )  # fmt: skip
        rows["sex"].append(rnd.choice(["M", "F", "f", "x", "", "Unknown"]))
        rows["postcode"].append(rnd.choice(pcs))
        rows["address"].append(rnd.choice(["1 High St", "1 HIGH ST.", "n/a", "", "Flat ½"]))
        rows["nhs_number"].append(rnd.choice(nhs) if i % 4 else None)
    return pa.table(rows)


def _encode(table: pa.Table, **kw: Any) -> tuple[pa.Table, dict[bytes, bytes], list[Any]]:
    rejects: list[tuple[str, str, str]] = []
    enc = encode(table, SCHEMA, SECRET, party="p", rejects=rejects, **kw)
    meta = {k: v for k, v in enc.meta.items() if k != "created"}
    return enc.table, meta, rejects


@pytest.mark.parametrize(
    "kw",
    [
        {"batch_size": 1000, "threads": 2},
        {"batch_size": 1000, "threads": 1, "suspected_placeholders": "missing"},
        {"batch_size": 1000, "threads": 2, "today": dt.date(2000, 6, 1)},
    ],
)
def test_whole_file_normalised_rows_encode_the_same(monkeypatch: Any, kw: Any) -> None:
    table = _messy(3500, seed=3)
    reused = _encode(table, **kw)
    seen: list[str] = []
    real = plan.frequent_values_and_rows

    def without_rows(*a: Any, **k: Any) -> Any:
        found, rows = real(*a, **k)
        if rows is not None:
            seen.append(a[0].name)
        return found, None

    monkeypatch.setattr(plan, "frequent_values_and_rows", without_rows)
    again = _encode(table, **kw)
    assert {"date_of_birth", "postcode", "nhs_number"} <= set(seen)
    assert reused[0].equals(again[0])
    assert reused[1] == again[1]
    assert reused[2] == again[2]


def test_sampled_extract_keeps_no_rows(monkeypatch: Any) -> None:
    monkeypatch.setattr(placeholders, "SAMPLE_ROWS", 100)
    col = pa.array([f"SW1A {i % 9}AA" for i in range(300)])
    assert placeholders.frequent_values_and_rows(SCHEMA.field("postcode"), col)[1] is None


def test_whole_rows_is_normalise_of_the_rows() -> None:
    f = SCHEMA.field("given_name")
    col = pa.array(["Ann", "bob", "N/A", "ann", "", "Zoë", "bob", "Cy", "ann", None])
    whole = normalise(f.normaliser, col, missing=f.missing)
    for start, n in [(0, 10), (2, 5), (7, 3), (9, 1)]:
        part = whole_rows(whole, start, n)
        direct = normalise(f.normaliser, col.slice(start, n), missing=f.missing)
        assert part.values.to_pylist() == direct.values.to_pylist()
        assert part.status.tolist() == direct.status.tolist()
        assert sorted(part.units.to_pylist()) == sorted(direct.units.to_pylist())
