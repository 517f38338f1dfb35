"""Dates: formats (``%d/%m/%Y``...), detection of one format per column, and the date
normaliser (ISO ``YYYY-MM-DD`` out; unparseable, impossible, future and implausibly early
dates are row problems)."""

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

from linkage.kernels.text import (
    DATE_DAY,
    DATE_LITERAL,
    DATE_MONTH,
    DATE_YEAR2,
    DATE_YEAR4,
    parse_dates,
)
from linkage.partner.values import (
    _EARLY_DATE,
    _FUTURE_DATE,
    _IMPOSSIBLE_DATE,
    _UNPARSEABLE_DATE,
    EARLIEST_YEAR,
    OK,
    _as_string_array,
    _missing_mask,
    _null_if,
    distinct_rows,
    loose_missing,
    string_array,
    string_buffers,
    unify_spaces,
)

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
    "%y%m%d",
    "%d%m%y",
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
    Two-digit years (``%y``) are read as the latest year that does not put the date after today
    (a date of birth is never in the future): ``02/07/24`` is 2024-07-02 from that day on,
    1924-07-02 before it.
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
    def two_digit_year(self) -> bool:
        """True for a format with a two-digit year (``%y``), which cannot tell 1924 from 2024:
        :meth:`parse` reads it as the latest year that does not put the date after today."""
        return "%y" in self.fmt

    @property
    def regex(self) -> str:
        """The format as a regular expression. A day or month beside another number with
        nothing between (``%Y%m%d``, ``%y%m%d``) takes exactly two digits: ``1990112`` could
        be 1990-01-12 or 1990-11-02, and ``261129`` is not year 2611."""
        toks, i = [], 0
        while i < len(self.fmt):
            tok = self.fmt[i : i + 2]
            toks.append(tok if tok in _DIRECTIVES else self.fmt[i])
            i += len(toks[-1])
        out = []
        for j, tok in enumerate(toks):
            if tok in ("%d", "%m") and any(
                0 <= k < len(toks) and toks[k] in _DATE_OPS for k in (j - 1, j + 1)
            ):
                out.append(f"(?P<{tok[1]}>[0-9]{{2}})")
            else:
                out.append(_DIRECTIVES[tok] if tok in _DIRECTIVES else re.escape(tok))
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
        if self.two_digit_year:  # the latest century that does not put the date after today
            t = today or _dt.date.today()
            year = year + t.year // 100 * 100
            later = (year * 10000 + month * 100 + day) > (t.year * 10000 + t.month * 100 + t.day)
            year = np.where(later, year - 100, year)
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


def two_digit_year_warning(field: str, fmt: str) -> str | None:
    """The warning an encode gives, once per field, whose date column was read (detected or
    given) under a format with two-digit years; None for a four-digit-year format."""
    if not DateFormat(fmt).two_digit_year:
        return None
    return (
        f"field {field}: date format {fmt} has two-digit years, which cannot tell 1924 from "
        "2024: each was read as the most recent year that does not put the date in the future "
        "(so someone born in 1924 written 24 reads as born in 2024); an extract with "
        "four-digit years (%Y) avoids this"
    )


class AmbiguousDateFormat(ValueError):
    """Several date formats fit a column, or none does."""


class DateFormatMismatch(ValueError):
    """A given date format fits too few of a column's values to be the column's format."""


MIN_FORMAT_FIT = 0.5
"""A date format given for a column (``--date-format``) must parse at least this share of the
column's rows that hold a value (not blank, not a missing-value sentinel or placeholder date),
or the encode stops: a right format fails only on typing errors (a few percent), while a
wrong one fails on most values; even day and month swapped (``%m/%d/%Y`` for dd/mm/yyyy data)
parses only the ~39% of dates whose day is at most 12."""


