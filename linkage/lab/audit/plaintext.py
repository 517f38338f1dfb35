"""The attacker's plaintext tools: normalised values, the schema's tokens, and Bloom filters
under the attacker's *own* random key.

The attacker knows the schema and the tokenisation (see the partner encoder's module doc):
q-grams padded with U+0000, date parts ``D05``/``M12``/``Y1990``/``DM0512``/``F19901205``,
exact values, numeric neighbourhoods, ``bits_per_token`` or ``ceil(bit_budget / tokens)``
bits per token, salting (a salted token is a distinct token per salt value), and the
filter layout (``linkage.segments``: with segments each field's positions lie in its own
segment, fields with one ``shared_key`` share a key, and diffusion runs per segment). The
attacker does not know the key, so :func:`simulate_filters` draws positions from its own
random key: the filters differ bit by bit from the real ones, but their similarities and
popcounts follow the same law (this is what graph matching exploits; Vidanage et al., CIKM
2020, compute plaintext similarities the same way). The partner's encoder itself is not
reused (the attack modules never import it: tests/test_boundaries.py); the mirror is checked
against it in tests/test_audit_segmented_sim.py.

No import of ``linkage.secret`` or the partner encoder here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PAD = "\x00"
SALT_SEP = "\x1e"


@dataclass(frozen=True)
class Plain:
    """Normalised values of ``n`` records: ``values[field]`` is an object array of str or None
    (missing/invalid), in row order."""

    values: dict[str, np.ndarray]
    n: int

    def take(self, rows: np.ndarray) -> Plain:
        rows = np.asarray(rows, np.int64)
        return Plain({k: v[rows] for k, v in self.values.items()}, len(rows))

    def concat(self, other: Plain) -> Plain:
        return Plain(
            {k: np.concatenate([v, other.values[k]]) for k, v in self.values.items()},
            self.n + other.n,
        )

    def identity(self) -> np.ndarray:
        """One string per record: all field values joined (equal strings = same identity)."""
        cols = [self.values[k] for k in sorted(self.values)]
        out = np.empty(self.n, object)
        for i in range(self.n):
            out[i] = "\x1f".join("" if c[i] is None else c[i] for c in cols)
        return out


def normalise_table(
    table: pa.Table,
    schema: Any,
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    *,
    only_mapped: bool = False,
) -> Plain:
    """Normalise each schema field's column (``columns`` maps field -> column name, else the
    field's own name; ``only_mapped``: a field not in ``columns`` has no column) with the
    field's normaliser and missing-value sentinels: what the partner hashed. A field without
    a column is missing on every row (callers check the mapping first). Date and timestamp
    columns (Parquet) are read as ISO dates whatever ``date_formats`` says."""
    import linkage

    columns = dict(columns or {})
    date_formats = dict(date_formats or {})
    out = {}
    for f in schema.fields:
        col = columns.get(f.name, None if only_mapped else f.name)
        if col is None or col not in table.column_names:
            out[f.name] = np.full(table.num_rows, None, object)
            continue
        raw = table.column(col).combine_chunks()
        typed = pa.types.is_date(raw.type) or pa.types.is_timestamp(raw.type)
        arr = pc.strftime(raw, format="%Y-%m-%d") if typed else raw.cast(pa.string())
        fmt = None if typed else date_formats.get(f.name)
        if fmt is not None:  # to ISO first (the attacker needs no partner-side parser)
            when = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
            arr = pc.strftime(when, format="%Y-%m-%d")
        nv = linkage.normalise(f.normaliser, arr, missing=f.missing)
        vals = np.array(nv.values.to_pylist(), dtype=object)
        vals[nv.status != 0] = None
        out[f.name] = vals
    return Plain(out, table.num_rows)


_SOUNDEX = {c: d for d, cs in
            {"1": "BFPV", "2": "CGJKQSXZ", "3": "DT", "4": "L", "5": "MN", "6": "R"}.items()
            for c in cs}  # fmt: skip


def soundex(name: str) -> str | None:
    """American Soundex of an upper-case name (H and W do not separate equal codes)."""
    letters = [c for c in name if "A" <= c <= "Z"]
    if not letters:
        return None
    out, last = letters[0], _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if code and code != last:
            out += code
        if c not in "HW":
            last = code
    return (out + "000")[:4]


def part_of(transform: str, v: str | None) -> str | None:
    """A block-key / salt transform of one normalised value (None: no part), as the partner
    computes it (the schema is public)."""
    if v is None or v == "":
        return None
    if transform == "value":
        return v
    if transform == "initial":
        return v[:1]
    if transform == "soundex":
        return soundex(v)
    if transform == "year":
        return v[:4]
    if transform == "month":
        return v[5:7]
    if transform == "outward":
        return v[:-4] or None
    return v[:-2] or None  # sector


def salt_of(schema: Any, f: Any, plain: Plain) -> np.ndarray | None:
    """The salt value of each record for field ``f`` (None: unsalted field)."""
    if f.salt is None:
        return None
    cols = [[part_of(p.transform, v) for v in plain.values[p.field]] for p in f.salt.parts]
    out = np.full(plain.n, None, object)
    for i, parts in enumerate(zip(*cols, strict=True)):
        if all(p is not None for p in parts):
            out[i] = "\x1f".join(parts)
    return out


def value_tokens(tok: Any, value: str) -> list[str]:
    """The tokens of one normalised value under tokeniser ``tok`` (repeats kept)."""
    t = tok.type
    if t == "qgram":
        q = tok.q
        if tok.padding:
            s = PAD * (q - 1) + value + PAD * (q - 1)
        elif len(value) < q:
            return [value.rjust(q, PAD)]
        else:
            s = value
        return [s[i : i + q] for i in range(len(s) - q + 1)]
    if t == "exact":
        return [value]
    if t == "date":
        y, m, d = int(value[:4]), int(value[5:7]), int(value[8:10])
        out = []
        for part in tok.parts:
            if part == "day":
                out.append(f"D{d:02d}")
            elif part == "month":
                out.append(f"M{m:02d}")
            elif part == "year":
                out.append(f"Y{y:04d}")
            elif part == "day_month":
                out.append(f"DM{min(d, m):02d}{max(d, m):02d}")
            else:
                out.append(f"F{y:04d}{m:02d}{d:02d}")
        return out
    v = int(value)
    n = tok.neighbourhood
    return [str(v + i) for i in range(-n, n + 1)]


def bits_for(f: Any, ntok: int) -> int:
    """Bits per token of field ``f`` for a value with ``ntok`` tokens."""
    if f.bits_per_token is not None:
        return int(f.bits_per_token)
    return int(min(max(math.ceil(f.bit_budget / max(ntok, 1)), 1), 256))


def field_units(
    schema: Any, f: Any, plain: Plain
) -> tuple[list[tuple[str, ...]], np.ndarray, list[int]]:
    """Distinct (salted) token tuples of field ``f``: (units, unit_of_row (-1: none), k per unit).

    A salted token is ``salt + U+001E + token`` (a distinct token per salt value)."""
    vals = plain.values[f.name]
    salts = salt_of(schema, f, plain)
    index: dict[tuple[str | None, str], int] = {}
    units: list[tuple[str, ...]] = []
    ks: list[int] = []
    unit_of_row = np.full(plain.n, -1, np.int64)
    for i in range(plain.n):
        v = vals[i]
        if v is None:
            continue
        s = None if salts is None else salts[i]
        if salts is not None and s is None:
            continue
        key = (s, v)
        u = index.get(key)
        if u is None:
            toks = value_tokens(f.tokeniser, v)
            if not toks:
                continue
            ks.append(bits_for(f, len(toks)))
            if s is not None:
                toks = [s + SALT_SEP + t for t in toks]
            u = len(units)
            index[key] = u
            units.append(tuple(toks))
        unit_of_row[i] = u
    return units, unit_of_row, ks


def _positions(label: bytes, k: int, length: int) -> np.ndarray:
    """k pseudo-random positions in [0, length) from BLAKE2b of ``label`` (attacker's key)."""
    need = k
    out: list[np.ndarray] = []
    j = 0
    while need > 0:
        d = hashlib.blake2b(label + bytes([j]), digest_size=64).digest()
        w = np.frombuffer(d, np.uint32).astype(np.uint64)
        p = (w * np.uint64(length)) >> np.uint64(32)  # Lemire's multiply-shift, any length
        out.append(p[:need].astype(np.int64))
        need -= len(out[-1])
        j += 1
    return np.concatenate(out)


def _field_span(schema: Any, f: Any) -> tuple[str, int, int]:
    """(key label, first bit, bits) of field ``f``'s positions: its own key over the whole
    filter with the record layout; with the segmented layout (:mod:`linkage.segments`) its
    segment, under its shared key group's label when it has one (fields sharing a key set the
    same offsets in their equal segments, as the partner's ``segmented.hash_key`` does)."""
    for seg in getattr(schema, "segments", ()):
        if seg.field == f.name:
            label = f.name if seg.shared_key is None else "shared:" + seg.shared_key
            return label, int(seg.start), int(seg.bits)
    return f.name, 0, int(schema.filter_length)


def simulate_filters(plain: Plain, schema: Any, seed: int = 0) -> np.ndarray:
    """(n, L) bool Bloom filters of the plaintext under the attacker's own random key: the
    schema's tokens and bits per token, positions from BLAKE2b keyed by ``seed``, then the
    schema's hardening steps under the attacker's own key (:func:`harden_own_key`; L is then
    the schema's output length). The layout is the schema's (public): with segments each
    field's positions lie in its own segment, fields with one ``shared_key`` share their
    positions' key, and diffusion runs per segment, so the filters are what the partner's
    encoder writes under another secret."""
    length = schema.filter_length
    x = np.zeros((plain.n, length), bool)
    key = seed.to_bytes(8, "little", signed=False)
    for f in schema.fields:
        units, uor, ks = field_units(schema, f, plain)
        if not units:
            continue
        name, start, span = _field_span(schema, f)
        ubits = np.zeros((len(units), length), bool)
        cache: dict[str, np.ndarray] = {}
        for u, (toks, k) in enumerate(zip(units, ks, strict=True)):
            for t in set(toks):
                pos = cache.get(t)
                if pos is None or len(pos) < k:
                    label = key + name.encode() + b"\x00" + t.encode("utf-8")
                    kk = max(k, f.bits_per_token or 0)
                    pos = cache[t] = _positions(label, kk, span) + start
                ubits[u, pos[:k]] = True
        has = uor >= 0
        x[has] |= ubits[uor[has]]
    return harden_own_key(x, schema, seed)


def simulate_averaged(plain: Plain, schema: Any, seed: int = 0, keys: int = 4) -> np.ndarray:
    """(n, keys * L) bool: :func:`simulate_filters` under ``keys`` independent own keys, side
    by side. Dice over the concatenation is the (popcount-weighted) mean of the per-key Dice,
    so the attacker's similarity for a pair approaches its expectation over keys: the noise that
    hash collisions and keyed hardening (diffusion taps, BLIP coins) add on the attacker's side
    falls by about sqrt(keys), while the encoded side keeps the partner's one key. Measured
    (2,000 records): the correlation of the attacker's and the partner's pairwise Dice on a
    clkhash-like CLK goes from 0.87 to 0.92 with 4 keys; on sparse filters diffused with 2
    taps from 0.58 to 0.71. Raises ValueError for ``keys`` < 1."""
    if keys < 1:
        raise ValueError(f"keys must be >= 1, got {keys}")
    return np.concatenate([simulate_filters(plain, schema, seed + 7919 * k) for k in range(keys)],
                          axis=1)  # fmt: skip


def pack(bits: np.ndarray) -> np.ndarray:
    """(n, L) bool -> (n, L/64) uint64 (bit p = word p // 64, bit p % 64); see :func:`unpack`."""
    b = np.packbits(np.ascontiguousarray(bits, bool), axis=1, bitorder="little")
    return np.ascontiguousarray(b).view("<u8").astype(np.uint64)


def harden_own_key(bits: np.ndarray, schema: Any, seed: int = 0) -> np.ndarray:
    """The schema's hardening steps (public: they are in the schema) applied to (n, L) bool
    filters under the attacker's *own* random key: its own balancing permutation, diffusion
    taps and BLIP coins. The output differs bit by bit from the partner's, but the
    similarities between records follow the same law, which is what graph matching needs
    (Armknecht, Heng & Schnell, PoPETs 2023, attack diffusion the same way). Kernels:
    :mod:`linkage.kernels.harden`. -> (n, output_length) bool."""
    steps = getattr(getattr(schema, "hardening", None), "steps", ())
    if not steps:
        return bits
    from linkage.kernels import harden as hk

    x = pack(bits)
    for i, st in enumerate(steps):
        key = hashlib.sha256(
            b"linkage audit attacker key" + bytes([i]) + seed.to_bytes(8, "little")
        ).digest()
        length = 64 * x.shape[1]
        if st.type == "balance":
            x = hk.balance(x, hk.key_permutation(key, 2 * length) if st.permute else None)
        elif st.type == "xor_fold":
            x = hk.xor_fold(x)
        elif st.type == "rule90":
            x = hk.rule90(x, st.steps)
        elif st.type == "diffusion":
            x = hk.diffusion(x, own_taps(schema, st, key, length))
        elif st.type == "blip":
            coins = np.random.default_rng(int.from_bytes(key[:8], "little")).integers(
                0, 2**63, size=len(x), dtype=np.int64
            )
            x = hk.blip(x, st.flip, coins.astype(np.uint64))
    return unpack(x)


def own_taps(schema: Any, st: Any, key: bytes, length: int) -> np.ndarray:
    """(output_bits, taps) int64 taps of diffusion step ``st`` on ``length``-bit filters under
    the attacker's step ``key``: one keyed map over the whole filter (record layout), or per
    segment with the segmented layout, as the partner's ``harden.segment_taps``: segment s of
    b bits becomes ``b * output_bits / length`` bits, each the XOR of taps of segment s only,
    one map per key group (its shared key, else its field)."""
    from linkage.kernels import harden as hk

    segs = getattr(schema, "segments", ())
    if not segs:
        return hk.diffusion_taps(key, length, st.output_bits, st.taps)
    e = st.output_bits // length
    rows, maps = [], {}
    for s in segs:
        group = s.shared_key or s.field
        if group not in maps:
            gkey = hashlib.sha256(key + b"diffusion:" + group.encode("utf-8")).digest()
            maps[group] = hk.diffusion_taps(gkey, s.bits, s.bits * e, st.taps)
        rows.append(maps[group] + s.start)
    return np.ascontiguousarray(np.concatenate(rows), dtype=np.int64)


def unpack(filters: np.ndarray) -> np.ndarray:
    """(n, L/64) uint64 filters -> (n, L) bool (bit p = word p // 64, bit p % 64)."""
    f = np.ascontiguousarray(filters, np.uint64)
    bits = np.unpackbits(f.view(np.uint8), axis=1, bitorder="little")
    return bits.astype(bool)
