"""Segmented filter layout: each field hashed into its own run of bits (shared contract).

With ``"filter": {"layout": "segments"}`` every schema field has ``segment_bits`` (a multiple
of 64; together exactly ``filter.length``) and its tokens' positions are drawn within its own
segment, in schema order: field 0 takes bits ``0 .. s0-1``, field 1 the next ``s1`` bits, and
so on. The record-level Dice of the whole filter stays usable for candidate generation, and
the trusted linkage unit can also compare field by field (Dice of each segment), which is what
Fellegi-Sunter scoring needs (Fellegi & Sunter, JASA 1969; field-level Bloom filters:
Schnell, Bachteler & Reiher 2009; record-level filters with per-field budgets: Durham et al.,
TKDE 2014).

Fields with the same ``shared_key`` (e.g. given name and surname) are hashed under one key
into segments of equal length, so the same token sets the same offsets in either segment and
the linkage unit can compare them crosswise: a record with given name and surname swapped
still matches. The layout (field names, offsets, lengths, shared keys; never a value) is part
of the schema fingerprint and is written into every encoded file's metadata
(``linkage.segments``), so the linkage unit reads it without the schema.

Hardening with segments: one ``diffusion`` step, run **per segment** (Armknecht, Heng &
Schnell, PoPETs 2023, applied to each field's run of bits): segment ``s`` of ``b`` bits becomes
``b * e`` bits on the wire (``e = output_bits / filter.length``, a whole number), each the XOR
of ``taps`` keyed-random bits of that segment only. The map is linear and block-diagonal, so
identical field values stay identical (exact agreement survives) and a field's similarity
depends on that field alone; fields sharing a key share one map, so crosswise comparison
survives too. The file's metadata records the wire layout (:func:`wire_segments`). Other
hardening steps with segments are refused (they mix fields or need per-segment keys they do
not have). See docs/quality.md and docs/privacy.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linkage.errors import InputError, SchemaError

__all__ = [
    "LAYOUTS",
    "Segment",
    "check_layout",
    "check_segment_hardening",
    "segments_from_meta",
    "segments_meta",
    "wire_segments",
]

LAYOUTS = ("record", "segments")
META_KEY = "segments"


@dataclass(frozen=True)
class Segment:
    """One field's run of bits: ``start .. start + bits - 1`` of the filter (bits a multiple
    of 64, so word ``start // 64`` up to ``(start + bits) // 64``); ``shared_key`` names the
    key group (fields compared crosswise), None for a field with its own key."""

    field: str
    start: int
    bits: int
    shared_key: str | None = None

    @property
    def words(self) -> tuple[int, int]:
        """First word and one past the last word of the segment in a (n, L/64) filter."""
        return self.start // 64, (self.start + self.bits) // 64


def check_layout(
    layout: str,
    filter_length: int,
    fields: Sequence[tuple[str, int | None, str | None, Any]],
) -> tuple[Segment, ...]:
    """Validate a layout; ``fields``: (name, segment_bits, shared_key, tokeniser canonical)
    in schema order. Returns the segments (empty for ``record``). Raises
    :class:`SchemaError` naming the JSON path. Hardening is checked by
    :func:`check_segment_hardening`."""
    if layout == "record":
        for i, (_, bits, shared, _) in enumerate(fields):
            if bits is not None:
                raise SchemaError(
                    f'$.fields[{i}].segment_bits: only with "filter": {{"layout": "segments"}}'
                )
            if shared is not None:
                raise SchemaError(
                    f'$.fields[{i}].shared_key: only with "filter": {{"layout": "segments"}}'
                )
        return ()
    out, start = [], 0
    groups: dict[str, tuple[int, int, Any]] = {}
    for i, (name, bits, shared, tok) in enumerate(fields):
        path = f"$.fields[{i}]"
        if bits is None:
            raise SchemaError(f"{path}.segment_bits: missing (every field needs one with segments)")
        if bits % 64:
            raise SchemaError(f"{path}.segment_bits: expected a multiple of 64, got {bits}")
        if shared is not None:
            if shared in groups:
                j, jbits, jtok = groups[shared]
                if jbits != bits:
                    raise SchemaError(
                        f"{path}.segment_bits: fields sharing key {shared!r} need equal "
                        f"segments ({bits} here, {jbits} in $.fields[{j}])"
                    )
                if jtok != tok:
                    raise SchemaError(
                        f"{path}.tokeniser: fields sharing key {shared!r} need the same "
                        f"tokeniser as $.fields[{j}]"
                    )
            else:
                groups[shared] = (i, bits, tok)
        out.append(Segment(name, start, bits, shared))
        start += bits
    if start != filter_length:
        raise SchemaError(
            f"$.fields: segment_bits add up to {start}, expected filter.length {filter_length}"
        )
    return tuple(out)


def check_segment_hardening(
    steps: Sequence[Any], filter_length: int, seg_bits: Sequence[int] = ()
) -> int:
    """The wire expansion ``e`` of a segmented schema's hardening ``steps`` (1 without
    steps): only one ``diffusion`` step whose ``output_bits`` is ``e * filter_length``, with
    fewer ``taps`` than the smallest of ``seg_bits`` (the segments' lengths). Raises
    :class:`SchemaError` naming the JSON path."""
    if not steps:
        return 1
    bad = [i for i, st in enumerate(steps) if st.type != "diffusion"]
    if bad or len(steps) > 1:
        i = bad[0] if bad else 1
        raise SchemaError(
            f"$.hardening[{i}]: with the segmented layout the only hardening is one "
            "'diffusion' step, run per segment (other steps would mix fields or need keys "
            "per segment); use layout 'record' for other steps"
        )
    out = int(steps[0].output_bits)
    taps, smallest = int(steps[0].taps), min(seg_bits) if seg_bits else filter_length
    if taps >= smallest:
        raise SchemaError(
            f"$.hardening[0].taps: {taps} taps with a {smallest}-bit segment would make every "
            "output bit of that segment the parity of the whole segment (the field would be "
            f"lost); use fewer than {smallest} (8 is the template's)"
        )
    if out % filter_length:
        raise SchemaError(
            f"$.hardening[0].output_bits: with the segmented layout it must be a whole "
            f"multiple of filter.length ({filter_length}): each segment grows by the same "
            f"factor; got {out}"
        )
    return out // filter_length


def wire_segments(segments: Sequence[Segment], expansion: int) -> tuple[Segment, ...]:
    """The layout of the written filters: every segment ``expansion`` times as long, in the
    same order (per-segment diffusion, :func:`check_segment_hardening`)."""
    return tuple(
        Segment(s.field, s.start * expansion, s.bits * expansion, s.shared_key) for s in segments
    )


def segments_meta(segments: Sequence[Segment]) -> dict[str, str]:
    """File metadata for a layout: ``{"segments": JSON}`` (empty for the record layout)."""
    if not segments:
        return {}
    doc = [[s.field, s.start, s.bits, s.shared_key] for s in segments]
    return {META_KEY: json.dumps(doc, separators=(",", ":"))}


def segments_from_meta(meta: Mapping[str, str], name: str = "input") -> tuple[Segment, ...]:
    """The layout an encoded file's metadata records (empty: record layout). Raises
    :class:`InputError` naming ``name`` when the entry is malformed."""
    raw = meta.get(META_KEY)
    if not raw:
        return ()
    try:
        doc = json.loads(raw)
        segs = tuple(
            Segment(str(f), int(s), int(b), None if k is None else str(k)) for f, s, b, k in doc
        )
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{name}: malformed segments metadata ({exc.__class__.__name__})"
        ) from None
    length = int(meta.get("filter_length", "0"))
    end = 0
    for s in segs:
        if s.start != end or s.bits <= 0 or s.bits % 64:
            raise InputError(f"{name}: malformed segments metadata (segment {s.field!r})")
        end += s.bits
    if end != length:
        raise InputError(f"{name}: segments cover {end} bits, the filters have {length}")
    return segs


UK_PERSON_SEGMENTS = {
    "given_name": 192,
    "surname": 192,
    "date_of_birth": 256,
    "sex": 64,
    "postcode": 64,
    "address": 128,
    "nhs_number": 128,
}
"""Segment bits for the uk-person template's fields (1024 in all): each segment about 30-45%
full with the template's bits per token."""

UK_PERSON_SHARED = {"given_name": "names", "surname": "names"}
"""Given name and surname share a key, so a swapped pair still compares."""


def with_segments(
    doc: Mapping[str, Any],
    bits: Mapping[str, int] | None = None,
    shared: Mapping[str, str] | None = None,
    token_scale: float = 0.5,
) -> dict[str, Any]:
    """A copy of schema document ``doc`` with the segmented layout: ``bits`` per field
    (default :data:`UK_PERSON_SEGMENTS`) and ``shared`` keys (default
    :data:`UK_PERSON_SHARED`); each field's ``bits_per_token`` / ``bit_budget`` is scaled by
    ``token_scale`` (rounded, at least 1): a segment about a quarter full keeps the Dice of
    unrelated values near 0.25, well below that of a value with a typo, while the fields'
    relative weights in the whole-filter Dice stay as they were. Fields not in ``bits`` raise
    KeyError."""
    out = json.loads(json.dumps(doc))
    bits = UK_PERSON_SEGMENTS if bits is None else bits
    shared = UK_PERSON_SHARED if shared is None else shared
    out.setdefault("filter", {})["layout"] = "segments"
    for f in out["fields"]:
        for key in ("bits_per_token", "bit_budget"):
            if f.get(key) is not None:
                f[key] = max(1, round(f[key] * token_scale))
        f["segment_bits"] = bits[f["name"]]
        if f["name"] in shared:
            f["shared_key"] = shared[f["name"]]
    return out
