"""ASCII fast paths for the text normalisers (``name``, ``text``, ``none``).

Most values in UK person data are plain ASCII; for them one pass over the bytes replaces a
chain of Unicode regular expressions. Values with any non-ASCII byte take the general path
in :mod:`linkage.partner.normalisers`, which is also the reference these kernels are tested against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

MODE_NAME = 0
MODE_TEXT = 1
MODE_NONE = 2

# Titles dropped from the front of names (must match linkage.partner.normalisers.TITLES).
TITLE_WORDS = ("MR", "MRS", "MS", "MISS", "MX", "DR", "PROF", "REV", "SIR", "DAME", "LORD", "LADY")


def _title_table() -> tuple[np.ndarray, np.ndarray]:
    blob = "".join(TITLE_WORDS).encode()
    offs = np.zeros(len(TITLE_WORDS) + 1, np.int64)
    np.cumsum([len(t) for t in TITLE_WORDS], out=offs[1:])
    return np.frombuffer(blob, np.uint8).copy(), offs


TITLE_DATA, TITLE_OFFSETS = _title_table()


@njit(cache=True, nogil=True, inline="always")
def _is_space(c: int) -> bool:
    """Python's ``str.isspace`` on ASCII: tab..carriage return (vertical tab included), the
    information separators 0x1C-0x1F and space (what ``unify_spaces`` makes a space)."""
    return (9 <= c <= 13) or (28 <= c <= 32)


@njit(cache=True, nogil=True, inline="always")
def _is_alnum(c: int) -> bool:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


@njit(cache=True, nogil=True, inline="always")
def _upper(c: int) -> int:
    return c - 32 if 97 <= c <= 122 else c


@njit(cache=True, nogil=True)
def is_ascii(data: np.ndarray, a: int, b: int) -> bool:
    """No byte of ``data[a:b]`` is >= 128."""
    for p in range(a, b):  # noqa: SIM110 (a loop numba compiles well)
        if data[p] >= 128:
            return False
    return True


@njit(cache=True, nogil=True)
def _in_table(
    buf: np.ndarray, a: int, b: int, tdata: np.ndarray, toffs: np.ndarray, fold: bool
) -> bool:
    """``buf[a:b]`` (ASCII upper-cased first when ``fold``) is one of the strings
    ``tdata[toffs[t]:toffs[t+1]]``."""
    for t in range(toffs.shape[0] - 1):
        ta, tb = toffs[t], toffs[t + 1]
        if tb - ta != b - a:
            continue
        same = True
        for j in range(b - a):
            c = _upper(buf[a + j]) if fold else buf[a + j]
            if c != tdata[ta + j]:
                same = False
                break
        if same:
            return True
    return False


@njit(cache=True, nogil=True)
def ascii_normalise(
    data: np.ndarray,
    offsets: np.ndarray,
    mode: int,
    tdata: np.ndarray,
    toffs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise ASCII strings ``data[offsets[i]:offsets[i+1]]``.

    - MODE_NAME: upper-case; delete characters that are neither alphanumeric nor whitespace;
      split on whitespace; drop leading title words (and a '.' after them was already deleted)
      while another word follows; concatenate the words.
    - MODE_TEXT: upper-case; delete apostrophes and backticks; every run of other
      non-alphanumeric characters becomes one space; trim.
    - MODE_NONE: every run of whitespace becomes one space; trim.

    Returns (out_data uint8, out_offsets int64).
    """
    n = offsets.shape[0] - 1
    out = np.empty(data.shape[0], np.uint8)
    out_off = np.zeros(n + 1, np.int64)
    scratch = np.empty(1 + (offsets[n] - offsets[0] if n > 0 else 0), np.uint8)
    w_start = np.empty(scratch.shape[0] + 1, np.int64)
    w_end = np.empty(scratch.shape[0] + 1, np.int64)
    o = 0
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        if mode == MODE_NAME:
            # pass 1: upper-case letters/digits and whitespace -> scratch, then split words
            m = 0
            for p in range(a, b):
                c = np.int64(data[p])
                if _is_alnum(c):
                    scratch[m] = _upper(c)
                    m += 1
                elif _is_space(c):
                    scratch[m] = 32
                    m += 1
            nw = 0
            p = 0
            while p < m:
                while p < m and scratch[p] == 32:
                    p += 1
                if p >= m:
                    break
                q = p
                while q < m and scratch[q] != 32:
                    q += 1
                w_start[nw] = p
                w_end[nw] = q
                nw += 1
                p = q
            first = 0
            while first < nw - 1 and _in_table(
                scratch, w_start[first], w_end[first], tdata, toffs, False
            ):
                first += 1
            for wd in range(first, nw):
                for p in range(w_start[wd], w_end[wd]):
                    out[o] = scratch[p]
                    o += 1
        elif mode == MODE_TEXT:
            pending = False
            started = False
            for p in range(a, b):
                c = np.int64(data[p])
                if c == 39 or c == 96:
                    continue
                if _is_alnum(c):
                    if pending and started:
                        out[o] = 32
                        o += 1
                    pending = False
                    out[o] = _upper(c)
                    o += 1
                    started = True
                else:
                    pending = True
        else:
            pending = False
            started = False
            for p in range(a, b):
                c = np.int64(data[p])
                if _is_space(c):
                    pending = True
                else:
                    if pending and started:
                        out[o] = 32
                        o += 1
                    pending = False
                    out[o] = c
                    o += 1
                    started = True
        out_off[i + 1] = o
    return out[:o], out_off


