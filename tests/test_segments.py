"""Segmented layout (issue 13 item 1): schema validation, fingerprint, encoder and metadata."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from linkage.encoded import EncodedTable
from linkage.errors import InputError, SchemaError
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.segments import segments_from_meta, with_segments

ROWS = {
    "record_id": ["a", "b", "c", "d"],
    "given_name": ["Jane", "Smith", None, "Al"],
    "surname": ["Smith", "Jane", "Brown", "Brown"],
    "date_of_birth": ["1980-02-03", "1980-02-03", "1990-01-05", None],
    "sex": ["F", "F", "M", "M"],
    "postcode": ["L1 8JQ", None, "M1 1AA", "M1 1AA"],
    "address": ["1 High St", "1 High St", None, None],
    "nhs_number": [None, None, None, None],
}


def _segmented() -> Schema:
    return Schema.from_dict(with_segments(uk_person_unhardened()))


def test_fingerprint_changes_only_with_segments() -> None:
    plain = Schema.from_dict(uk_person_unhardened())
    seg = _segmented()
    assert "layout" not in plain.canonical()["filter"]
    assert seg.fingerprint != plain.fingerprint
    assert [s.bits for s in seg.segments] == [192, 192, 256, 64, 64, 128, 128]
    assert seg.segments[2].start == 384
    assert Schema.from_dict(seg.canonical()).fingerprint == seg.fingerprint


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["fields"][0].update(segment_bits=100), "$.fields[0].segment_bits"),
        (lambda d: d["fields"][0].update(segment_bits=256), "$.fields"),
        (lambda d: d["fields"][1].update(segment_bits=128, shared_key="names"), "$.fields[1]"),
        (lambda d: d["fields"][3].pop("segment_bits"), "$.fields[3].segment_bits"),
        (lambda d: d.update(hardening=[{"type": "rule90"}]), "$.hardening"),
    ],
)
def test_bad_layouts_name_the_path(change, path) -> None:  # type: ignore[no-untyped-def]
    doc = with_segments(uk_person_unhardened())
    change(doc)
    with pytest.raises(SchemaError, match=path.replace("[", r"\[").replace("$", r"\$")):
        Schema.from_dict(doc)


def test_segment_keys_refused_without_the_layout() -> None:
    doc = uk_person_unhardened()
    doc["fields"][0]["segment_bits"] = 192
    with pytest.raises(SchemaError, match=r"\$\.fields\[0\]\.segment_bits"):
        Schema.from_dict(doc)


def test_fields_stay_in_their_segments_and_swapped_names_compare(secret: Secret) -> None:
    schema = _segmented()
    enc = encode(pa.table(ROWS), schema, secret, party="p")
    segs = segments_from_meta(enc.meta)
    assert segs == schema.segments
    f = enc.filters
    assert len(f) == 4
    for s in segs:  # a field's bits stay in its segment: equal values, equal segments
        lo, hi = s.words
        same = s.field in ("date_of_birth", "sex", "address", "nhs_number")
        assert (f[0, lo:hi] == f[1, lo:hi]).all() == same, s.field
    given, surname = segs[0].words, segs[1].words
    # record a: Jane Smith; record b: Smith Jane (swapped): crosswise segments are equal
    assert (f[0, given[0] : given[1]] == f[1, surname[0] : surname[1]]).all()
    assert (f[0, surname[0] : surname[1]] == f[1, given[0] : given[1]]).all()
    assert f[0, given[0] : given[1]].any()
    # missing given name (record c) and missing date (c) leave their segments empty
    assert not f[2, given[0] : given[1]].any()
    dob = segs[2].words
    assert not f[3, dob[0] : dob[1]].any()
    assert f[2, dob[0] : dob[1]].any()


def test_malformed_segment_metadata_is_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"x\.parquet: malformed segments"):
        segments_from_meta({"segments": "[[1]]", "filter_length": "1024"}, "x.parquet")
    with pytest.raises(InputError, match="cover 128 bits"):
        segments_from_meta({"segments": '[["a",0,128,null]]', "filter_length": "1024"}, "x")


def _hardened(taps: int = 8, expansion: int = 2) -> Schema:
    doc = with_segments(uk_person_unhardened(), token_scale=0.1)
    doc["hardening"] = [{"type": "diffusion", "taps": taps, "output_bits": 1024 * expansion}]
    return Schema.from_dict(doc)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"type": "rule90"}], r"\$\.hardening\[0\]: with the segmented layout"),
        (
            [{"type": "diffusion", "output_bits": 1024}, {"type": "blip", "flip_probability": 0.1}],
            r"\$\.hardening\[1\]",
        ),
        ([{"type": "diffusion", "output_bits": 1536}], r"output_bits: .*whole multiple"),
        ([{"type": "diffusion", "taps": 64, "output_bits": 2048}], r"\$\.hardening\[0\]\.taps"),
    ],
)
def test_segment_hardening_is_one_whole_diffusion(steps, message) -> None:  # type: ignore[no-untyped-def]
    doc = with_segments(uk_person_unhardened())
    doc["hardening"] = steps
    with pytest.raises(SchemaError, match=message):
        Schema.from_dict(doc)


def test_per_segment_diffusion_keeps_fields_apart_and_names_crosswise(
    secret: Secret, other_secret: Secret
) -> None:
    from linkage.partner.harden import Hardener

    schema = _hardened()
    assert schema.output_length == 2048
    wire = schema.wire_segments
    assert [s.bits for s in wire] == [2 * s.bits for s in schema.segments]
    assert wire[-1].start + wire[-1].bits == 2048
    enc = encode(pa.table(ROWS), schema, secret, party="p")
    assert segments_from_meta(enc.meta) == wire
    f = enc.filters
    for s in wire:  # equal values stay equal, unequal ones differ: only the field's bits count
        lo, hi = s.words
        same = s.field in ("date_of_birth", "sex", "address", "nhs_number")
        assert (f[0, lo:hi] == f[1, lo:hi]).all() == same, s.field
    given, surname = wire[0].words, wire[1].words  # one map for the shared key: crosswise
    assert (f[0, given[0] : given[1]] == f[1, surname[0] : surname[1]]).all()
    assert not f[2, given[0] : given[1]].any()  # a missing value stays empty (linear map)
    # the map is block-diagonal: a bit set in one input segment reaches only its own output
    h = Hardener(schema, secret, parallel=False)
    for k, (s_in, s_out) in enumerate(zip(schema.segments, wire, strict=True)):
        x = np.zeros((1, 16), np.uint64)
        bit = s_in.start + 5
        x[0, bit // 64] = np.uint64(1) << np.uint64(bit % 64)
        y = np.unpackbits(h.apply(x).view(np.uint8), bitorder="little")
        hit = np.flatnonzero(y)
        assert hit.size and hit.min() >= s_out.start and hit.max() < s_out.start + s_out.bits, k
    other = Hardener(schema, other_secret, parallel=False)
    assert not np.array_equal(h.plan[0][1], other.plan[0][1])  # keyed by the secret


def _hardened_pair(secret: Secret) -> list[EncodedTable]:
    """ROWS as two parties' files under the per-segment diffused schema."""
    schema = _hardened()
    rows_b = dict(ROWS)
    rows_b["record_id"] = ["w", "x", "y", "z"]
    return [encode(pa.table(r), schema, secret, party=p) for r, p in ((ROWS, "a"), (rows_b, "b"))]


def test_hardened_segments_link_by_fields(secret: Secret) -> None:
    from linkage.tlu.linker import match

    res = match(_hardened_pair(secret), seed=1)
    assert res.field_scores is not None  # field-aware scoring ran on the hardened segments


def test_options_field_aware_scoring_does_not_use_are_warned(secret: Secret) -> None:
    from linkage.report.text import match_summary_lines
    from linkage.tlu.linker import match

    a, b = _hardened_pair(secret)
    notes: list[str] = []
    res = match([a, b], seed=1, threshold=0.9, solver="optimal", warn=notes.append)
    assert len(notes) == 1 and "threshold" in notes[0] and "solver 'optimal'" in notes[0]
    assert res.stats.scoring == "fields"
    assert any("field-aware scoring" in line for line in match_summary_lines(res.stats))
    notes.clear()
    match([a, b], seed=1, warn=notes.append)
    assert notes == []  # defaults: nothing to warn about
