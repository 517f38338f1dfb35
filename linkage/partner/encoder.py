"""Keyed Bloom-filter encoding of person records (partner side).

Default hashing ("keyed-random"): a token's k bit positions come from HMAC-SHA256 of the token
under its field's key (HKDF-derived from the project secret and the schema fingerprint).
Block j (j = 0, 1, ...) of a token's hash stream is ``HMAC(field_key, message || j)`` with j
as one byte. With b = ceil(log2 L) bits, block j holds floor(256 / b) windows: window i is
bits b*i .. b*i+b-1 of the 32-byte digest read as a little-endian 256-bit integer. A window
w gives position w when w < L (rejection sampling: unbiased for any L). The token's
positions are the first k accepted windows, block by block. ``message`` is the token's UTF-8
bytes, prefixed for salted fields by the salt's length (2 bytes, big-endian) and its UTF-8
bytes. A block key's value is its parts joined by U+001F; its 64-bit key is SipHash-2-4 of
the value under the first 16 bytes of the block key's derived key (a keyed PRF: the linkage
unit cannot reverse it by dictionary, and it costs nanoseconds, not an HMAC).

Tokens (see :class:`linkage.schema.Tokeniser`):
- q-grams: characters of the normalised value, padded with U+0000 (never in normalised text);
- exact: the normalised value;
- date parts: ``D05``, ``M12``, ``Y1990``, ``DM0512`` (the smaller of day and month first),
  ``F19901205``;
- numeric: the decimal strings of v-n..v+n.

A field with ``bits_per_token`` k sets k positions per token; with ``bit_budget`` B, each
token sets ceil(B / number of tokens of the value, repeats counted) positions (at most 256).
An unpadded q-gram field whose value is shorter than q gives one token: the value
left-padded with U+0000 to q characters. A salted field whose salt value is missing
contributes nothing; a record that sets no bit at all is left out (and reported).
Work is done once per distinct value and once per distinct token; numba kernels set the bits.
A schema's hardening steps (:mod:`linkage.partner.harden`) then map each batch's filters to
the ``schema.output_length``-bit filters that are written.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.kernels.encode import (
    empty_token_table,
    or_unit_rows,
    or_unit_rows_parallel,
    qgram_keys,
    qgram_token_rows,
    set_bits,
    set_bits_parallel,
    token_rows,
)
from linkage.kernels.hmac import (
    hmac_batch,
    hmac_batch_parallel,
    hmac_short_lanes,
    hmac_states,
    window_positions,
)
from linkage.kernels.siphash import key_words, siphash_batch, siphash_batch_parallel
from linkage.kernels.text import join_strings
from linkage.partner.dates import DateFormat
from linkage.partner.harden import Hardener
from linkage.partner.normalisers import Normalised, normalise, soundex, whole_rows
from linkage.partner.segmented import field_hasher
from linkage.partner.values import (
    INVALID,
    MISSING,
    SUSPECTED_KEPT,
    SUSPECTED_MISSING,
    string_buffers,
)
from linkage.schema import Field, Salt, Schema
from linkage.secret import Secret

DATE_PART_TAGS = {"day": 1, "month": 2, "year": 3, "day_month": 4, "full": 5}
Messages = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Token keys (uint64) -> their messages' bytes packed as (data uint8, offsets int64)."""


# -- hashing -----------------------------------------------------------------------------
def window_bits(length: int) -> int:
    """b = ceil(log2 L): the bits per position window."""
    return max(1, (length - 1).bit_length())