KERNELS: dict[str, Any] = {"ascii_normalise": ascii_normalise}


# Soundex digit per letter A..Z (0: no code: vowels, H, W, Y).
SOUNDEX_TABLE = np.frombuffer(b"01230120022455012623010202", dtype=np.uint8) - ord("0")


@njit(cache=True, nogil=True)
def soundex_codes(
    data: np.ndarray, offsets: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """American Soundex of each string, reading only the bytes A-Z (other bytes ignored).

    First letter, then the digits of the following letters, skipping a digit equal to the
    previous one (H and W do not separate equal digits; vowels do), padded with '0' to 4.
    Returns (codes uint8[n, 4] ASCII, valid bool[n]); invalid where there is no A-Z letter.
    """
    n = offsets.shape[0] - 1
    out = np.full((n, 4), 48, np.uint8)
    valid = np.zeros(n, np.bool_)
    for i in range(n):
        got = 0
        prev = 0
        for p in range(offsets[i], offsets[i + 1]):
            c = np.int64(data[p])
            if c < 65 or c > 90:
                continue
            code = np.int64(table[c - 65])
            if got == 0:
                out[i, 0] = c
                got = 1
                prev = code
                valid[i] = True
                continue
            if code != 0 and code != prev and got < 4:
                out[i, got] = 48 + code
                got += 1
            if c != 72 and c != 87:  # H, W
                prev = code
    return out, valid


KERNELS["soundex_codes"] = soundex_codes


@njit(cache=True, nogil=True, inline="always")
def _is_letter(c: int) -> bool:
    return 65 <= c <= 90


@njit(cache=True, nogil=True, inline="always")
def _is_digit(c: int) -> bool:
    return 48 <= c <= 57


@njit(cache=True, nogil=True)
def postcode_normalise(
    data: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UK postcodes of ASCII strings: whitespace removed, upper-cased, validated against
    ``[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}`` (or GIR0AA), one space before the inward code.

    Returns (out_data uint8, out_offsets int64, valid bool[n]); invalid values are returned
    without the space and must be treated as missing by the caller.
    """
    n = offsets.shape[0] - 1
    out = np.empty(data.shape[0] + n, np.uint8)
    out_off = np.zeros(n + 1, np.int64)
    valid = np.zeros(n, np.bool_)
    buf = np.empty(max(1, data.shape[0]), np.uint8)
    o = 0
    for i in range(n):
        m = 0
        for p in range(offsets[i], offsets[i + 1]):
            c = np.int64(data[p])
            if _is_space(c):
                continue
            buf[m] = _upper(c)
            m += 1
        ok = False
        if 5 <= m <= 7:
            inward = (
                _is_digit(np.int64(buf[m - 3]))
                and _is_letter(np.int64(buf[m - 2]))
                and _is_letter(np.int64(buf[m - 1]))
            )
            k = m - 3  # outward length 2..4: A9, A9A, A99, AA9, AA9A, AA99
            letters = 0
            while letters < 2 and letters < k and _is_letter(np.int64(buf[letters])):
                letters += 1
            if inward and letters >= 1 and letters < k and _is_digit(np.int64(buf[letters])):
                rest = k - letters - 1
                if rest == 0:
                    ok = True
                elif rest == 1:
                    c = np.int64(buf[k - 1])
                    ok = _is_letter(c) or _is_digit(c)
            if not ok and m == 6:
                ok = (
                    buf[0] == 71 and buf[1] == 73 and buf[2] == 82
                    and buf[3] == 48 and buf[4] == 65 and buf[5] == 65
                )  # GIR0AA  # fmt: skip
        valid[i] = ok
        for j in range(m):
            if ok and j == m - 3:
                out[o] = 32
                o += 1
            out[o] = buf[j]
            o += 1
        out_off[i + 1] = o
    return out[:o], out_off, valid


KERNELS["postcode_normalise"] = postcode_normalise


@njit(cache=True, nogil=True)
def join_strings(
    data: np.ndarray, offsets: np.ndarray, rows: np.ndarray, sep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join, for each column r of ``rows`` (an (m, n) int64 array), the strings
    ``rows[0, r], ..., rows[m-1, r]`` (string i is ``data[offsets[i]:offsets[i+1]]``) with the
    byte ``sep`` between them.

    Returns (out uint8, out_offsets int64[n+1], ok bool[n]). A column with any index < 0 is
    not joined: ok False and an empty result.
    """
    m, n = rows.shape
    out_off = np.zeros(n + 1, np.int64)
    ok = np.ones(n, np.bool_)
    for r in range(n):
        ln = m - 1
        for j in range(m):
            i = rows[j, r]
            if i < 0:
                ok[r] = False
                break
            ln += offsets[i + 1] - offsets[i]
        out_off[r + 1] = out_off[r] + (ln if ok[r] else 0)
    out = np.empty(out_off[n], np.uint8)
    for r in range(n):
        if not ok[r]:
            continue
        at = out_off[r]
        for j in range(m):
            if j:
                out[at] = sep
                at += 1
            i = rows[j, r]
            for b in range(offsets[i], offsets[i + 1]):
                out[at] = data[b]
                at += 1
    return out, out_off, ok


KERNELS["join_strings"] = join_strings


# -- distinct strings ----------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _word(d64: np.ndarray, i: int) -> np.uint64:
    """The 8 bytes at byte offset i of the buffer viewed as ``d64`` (little-endian, any
    alignment; the buffer must extend 8 bytes past i)."""
    s = np.uint64((i & 7) * 8)
    lo = d64[i >> 3]
    if s == 0:
        return lo
    return (lo >> s) | (d64[(i >> 3) + 1] << (np.uint64(64) - s))


@njit(cache=True, nogil=True)
def _distinct_until_full(
    padded: np.ndarray,
    offsets: np.ndarray,
    start: int,
    table: np.ndarray,
    first: np.ndarray,
    ids: np.ndarray,
    nu: int,
) -> tuple[int, int]:
    """distinct_strings' loop from string ``start`` until done or the table would pass half
    full; returns (next string, distinct so far). A table entry is (hash >> 33) << 32 | index
    (-1: empty), so most probes need no other memory. Hashing and comparing are written out
    here: as helper functions they cost more than the rest of the loop."""
    cap = table.shape[0]
    log2 = 0
    while (1 << log2) < cap:
        log2 += 1
    half = cap // 2
    mask = cap - 1
    n = offsets.shape[0] - 1
    for r in range(start, n):
        if nu + 1 > half:
            return r, nu
        a, b = offsets[r], offsets[r + 1]
        # hash: 8 bytes at a time (unaligned reads from the uint64 view), tail masked
        h = np.uint64(b - a) * np.uint64(0x9E3779B97F4A7C15)
        i = a
        while i < b:
            sh = np.uint64((i & 7) * 8)
            w = padded[i >> 3]
            if sh != 0:
                w = (w >> sh) | (padded[(i >> 3) + 1] << (np.uint64(64) - sh))
            if b - i < 8:
                w &= (np.uint64(1) << np.uint64(8 * (b - i))) - np.uint64(1)
            h = (h ^ w) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            i += 8
        h ^= h >> np.uint64(29)
        h *= np.uint64(0x94D049BB133111EB)
        tag = np.int64(h >> np.uint64(33))  # 31 bits: entries stay non-negative
        slot = np.int64(h >> np.uint64(64 - log2))
        while True:
            e = table[slot]
            if e < 0:
                table[slot] = (tag << 32) | nu
                first[nu] = r
                ids[r] = nu
                nu += 1
                break
            if (e >> 32) == tag:
                u = e & 0xFFFFFFFF
                fr = first[u]
                c, d = offsets[fr], offsets[fr + 1]
                same = d - c == b - a
                j = 0
                while same and j < b - a:  # compare 8 bytes at a time
                    i1, i2 = a + j, c + j
                    s1 = np.uint64((i1 & 7) * 8)
                    s2 = np.uint64((i2 & 7) * 8)
                    w1 = padded[i1 >> 3]
                    if s1 != 0:
                        w1 = (w1 >> s1) | (padded[(i1 >> 3) + 1] << (np.uint64(64) - s1))
                    w2 = padded[i2 >> 3]
                    if s2 != 0:
                        w2 = (w2 >> s2) | (padded[(i2 >> 3) + 1] << (np.uint64(64) - s2))
                    if b - a - j < 8:
                        tail = (np.uint64(1) << np.uint64(8 * (b - a - j))) - np.uint64(1)
                        w1 &= tail
                        w2 &= tail
                    same = w1 == w2
                    j += 8
                if same:
                    ids[r] = u
                    break
            slot = (slot + 1) & mask
    return n, nu


@njit(cache=True, nogil=True)
def _regrow(table: np.ndarray) -> np.ndarray:
    """The entries of a distinct_strings table in one twice as big (slots from the tags)."""
    cap = table.shape[0] * 2
    log2 = 0
    while (1 << log2) < cap:
        log2 += 1
    out = np.full(cap, -1, np.int64)
    for e in table:
        if e >= 0:
            slot = (e >> 32) >> (31 - log2)  # the top log2 bits of the hash
            while out[slot] >= 0:
                slot = (slot + 1) & (cap - 1)
            out[slot] = e
    return out


@njit(cache=True, nogil=True)
def distinct_strings(padded: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct strings in first-appearance order, and each string's index among them.

    String i is ``padded[offsets[i]:offsets[i+1]]``; ``padded`` is a uint64 view of the
    bytes followed by at least 8 bytes of padding (see :func:`padded_words`). Returns
    (ids int32[n], first int64[U]: the row where each distinct string first appears).
    An open-addressing table keyed by a 64-bit hash of the bytes (8 at a time), compared
    byte-exactly on a hit; it starts at twice the strings (at most 2^18 slots: regrowing,
    which rehashes, cost more than the loop) and grows with the distinct ones (up to 2^30).
    """
    n = offsets.shape[0] - 1
    cap = 1024
    while cap < 2 * n and cap < (1 << 18):
        cap *= 2
    table = np.full(cap, -1, np.int64)
    first = np.empty(n, np.int64)
    ids = np.empty(n, np.int32)
    r, nu = _distinct_until_full(padded, offsets, 0, table, first, ids, 0)
    while r < n:
        table = _regrow(table)
        r, nu = _distinct_until_full(padded, offsets, r, table, first, ids, nu)
    return ids, first[:nu].copy()


KERNELS["distinct_strings"] = distinct_strings


def padded_words(data: np.ndarray) -> np.ndarray:
    """The bytes ``data`` copied into a zero-padded uint64 buffer (for :func:`distinct_strings`)."""
    words = np.zeros((len(data) + 15) // 8 + 1, np.uint64)
    words.view(np.uint8)[: len(data)] = data
    return words


@njit(cache=True, nogil=True, inline="always")
def _is_trim_space(c: int) -> bool:
    """Arrow's utf8_trim_whitespace, on ASCII: tab..CR, the separators 0x1C-0x1F, space."""
    return (9 <= c <= 13) or (28 <= c <= 32)


@njit(cache=True, nogil=True)
def nhs_digits(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digits of NHS numbers: each string with RE2's ``\\s`` and ``-`` removed must be
    exactly 10 ASCII digits. Returns (digits uint8 (n, 10) as values 0-9, is10 bool[n]);
    rows that are not 10 digits have undefined digits."""
    n = offsets.shape[0] - 1
    digits = np.zeros((n, 10), np.uint8)
    is10 = np.zeros(n, np.bool_)
    for i in range(n):
        k = 0
        ok = True
        for p in range(offsets[i], offsets[i + 1]):
            c = np.int64(data[p])
            if 48 <= c <= 57:
                if k == 10:
                    ok = False
                    break
                digits[i, k] = c - 48
                k += 1
            elif not (_is_space(c) or c == 45):
                ok = False
                break
        is10[i] = ok and k == 10
    return digits, is10


KERNELS["nhs_digits"] = nhs_digits


# -- dates -------------------------------------------------------------------------------------
DATE_LITERAL, DATE_DAY, DATE_MONTH, DATE_YEAR4, DATE_YEAR2 = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True, inline="always")
def _is_digit_byte(c: int) -> bool:
    return 48 <= c <= 57


@njit(cache=True, nogil=True)
def _time_suffix_ok(data: np.ndarray, p: int, b: int) -> bool:
    """``data[p:b]`` matches ``(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?`` exactly."""
    if p == b:
        return True
    if data[p] != 84 and data[p] != 32:  # T or space
        return False
    p += 1
    q = p
    while q < b and (_is_digit_byte(data[q]) or data[q] == 58 or data[q] == 46):
        q += 1
    if q == p:
        return False
    if q == b:
        return True
    if data[q] == 90:  # Z
        return q + 1 == b
    if data[q] != 43 and data[q] != 45:  # + or -
        return False
    p = q + 1
    q = p
    while q < b and (_is_digit_byte(data[q]) or data[q] == 58):
        q += 1
    return q > p and q == b


@njit(cache=True, nogil=True)
def parse_dates(
    data: np.ndarray, offsets: np.ndarray, program: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse ASCII dates against a format program: rows (op, arg) of ``DATE_LITERAL`` (the
    byte arg), ``DATE_DAY``/``DATE_MONTH`` (1-2 digits), ``DATE_YEAR4`` (4 digits) or
    ``DATE_YEAR2`` (2 digits). Each number must be followed by a non-digit literal or be
    last (then the run of digits is the number, as the regex would match it). The value is
    trimmed of whitespace (Arrow's ASCII set) and may end in a time part,
    ``[T ][0-9:.]+(Z|[+-][0-9:]+)?``, which is ignored.

    Returns (year, month, day int64, matched bool); unmatched rows have zeros.
    """
    n = offsets.shape[0] - 1
    year = np.zeros(n, np.int64)
    month = np.zeros(n, np.int64)
    day = np.zeros(n, np.int64)
    matched = np.zeros(n, np.bool_)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        while a < b and _is_trim_space(data[a]):
            a += 1
        while b > a and _is_trim_space(data[b - 1]):
            b -= 1
        p = a
        ok = True
        y = mo = d = 0
        for k in range(program.shape[0]):
            op = program[k, 0]
            if op == DATE_LITERAL:
                if p < b and data[p] == program[k, 1]:
                    p += 1
                    continue
                ok = False
                break
            q = p
            v = 0
            while q < b and _is_digit_byte(data[q]):
                if q - p < 4:  # no number has more digits (a longer run fails below)
                    v = v * 10 + (np.int64(data[q]) - 48)
                q += 1
            width = q - p
            if op == DATE_YEAR4:
                ok = width == 4
            elif op == DATE_YEAR2:
                ok = width == 2
            else:  # day or month
                ok = 1 <= width <= 2
            if not ok:
                break
            if op == DATE_DAY:
                d = v
            elif op == DATE_MONTH:
                mo = v
            else:
                y = v
            p = q
        if ok and _time_suffix_ok(data, p, b):
            year[i] = y
            month[i] = mo
            day[i] = d
            matched[i] = True
    return year, month, day, matched


KERNELS["parse_dates"] = parse_dates
