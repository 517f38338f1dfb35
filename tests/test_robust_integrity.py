"""Issue 10 item 10: a corrupted or altered encoded file is refused with a clear error.

100 flipped bytes inside the filter data used to be read back as other filters (exit 0, a true
match silently lost). Encoded files now carry SHA-256 digests of every data column of every row
group, checked on every read; hand-made files get one clear error, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import TODAY

from linkage import encode
from linkage.cli import main
from linkage.encoded import read_encoded, write_encoded
from linkage.errors import InputError
from linkage.integrity import column_digest
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret

SECRET = Secret(hashlib.sha256(b"integrity test secret").digest())
SCHEMA = Schema.from_dict(uk_person_unhardened())


def _enc(n: int = 300, party: str = "a") -> Any:
    rng = np.random.default_rng(0)
    rows = {c: [] for c in ["record_id", *SCHEMA.field_names]}
    for i in range(n):
        rows["record_id"].append(f"{party}{i}")
        rows["given_name"].append("".join(chr(65 + int(c)) for c in rng.integers(0, 26, 6)))
        rows["surname"].append("".join(chr(65 + int(c)) for c in rng.integers(0, 26, 7)))
        rows["date_of_birth"].append(f"19{40 + i % 60}-0{1 + i % 9}-1{i % 10}")
        rows["sex"].append("F")
        rows["postcode"].append("L1 8JQ")
        rows["address"].append(f"{i} High Street")
        rows["nhs_number"].append(None)
    table = pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()})
    return encode(table, SCHEMA, SECRET, party=party, today=TODAY,
                  date_formats={"date_of_birth": "%Y-%m-%d"})  # fmt: skip


def _flip_clk_bytes(path: Path, count: int = 100) -> None:
    md = pq.ParquetFile(path).metadata
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    col = md.row_group(0).column(names.index("clk"))
    start = col.data_page_offset
    end = start + col.total_compressed_size
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for pos in rng.choice(np.arange(start + 64, end - 8), count, replace=False):
        raw[int(pos)] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_filter_bytes_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    write_encoded(_enc(), p)
    read_encoded(p)  # intact: fine
    _flip_clk_bytes(p)
    raw_clk = pq.read_table(p).column("clk")  # Parquet itself reads it without complaint
    assert len(raw_clk) == 300
    with pytest.raises(InputError, match="column 'clk' of row group 0 fails its checksum"):
        read_encoded(p)


def test_match_cli_on_a_corrupted_file_is_one_error_line(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_encoded(_enc(party="a"), a)
    write_encoded(_enc(party="b"), b)
    _flip_clk_bytes(b)
    res = CliRunner().invoke(main, ["match", str(a), str(b), "-o", str(tmp_path / "l.parquet")])
    assert res.exit_code == 2
    assert "fails its checksum" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "l.parquet").exists()


def test_encode_file_writes_checksums_per_row_group(tmp_path: Path) -> None:
    from linkage.partner.pipeline import encode_file

    src = tmp_path / "in.csv"
    enc = _enc(2500)
    lines = ["record_id,given_name,surname,date_of_birth,sex,postcode,address,nhs_number"]
    for i in range(2500):
        lines.append(f"r{i},Ann{i % 97},Smith{i},1980-01-{1 + i % 28:02d},F,L1 8JQ,{i} High St,")
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.parquet"
    encode_file(src, out, SCHEMA, SECRET, party="p", today=TODAY, batch_size=1000, threads=1)
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert len(read_encoded(out)) == 2500
    assert enc is not None


def _rewrite(src: Path, dst: Path, table: pa.Table | None = None, **meta: Any) -> None:
    """A hand-made file: the table and metadata of ``src`` with changes, no new checksums."""
    t = pq.read_table(src) if table is None else table
    md = {k.decode(): v.decode() for k, v in (pq.read_metadata(src).metadata or {}).items()}
    for k, v in meta.items():
        if v is None:
            md.pop(f"linkage.{k}", None)
        else:
            md[f"linkage.{k}"] = v
    pq.write_table(t.replace_schema_metadata(md), dst)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"checksums": None}, "no checksums"),
        ({"checksums": "not json"}, "checksums are malformed"),
        ({"checksums": json.dumps({"algorithm": "md5", "row_groups": []})}, "malformed"),
        ({"record_count": "7"}, "says '7' records"),
        ({"filter_length": "abc"}, "filter_length 'abc'"),
        ({"filter_length": "1000"}, "multiple of 64"),
        # the metadata digest covers every linkage key but provenance
        ({"party": "b"}, "metadata .* fails its checksum"),
        ({"recommended_threshold": "0.2"}, "metadata .* fails its checksum"),
        ({"schema_fingerprint": "0" * 64}, "metadata .* fails its checksum"),
        ({"segments": "{}"}, "metadata .* fails its checksum"),
        ({"anything_new": "1"}, "metadata .* fails its checksum"),
        ({"created": "2001-01-01T00:00:00+00:00"}, None),
        ({"package_version": "0.0.1"}, None),
    ],
)
def test_hand_made_metadata_gets_a_clear_error(
    tmp_path: Path, change: dict[str, Any], message: str | None
) -> None:
    good, bad = tmp_path / "a.parquet", tmp_path / "bad.parquet"
    write_encoded(_enc(), good)
    _rewrite(good, bad, **change)
    if message is None:
        read_encoded(bad)
        return
    with pytest.raises(InputError, match=message):
        read_encoded(bad)


def test_checksums_made_before_the_metadata_digest_mean_re_encode(tmp_path: Path) -> None:
    good, old = tmp_path / "a.parquet", tmp_path / "old.parquet"
    write_encoded(_enc(), good)
    doc = json.loads(read_encoded(good).meta["checksums"])
    del doc["metadata"]
    _rewrite(good, old, checksums=json.dumps(doc))
    with pytest.raises(InputError, match=r"do not cover its metadata .* re-encode"):
        read_encoded(old)


def test_tampered_threshold_is_refused_in_either_order(tmp_path: Path) -> None:
    """Issue: a file whose metadata said recommended_threshold=0.2 linked every record at
    0.2 when given first (0.55 when second); edited party / created were accepted."""
    a, b, bad = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "thresh.parquet"
    write_encoded(_enc(party="a"), a)
    write_encoded(_enc(party="b"), b)
    _rewrite(a, bad, recommended_threshold="0.2")
    r = CliRunner()
    for files in ([bad, b], [b, bad]):
        out = tmp_path / "links.parquet"
        res = r.invoke(main, ["match", *map(str, files), "-o", str(out)])
        assert res.exit_code == 2, res.output
        assert res.output.count("Error:") == 1 and "thresh.parquet" in res.output
        assert "fails its checksum" in res.output and not out.exists()


def test_check_compatible_names_every_schema_property(tmp_path: Path) -> None:
    """Tables (not files) that disagree on anything the schema fixes: the files and the
    property are named, whichever comes first."""
    from linkage.encoded import EncodedTable
    from linkage.errors import CompatibilityError
    from linkage.tlu.linker import check_compatible

    a, b = _enc(50, party="a"), _enc(50, party="b")
    assert "recommended_threshold" not in a.meta  # the unhardened template recommends none
    for prop, value, words in [
        ("recommended_threshold", "0.2", "recommended threshold.*none vs 0.2|0.2 vs none"),
        ("segments", '{"fields":[]}', "filter layout"),
        ("filter_length", "2048", "filter length"),
    ]:
        odd = EncodedTable(b.table, dict(b.meta, **{prop: value}))
        for encs, names in (([a, odd], ["a.parquet", "odd.parquet"]),
                            ([odd, a], ["odd.parquet", "a.parquet"])):  # fmt: skip
            with pytest.raises(CompatibilityError, match=words) as err:
                check_compatible(encs, names, dedupe=False)
            assert "a.parquet" in str(err.value) and "odd.parquet" in str(err.value)
    both = [EncodedTable(e.table, dict(e.meta, recommended_threshold="x")) for e in (a, b)]
    with pytest.raises(InputError, match=r"a\.parquet: recommended_threshold 'x'"):
        check_compatible(both, ["a.parquet", "b.parquet"], dedupe=False)


def test_dask_client_and_workers_check_the_metadata(tmp_path: Path) -> None:
    from linkage.tlu.dask_match import _light_inputs, _read_rows

    good, bad = tmp_path / "a.parquet", tmp_path / "bad.parquet"
    write_encoded(_enc(), good)
    _rewrite(good, bad, party="z")
    assert len(_light_inputs([str(good)])[0][0]) == 300
    assert _read_rows(str(good), 0, 10).shape[0] == 10
    with pytest.raises(InputError, match=r"metadata .* fails its checksum"):
        _light_inputs([str(bad)])
    with pytest.raises(InputError, match=r"metadata .* fails its checksum"):
        _read_rows(str(bad), 0, 10)


def test_hand_made_columns_get_a_clear_error(tmp_path: Path) -> None:
    good = tmp_path / "a.parquet"
    write_encoded(_enc(), good)
    t = pq.read_table(good)
    cases = [
        (t.set_column(0, "record_id", pa.array(range(300), pa.int64())), "should hold strings"),
        (t.set_column(1, "clk", pa.array([None] * 300, t.schema.field("clk").type)), "nulls"),
        (t.slice(0, 200), "fails its checksum|says '300' records"),
        (t.set_column(2, "block_keys", pa.array([[1]] * 300, pa.list_(pa.int32()))),
         "list<uint64>"),
    ]  # fmt: skip
    for i, (table, message) in enumerate(cases):
        bad = tmp_path / f"bad{i}.parquet"
        _rewrite(good, bad, table=table)
        with pytest.raises(InputError, match=message):
            read_encoded(bad)


def test_non_utf8_metadata_is_not_a_crash(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.parquet", tmp_path / "bad.parquet"
    write_encoded(_enc(), good)
    t = pq.read_table(good)
    md = dict(pq.read_metadata(good).metadata or {})
    md[b"linkage.checksums"] = b"\xff\xfe"
    pq.write_table(t.replace_schema_metadata(md), bad)
    with pytest.raises(InputError, match="malformed"):
        read_encoded(bad)


def test_column_digest_ignores_chunking_and_offsets() -> None:
    ids = pa.array([f"id{i}" for i in range(100)])
    whole = column_digest(ids)
    assert column_digest(pa.chunked_array([ids.slice(0, 37), ids.slice(37)])) == whole
    assert column_digest(ids.slice(10, 20)) == column_digest(
        pa.array(ids.slice(10, 20).to_pylist())
    )
    assert column_digest(pa.array([f"id{i}" for i in range(99)] + ["iD99"])) != whole
    bk = pa.array([[1, 2], [], [3]], pa.list_(pa.uint64()))
    assert column_digest(bk) == column_digest(pa.chunked_array([bk.slice(0, 1), bk.slice(1)]))
    assert column_digest(bk) != column_digest(pa.array([[1], [2], [3]], pa.list_(pa.uint64())))
    clk = pa.array([b"\x00" * 8, b"\x01" * 8], pa.binary(8))
    assert column_digest(clk.slice(1)) == column_digest(pa.array([b"\x01" * 8], pa.binary(8)))
    assert column_digest(pa.array([], pa.string())) == column_digest(
        pa.chunked_array([], pa.string())
    )