class KeyedHasher:
    """HMAC-SHA256 under one key, batched in numba (see :mod:`linkage.kernels.hmac`)."""

    def __init__(self, key: bytes, parallel: bool = True) -> None:
        self.istate, self.ostate = hmac_states(key)
        self.istate32 = self.istate.astype(np.uint32)
        self.ostate32 = self.ostate.astype(np.uint32)
        self.kernel = hmac_batch_parallel if parallel else hmac_batch

    def digests(self, data: np.ndarray, offsets: np.ndarray, nblocks: int) -> np.ndarray:
        """HMAC blocks of each message: short messages (one inner SHA-256 block) 16 at a time
        in SIMD lanes, longer ones one by one."""
        n = len(offsets) - 1
        out = np.empty((n, 32 * max(nblocks, 1)), np.uint8)
        if n == 0:
            return out
        lengths = np.diff(offsets) + (1 if nblocks > 0 else 0)
        short = lengths <= 55
        with np.errstate(over="ignore"):  # wrapping uint32 arithmetic without the JIT
            hmac_short_lanes(
                self.istate32, self.ostate32, data, offsets, np.flatnonzero(short), nblocks, out
            )
        if not short.all():
            rows = np.flatnonzero(~short)
            sub_data, sub_off = take_messages(data, offsets, rows)
            sub = np.empty((len(rows), out.shape[1]), np.uint8)
            self.kernel(self.istate, self.ostate, sub_data, sub_off, nblocks, sub)
            out[rows] = sub
        return out

    def positions(
        self, data: np.ndarray, offsets: np.ndarray, length: int, kmax: int
    ) -> np.ndarray:
        """(n, kmax) uint32 bit positions of each message (see the module doc)."""
        n = len(offsets) - 1
        out = np.zeros((n, kmax), np.uint32)
        if n == 0 or kmax == 0:
            return out
        per_block = 256 // window_bits(length)
        pow2 = length & (length - 1) == 0
        nblocks = -(-kmax // per_block) + (0 if pow2 else 1)
        short = window_positions(self.digests(data, offsets, nblocks), length, kmax, out)
        while short.any():  # rare: only when L is not a power of two
            rows = np.flatnonzero(short)
            nblocks += 2
            sub_data, sub_off = take_messages(data, offsets, rows)
            sub = np.zeros((len(rows), kmax), np.uint32)
            short_sub = window_positions(
                self.digests(sub_data, sub_off, nblocks), length, kmax, sub
            )
            out[rows] = sub
            short[rows] = short_sub
        return out


def take_messages(
    data: np.ndarray, offsets: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    parts = [data[offsets[r] : offsets[r + 1]] for r in rows]
    lens = np.array([len(p) for p in parts], np.int64)
    off = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint8)), off


