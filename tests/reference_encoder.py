"""A plain, obviously-correct reference encoder, written from the spec in the module docstring
of :mod:`linkage.partner.encoder` and the docstring of :class:`linkage.schema.Tokeniser`.

Per-record Python loops, Python strings for q-grams, :mod:`hmac` for hashing and
``int.from_bytes`` for bit windows. It reuses the library's normalisers (tested separately in
test_normalise.py), its Soundex, and the key derivation of :class:`linkage.secret.Secret`.
Nothing here is fast; it only has to be right.

Spec points the library docstrings leave open, and how this reference reads them (the kernel
docstring of ``linkage.kernels.encode.qgram_keys`` and ``Encoder`` agree):
- an unpadded q-gram tokeniser turns a non-empty value shorter than q into one token, the
  value left-padded with U+0000 to q characters;
- "number of tokens of the value" (bit budgets) counts tokens with repeats;
- a salted field whose salt value is missing contributes nothing;
- a record none of whose fields yields a token is left out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from linkage.kernels.siphash import siphash24_reference
from linkage.partner.normalisers import DateFormat, detect_date_format, normalise, soundex
from linkage.schema import Field, Schema
from linkage.secret import Secret

PAD = "\x00"
MAX_BITS_PER_TOKEN = 256


def window_bits(length: int) -> int:
    """b = ceil(log2 L)."""
    return math.ceil(math.log2(length))


def token_positions(key: bytes, message: bytes, length: int, k: int) -> list[int]:
    """The first k accepted windows of the token's HMAC stream, block by block."""
    b = window_bits(length)
    assert (1 << b) >= length and (b == 0 or (1 << (b - 1)) < length)
    per_block = 256 // b
    out: list[int] = []
    j = 0
    while len(out) < k:
        digest = hmac.new(key, message + bytes([j]), hashlib.sha256).digest()
        x = int.from_bytes(digest, "little")
        for i in range(per_block):
            w = (x >> (b * i)) & ((1 << b) - 1)
            if w < length:
                out.append(w)
                if len(out) == k:
                    break
        j += 1
    return out


def tokens_of(f: Field, value: str) -> list[str]:
    """Tokens of one normalised value, with repeats, in order."""
    t = f.tokeniser
    if t.type == "qgram":
        if value == "":
            return []
        q = t.q
        s = PAD * (q - 1) + value + PAD * (q - 1) if t.padding else value
        if len(s) < q:
            return [PAD * (q - len(s)) + s]
        return [s[i : i + q] for i in range(len(s) - q + 1)]
    if t.type == "exact":
        return [value]
    if t.type == "date":
        y, m, d = int(value[0:4]), int(value[5:7]), int(value[8:10])
        toks = []
        for part in t.parts:
            if part == "day":
                toks.append(f"D{d:02d}")
            elif part == "month":
                toks.append(f"M{m:02d}")
            elif part == "year":
                toks.append(f"Y{y:04d}")
            elif part == "day_month":
                toks.append(f"DM{min(d, m):02d}{max(d, m):02d}")
            else:
                toks.append(f"F{y:04d}{m:02d}{d:02d}")
        return toks
    assert t.type == "numeric"
    v = int(value)
    n = t.neighbourhood
    return [str(x) for x in range(v - n, v + n + 1)]


def bits_per_token(f: Field, ntokens: int) -> int:
    if f.bits_per_token is not None:
        return f.bits_per_token
    assert f.bit_budget is not None
    k = -(-f.bit_budget // max(ntokens, 1))  # ceil
    return max(1, min(k, f.bit_budget, MAX_BITS_PER_TOKEN))


def salt_of(salt: Any, norm: Mapping[str, Sequence[str | None]], r: int) -> str | None:
    """Row r's salt: each part's block transform of its field's value, joined by U+001F;
    None when any part is missing or empty."""
    parts = []
    for p in salt.parts:
        v = norm[p.field][r]
        part = None if v is None else block_part(p.transform, v)
        if not part:
            return None
        parts.append(part)
    return "\x1f".join(parts)


def block_part(transform: str, value: str) -> str:
    if transform == "value":
        return value
    if transform == "initial":
        return value[:1]
    if transform == "soundex":
        out = soundex(pa.array([value], pa.string()))[0].as_py()
        return out or ""
    if transform == "year":
        return value[:4]
    if transform == "month":
        return value[5:7]
    if transform == "outward":
        return value[:-4]
    if transform == "sector":
        return value[:-2]
    raise ValueError(transform)


@dataclass
class Reference:
    record_ids: list[str]
    filters: np.ndarray  # (n, L/64) uint64, rows of kept records
    block_keys: list[list[int]] | None


def normalised_columns(
    schema: Schema,
    records: Mapping[str, Sequence[str | None]],
    date_formats: Mapping[str, str] | None,
    today: dt.date,
) -> dict[str, list[str | None]]:
    """Each field's normalised values (None where missing or invalid), via the library."""
    out = {}
    for f in schema.fields:
        col = pa.array(list(records[f.name]), pa.string())
        fmt = None
        if f.normaliser == "date":
            given = (date_formats or {}).get(f.name)
            fmt = DateFormat(given) if given else detect_date_format(col)
        nv = normalise(f.normaliser, col, missing=f.missing, date_format=fmt, today=today)
        out[f.name] = nv.values.to_pylist()
    return out


def reference_encode(
    schema: Schema,
    secret: Secret,
    ids: Sequence[str],
    records: Mapping[str, Sequence[str | None]],
    *,
    date_formats: Mapping[str, str] | None = None,
    today: dt.date,
) -> Reference:
    """Encode records (one list of raw values per schema field) the slow, obvious way."""
    length = schema.filter_length
    fp = schema.fingerprint
    norm = normalised_columns(schema, records, date_formats, today)
    keys = {f.name: secret.field_key(fp, f.name) for f in schema.fields}
    bkeys = {b.name: secret.block_key(fp, b.name) for b in schema.block_keys}
    kept_ids: list[str] = []
    rows: list[bytes] = []
    blocks: list[list[int]] = []
    for r, rid in enumerate(ids):
        filt = bytearray(length // 8)
        usable = False
        for f in schema.fields:
            value = norm[f.name][r]
            if value is None:
                continue
            prefix = b""
            if f.salt is not None:
                s = salt_of(f.salt, norm, r)
                if s is None:
                    continue
                sb = s.encode("utf-8")
                prefix = len(sb).to_bytes(2, "big") + sb
            toks = tokens_of(f, value)
            if not toks:
                continue
            usable = True
            k = bits_per_token(f, len(toks))
            for tok in toks:
                for p in token_positions(keys[f.name], prefix + tok.encode("utf-8"), length, k):
                    filt[p // 8] |= 1 << (p % 8)
        if not usable:
            continue
        kept_ids.append(rid)
        rows.append(bytes(filt))
        rec_blocks = []
        for b in schema.block_keys:
            parts = []
            for part in b.parts:
                v = norm[part.field][r]
                pv = block_part(part.transform, v) if v is not None else ""
                parts.append(pv)
            if any(p == "" for p in parts):
                continue
            joined = "\x1f".join(parts).encode("utf-8")
            # the spec: SipHash-2-4 under the first 16 bytes of the derived block key
            rec_blocks.append(siphash24_reference(bkeys[b.name][:16], joined))
        blocks.append(rec_blocks)
    words = length // 64
    filters = np.frombuffer(b"".join(rows), "<u8").reshape(len(rows), words).copy()
    return Reference(kept_ids, filters, blocks if schema.block_keys else None)
