"""The linkage schema: what every partner of a project encodes, and how.

A schema is a versioned JSON document shared by all partners of a linkage project. It fixes
the filter length, the hashing scheme, the fields (normaliser, tokeniser, bits per token or
bit budget, optional salt, missing-value sentinels), optional block keys and optional
hardening steps applied to every filter before it is written. Partners must use
the same schema and the same secret; the schema's *fingerprint* (SHA-256 of its canonical
form, descriptions left out) goes into every encoded file so the trusted linkage unit can
check that.

Validation errors name the JSON path (``$.fields[2].tokeniser.q``) and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkage.errors import SchemaError
from linkage.evidence import MinEvidence, parse_min_evidence
from linkage.hardening import Hardening, parse_hardening
from linkage.schema_checks import expect as _expect
from linkage.schema_checks import integer as _int
from linkage.schema_checks import obj as _obj
from linkage.schema_checks import string as _str
from linkage.segments import (
    LAYOUTS,
    Segment,
    check_layout,
    check_segment_hardening,
    wire_segments,
)

SCHEMA_VERSION = 1

NORMALISERS = ("name", "text", "date", "postcode", "nhs_number", "sex", "integer", "none")
TOKENISERS = ("qgram", "exact", "date", "numeric")
DATE_PARTS = ("day", "month", "year", "day_month", "full")
BLOCK_TRANSFORMS = ("value", "initial", "soundex", "year", "month", "outward", "sector")
HASHING = ("keyed-random",)
SALT_TRANSFORMS = BLOCK_TRANSFORMS
# Transforms that only make sense on a date field / a postcode field.
_DATE_ONLY = {"year", "month"}
_POSTCODE_ONLY = {"outward", "sector"}

MAX_FILTER_BITS = 65536
MAX_BITS_PER_TOKEN = 256


@dataclass(frozen=True)
class Tokeniser:
    """How a normalised value becomes tokens.

    - ``qgram``: character q-grams (q in 1..3), padded with ``q-1`` pad characters at both ends
      when ``padding`` is true (so "ANN" -> "_A", "AN", "NN", "N_").
    - ``exact``: the whole normalised value is one token.
    - ``date``: parts of an ISO date: ``day``, ``month``, ``year``, ``day_month`` (the unordered
      day/month pair, which survives day/month swaps) and ``full``.
    - ``numeric``: an integer value v gives the tokens v-n..v+n (``neighbourhood`` n), so close
      numbers share most tokens.
    """

    type: str
    q: int = 2
    padding: bool = True
    parts: tuple[str, ...] = ("day", "month", "year")
    neighbourhood: int = 0

    def describe(self) -> str:
        """The tokeniser in words, for summaries and reports ("2-grams padded", ...)."""
        if self.type == "qgram":
            return f"{self.q}-grams" + (" padded" if self.padding else "")
        if self.type == "date":
            return "date parts " + "/".join(self.parts)
        if self.type == "numeric":
            return f"numeric +/-{self.neighbourhood}"
        return self.type

    def canonical(self) -> dict[str, Any]:
        if self.type == "qgram":
            return {"type": "qgram", "q": self.q, "padding": self.padding}
        if self.type == "date":
            return {"type": "date", "parts": list(self.parts)}
        if self.type == "numeric":
            return {"type": "numeric", "neighbourhood": self.neighbourhood}
        return {"type": self.type}


@dataclass(frozen=True)
class SaltPart:
    """One part of a salt: a transform of another field's normalised value."""

    field: str
    transform: str = "value"

    def canonical(self) -> dict[str, Any]:
        return {"field": self.field, "transform": self.transform}


@dataclass(frozen=True)
class Salt:
    """Salt every token of a field with a per-record value taken from other fields.

    The salt is ``field``'s value under ``transform`` (``value``, ``year``, ``month``,
    ``initial``, ``soundex``, ``outward``, ``sector``: the block-key transforms), followed by
    the ``more`` parts, all joined by U+001F; a record missing any part loses the salted
    field (Chen, Schnell, Armknecht & Heng, HEALTHINF 2022: a stable per-record salt defeats
    pattern mining and graph matching; an error in a salt part loses that pair). In JSON a
    salt is one object ``{"field", "transform"}`` or a list of them; one part keeps the
    single-object canonical form, so older schemas keep their fingerprints."""

    field: str
    transform: str = "value"
    more: tuple[SaltPart, ...] = ()

    @property
    def parts(self) -> tuple[SaltPart, ...]:
        return (SaltPart(self.field, self.transform), *self.more)

    @property
    def label(self) -> str:
        """``field:transform`` of each part, joined by ``+``."""
        return "+".join(f"{p.field}:{p.transform}" for p in self.parts)

    def canonical(self) -> dict[str, Any] | list[dict[str, Any]]:
        if not self.more:
            return {"field": self.field, "transform": self.transform}
        return [p.canonical() for p in self.parts]


