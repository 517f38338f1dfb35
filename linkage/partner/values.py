"""Value plumbing shared by the normalisers: row status codes, Arrow <-> numpy string
buffers, distinct rows, missing-value masks and Unicode spaces."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.kernels.missing import ascii_loose_missing, ascii_missing
from linkage.kernels.text import distinct_strings, padded_words

OK = 0
MISSING = 1
INVALID = 2
REASONS: dict[int, str] = {
    2: "invalid value",
    3: "unparseable date",
    4: "impossible date",
    5: "future date",
    6: "implausible date (before 1890)",
    7: "invalid UK postcode",
    8: "NHS number is not 10 digits",
    9: "NHS number fails the mod-11 check",
    10: "NHS number is a placeholder",
    11: "unrecognised sex code",
    12: "not an integer",
    13: "no letters or digits",
    14: "suspected placeholder (one value on many rows; kept, see --suspected-placeholders)",
    15: "suspected placeholder (one value on many rows; treated as missing)",
    16: "NHS pseudo-postcode (no fixed abode, address not known or abroad; treated as missing)",
    17: "NHS number in the test range 999 000 0000-999 999 9999 (never issued)",
    18: "known placeholder date (a system default, not a real date; treated as missing)",
}
SUSPECTED_KEPT, SUSPECTED_MISSING = 14, 15
"""Row status of a suspected placeholder (:mod:`linkage.partner.placeholders`), set by the
encoder after normalising: reported either way; the value is still encoded (KEPT) or not."""
_UNPARSEABLE_DATE, _IMPOSSIBLE_DATE, _FUTURE_DATE, _EARLY_DATE = 3, 4, 5, 6
_BAD_POSTCODE, _NHS_LEN, _NHS_CHECK, _NHS_PLACEHOLDER = 7, 8, 9, 10
_BAD_SEX, _BAD_INT, _NO_CONTENT = 11, 12, 13
_PSEUDO_POSTCODE, _NHS_TEST_RANGE = 16, 17
_PLACEHOLDER_DATE = 18
"""A date column's value that is a sentinel date of the field's ``missing`` list in any
spelling (``1900-01-01`` for ``01/01/1900``): treated as missing, and reported like the other
known placeholders (NHS pseudo-postcodes, placeholder NHS numbers)."""

EARLIEST_YEAR = 1890


def reason(code: int) -> str:
    """The words of a row problem's status code (:data:`REASONS`)."""
    return REASONS.get(int(code), "invalid value")


_UNICODE_SPACE_RE = (
    r"[\p{Z}\x{0009}-\x{000D}\x{001C}-\x{001F}\x{0085}\x{180E}\x{200B}-\x{200D}\x{2060}\x{FEFF}]"
)
"""Every character Python's ``str.isspace`` or Unicode (Zs, Zl, Zp) counts as whitespace,
with the ASCII controls tab..carriage return and the separators U+001C-U+001F, plus the
zero-width format characters (U+180E, U+200B-U+200D, U+2060, U+FEFF): all become a space."""
_INVISIBLE_RE = r"\x{00AD}"
"""The soft hyphen: invisible, a hint where a word may break, so it is removed (not a space)."""


def unify_spaces(values: pa.Array) -> pa.Array:
    """``values`` with every Unicode space and zero-width character as an ASCII space (the
    normalisers then trim, collapse or drop it as they do spaces) and soft hyphens removed;
    values of printable ASCII, tab, newline, form feed and carriage return untouched."""
    data, _ = string_buffers(values)
    if not ((data >= 128) | (data == 11) | ((data >= 28) & (data <= 31))).any():
        return values
    values = pc.replace_substring_regex(values, _INVISIBLE_RE, "")
    return pc.replace_substring_regex(values, _UNICODE_SPACE_RE, " ")


def _as_string_array(values: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string())
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def _null_if(values: pa.Array, mask: pa.Array) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, pa.string()), values)


def _missing_mask(values: pa.Array, missing: Sequence[str]) -> pa.Array:
    """True where a value is null, blank, or one of the sentinels (compared trimmed, upper)."""
    t = pc.utf8_upper(pc.utf8_trim_whitespace(values))
    m = pc.or_kleene(pc.is_null(values), pc.equal(t, ""))
    if missing:
        sent = pa.array(sorted({s.strip().upper() for s in missing}), pa.string())
        m = pc.or_kleene(m, pc.is_in(t, value_set=sent))
    return pc.fill_null(m, True)


_LETTER, _ODD, _NON_ASCII = 1, 2, 4
_BYTE_CLASS = np.full(256, _ODD | _LETTER | _NON_ASCII, np.uint8)
_BYTE_CLASS[:128] = _ODD
_BYTE_CLASS[ord("0") : ord("9") + 1] = 0
_BYTE_CLASS[ord("A") : ord("Z") + 1] = _LETTER
_BYTE_CLASS[ord("a") : ord("z") + 1] = _LETTER


def sentinel_key(value: str) -> str:
    """A sentinel's loose form: upper-case letters and digits only (``n/a``, ``N.A.`` and
    ``N A`` are all ``NA``; ``Not-Known`` is ``NOTKNOWN``)."""
    return "".join(c for c in value.upper() if c.isalnum())


