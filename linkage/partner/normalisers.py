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
  impossible dates (31/02/1990), future dates and dates before 1890 are row problems.
- ``postcode``: upper-case, spaces removed, UK format validated, one space before the inward
  code: ``l18jq`` -> ``L1 8JQ``.
- ``nhs_number``: spaces and dashes removed; 10 digits with a valid mod-11 check digit, else a
  row problem. Numbers of one repeated digit (0000000000) are placeholders: row problems.
- ``sex``: M / F / I (indeterminate, other); U, X, 0, 9, unknown, not known -> missing.
- ``integer``: an optionally signed integer, thousands separators removed.
- ``none``: trims and collapses whitespace only.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.identifiers import nhs_number_valid as nhs_check_ok
from linkage.kernels.text import (
    DATE_DAY,
    DATE_LITERAL,
    DATE_MONTH,
    DATE_YEAR2,
    DATE_YEAR4,
    MODE_NAME,
    MODE_NONE,
    MODE_TEXT,
    SOUNDEX_TABLE,
    TITLE_DATA,
    TITLE_OFFSETS,
    ascii_missing,
    ascii_normalise,
    distinct_strings,
    nhs_digits,
    padded_words,
    parse_dates,
    postcode_normalise,
    soundex_codes,
)

# Row status codes. Non-zero codes >= INVALID are row problems.
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
}
SUSPECTED_KEPT, SUSPECTED_MISSING = 14, 15
"""Row status of a suspected placeholder (:mod:`linkage.partner.placeholders`), set by the
encoder after normalising: reported either way; the value is still encoded (KEPT) or not."""
_UNPARSEABLE_DATE, _IMPOSSIBLE_DATE, _FUTURE_DATE, _EARLY_DATE = 3, 4, 5, 6
_BAD_POSTCODE, _NHS_LEN, _NHS_CHECK, _NHS_PLACEHOLDER = 7, 8, 9, 10
_BAD_SEX, _BAD_INT, _NO_CONTENT = 11, 12, 13

EARLIEST_YEAR = 1890

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
_UNICODE_SPACE_RE = r"[\p{Z}\x{0085}\x{180E}\x{200B}-\x{200D}\x{2060}\x{FEFF}]"


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


def unify_spaces(values: pa.Array) -> pa.Array:
    """``values`` with every Unicode space and zero-width character as an ASCII space (the
    normalisers then trim, collapse or drop it as they do spaces); ASCII values untouched."""
    data, _ = string_buffers(values)
    if not (data >= 128).any():
        return values
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