@dataclass(frozen=True)
class Field:
    """One schema field. Exactly one of ``bits_per_token`` and ``bit_budget`` is set."""

    name: str
    normaliser: str
    tokeniser: Tokeniser
    bits_per_token: int | None = None
    bit_budget: int | None = None
    missing: tuple[str, ...] = ()
    salt: Salt | None = None
    description: str = ""
    segment_bits: int | None = None  # with the segmented layout (linkage.segments)
    shared_key: str | None = None  # fields hashed under one key, compared crosswise

    @property
    def max_bits_per_token(self) -> int:
        """The most bit positions any one token of this field may set."""
        if self.bits_per_token is not None:
            return self.bits_per_token
        assert self.bit_budget is not None
        return min(self.bit_budget, MAX_BITS_PER_TOKEN)

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "normaliser": self.normaliser,
            "tokeniser": self.tokeniser.canonical(),
            "missing": sorted(set(self.missing)),
            "salt": self.salt.canonical() if self.salt else None,
        }
        if self.bits_per_token is not None:
            out["bits_per_token"] = self.bits_per_token
        else:
            out["bit_budget"] = self.bit_budget
        if self.segment_bits is not None:  # only when set: older schemas keep fingerprints
            out["segment_bits"] = self.segment_bits
        if self.shared_key is not None:
            out["shared_key"] = self.shared_key
        return out


@dataclass(frozen=True)
class BlockPart:
    field: str
    transform: str

    def canonical(self) -> dict[str, Any]:
        return {"field": self.field, "transform": self.transform}


@dataclass(frozen=True)
class BlockKey:
    """A block key: the parts are joined; a record with any part missing has no such key."""

    name: str
    parts: tuple[BlockPart, ...]
    description: str = ""

    def canonical(self) -> dict[str, Any]:
        return {"name": self.name, "parts": [p.canonical() for p in self.parts]}