@functools.lru_cache(maxsize=64)
def sentinel_dates(missing: tuple[str, ...]) -> np.ndarray:
    """Sorted int64 ``YYYYMMDD`` of the ``missing`` sentinels that are dates, read under every
    common format that parses them as a real calendar date (``01/01/1900`` -> 19000101)."""
    raw = pa.array(list(missing), pa.string())
    out: set[int] = set()
    for f in COMMON_DATE_FORMATS:
        year, month, day, ok = DateFormat(f).parse(raw, _dt.date(2000, 1, 1))
        ok &= (day <= _days_in_month(year, month)) & (year > 0)
        out.update(int(v) for v in (year * 10000 + month * 100 + day)[ok])
    return np.array(sorted(out), np.int64)


def placeholder_dates(values: pa.Array, missing: Sequence[str]) -> np.ndarray:
    """bool numpy mask: True where a value is a sentinel date of ``missing`` written in any
    common format (:data:`COMMON_DATE_FORMATS`, a time part allowed): with the sentinel
    ``01/01/1900``, ``1900-01-01``, ``19000101``, ``01-Jan-1900``, ``01.01.1900`` and
    ``1900-01-01 00:00:00`` are all placeholders, whatever the column's own format. Only values
    holding a sentinel's four-digit year are parsed."""
    out = np.zeros(len(values), bool)
    target = sentinel_dates(tuple(missing))
    if len(target) == 0 or len(values) == 0:
        return out
    years = "|".join(sorted({str(v // 10000) for v in target}))
    has_year = pc.fill_null(pc.match_substring_regex(values, years), False)
    cand = np.flatnonzero(has_year.to_numpy(zero_copy_only=False))
    if len(cand) == 0:
        return out
    sub = values.take(pa.array(cand))
    hit = np.zeros(len(cand), bool)
    for f in COMMON_DATE_FORMATS:
        year, month, day, ok = DateFormat(f).parse(sub, _dt.date(2000, 1, 1))
        hit |= ok & np.isin(year * 10000 + month * 100 + day, target)
    out[cand] = hit
    return out


def date_missing(values: pa.Array, missing: Sequence[str]) -> np.ndarray:
    """bool numpy mask of the values of a date column that are missing: null, blank, a
    ``missing`` sentinel (exactly, or with other case and punctuation: ``N.A.`` for ``N/A``)
    or a sentinel date in any common format (:func:`placeholder_dates`)."""
    out = _missing_mask(values, missing).to_numpy(zero_copy_only=False)
    if missing:
        out |= loose_missing(values, missing) | placeholder_dates(values, missing)
    return out


def _present(values: pa.Array, missing: Sequence[str]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(distinct present values, their row counts, each row's index into them or -1): a date
    column's values less the missing ones (:func:`date_missing`)."""
    values = unify_spaces(_as_string_array(values))
    if values.offset or values.null_count:
        values = pa.concat_arrays([values.fill_null("")])
    which, first = distinct_rows(values)
    uniq = values.take(pa.array(first))
    keep = np.flatnonzero(~date_missing(uniq, missing))
    remap = np.full(len(uniq), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    row_of = remap[which]
    counts = np.bincount(row_of[row_of >= 0], minlength=len(keep))
    return uniq.take(pa.array(keep)), counts, row_of


def _rows_text(rows: np.ndarray, shown: int = 3) -> str:
    """``row 4``, ``rows 4 and 17``, ``rows 4, 17, 230, ...`` (1-based data rows)."""
    nums = [str(int(r) + 1) for r in rows[:shown]]
    if len(nums) == 1:
        return f"row {nums[0]}"
    if len(rows) > shown:
        return f"rows {', '.join(nums)}, ..."
    return f"rows {', '.join(nums[:-1])} and {nums[-1]}"


MAX_UNREADABLE_SHARE = 0.01
"""A detected date format may leave out values that no common format reads (``00/00/0000``,
``1990-13-01``: typing errors, not another format), at most this share of the column's rows
that hold a value; they are then row problems (``unparseable date``). More suggests that the
column is not the dates it is mapped as, and the encode stops."""


def detect_date_format(values: pa.Array, missing: Sequence[str] = ()) -> DateFormat:
    """The one common format that parses every non-empty value of a whole date column that is
    not missing: ``missing`` sentinels (``NULL``, ``UNKNOWN``, also as ``N.A.``...) and
    sentinel dates in any common spelling (``1900-01-01`` for ``01/01/1900``) do not decide
    the format. Values that no common format reads (``00/00/0000``) do not decide it either,
    as long as they are at most :data:`MAX_UNREADABLE_SHARE` of the rows: the normaliser
    reports them as row problems.

    Raises :class:`AmbiguousDateFormat` if several fit (e.g. every day <= 12, so dd/mm and
    mm/dd both parse), if none does (values that another format reads: then it names the
    format that fits most rows and the first rows, 1-based data rows of ``values``, that
    break it) or if too many values fit no format (it says how many, and names the first
    rows). The message never contains a value.
    """
    uniq, counts, row_of = _present(values, missing)
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
    # none fits every value: leave out the values that no format reads
    oks = {f: DateFormat(f).parse(uniq)[3] for f in COMMON_DATE_FORMATS}
    readable = np.logical_or.reduce(list(oks.values()))
    total = int(counts.sum())
    unreadable = int(counts[~readable].sum())
    unreadable_rows = np.flatnonzero(np.isin(row_of, np.flatnonzero(~readable)))
    nothing = (
        f"{unreadable:,} of {total:,} dates fit no common format ({_rows_text(unreadable_rows)})"
        if unreadable
        else "every date fits one"
    )
    # the formats that read every readable value (none when no value is readable); this
    # path is rare (a column no format reads whole), so every format is parsed in full
    fits = [f for f, ok in oks.items() if ok[readable].all()] if readable.any() else []
    if len(fits) == 1:
        if unreadable <= MAX_UNREADABLE_SHARE * total:
            return DateFormat(fits[0])
        raise AmbiguousDateFormat(
            f"the dates fit {fits[0]}, but {nothing}: more than "
            f"{MAX_UNREADABLE_SHARE:.0%}, so is the right column mapped to this field? If it "
            f"is, say so with --date-format FIELD={fits[0]} (values that do not fit it are "
            "then reported as row problems)"
        )
    if len(fits) > 1:
        raise AmbiguousDateFormat(
            f"several date formats fit every value that any common format reads "
            f"({', '.join(fits)}; {nothing}); say which with --date-format FIELD=FORMAT"
        )
    best, best_ok = COMMON_DATE_FORMATS[0], np.zeros(len(uniq), bool)
    for f, ok in oks.items():
        if counts[ok].sum() > counts[best_ok].sum():
            best, best_ok = f, ok
    bad_rows = np.flatnonzero(np.isin(row_of, np.flatnonzero(~best_ok)))
    if best_ok.any():
        found = (
            f"the closest, {best}, fits {int(counts[best_ok].sum()):,} of {total:,} dates but "
            f"not {_rows_text(bad_rows)}"
        )
    else:
        found = f"no common format fits any date ({_rows_text(bad_rows)})"
    raise AmbiguousDateFormat(
        f"no single date format fits every value: {found}; say which with --date-format "
        "FIELD=FORMAT (values that do not fit it are then reported as row problems)"
    )


def check_date_format(values: pa.Array, fmt: DateFormat, missing: Sequence[str] = ()) -> None:
    """Refuse a format given for a whole date column (``--date-format``) that reads fewer than
    :data:`MIN_FORMAT_FIT` of the rows holding a date (missing values and placeholder dates
    left out).

    Raises :class:`DateFormatMismatch` saying how many rows it reads and, where one common
    format fits the column, that format; never a value.
    """
    uniq, counts, _ = _present(values, missing)
    total = int(counts.sum())
    if total == 0:
        return
    fit = int(counts[fmt.parse(uniq)[3]].sum())
    if fit >= MIN_FORMAT_FIT * total:
        return
    try:
        hint = f"; the column looks like {detect_date_format(values, missing).fmt}"
    except AmbiguousDateFormat:
        hint = ""
    raise DateFormatMismatch(
        f"--date-format {fmt.fmt} reads only {fit:,} of {total:,} dates{hint} "
        f"(a format must read at least {MIN_FORMAT_FIT:.0%} of them; leave --date-format out "
        "to detect the format)"
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