def pack_messages(messages: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated bytes and int64 offsets of a list of messages."""
    off = np.zeros(len(messages) + 1, np.int64)
    if messages:
        np.cumsum(np.fromiter(map(len, messages), np.int64, len(messages)), out=off[1:])
    return np.frombuffer(b"".join(messages), np.uint8), off


def token_positions(key: bytes, messages: list[bytes], length: int, kmax: int) -> np.ndarray:
    """(len(messages), kmax) uint32 bit positions of each token message (see module doc)."""
    data, off = pack_messages(messages)
    return KeyedHasher(key).positions(data, off, length, kmax)


def qgram_token_bytes(key: int, q: int) -> bytes:
    cps = [(key >> (21 * (q - 1 - j))) & 0x1FFFFF for j in range(q)]
    return "".join(map(chr, cps)).encode("utf-8")


# -- tokenisers over distinct values ---------------------------------------------------------
def _tokens(field: Field, units: pa.Array) -> tuple[np.ndarray, np.ndarray, Callable[[int], bytes]]:
    """Token keys of each distinct value: (tok_off int64[U+1], keys uint64[T], key -> bytes).

    Keys live in a per-field key space; ``exact`` keys are unit indices (valid in this batch)."""
    t = field.tokeniser
    u = len(units)
    if t.type == "qgram":
        data, offs = string_buffers(units)
        tok_off, keys = qgram_keys(data, offs, t.q, t.padding)
        q = t.q
        return tok_off, keys, lambda k: qgram_token_bytes(k, q)
    if t.type == "exact":
        strs = units.to_pylist()
        return (
            np.arange(u + 1, dtype=np.int64),
            np.arange(u, dtype=np.uint64),
            lambda k: strs[k].encode("utf-8"),
        )
    if t.type == "date":
        year, month, day = _iso_parts(units)
        cols = []
        for part in t.parts:
            tag = np.int64(DATE_PART_TAGS[part]) << 32
            if part == "day":
                v = day
            elif part == "month":
                v = month
            elif part == "year":
                v = year
            elif part == "day_month":
                v = np.minimum(day, month) * 100 + np.maximum(day, month)
            else:
                v = year * 10000 + month * 100 + day
            cols.append(tag | v)
        keys = np.stack(cols, axis=1).reshape(-1).astype(np.uint64) if u else np.zeros(0, np.uint64)
        return np.arange(u + 1, dtype=np.int64) * len(t.parts), keys, _date_token_bytes
    # numeric
    vals = _ints(units)
    nb = t.neighbourhood
    grid = vals[:, None] + np.arange(-nb, nb + 1, dtype=np.int64)[None, :]
    keys = grid.reshape(-1).view(np.uint64)
    return np.arange(u + 1, dtype=np.int64) * (2 * nb + 1), keys, _numeric_token_bytes


def _set_field_bits(
    filters: np.ndarray,
    unit_of_row: np.ndarray,
    tok_off: np.ndarray,
    tok_rows: np.ndarray,
    unit_k: np.ndarray,
    pos: np.ndarray,
    parallel: bool,
) -> None:
    """Set a field's bits in the rows' filters: bit by bit per row, or, when units repeat
    enough to pay for it, through a filter per unit ORed into its rows (same result)."""
    nu = len(unit_k)
    bits = np.diff(tok_off) * unit_k.astype(np.int64)  # bit settings per unit
    rows_of_unit = np.bincount(unit_of_row[unit_of_row >= 0], minlength=nu)
    direct = int(rows_of_unit @ bits)
    # a bit setting costs about as much as ORing 4 words
    via_units = int(bits.sum()) + int(rows_of_unit.sum()) * filters.shape[1] // 4
    if via_units < 0.75 * direct:
        unit_bits = np.zeros((nu, filters.shape[1]), np.uint64)
        all_units = np.arange(nu, dtype=np.int32)
        (set_bits_parallel if parallel else set_bits)(
            unit_bits, all_units, tok_off, tok_rows, unit_k, pos
        )
        (or_unit_rows_parallel if parallel else or_unit_rows)(filters, unit_of_row, unit_bits)
    else:
        (set_bits_parallel if parallel else set_bits)(
            filters, unit_of_row, tok_off, tok_rows, unit_k, pos
        )


def _iso_parts(units: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of ISO ``YYYY-MM-DD`` strings (the date normaliser's output)."""
    data, offs = string_buffers(units)
    if len(data) != 10 * len(units) or (np.diff(offs) != 10).any():
        raise ValueError("date units must be ISO YYYY-MM-DD strings")
    d = data.reshape(-1, 10).astype(np.int64) - ord("0")
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    return year, d[:, 5] * 10 + d[:, 6], d[:, 8] * 10 + d[:, 9]


def _ints(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False), np.int64)


_DATE_TOKEN_FORMS = {1: (b"D", 2), 2: (b"M", 2), 3: (b"Y", 4), 4: (b"DM", 4), 5: (b"F", 8)}


def _date_token_bytes(key: int) -> bytes:
    """``D05``, ``M12``, ``Y1990``, ``DM0512``, ``F19901205``: a tag's prefix, then the value
    zero-padded to the tag's width (see :data:`_DATE_TOKEN_FORMS`)."""
    tag, v = key >> 32, key & 0xFFFFFFFF
    prefix, width = _DATE_TOKEN_FORMS.get(tag, _DATE_TOKEN_FORMS[5])
    return prefix + b"%0*d" % (width, v)