def _norm_postcode(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Postcodes: the numba kernel for ASCII values, the regex path for the rest."""
    if not _ascii_rows(values).all():
        return _norm_postcode_general(values)
    out, out_off, valid = postcode_normalise(*string_buffers(values))
    return string_array(out, out_off), np.where(valid, OK, _BAD_POSTCODE).astype(np.int8)


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


def _norm_postcode_general(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    v = pc.utf8_upper(pc.replace_substring_regex(values, r"\s+", ""))
    ok = pc.fill_null(pc.match_substring_regex(v, _POSTCODE_RE), False)
    v = pc.replace_substring_regex(v, r"^(.+)(...)$", r"\1 \2")
    status = np.where(ok.to_numpy(zero_copy_only=False), OK, _BAD_POSTCODE).astype(np.int8)
    return v, status


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
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_FULL_MONTHS = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
]
_DATE_OPS = {"%d": DATE_DAY, "%m": DATE_MONTH, "%Y": DATE_YEAR4, "%y": DATE_YEAR2}
_DIRECTIVES = {
    "%d": r"(?P<d>[0-9]{1,2})",
    "%m": r"(?P<m>[0-9]{1,2})",
    "%Y": r"(?P<Y>[0-9]{4})",
    "%y": r"(?P<y>[0-9]{2})",
    "%b": r"(?P<b>[A-Za-z]{3})",
    "%B": r"(?P<B>[A-Za-z]{3,9})",
}
# Formats tried, in this order, when a column's format is not given.
COMMON_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y%m%d",
    "%Y/%m/%d",
    "%d/%m/%y",
    "%d-%m-%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%d-%b-%y",
    "%d %B %Y",
)


@dataclass(frozen=True)
class DateFormat:
    """A strftime-style date format (``%d %m %Y %y %b %B`` and literal characters).

    A time part after the date (``1990-02-01T00:00:00``, ``01/02/1990 00:00``) is ignored.
    Two-digit years (``%y``) are read as the latest year not in the future (for dates of birth).
    """

    fmt: str

    def __post_init__(self) -> None:
        rest = re.sub(r"%[dmYybB]", "", self.fmt)
        if "%" in rest:
            raise ValueError(f"unsupported directive in date format {self.fmt!r}")
        has_year = "%Y" in self.fmt or "%y" in self.fmt
        has_month = "%m" in self.fmt or "%b" in self.fmt or "%B" in self.fmt
        if not (has_year and has_month and "%d" in self.fmt):
            raise ValueError(f"date format {self.fmt!r} needs a day, a month and a year")

    @property
    def regex(self) -> str:
        out, i = [], 0
        while i < len(self.fmt):
            tok = self.fmt[i : i + 2]
            if tok in _DIRECTIVES:
                out.append(_DIRECTIVES[tok])
                i += 2
            else:
                out.append(re.escape(self.fmt[i]))
                i += 1
        return "^" + "".join(out) + r"(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?$"

    @functools.cached_property
    def program(self) -> np.ndarray | None:
        """The format as a :func:`linkage.kernels.text.parse_dates` program, or None when the
        kernel cannot match it as the regex would (a month name, or a number followed by a
        digit or another number, as in ``%Y%m%d``)."""
        ops: list[tuple[int, int]] = []
        i = 0
        while i < len(self.fmt):
            tok = self.fmt[i : i + 2]
            if tok in _DATE_OPS:
                ops.append((_DATE_OPS[tok], 0))
                i += 2
            elif tok in ("%b", "%B"):
                return None
            else:
                ops.append((DATE_LITERAL, ord(self.fmt[i])))
                i += 1
        for (op, _), (nxt, arg) in itertools.pairwise(ops):
            if op != DATE_LITERAL and (nxt != DATE_LITERAL or chr(arg).isdigit() or arg > 127):
                return None
        return np.array(ops, np.int64).reshape(-1, 2)

    def parse(
        self, values: pa.Array, today: _dt.date | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(year, month, day, plausible) int arrays; unmatched rows have plausible False.

        Two-digit years take the latest century that does not put the date after ``today``.
        """
        data, offs = string_buffers(values)
        program = self.program
        if program is not None and not (data >= 128).any():
            year, month, day, matched = parse_dates(data, offs, program)
        else:
            year, month, day, matched = self._parse_regex(values)
        if "%Y" not in self.fmt:  # two-digit years
            this = (today or _dt.date.today()).year
            century = this // 100 * 100
            year = np.where(century + year > this, century - 100 + year, century + year)
        plausible = matched & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
        return year, month, day, plausible

    def _parse_regex(
        self, values: pa.Array
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(year or two-digit year, month, day, matched) through Arrow's regex engine (the
        reference for the kernel path)."""
        v = pc.utf8_trim_whitespace(values)
        ext = pc.extract_regex(v, self.regex)
        n = len(values)
        matched = pc.is_valid(ext).to_numpy(zero_copy_only=False)
        names = [ext.type.field(i).name for i in range(ext.type.num_fields)]

        def ints(name: str) -> np.ndarray:
            f = pc.struct_field(ext, name)
            f = pc.if_else(pc.is_valid(ext), f, pa.scalar("0"))
            return np.asarray(pc.cast(f, pa.int64()).to_numpy(zero_copy_only=False), np.int64)

        day = ints("d")
        year = ints("Y") if "Y" in names else ints("y")
        if "m" in names:
            month = ints("m")
        else:
            key = "b" if "b" in names else "B"
            f = pc.utf8_upper(pc.if_else(pc.is_valid(ext), pc.struct_field(ext, key), ""))
            table = _MONTHS if key == "b" else _FULL_MONTHS
            mi = pc.index_in(f, value_set=pa.array(table))
            month = np.asarray(pc.fill_null(mi, -1).to_numpy(zero_copy_only=False), np.int64) + 1
        if n == 0:
            z = np.zeros(0, np.int64)
            return z, z, z, np.zeros(0, bool)
        return year, month, day, matched


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    dim = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
    m = np.clip(month, 1, 12) - 1
    return dim[m] + ((m == 1) & leap)


class AmbiguousDateFormat(ValueError):
    """Several date formats fit a column, or none does."""


def detect_date_format(values: pa.Array, missing: Sequence[str] = ()) -> DateFormat:
    """The one common format that parses every non-empty value that is not one of the
    ``missing`` sentinels (``NULL``, ``UNKNOWN``... do not decide the format).

    Raises :class:`AmbiguousDateFormat` if several fit (e.g. every day <= 12, so dd/mm and
    mm/dd both parse) or none does; the message never contains a value.
    """
    values = unify_spaces(_as_string_array(values))
    present = pc.drop_null(_null_if(values, _missing_mask(values, missing)))
    uniq = pc.unique(present)
    if len(uniq) == 0:
        return DateFormat("%Y-%m-%d")
    # a format must parse every value: most fail on a small sample, and only the survivors
    # are checked on all distinct values
    sample = uniq.slice(0, 512)
    fits = []
    for f in COMMON_DATE_FORMATS:
        fmt = DateFormat(f)
        if fmt.parse(sample)[3].all() and fmt.parse(uniq)[3].all():
            fits.append(f)
    if len(fits) == 1:
        return DateFormat(fits[0])
    if len(fits) > 1:
        raise AmbiguousDateFormat(
            f"several date formats fit every value ({', '.join(fits)}); "
            "say which with --date-format FIELD=FORMAT"
        )
    raise AmbiguousDateFormat(
        "no single date format fits every value; say which with --date-format FIELD=FORMAT "
        "(values that do not fit it are then reported as row problems)"
    )


def _format_iso(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> pa.Array:
    """ISO ``YYYY-MM-DD`` strings from int arrays (each clipped to its width), in numpy."""
    n = len(year)
    out = np.full((n, 10), ord("-"), np.uint8)
    for col, (vals, width, top) in zip(
        (0, 5, 8), ((year, 4, 9999), (month, 2, 99), (day, 2, 99)), strict=True
    ):
        v = np.clip(vals, 0, top)
        for j in range(width):
            out[:, col + width - 1 - j] = ord("0") + v // 10**j % 10
    return string_array(out.reshape(-1), np.arange(n + 1, dtype=np.int64) * 10)


def _norm_date(
    values: pa.Array, fmt: DateFormat | None, today: _dt.date | None
) -> tuple[pa.Array, np.ndarray]:
    if fmt is None:
        fmt = detect_date_format(values)
    today = today or _dt.date.today()
    year, month, day, ok = fmt.parse(values, today)
    status = np.full(len(values), OK, np.int8)
    status[~ok] = _UNPARSEABLE_DATE
    valid_cal = ok & (day <= _days_in_month(year, month))
    status[ok & ~valid_cal] = _IMPOSSIBLE_DATE
    ymd = year * 10000 + month * 100 + day
    t = today.year * 10000 + today.month * 100 + today.day
    status[valid_cal & (ymd > t)] = _FUTURE_DATE
    status[valid_cal & (year < EARLIEST_YEAR)] = _EARLY_DATE
    iso = _format_iso(year, month, day)
    return _null_if(iso, pa.array(status != OK)), status


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
    present = np.flatnonzero(~u_miss)
    u_status = np.full(len(uniq), MISSING, np.int8)
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
        t_status = np.where(placeholder & (t_status == OK), MISSING, t_status).astype(np.int8)
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
