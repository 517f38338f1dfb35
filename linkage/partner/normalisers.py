"""Normalisers: shared, deterministic, idempotent clean-up of raw values before encoding.

All partners must normalise alike, or equal people encode differently. Each normaliser works
on a whole pyarrow string array at once, once per distinct value (found by a numba hash
table), and returns the normalised values with a status code per row. ASCII values (most UK
person data) go through numba kernels; the rest through Arrow's Unicode kernels, which are
also the reference the kernels are tested against. No per-row Python. Invalid values are *row
problems*: the value is treated as missing and the row is reported (never with its value).

- ``name``: Unicode NFKD (compatibility forms such as full-width letters folded), diacritics
  stripped from Latin letters (Zoë -> ZOE, Siân -> SIAN), Latin letters without a
  decomposition mapped (ß -> SS, Ł -> L, Ø -> O, Æ -> AE...), upper-cased, titles dropped
  (MR, MRS, MS, MISS, MX, DR, PROF, REV, SIR, DAME, LORD, LADY), then everything that is not a
  letter, mark or digit removed, so O'Brien, O Brien and OBrien all become OBRIEN. Letters of
  non-Latin scripts (李, Дмитрий, محمد, नमस्ते) are kept with their marks, NFC-composed and
  upper-cased where the script has case (ДМИТРИЙ): they are not transliterated, so they match
  only the same script.
- ``text``: as ``name`` but without title removal; apostrophes are removed, other punctuation
  becomes a space, and runs of whitespace collapse to one space (addresses).
- ``date``: to ISO ``YYYY-MM-DD`` under one date format per column (see :class:`DateFormat`);
  impossible dates (31/02/1990), future dates and dates before 1890 are row problems, and so
  are the sentinel dates of the field's ``missing`` list in any spelling (``1900-01-01`` for
  ``01/01/1900``): known placeholders, treated as missing.
- ``postcode``: upper-case, spaces removed, UK format validated, one space before the inward
  code: ``l18jq`` -> ``L1 8JQ``. NHS pseudo-postcodes (the whole ``ZZ99`` district: ``ZZ99
  3VZ`` no fixed abode, ``ZZ99 3WZ`` address not known, ``ZZ99 3CZ``/``3GZ``/``1WZ``/``2WZ``
  England, Wales, Scotland, Northern Ireland not otherwise specified, ``ZZ99`` + a country
  code for people resident abroad; NHS Data Dictionary, POSTCODE OF USUAL ADDRESS) name no
  place: row problems, so they are missing and never location evidence.
- ``nhs_number``: spaces and dashes removed; 10 digits with a valid mod-11 check digit, else a
  row problem. Numbers of one repeated digit (0000000000) are placeholders, and numbers of the
  test range 999 000 0000-999 999 9999 (never issued to a patient) test data: row problems.
- ``sex``: M / F / I (indeterminate, other); U, X, 0, 9, unknown, not known -> missing.
- ``integer``: an optionally signed integer, thousands separators removed.
- ``none``: trims and collapses whitespace only.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.identifiers import nhs_number_valid as nhs_check_ok
from linkage.kernels.text import (
    MODE_NAME,
    MODE_NONE,
    MODE_TEXT,
    SOUNDEX_TABLE,
    TITLE_DATA,
    TITLE_OFFSETS,
    ascii_normalise,
    nhs_digits,
    postcode_normalise,
    soundex_codes,
)
from linkage.partner.dates import (
    COMMON_DATE_FORMATS,
    DateFormat,
    _days_in_month,
    _format_iso,
    _norm_date,
    placeholder_dates,
)
from linkage.partner.dates import (
    detect_date_format as detect_date_format,
)
from linkage.partner.values import (
    _BAD_INT,
    _BAD_POSTCODE,
    _BAD_SEX,
    _NHS_CHECK,
    _NHS_LEN,
    _NHS_PLACEHOLDER,
    _NHS_TEST_RANGE,
    _NO_CONTENT,
    _PLACEHOLDER_DATE,
    _PSEUDO_POSTCODE,
    INVALID,
    MISSING,
    OK,
    _as_string_array,
    _null_if,
    _unique_missing,
    distinct_rows,
    loose_missing,
    string_array,
    string_buffers,
    unify_spaces,
)
from linkage.partner.values import (
    _missing_mask as _missing_mask,
)

_SPECIAL_LETTERS = {
    "ẞ": "SS",
    "ß": "SS",
    "Ł": "L",
    "Ø": "O",
    "Æ": "AE",
    "Œ": "OE",
    "Đ": "D",
    "Ð": "D",
    "Þ": "TH",
    "Ħ": "H",
    "Ŧ": "T",
    "Ŀ": "L",
}
TITLES = ("MR", "MRS", "MS", "MISS", "MX", "DR", "PROF", "REV", "SIR", "DAME", "LORD", "LADY")
_TITLE_RE = r"^(?:(?:" + "|".join(TITLES) + r")\.?\s+)+"
_POSTCODE_RE = r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}|GIR0AA)$"
# Unicode spaces and separators (Zs, Zl, Zp: no-break, thin, ideographic...), NEL and the
# zero-width characters: whitespace to every normaliser (CF10<no-break space>1AA = CF10 1AA)


@dataclass(frozen=True)
class Normalised:
    """A normalised column: its distinct valid normalised values (``units``), each row's index
    into them (``unit_of_row``, -1 where the value is missing or invalid) and a status code
    per row. ``values`` spells the rows out (null where missing or invalid); it is built on
    first use, since the encoder works from units and indices."""

    units: pa.Array  # string; may repeat a value (harmless)
    unit_of_row: np.ndarray  # int32, -1: no usable value
    status: np.ndarray  # int8; OK, MISSING, or a row-problem code (see REASONS)

    @functools.cached_property
    def values(self) -> pa.Array:
        idx = pa.array(self.unit_of_row, mask=self.unit_of_row < 0)
        return pc.take(self.units, idx)

    def problems(self) -> np.ndarray:
        """Row indices whose value was invalid."""
        return np.flatnonzero(self.status >= INVALID)


def whole_rows(whole: Normalised, start: int, n: int) -> Normalised:
    """Rows ``start .. start + n`` of a normalised column, with only the units they use (in
    the column's order: a unit's position changes no encoding)."""
    unit_of_row = whole.unit_of_row[start : start + n]
    used = np.zeros(len(whole.units) + 1, bool)  # the last slot takes the -1 rows
    used[unit_of_row] = True
    keep = np.flatnonzero(used[:-1])
    remap = np.full(len(whole.units) + 1, -1, np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    units = whole.units if len(keep) == len(whole.units) else whole.units.take(pa.array(keep))
    return Normalised(units, remap[unit_of_row], whole.status[start : start + n].copy())


def fold_letters(values: pa.Array) -> pa.Array:
    """NFKD; strip combining marks from Latin letters; upper-case; map Latin letters without
    decompositions (ß, Ł, Ø...); NFC, so other scripts keep their marks (Й, नमस्ते)."""
    v = pc.utf8_normalize(values, "NFKD")
    v = pc.replace_substring_regex(v, r"(\p{Latin})\p{M}+", r"\1")
    v = pc.utf8_upper(v)
    for src, dst in _SPECIAL_LETTERS.items():
        v = pc.replace_substring(v, src, dst)
    return pc.utf8_normalize(v, "NFC")


def _norm_name(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = fold_letters(values)
    v = pc.replace_substring_regex(v, r"[^\p{L}\p{N}\p{M}\s]", "")
    v = pc.utf8_trim_whitespace(pc.replace_substring_regex(v, r"\s+", " "))
    v = pc.replace_substring_regex(v, _TITLE_RE, "")
    v = pc.replace_substring_regex(v, r"[^\p{L}\p{N}\p{M}]", "")
    # a stray mark that now follows a Latin letter ("A ´") is a diacritic too: idempotence
    v = pc.replace_substring_regex(v, r"(\p{Latin})\p{M}+", r"\1")
    # removing spaces can leave marks out of canonical order ("´¸" -> U+0301 U+0327): NFC
    # reorders (and composes) them, so a second pass changes nothing
    v = pc.utf8_normalize(v, "NFC")
    empty = pc.fill_null(pc.equal(v, ""), False)
    return v, np.where(empty.to_numpy(zero_copy_only=False), _NO_CONTENT, OK).astype(np.int8)


def _norm_text(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = fold_letters(values)
    v = pc.replace_substring_regex(v, r"['’‘`]", "")
    v = pc.replace_substring_regex(v, r"[^\p{L}\p{N}\p{M}]+", " ")
    v = pc.utf8_trim_whitespace(v)
    empty = pc.fill_null(pc.equal(v, ""), False)
    return v, np.where(empty.to_numpy(zero_copy_only=False), _NO_CONTENT, OK).astype(np.int8)


def _norm_none(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = pc.replace_substring_regex(values, r"\s+", " ")
    v = pc.replace_substring_regex(v, r"^ | $", "")
    return v, np.zeros(len(values), np.int8)


PSEUDO_POSTCODE_DISTRICT = "ZZ99"
"""The outward code of the NHS pseudo-postcodes (no fixed abode, not known, abroad)."""


def _norm_postcode(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Postcodes: the numba kernel for ASCII values, the regex path for the rest."""
    if not _ascii_rows(values).all():
        return _norm_postcode_general(values)
    out, out_off, valid = postcode_normalise(*string_buffers(values))
    values = string_array(out, out_off)
    return values, _flag_pseudo(values, np.where(valid, OK, _BAD_POSTCODE).astype(np.int8))