def date_token_messages(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of date-part tokens (as :func:`_date_token_bytes`), packed, without a Python
    call per token: a field of full dates has tens of thousands of distinct tokens."""
    tag = (keys >> np.uint64(32)).astype(np.int64)
    v = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    lens = np.full(len(keys), -1, np.int64)
    for t, (prefix, width) in _DATE_TOKEN_FORMS.items():
        lens[(tag == t) & (v < 10**width)] = len(prefix) + width
    if (lens < 0).any():  # a value too wide for its form (never for valid dates): one by one
        return per_key_messages(_date_token_bytes)(keys)
    off = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    data = np.empty(off[-1], np.uint8)
    for t, (prefix, width) in _DATE_TOKEN_FORMS.items():
        idx = np.flatnonzero(tag == t)
        if len(idx) == 0:
            continue
        digits = v[idx, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64) % 10 + 48
        head = np.broadcast_to(np.frombuffer(prefix, np.uint8), (len(idx), len(prefix)))
        msg = np.concatenate([head, digits.astype(np.uint8)], axis=1)
        data[off[idx][:, None] + np.arange(len(prefix) + width)] = msg
    return data, off


def per_key_messages(to_bytes: Callable[[int], bytes]) -> Messages:
    """A :data:`Messages` function calling ``to_bytes`` once per key."""
    return lambda keys: pack_messages([to_bytes(k) for k in keys.tolist()])


def _numeric_token_bytes(key: int) -> bytes:
    v = key - (1 << 64) if key >= 1 << 63 else key
    return b"%d" % v


def salt_values(salt: Salt, norm: Mapping[str, Normalised]) -> pa.Array:
    """Each row's salt: its parts (block-key transforms of other fields' normalised values,
    computed once per distinct value) joined by U+001F; null where any part is missing or
    empty (the salted field then contributes nothing for that row)."""
    cols = []
    for p in salt.parts:
        nv = norm[p.field]
        part = block_part(p.transform, nv.units)
        part = pc.if_else(pc.equal(pc.utf8_length(part), 0), pa.scalar(None, pa.string()), part)
        cols.append(pc.take(part, pa.array(nv.unit_of_row, mask=nv.unit_of_row < 0)))
    return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "\x1f")


def block_part(transform: str, values: pa.Array) -> pa.Array:
    """A block-key part from normalised values (null stays null)."""
    if transform == "value":
        return values
    if transform == "initial":
        return pc.utf8_slice_codeunits(values, 0, 1)
    if transform == "soundex":
        return soundex(values, distinct=True)
    if transform == "year":
        return pc.utf8_slice_codeunits(values, 0, 4)
    if transform == "month":
        return pc.utf8_slice_codeunits(values, 5, 7)
    if transform == "outward":
        return pc.utf8_slice_codeunits(values, 0, -4)
    if transform == "sector":
        return pc.utf8_slice_codeunits(values, 0, -2)
    raise ValueError(f"unknown block transform {transform!r}")


# -- the encoder -------------------------------------------------------------------------------
@dataclass
class _FieldState:
    """A field's hasher (confined to its segment with the segmented layout) and its cache of
    token positions across batches: a numba hash table maps each token key seen so far to its
    row of ``pos``."""

    field: Field
    hasher: KeyedHasher  # or a SegmentHasher wrapping one
    kmax: int
    table: tuple[np.ndarray, np.ndarray] = dc_field(default_factory=empty_token_table)
    pos: np.ndarray = dc_field(default_factory=lambda: np.zeros((0, 0), np.uint32))
    used: int = 0

    def rows_for(self, keys: np.ndarray, messages: Messages, length: int) -> np.ndarray:
        """Rows of ``self.pos`` for each token key, hashing unseen keys once."""
        rows, new_keys, *table = token_rows(keys, *self.table, self.used)
        self._add(new_keys, messages, length, table)
        return rows

    def qgram_rows(self, units: pa.Array, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(tok_off, rows of ``self.pos``) of each distinct value's q-grams."""
        t = self.field.tokeniser
        data, offs = string_buffers(units)
        tok_off, rows, new_keys, *table = qgram_token_rows(
            data, offs, t.q, t.padding, *self.table, self.used
        )
        q = t.q
        self._add(new_keys, per_key_messages(lambda k: qgram_token_bytes(k, q)), length, table)
        return tok_off, rows

    def _add(
        self, new_keys: np.ndarray, messages: Messages, length: int, table: list[np.ndarray]
    ) -> None:
        """Hash the tokens the (updated) table just gave rows ``used, used + 1, ...``. If that
        fails, the whole cache is dropped: the table (updated in place) would otherwise point
        new keys at rows that were never filled."""
        try:
            if len(new_keys):
                data, off = messages(new_keys)
                fresh = self.hasher.positions(data, off, length, self.kmax)
                need = self.used + len(new_keys)
                if need > self.pos.shape[0]:
                    shape = (max(need, 2 * self.pos.shape[0], 256), self.kmax)
                    grown = np.zeros(shape, np.uint32)
                    if self.used:
                        grown[: self.used] = self.pos[: self.used]
                    self.pos = grown
                self.pos[self.used : need] = fresh
                self.used = need
            self.table = (table[0], table[1])
        except BaseException:
            self.table = empty_token_table()
            self.pos = np.zeros((0, 0), np.uint32)
            self.used = 0
            raise