@dataclass(frozen=True)
class Schema:
    filter_length: int
    fields: tuple[Field, ...]
    hashing: str = "keyed-random"
    block_keys: tuple[BlockKey, ...] = ()
    description: str = ""
    hardening: Hardening = field(default_factory=Hardening)
    min_evidence: MinEvidence | None = None
    layout: str = "record"
    match_threshold: float | None = None
    _fingerprint: str = field(default="", compare=False, repr=False)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read and validate a schema file (errors name the file and the JSON path)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SchemaError(f"{p}: schema file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{p}: cannot read schema file ({exc.__class__.__name__})") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(
                f"{p}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        try:
            return cls.from_dict(doc)
        except SchemaError as exc:
            raise SchemaError(f"{p}: {exc}") from None

    @classmethod
    def from_dict(cls, doc: Any) -> Schema:
        return _parse(doc)

    # -- canonical form and fingerprint -----------------------------------------------
    def canonical(self) -> dict[str, Any]:
        """The schema with defaults filled in and descriptions left out (``hardening`` only
        when there are steps, so schemas without it keep their fingerprints)."""
        out: dict[str, Any] = {
            "linkage_schema": SCHEMA_VERSION,
            "filter": {"length": self.filter_length, "hashing": self.hashing},
            "fields": [f.canonical() for f in self.fields],
            "block_keys": [b.canonical() for b in self.block_keys],
        }
        if self.layout != "record":  # only when set: older schemas keep fingerprints
            out["filter"]["layout"] = self.layout
        if self.hardening:
            out["hardening"] = self.hardening.canonical()
        if self.min_evidence is not None:  # only when set: older schemas keep fingerprints
            out["min_evidence"] = self.min_evidence.canonical()
        if self.match_threshold is not None:  # only when set: older schemas keep fingerprints
            out["match"] = {"threshold": self.match_threshold}
        return out

    @property
    def output_length(self) -> int:
        """Bits per encoded filter on the wire: ``filter_length`` after the hardening steps."""
        return self.hardening.output_length(self.filter_length)

    @property
    def segments(self) -> tuple[Segment, ...]:
        """Each field's run of bits with the segmented layout; empty for the record layout."""
        if self.layout == "record":
            return ()
        return check_layout(self.layout, self.filter_length, _segment_spec(self.fields))

    @property
    def wire_segments(self) -> tuple[Segment, ...]:
        """The segments of the written filters: :attr:`segments` after per-segment diffusion
        (each ``output_bits / filter.length`` times as long); equal to them without hardening."""
        segs = self.segments
        if not segs:
            return ()
        expansion = check_segment_hardening(self.hardening.steps, self.filter_length)
        return wire_segments(segs, expansion)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON form; equal schemas give equal fingerprints."""
        if not self._fingerprint:
            blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
            object.__setattr__(self, "_fingerprint", hashlib.sha256(blob.encode()).hexdigest())
        return self._fingerprint

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def to_json(self) -> str:
        doc = self.canonical()
        if self.description:
            doc["description"] = self.description
        for fd, f in zip(doc["fields"], self.fields, strict=True):
            if f.description:
                fd["description"] = f.description
        for bd, b in zip(doc["block_keys"], self.block_keys, strict=True):
            if b.description:
                bd["description"] = b.description
        for hd, st in zip(doc.get("hardening", []), self.hardening.steps, strict=True):
            if st.description:
                hd["description"] = st.description
        if self.min_evidence is not None and self.min_evidence.description:
            doc["min_evidence"]["description"] = self.min_evidence.description
        return json.dumps(doc, indent=2) + "\n"

    def summary(self) -> str:
        """A human summary (used by ``linkage schema check``)."""
        lines = [
            f"schema version {SCHEMA_VERSION}, fingerprint {self.fingerprint[:16]}",
            f"filter: {self.filter_length} bits, hashing {self.hashing}"
            + (f", layout {self.layout}" if self.layout != "record" else ""),
            f"{len(self.fields)} fields:",
        ]
        for f in self.fields:
            tok = f.tokeniser.describe()
            bits = (
                f"{f.bits_per_token} bits/token"
                if f.bits_per_token is not None
                else f"budget {f.bit_budget} bits"
            )
            salt = f", salted by {f.salt.label}" if f.salt else ""
            seg = f", segment {f.segment_bits} bits" if f.segment_bits else ""
            seg += f" (key {f.shared_key})" if f.shared_key else ""
            lines.append(f"  {f.name:<16} {f.normaliser:<11} {tok:<28} {bits}{salt}{seg}")
        if self.block_keys:
            lines.append(f"{len(self.block_keys)} block keys:")
            for b in self.block_keys:
                parts = " + ".join(f"{p.transform}({p.field})" for p in b.parts)
                lines.append(f"  {b.name:<24} {parts}")
        else:
            lines.append("no block keys")
        if self.min_evidence is not None:
            lines.append(self.min_evidence.summary())
        else:
            lines.append(
                "min_evidence: none (a record with any one usable field can be linked; "
                "see docs/schema.md)"
            )
        if self.match_threshold is not None:
            lines.append(f"recommended match threshold: {self.match_threshold:g}")
        if self.hardening:
            length = self.filter_length
            lines.append(f"{len(self.hardening.steps)} hardening steps:")
            for st in self.hardening.steps:
                out = st.output_length(length)
                params = {k: v for k, v in st.canonical().items() if k != "type"}
                args = ", ".join(f"{k}={v}" for k, v in params.items())
                lines.append(f"  {st.type:<10} {args:<32} {length} -> {out} bits")
                length = out
        return "\n".join(lines)


# -- parsing ------------------------------------------------------------------------------


def _name(v: Any, path: str) -> str:
    s = _str(v, path)
    _expect(
        s != "" and s.replace("_", "").isalnum() and s.isascii(),
        path,
        "expected a name of letters, digits and underscores",
    )
    return s


def _parse(doc: Any) -> Schema:
    top = _obj(
        doc,
        "$",
        {
            "linkage_schema",
            "description",
            "filter",
            "fields",
            "block_keys",
            "hardening",
            "min_evidence",
            "match",
        },
    )
    _expect("linkage_schema" in top, "$.linkage_schema", "missing (expected 1)")
    _expect(
        top["linkage_schema"] == SCHEMA_VERSION,
        "$.linkage_schema",
        f"unsupported schema version {top['linkage_schema']!r} (this linkage reads version "
        f"{SCHEMA_VERSION})",
    )
    filt = _obj(top.get("filter", {}), "$.filter", {"length", "hashing", "layout", "description"})
    length = _int(filt.get("length", 1024), "$.filter.length", 64, MAX_FILTER_BITS)
    _expect(length % 64 == 0, "$.filter.length", f"expected a multiple of 64, got {length}")
    hashing = _str(filt.get("hashing", "keyed-random"), "$.filter.hashing", HASHING)
    layout = _str(filt.get("layout", "record"), "$.filter.layout", LAYOUTS)

    _expect("fields" in top, "$.fields", "missing (expected a list of fields)")
    raw_fields = top["fields"]
    _expect(
        isinstance(raw_fields, list) and len(raw_fields) > 0,
        "$.fields",
        "expected a non-empty list of fields",
    )
    fields: list[Field] = []
    seen: set[str] = set()
    for i, fd in enumerate(raw_fields):
        f = _parse_field(fd, f"$.fields[{i}]")
        _expect(f.name not in seen, f"$.fields[{i}].name", f"duplicate field name {f.name!r}")
        seen.add(f.name)
        fields.append(f)
    by_name = {f.name: f for f in fields}
    for i, f in enumerate(fields):
        if f.salt is None:
            continue
        for j, part in enumerate(f.salt.parts):
            sp = f"$.fields[{i}].salt" + (f"[{j}]" if f.salt.more else "")
            fp = f"{sp}.field"
            _expect(part.field in by_name, fp, f"unknown field {part.field!r}")
            _expect(part.field != f.name, fp, "a field cannot salt itself")
            src = by_name[part.field]
            _expect(src.salt is None, fp, f"salt field {src.name!r} is itself salted")
            if part.transform in _DATE_ONLY:
                _expect(
                    src.normaliser == "date",
                    f"{sp}.transform",
                    f"transform {part.transform!r} needs a date field",
                )
            if part.transform in _POSTCODE_ONLY:
                _expect(
                    src.normaliser == "postcode",
                    f"{sp}.transform",
                    f"transform {part.transform!r} needs a postcode field",
                )

    blocks: list[BlockKey] = []
    raw_blocks = top.get("block_keys", [])
    _expect(isinstance(raw_blocks, list), "$.block_keys", "expected a list")
    bseen: set[str] = set()
    for i, bd in enumerate(raw_blocks):
        path = f"$.block_keys[{i}]"
        bo = _obj(bd, path, {"name", "parts", "description"})
        _expect("name" in bo, f"{path}.name", "missing")
        bname = _name(bo["name"], f"{path}.name")
        _expect(bname not in bseen, f"{path}.name", f"duplicate block key name {bname!r}")
        bseen.add(bname)
        rp = bo.get("parts")
        _expect(isinstance(rp, list) and len(rp) > 0, f"{path}.parts", "expected a non-empty list")
        parts = []
        for j, pd in enumerate(rp):  # type: ignore[arg-type]
            pp = f"{path}.parts[{j}]"
            po = _obj(pd, pp, {"field", "transform"})
            _expect("field" in po, f"{pp}.field", "missing")
            fname = _str(po["field"], f"{pp}.field")
            _expect(fname in by_name, f"{pp}.field", f"unknown field {fname!r}")
            tr = _str(po.get("transform", "value"), f"{pp}.transform", BLOCK_TRANSFORMS)
            norm = by_name[fname].normaliser
            if tr in _DATE_ONLY:
                _expect(norm == "date", f"{pp}.transform", f"{tr!r} needs a date field")
            if tr in _POSTCODE_ONLY:
                _expect(norm == "postcode", f"{pp}.transform", f"{tr!r} needs a postcode field")
            parts.append(BlockPart(fname, tr))
        blocks.append(BlockKey(bname, tuple(parts), str(bo.get("description", ""))))
    desc = top.get("description", "")
    _expect(isinstance(desc, str), "$.description", "expected a string")
    hardening = parse_hardening(top.get("hardening", []), length, MAX_FILTER_BITS)
    segs = check_layout(layout, length, _segment_spec(fields))
    if segs:
        check_segment_hardening(hardening.steps, length, [sg.bits for sg in segs])
    evidence = None
    if top.get("min_evidence") is not None:
        evidence = parse_min_evidence(top["min_evidence"], [f.name for f in fields])
    threshold = None
    if top.get("match") is not None:
        mo = _obj(top["match"], "$.match", {"threshold", "description"})
        _expect("threshold" in mo, "$.match.threshold", "missing (a number in 0..1)")
        t = mo["threshold"]
        _expect(
            isinstance(t, int | float) and not isinstance(t, bool) and 0.0 <= t <= 1.0,
            "$.match.threshold",
            f"expected a number in 0..1, got {t!r}",
        )
        threshold = float(t)
    return Schema(
        length, tuple(fields), hashing, tuple(blocks), desc, hardening, evidence, layout, threshold
    )


def _segment_spec(
    fields: tuple[Field, ...] | list[Field],
) -> list[tuple[str, int | None, str | None, Any]]:
    return [(f.name, f.segment_bits, f.shared_key, f.tokeniser.canonical()) for f in fields]


def _parse_field(fd: Any, path: str) -> Field:
    fo = _obj(
        fd,
        path,
        {
            "name",
            "normaliser",
            "tokeniser",
            "bits_per_token",
            "bit_budget",
            "missing",
            "salt",
            "description",
            "segment_bits",
            "shared_key",
        },
    )
    _expect("name" in fo, f"{path}.name", "missing")
    name = _name(fo["name"], f"{path}.name")
    _expect("normaliser" in fo, f"{path}.normaliser", f"missing (one of {', '.join(NORMALISERS)})")
    norm = _str(fo["normaliser"], f"{path}.normaliser", NORMALISERS)
    tok = _parse_tokeniser(fo.get("tokeniser", {"type": "qgram"}), f"{path}.tokeniser")
    if tok.type == "date":
        _expect(norm == "date", f"{path}.tokeniser.type", "'date' tokens need normaliser 'date'")
    if tok.type == "numeric":
        _expect(
            norm == "integer",
            f"{path}.tokeniser.type",
            "'numeric' tokens need normaliser 'integer'",
        )
    bpt, budget = fo.get("bits_per_token"), fo.get("bit_budget")
    _expect(
        (bpt is None) != (budget is None),
        path,
        "expected exactly one of bits_per_token and bit_budget",
    )
    if bpt is not None:
        bpt = _int(bpt, f"{path}.bits_per_token", 1, MAX_BITS_PER_TOKEN)
    if budget is not None:
        budget = _int(budget, f"{path}.bit_budget", 1, MAX_FILTER_BITS)
    miss = fo.get("missing", [])
    _expect(isinstance(miss, list), f"{path}.missing", "expected a list of strings")
    for j, m in enumerate(miss):
        _str(m, f"{path}.missing[{j}]")
    salt = _parse_salt(fo["salt"], f"{path}.salt") if fo.get("salt") is not None else None
    desc = fo.get("description", "")
    _expect(isinstance(desc, str), f"{path}.description", "expected a string")
    seg = fo.get("segment_bits")
    if seg is not None:
        seg = _int(seg, f"{path}.segment_bits", 64, MAX_FILTER_BITS)
    shared = fo.get("shared_key")
    if shared is not None:
        shared = _name(shared, f"{path}.shared_key")
    return Field(name, norm, tok, bpt, budget, tuple(miss), salt, desc, seg, shared)


def _parse_salt(sd: Any, path: str) -> Salt:
    """One salt part (an object) or several (a list of objects, joined in order)."""
    many = isinstance(sd, list)
    if many:
        _expect(len(sd) > 0, path, "expected a non-empty list of salt parts")
    parts = []
    for j, pd in enumerate(sd if many else [sd]):
        pp = f"{path}[{j}]" if many else path
        so = _obj(pd, pp, {"field", "transform"})
        _expect("field" in so, f"{pp}.field", "missing")
        part = SaltPart(
            _str(so["field"], f"{pp}.field"),
            _str(so.get("transform", "value"), f"{pp}.transform", SALT_TRANSFORMS),
        )
        _expect(part not in parts, pp, "duplicate salt part")
        parts.append(part)
    return Salt(parts[0].field, parts[0].transform, tuple(parts[1:]))


def _parse_tokeniser(td: Any, path: str) -> Tokeniser:
    if isinstance(td, str):
        td = {"type": td}
    to = _obj(td, path, {"type", "q", "padding", "parts", "neighbourhood"})
    typ = _str(to.get("type", "qgram"), f"{path}.type", TOKENISERS)
    if typ == "qgram":
        q = _int(to.get("q", 2), f"{path}.q", 1, 3)
        pad = to.get("padding", True)
        _expect(isinstance(pad, bool), f"{path}.padding", f"expected true or false, got {pad!r}")
        return Tokeniser("qgram", q=q, padding=pad)
    if typ == "date":
        parts = to.get("parts", ["day", "month", "year"])
        _expect(
            isinstance(parts, list) and len(parts) > 0, f"{path}.parts", "expected a non-empty list"
        )
        for j, p in enumerate(parts):
            _str(p, f"{path}.parts[{j}]", DATE_PARTS)
        _expect(len(set(parts)) == len(parts), f"{path}.parts", "duplicate date part")
        return Tokeniser("date", parts=tuple(parts))
    if typ == "numeric":
        n = _int(to.get("neighbourhood", 1), f"{path}.neighbourhood", 0, 100)
        return Tokeniser("numeric", neighbourhood=n)
    return Tokeniser("exact")


__all__ = ["Schema"]