def loose_missing(values: pa.Array, missing: Sequence[str]) -> np.ndarray:
    """bool numpy mask: True where a value equals one of the ``missing`` sentinels once case,
    spaces and punctuation are ignored (:func:`sentinel_key`), so ``N.A.``, ``n/a`` and
    ``N / A`` all match the sentinel ``N/A`` whatever the field's normaliser makes of them.
    Only sentinels with a letter take part: those of digits (``01/01/1900``, ``0000000000``)
    are compared after normalising (dates after parsing), and those of punctuation only
    (``-``, ``?``) only as they are (:func:`_missing_mask`)."""
    keys, key_data, key_offs = _loose_keys(tuple(missing))
    if not keys or len(values) == 0:
        return np.zeros(len(values), bool)
    # ASCII values in one numba pass; the others (any non-ASCII byte) through Arrow
    data, offs = string_buffers(values)
    code = ascii_loose_missing(data, offs, key_data, key_offs)
    out = code == 1
    rest = np.flatnonzero(code == 2)
    if len(rest) == 0:
        return out
    if len(rest) < len(values):
        values = values.take(pa.array(rest))
        data, offs = string_buffers(values)
    out[rest] = _loose_missing_arrow(values, data, offs, keys)
    return out


@functools.lru_cache(maxsize=64)
def _loose_keys(missing: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The sentinel keys that take part in :func:`loose_missing` (sorted), and their UTF-8
    bytes packed for :func:`linkage.kernels.text.ascii_loose_missing`."""
    keys = sorted({k for k in map(sentinel_key, missing) if any(c.isalpha() for c in k)})
    raw = [k.encode("utf-8") for k in keys]
    offs = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(b) for b in raw], out=offs[1:])
    return keys, np.frombuffer(b"".join(raw), np.uint8).copy(), offs


def _loose_missing_arrow(
    values: pa.Array, data: np.ndarray, offs: np.ndarray, keys: list[str]
) -> np.ndarray:
    """:func:`loose_missing` of any values (``data``, ``offs``: their buffers) by Arrow."""
    out = np.zeros(len(values), bool)
    # only values the exact comparison could have missed: with a letter and with a character
    # that is not an ASCII letter or digit (space, punctuation, non-ASCII), and as many
    # letters and digits as some sentinel has (non-ASCII bytes count as both kinds)
    cls = _BYTE_CLASS[data]

    def per_value(flag: int) -> np.ndarray:
        c = np.concatenate([[0], np.cumsum((cls & flag) != 0)])
        return c[offs[1:]] - c[offs[:-1]]

    odd = per_value(_ODD)
    alnum = np.diff(offs) - odd
    lens = [len(k.encode("utf-8")) for k in keys]
    ok = (odd > 0) & (per_value(_LETTER) > 0) & (alnum <= max(lens))
    short = alnum < min(lens)
    if short.any() and (data >= 128).any():
        short &= per_value(_NON_ASCII) == 0
    ok &= ~short
    cand = np.flatnonzero(ok)
    if len(cand) == 0:
        return out
    sub = values if len(cand) == len(values) else values.take(pa.array(cand))
    key = pc.replace_substring_regex(pc.utf8_upper(sub), r"[^\p{L}\p{N}]", "")
    hit = pc.fill_null(pc.is_in(key, value_set=pa.array(keys, pa.string())), False)
    out[cand] = hit.to_numpy(zero_copy_only=False)
    return out


def _unique_missing(uniq: pa.Array, missing: Sequence[str], fast: bool = True) -> np.ndarray:
    """:func:`_missing_mask` of distinct values as a numpy bool array: ASCII values in one
    numba pass, the rest (everything when ``fast`` is false) through Arrow."""
    if not fast:
        return _missing_mask(uniq, missing).to_numpy(zero_copy_only=False)
    sent = sorted({s.strip().upper() for s in missing})
    sent_b = [s.encode("utf-8") for s in sent]
    sent_off = np.zeros(len(sent_b) + 1, np.int64)
    np.cumsum([len(b) for b in sent_b], out=sent_off[1:])
    sent_data = np.frombuffer(b"".join(sent_b), np.uint8)
    data, offs = string_buffers(uniq)
    code = ascii_missing(data, offs, sent_data, sent_off)
    out = code == 1
    other = np.flatnonzero(code == 2)
    if len(other):
        sub = uniq.take(pa.array(other))
        out[other] = _missing_mask(sub, missing).to_numpy(zero_copy_only=False)
    return out


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 data and int64 offsets of a string array (nulls as empty strings)."""
    if values.offset or values.null_count:
        values = pa.concat_arrays([values.fill_null("")])
    offs = np.frombuffer(values.buffers()[1], np.int32)[: len(values) + 1].astype(np.int64)
    buf = values.buffers()[2]
    return (np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)), offs


def distinct_rows(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(each row's index among the distinct values, the row where each first appears), by
    :func:`linkage.kernels.text.distinct_strings` (nulls count as empty strings)."""
    data, offs = string_buffers(values)
    with np.errstate(over="ignore"):  # wrapping hash arithmetic when NUMBA_DISABLE_JIT=1
        return distinct_strings(padded_words(data), offs)


def string_array(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """A string array over kernel output (``offsets`` int64, n+1 of them)."""
    if offsets[-1] >= 2**31:
        raise ValueError("batch too large")
    return pa.StringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
    )