def _norm_postcode_general(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = pc.utf8_upper(pc.replace_substring_regex(values, r"\s+", ""))
    ok = pc.fill_null(pc.match_substring_regex(v, _POSTCODE_RE), False)
    v = pc.replace_substring_regex(v, r"^(.+)(...)$", r"\1 \2")
    status = np.where(ok.to_numpy(zero_copy_only=False), OK, _BAD_POSTCODE).astype(np.int8)
    return v, _flag_pseudo(v, status)


def _flag_pseudo(postcodes: pa.Array, status: np.ndarray) -> np.ndarray:
    """``status`` with valid NHS pseudo-postcodes (:data:`PSEUDO_POSTCODE_DISTRICT`) as row
    problems (``_PSEUDO_POSTCODE``)."""
    pseudo = pc.fill_null(pc.starts_with(postcodes, PSEUDO_POSTCODE_DISTRICT + " "), False)
    pseudo_np = pseudo.to_numpy(zero_copy_only=False)
    return np.where(pseudo_np & (status == OK), _PSEUDO_POSTCODE, status).astype(np.int8)


def _norm_nhs(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """NHS numbers: the numba kernel finds the digits, numpy checks them."""
    digits, is10 = nhs_digits(*string_buffers(values))
    status = _nhs_status(digits, is10)
    text = (digits + ord("0")).astype(np.uint8).reshape(-1)
    out = string_array(text, np.arange(len(values) + 1, dtype=np.int64) * 10)
    return _null_if(out, pa.array(~is10)), status


def _nhs_status(digits: np.ndarray, is10: np.ndarray) -> np.ndarray:
    good = nhs_check_ok(digits)
    same = (digits == digits[:, :1]).all(axis=1)
    status = np.where(good, OK, _NHS_CHECK)
    test_range = (digits[:, :3] == 9).all(axis=1)
    status = np.where(good & test_range, _NHS_TEST_RANGE, status)
    status = np.where(good & same, _NHS_PLACEHOLDER, status)
    return np.where(is10, status, _NHS_LEN).astype(np.int8)


def _norm_nhs_general(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """NHS numbers through Arrow regexes (the reference for :func:`_norm_nhs`)."""
    v = pc.replace_substring_regex(values, r"[\s\-]", "")
    is10 = pc.fill_null(pc.match_substring_regex(v, r"^[0-9]{10}$"), False)
    is10_np = is10.to_numpy(zero_copy_only=False)
    digits = np.zeros((len(values), 10), np.uint8)
    idx = np.flatnonzero(is10_np)
    if len(idx):
        sub = v.take(pa.array(idx))
        # Every string here is exactly 10 ASCII digits, so the data buffer is contiguous.
        offsets = np.frombuffer(sub.buffers()[1], np.int32)[sub.offset : sub.offset + len(sub) + 1]
        start = offsets[0]
        raw = np.frombuffer(sub.buffers()[2], np.uint8)[start : start + 10 * len(sub)]
        digits[idx] = (raw.reshape(-1, 10) - ord("0")).astype(np.uint8)
    return v, _nhs_status(digits, is10_np)


_SEX_MAP = {
    "M": "M",
    "MALE": "M",
    "1": "M",
    "MAN": "M",
    "BOY": "M",
    "F": "F",
    "FEMALE": "F",
    "2": "F",
    "WOMAN": "F",
    "GIRL": "F",
    "I": "I",
    "INDETERMINATE": "I",
    "OTHER": "I",
    "NON BINARY": "I",
    "NONBINARY": "I",
    "INTERSEX": "I",
}
_SEX_MISSING = {"U", "X", "0", "9", "UNKNOWN", "NOT KNOWN", "NOTKNOWN", "NOT STATED", "NK", "NS"}


@functools.cache
def _sex_tables() -> tuple[pa.Array, pa.Array, pa.Array]:
    """The codings, their canonical values and the missing codings as Arrow arrays (built
    once: building Arrow arrays from Python lists is slow)."""
    return (
        pa.array(list(_SEX_MAP), pa.string()),
        pa.array(list(_SEX_MAP.values()), pa.string()),
        pa.array(sorted(_SEX_MISSING), pa.string()),
    )


def _norm_sex(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    t = pc.utf8_upper(pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"[-_.]", " ")))
    t = pc.replace_substring_regex(t, r"\s+", " ")
    keys, vals, missing = _sex_tables()
    idx = pc.index_in(t, value_set=keys)
    out = pc.take(vals, idx)
    known = pc.is_valid(idx).to_numpy(zero_copy_only=False)
    miss = pc.fill_null(pc.is_in(t, value_set=missing), False)
    miss_np = miss.to_numpy(zero_copy_only=False)
    status = np.where(known, OK, np.where(miss_np, MISSING, _BAD_SEX)).astype(np.int8)
    return out, status


def _norm_integer(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"[,\s_]", "")
    ok = pc.fill_null(pc.match_substring_regex(v, r"^[+-]?[0-9]{1,15}$"), False)
    okn = ok.to_numpy(zero_copy_only=False)
    v = pc.replace_substring_regex(v, r"^\+", "")
    out = pc.cast(_null_if(v, pc.invert(ok)), pa.int64()).cast(pa.string())
    return out, np.where(okn, OK, _BAD_INT).astype(np.int8)


# -- dates -----------------------------------------------------------------------------
_ASCII_MODES = {"name": MODE_NAME, "text": MODE_TEXT, "none": MODE_NONE}


def _ascii_fast(kind: str, values: pa.Array) -> pa.Array:
    """The ``name``/``text``/``none`` normaliser of all-ASCII values, in one numba pass."""
    data, offs = string_buffers(values)
    out, out_off = ascii_normalise(data, offs, _ASCII_MODES[kind], TITLE_DATA, TITLE_OFFSETS)
    return string_array(out, out_off)


def _ascii_rows(values: pa.Array) -> np.ndarray:
    """True where a value is pure ASCII (or null); one numpy pass when all of them are."""
    data, _ = string_buffers(values)
    if not (data >= 128).any():
        return np.ones(len(values), bool)
    return pc.fill_null(pc.string_is_ascii(values), True).to_numpy(zero_copy_only=False)


def _empty_rows(values: pa.Array) -> np.ndarray:
    """True where a value is the empty string (not null)."""
    _, offs = string_buffers(values)
    return (np.diff(offs) == 0) & values.is_valid().to_numpy(zero_copy_only=False)


def _norm_textlike(kind: str, values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ASCII values through the numba kernel, the rest through the Unicode path."""
    general = _SIMPLE[kind]
    is_ascii = _ascii_rows(values)
    if not is_ascii.all():
        if not is_ascii.any():
            return general(values)
        a_idx = np.flatnonzero(is_ascii)
        u_idx = np.flatnonzero(~is_ascii)
        a_vals = _ascii_fast(kind, values.take(pa.array(a_idx)))
        u_vals, _ = general(values.take(pa.array(u_idx)))
        order = np.empty(len(values), np.int64)
        order[a_idx] = np.arange(len(a_idx))
        order[u_idx] = len(a_idx) + np.arange(len(u_idx))
        merged = pa.concat_arrays([a_vals, u_vals.cast(pa.string())]).take(pa.array(order))
    else:
        merged = _ascii_fast(kind, values)
    status = np.zeros(len(values), np.int8)
    if kind != "none":
        status[_empty_rows(merged)] = _NO_CONTENT
    return merged, status


_SIMPLE = {
    "name": _norm_name,
    "text": _norm_text,
    "postcode": _norm_postcode,
    "nhs_number": _norm_nhs,
    "sex": _norm_sex,
    "integer": _norm_integer,
    "none": _norm_none,
}


def normalise(
    kind: str,
    values: pa.Array | pa.ChunkedArray | Sequence[str | None],
    *,
    missing: Sequence[str] = (),
    date_format: DateFormat | None = None,
    today: _dt.date | None = None,
    fast: bool = True,
) -> Normalised:
    """Normalise a column of raw values with the normaliser ``kind``.

    Work is done once per distinct value (values repeat massively in person data), then
    spread back over the rows. ``fast=False`` forces the general Unicode path (the reference
    for the ASCII kernels).
    """
    arr = _as_string_array(values)
    n = len(arr)
    if arr.offset or arr.null_count:  # a null is missing, like an empty string
        arr = pa.concat_arrays([arr.fill_null("")])
    idx, first = distinct_rows(arr)
    uniq = arr if len(first) == n else arr.take(pa.array(first))  # all distinct: as they are
    uniq = unify_spaces(uniq)  # (distinct raw values may now repeat: harmless)
    # the missing-value test and the normaliser run once per distinct raw value
    u_miss = _unique_missing(uniq, missing, fast)
    u_placeholder = np.zeros(len(uniq), bool)
    if missing:  # N.A. for N/A; 1900-01-01 or 19000101 for the date sentinel 01/01/1900
        u_miss |= loose_missing(uniq, missing)
        if kind == "date":
            u_placeholder = placeholder_dates(uniq, missing)
            u_miss |= u_placeholder
    present = np.flatnonzero(~u_miss)
    # a sentinel date is a known placeholder: missing, and reported as a row problem
    u_status = np.where(u_placeholder, _PLACEHOLDER_DATE, MISSING).astype(np.int8)
    todo = uniq if len(present) == len(uniq) else uniq.take(pa.array(present))
    if kind == "date":
        t_vals, t_status = _norm_date(todo, date_format, today)
    elif kind in _ASCII_MODES and fast:
        t_vals, t_status = _norm_textlike(kind, todo)
    elif kind in _SIMPLE:
        t_vals, t_status = _SIMPLE[kind](todo)
    else:
        raise ValueError(f"unknown normaliser {kind!r}")
    if missing and len(t_vals):
        # placeholders compared after normalising (dates after parsing), so 01-01-1900,
        # 1900/01/01 and 01/01/1900 are one placeholder, as are N/A, n/a and N.A.
        placeholder = pc.fill_null(
            pc.is_in(t_vals, value_set=normalised_sentinels(kind, tuple(missing), date_format)),
            False,
        ).to_numpy(zero_copy_only=False)
        as_missing = _PLACEHOLDER_DATE if kind == "date" else MISSING
        t_status = np.where(placeholder & (t_status == OK), as_missing, t_status).astype(np.int8)
    u_status[present] = t_status
    status = u_status[idx] if len(uniq) else np.zeros(n, np.int8)
    keep = np.flatnonzero(t_status == OK)
    remap = np.full(len(uniq), -1, np.int32)
    remap[present[keep]] = np.arange(len(keep), dtype=np.int32)
    unit_of_row = remap[idx]
    units = t_vals if len(keep) == len(t_vals) else t_vals.take(pa.array(keep))
    if units.type != pa.string():
        units = units.cast(pa.string())
    return Normalised(units, unit_of_row, status)


@functools.lru_cache(maxsize=256)
def normalised_sentinels(
    kind: str, missing: tuple[str, ...], date_format: DateFormat | None
) -> pa.Array:
    """The normalised forms of a field's missing-value sentinels: what :func:`normalise`
    gives them (a date sentinel under the column's format and under every common format that
    parses it). Sentinels that normalise to nothing (``-``, ``?``) are caught before."""
    raw = pa.array(list(missing), pa.string())
    if kind == "date":
        out: set[str] = set()
        fmts = [date_format] if date_format is not None else []
        for fmt in [*fmts, *map(DateFormat, COMMON_DATE_FORMATS)]:
            year, month, day, ok = fmt.parse(raw, _dt.date(2000, 1, 1))
            ok &= (day <= _days_in_month(year, month)) & (year > 0)
            iso = _format_iso(year[ok], month[ok], day[ok]).to_pylist()
            out.update(v for v in iso if v is not None)
        return pa.array(sorted(out), pa.string())
    norm = normalise(kind, raw)
    return pc.drop_null(norm.values).cast(pa.string())


def normalise_value(kind: str, value: str | None, **kwargs: object) -> str | None:
    """Normalise one value (convenience for tests and docs; bulk work uses :func:`normalise`)."""
    out = normalise(kind, [value], **kwargs)  # type: ignore[arg-type]
    return out.values[0].as_py()


def soundex(values: pa.Array, *, distinct: bool = False) -> pa.Array:
    """American Soundex of normalised (upper-case A-Z) names; other characters are ignored.

    Letter, then the digit codes of the following consonants, adjacent equal codes merged
    (also across H and W), vowels separating equal codes, padded with 0 to four characters.
    Computed once per distinct value by a numba kernel (:func:`soundex_reference` is the
    plain-Python definition). Null where there is no A-Z letter. ``distinct``: the values
    are (mostly) distinct, so skip finding the distinct ones first.
    """
    denc = None if distinct else pc.dictionary_encode(values)
    uniq = values if denc is None else denc.dictionary
    data, offs = string_buffers(uniq)
    codes, valid = soundex_codes(data, offs, SOUNDEX_TABLE)
    n = len(uniq)
    u_codes = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4), n, [None, pa.py_buffer(np.ascontiguousarray(codes))]
    ).cast(pa.string())
    u_codes = _null_if(u_codes, pa.array(~valid))
    return u_codes if denc is None else pc.take(u_codes, denc.indices)


def soundex_reference(value: str | None) -> str | None:
    """Plain-Python Soundex of one normalised value (the definition; used by tests)."""
    if value is None:
        return None
    codes = {
        **dict.fromkeys("BFPV", "1"),
        **dict.fromkeys("CGJKQSXZ", "2"),
        **dict.fromkeys("DT", "3"),
        "L": "4",
        **dict.fromkeys("MN", "5"),
        "R": "6",
    }
    letters = [c for c in value if "A" <= c <= "Z"]
    if not letters:
        return None
    first = letters[0]
    res, prev = [first], codes.get(first, "")
    for c in letters[1:]:
        code = codes.get(c, "")
        if code and code != prev:
            res.append(code)
        if c not in "HW":
            prev = code
    return ("".join(res) + "000")[:4]