@dataclass
class BatchResult:
    filters: np.ndarray  # (n, output_length / 64) uint64, after hardening
    block_keys: pa.Array | None  # list<uint64>
    problems: list[tuple[np.ndarray, str, np.ndarray]]  # (rows, field, status codes)
    usable: np.ndarray  # bool: row has at least one usable field
    enough: np.ndarray | None = None  # bool: row meets the schema's min_evidence (None: no rule)
    filled: dict[str, int] = dc_field(default_factory=dict)  # field -> rows with a value given


class Encoder:
    """Encodes batches of records (columns named by schema field) for one schema and secret.

    Keeps a cache of token positions across batches; not thread-safe.
    """

    def __init__(
        self,
        schema: Schema,
        secret: Secret,
        *,
        date_formats: Mapping[str, DateFormat] | None = None,
        today: _dt.date | None = None,
        parallel: bool = True,
        placeholders: Mapping[str, Sequence[str]] | None = None,
        placeholders_missing: bool = False,
        normalised: Mapping[str, Normalised] | None = None,
    ) -> None:
        """``placeholders``: suspected placeholder values (normalised) per field, found in the
        whole extract (:mod:`linkage.partner.placeholders`); their rows are reported and, with
        ``placeholders_missing``, the value is treated as missing. ``normalised``: fields of
        the whole extract normalised with these options (:attr:`~linkage.partner.plan.Plan.
        normalised`), for batches whose first row is given (:meth:`normalise`)."""
        self.schema = schema
        self.placeholders = {
            f: pa.array(list(v), pa.string()) for f, v in (placeholders or {}).items() if v
        }
        self.placeholders_missing = placeholders_missing
        self.whole = dict(normalised or {})
        self.parallel = parallel
        self.length = schema.filter_length
        self.words = self.length // 64
        self.fp = schema.fingerprint
        self.key_check = secret.key_check(self.fp)
        self.date_formats = dict(date_formats or {})
        self.today = today
        self.states = {
            f.name: _FieldState(
                f, field_hasher(schema, secret, f, KeyedHasher, parallel), f.max_bits_per_token
            )
            for f in schema.fields
        }
        self.block_keys = [
            (b, key_words(secret.block_key(self.fp, b.name)[:16])) for b in schema.block_keys
        ]
        self.hardener = Hardener(schema, secret, parallel=parallel) if schema.hardening else None

    def normalise(
        self, batch: Mapping[str, pa.Array], start: int | None = None
    ) -> dict[str, Normalised]:
        """Each field of ``batch`` normalised; ``start``: the batch's first row in the extract
        (rows of fields in ``self.whole`` are then taken from there)."""
        out = {}
        for f in self.schema.fields:
            whole = self.whole.get(f.name) if start is not None else None
            if whole is not None and start is not None:
                out[f.name] = whole_rows(whole, start, len(batch[f.name]))
            else:
                out[f.name] = normalise(
                    f.normaliser,
                    batch[f.name],
                    missing=f.missing,
                    date_format=self.date_formats.get(f.name),
                    today=self.today,
                )
            if f.name in self.placeholders:
                out[f.name] = self._flag_placeholders(out[f.name], self.placeholders[f.name])
        return out

    def _flag_placeholders(self, nv: Normalised, values: pa.Array) -> Normalised:
        """Rows holding a suspected placeholder get status SUSPECTED_KEPT (reported, still
        encoded) or SUSPECTED_MISSING (reported, encoded as missing)."""
        unit_hit = pc.fill_null(pc.is_in(nv.units, value_set=values), False)
        hit_u = np.append(unit_hit.to_numpy(zero_copy_only=False), False)
        rows = hit_u[nv.unit_of_row]  # -1 (no value) reads the appended False
        if not rows.any():
            return nv
        status = nv.status.copy()
        unit_of_row = nv.unit_of_row
        if self.placeholders_missing:
            status[rows] = SUSPECTED_MISSING
            unit_of_row = np.where(rows, -1, unit_of_row).astype(np.int32)
        else:
            status[rows] = SUSPECTED_KEPT
        return Normalised(nv.units, unit_of_row, status)

    def encode_batch(
        self,
        batch: Mapping[str, pa.Array],
        n: int,
        ids: pa.Array | None = None,
        *,
        start: int | None = None,
    ) -> BatchResult:
        """Filters (hardened, if the schema says so), block keys and problems of ``n`` records.

        ``ids`` (the record ids) are needed only by a schema with ``blip`` hardening;
        ``start``: the batch's first row in the extract (:meth:`normalise`)."""
        norm = self.normalise(batch, start)
        filters = np.zeros((n, self.words), np.uint64)
        problems = []
        usable = np.zeros(n, bool)
        present: dict[str, np.ndarray] = {}
        filled: dict[str, int] = {}
        for f in self.schema.fields:
            nv = norm[f.name]
            filled[f.name] = int(np.count_nonzero(nv.status != MISSING))
            bad = nv.status >= INVALID  # SUSPECTED_KEPT too: reported, value still encoded
            if bad.any():
                rows = np.flatnonzero(bad)
                problems.append((rows, f.name, nv.status[rows]))
            salt = None
            if f.salt is not None:
                salt = salt_values(f.salt, norm)
            touched = self._encode_field(f, nv, salt, filters)
            usable |= touched
            present[f.name] = touched
        bks = self._block_keys(norm, n) if self.block_keys else None
        if self.hardener is not None:
            filters = self.hardener.apply(filters, ids)
        rule = self.schema.min_evidence
        enough = None if rule is None else rule.satisfied(present, n)
        return BatchResult(filters, bks, problems, usable, enough, filled)

    def _encode_field(
        self, f: Field, nv: Normalised, salt: pa.Array | None, filters: np.ndarray
    ) -> np.ndarray:
        st = self.states[f.name]
        unit_salts = None
        if salt is not None:
            # a unit is a distinct (salt, value) pair; a row missing its salt loses the field
            values = pc.if_else(pc.is_null(salt), pa.scalar(None, pa.string()), nv.values)
            combo = pc.binary_join_element_wise(salt, values, "\x00")
            denc = pc.dictionary_encode(combo)
            parts = pc.split_pattern(denc.dictionary, "\x00", max_splits=1)
            unit_salts = pc.list_element(parts, 0)
            units = pc.list_element(parts, 1)
            unit_of_row = _indices(denc)
        else:
            units, unit_of_row = nv.units, nv.unit_of_row  # distinct values from normalise()
        nu = len(units)
        if nu == 0:
            return np.zeros(len(unit_of_row), bool)
        if unit_salts is None and f.tokeniser.type == "exact":
            data, offs = string_buffers(units)
            pos = st.hasher.positions(data, offs, self.length, st.kmax)
            tok_off = np.arange(nu + 1, dtype=np.int64)
            tok_rows = np.arange(nu, dtype=np.int32)
        elif unit_salts is not None:
            tok_off, keys, to_bytes = _tokens(f, units)
            pos, tok_rows = self._hash_salted(st, keys, tok_off, to_bytes, unit_salts)
        elif f.tokeniser.type == "qgram":
            with np.errstate(over="ignore"):  # multiplicative hashing wraps (no-JIT mode)
                tok_off, tok_rows = st.qgram_rows(units, self.length)
            pos = st.pos
        else:
            tok_off, keys, to_bytes = _tokens(f, units)
            messages = (
                date_token_messages if f.tokeniser.type == "date" else per_key_messages(to_bytes)
            )
            with np.errstate(over="ignore"):
                tok_rows = st.rows_for(keys, messages, self.length)
            pos = st.pos
        ntok = np.diff(tok_off)
        if f.bits_per_token is not None:
            unit_k = np.full(nu, f.bits_per_token, np.int32)
        else:
            assert f.bit_budget is not None
            with np.errstate(divide="ignore"):
                k = np.ceil(f.bit_budget / np.maximum(ntok, 1)).astype(np.int64)
            unit_k = np.clip(k, 1, st.kmax).astype(np.int32)
        _set_field_bits(
            filters, unit_of_row, tok_off, np.ascontiguousarray(tok_rows, np.int32), unit_k, pos,
            self.parallel,
        )  # fmt: skip
        has_tokens = ntok > 0
        return (unit_of_row >= 0) & has_tokens[np.maximum(unit_of_row, 0)]

    def _hash_salted(
        self,
        st: _FieldState,
        keys: np.ndarray,
        tok_off: np.ndarray,
        to_bytes: Callable[[int], bytes],
        unit_salts: pa.Array,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions of distinct (salt, token) pairs; not cached across batches."""
        salts = [s.encode("utf-8") for s in unit_salts.to_pylist()]
        unit_of_tok = np.repeat(np.arange(len(salts)), np.diff(tok_off))
        pairs = np.stack([unit_of_tok.astype(np.uint64), keys], axis=1)
        # distinct (salt, token) pairs: salt identity is the salt string, not the unit
        salt_ids = np.unique(np.array(salts, dtype=object), return_inverse=True)[1]
        pairs[:, 0] = salt_ids[unit_of_tok]
        uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
        sid_to_salt = {int(salt_ids[i]): salts[i] for i in range(len(salts))}
        msgs = []
        for sid, k in uniq.tolist():
            s = sid_to_salt[sid]
            msgs.append(len(s).to_bytes(2, "big") + s + to_bytes(k))
        data, off = pack_messages(msgs)
        return st.hasher.positions(data, off, self.length, st.kmax), inv.reshape(-1)

    def _block_keys(self, norm: Mapping[str, Normalised], n: int) -> pa.Array:
        cols = np.zeros((n, len(self.block_keys)), np.uint64)
        valid = np.zeros((n, len(self.block_keys)), bool)
        sip = siphash_batch_parallel if self.parallel else siphash_batch
        parts: dict[tuple[str, str], tuple[pa.Array, np.ndarray]] = {}
        for j, (bk, (k0, k1)) in enumerate(self.block_keys):
            # each part is computed once per distinct value (unit), then joined per row
            strings, rows = [], np.empty((len(bk.parts), n), np.int64)
            base = 0
            for i, p in enumerate(bk.parts):
                key = (p.field, p.transform)
                if key not in parts:
                    parts[key] = _unit_part(p.transform, norm[p.field])
                unit_strings, unit_row = parts[key]
                strings.append(unit_strings)
                rows[i] = np.where(unit_row >= 0, unit_row + base, -1)
                base += len(unit_strings)
            data, offs = string_buffers(pa.concat_arrays(strings))
            joined, joined_off, ok = join_strings(data, offs, rows, 0x1F)
            with np.errstate(over="ignore"):  # wrapping arithmetic when NUMBA_DISABLE_JIT=1
                sip(k0, k1, joined, joined_off, cols[:, j])
            valid[:, j] = ok
        counts = valid.sum(axis=1)
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        flat = cols[valid]
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.uint64()))


def _unit_part(transform: str, nv: Normalised) -> tuple[pa.Array, np.ndarray]:
    """A block-key part of each distinct value, and each row's index into them (-1: the row
    has no usable value or its part is empty)."""
    part = block_part(transform, nv.units)
    _, offs = string_buffers(part)
    usable = (np.diff(offs) > 0) & part.is_valid().to_numpy(zero_copy_only=False)
    row_of_unit = np.append(np.where(usable, np.arange(len(part)), -1), -1)
    return part.fill_null(""), row_of_unit[nv.unit_of_row]


def _indices(denc: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as int32 with -1 for nulls."""
    return np.asarray(pc.fill_null(denc.indices, -1).to_numpy(zero_copy_only=False), np.int32)
