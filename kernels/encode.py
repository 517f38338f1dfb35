"""Encoding kernels: q-gram token keys from UTF-8 strings, and setting Bloom-filter bits.

The encoder works per *distinct value* ("unit") of a field: tokens and their bit positions
are computed once per distinct value and once per distinct token, then records set the bits
of their units. Plain-Python references are in tests/test_kernels_encode.py and the
encoder as a whole is compared with tests/reference_encoder.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import serial_and_parallel
from linkage.kernels.text import is_ascii

# The pad character of padded q-grams is codepoint 0; normalisers never emit it.
PAD = 0
CP_BITS = 21  # a Unicode codepoint fits in 21 bits; three fit in a uint64 key


@njit(cache=True, nogil=True)
def _decode_utf8(data: np.ndarray, start: int, end: int, buf: np.ndarray, at: int) -> int:
    """Decode ``data[start:end]`` (valid UTF-8) into codepoints at ``buf[at:]``; return the
    index after the last codepoint written."""
    i = start
    while i < end:
        b0 = np.uint32(data[i])
        if b0 < 0x80:
            cp = b0
            i += 1
        elif b0 < 0xE0:
            cp = ((b0 & 0x1F) << 6) | (np.uint32(data[i + 1]) & 0x3F)
            i += 2
        elif b0 < 0xF0:
            cp = (
                ((b0 & 0x0F) << 12)
                | ((np.uint32(data[i + 1]) & 0x3F) << 6)
                | (np.uint32(data[i + 2]) & 0x3F)
            )
            i += 3
        else:
            cp = (
                ((b0 & 0x07) << 18)
                | ((np.uint32(data[i + 1]) & 0x3F) << 12)
                | ((np.uint32(data[i + 2]) & 0x3F) << 6)
                | (np.uint32(data[i + 3]) & 0x3F)
            )
            i += 4
        buf[at] = cp
        at += 1
    return at


@njit(cache=True, nogil=True)
def _qgram_counts(
    data: np.ndarray, offsets: np.ndarray, q: int, pad: int, all_ascii: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(tok_off int64[n+1], a codepoint buffer for the longest string): string i has
    ``len + 2 pad - q + 1`` q-grams (its length in codepoints; bytes when ``all_ascii``), one
    if it is shorter than that allows, none if empty."""
    n = offsets.shape[0] - 1
    tok_off = np.zeros(n + 1, np.int64)
    maxlen = 0
    for i in range(n):
        ln = offsets[i + 1] - offsets[i]
        if ln > maxlen:
            maxlen = ln
    buf = np.zeros(maxlen + 2 * q, np.uint32)
    for i in range(n):
        if all_ascii:
            m = offsets[i + 1] - offsets[i]
        else:
            m = _decode_utf8(data, offsets[i], offsets[i + 1], buf, 0)
        if m == 0:
            cnt = 0
        elif m + 2 * pad >= q:
            cnt = m + 2 * pad - q + 1
        else:
            cnt = 1
        tok_off[i + 1] = tok_off[i] + cnt
    return tok_off, buf


@njit(cache=True, nogil=True)
def qgram_keys(
    data: np.ndarray, offsets: np.ndarray, q: int, padding: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Character q-gram keys of each string (q in 1..3).

    String i is ``data[offsets[i]:offsets[i+1]]`` (UTF-8). With padding, the codepoints are
    framed by q-1 pad characters (codepoint 0) on each side; a q-gram (c_0..c_{q-1}) becomes
    the key  sum_j c_j << (21 * (q-1-j)).  Without padding, a string shorter than q gives one
    key: itself left-padded with pad characters to q. An empty string gives no keys.

    Returns (tok_off int64[n+1], keys uint64[T]); string i's keys are keys[tok_off[i]:tok_off[i+1]].
    """
    n = offsets.shape[0] - 1
    pad = q - 1 if padding else 0
    tok_off, buf = _qgram_counts(data, offsets, q, pad, False)
    keys = np.empty(tok_off[n], np.uint64)
    # pass 2: fill
    for i in range(n):
        for j in range(pad):
            buf[j] = PAD
        m = _decode_utf8(data, offsets[i], offsets[i + 1], buf, pad)
        if m == pad:
            continue
        for j in range(pad):
            buf[m + j] = PAD
        total = m + pad
        o = tok_off[i]
        if total >= q:
            for s in range(total - q + 1):
                key = np.uint64(0)
                for j in range(q):
                    key = (key << np.uint64(CP_BITS)) | np.uint64(buf[s + j])
                keys[o + s] = key
        else:
            key = np.uint64(0)
            for j in range(total):
                key = (key << np.uint64(CP_BITS)) | np.uint64(buf[j])
            keys[o] = key
    return tok_off, keys


def _set_bits_body(
    out: np.ndarray,
    unit_of_row: np.ndarray,
    unit_tok_off: np.ndarray,
    unit_tok: np.ndarray,
    unit_k: np.ndarray,
    pos: np.ndarray,
) -> None:
    """OR bits into filters: for row r with unit u = unit_of_row[r] >= 0, for each token id g
    of u (``unit_tok[unit_tok_off[u]:unit_tok_off[u+1]]``) and each j < unit_k[u], set bit
    ``pos[g, j]`` of ``out[r]`` (bit p is word p >> 6, bit p & 63)."""
    n = unit_of_row.shape[0]
    for r in prange(n):
        u = unit_of_row[r]
        if u < 0:
            continue
        k = unit_k[u]
        for t in range(unit_tok_off[u], unit_tok_off[u + 1]):
            g = unit_tok[t]
            for j in range(k):
                p = pos[g, j]
                out[r, p >> 6] |= np.uint64(1) << np.uint64(p & 63)


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
set_bits, set_bits_parallel = serial_and_parallel(_set_bits_body, nogil=True)


def _or_unit_rows_body(out: np.ndarray, unit_of_row: np.ndarray, unit_bits: np.ndarray) -> None:
    """``out[r] |= unit_bits[unit_of_row[r]]`` for each row with a unit (>= 0): filters
    from per-unit filters built once (with :func:`set_bits`), when units repeat enough."""
    n = unit_of_row.shape[0]
    w = out.shape[1]
    for r in prange(n):
        u = unit_of_row[r]
        if u < 0:
            continue
        for j in range(w):
            out[r, j] |= unit_bits[u, j]


or_unit_rows, or_unit_rows_parallel = serial_and_parallel(_or_unit_rows_body, nogil=True)


# -- a persistent token table: token key -> row of the field's position table -----------------
@njit(cache=True, nogil=True, inline="always")
def _slot(key: np.uint64, mask: int) -> np.int64:
    """Multiplicative (Fibonacci) hashing: bits 32 and up of key * 2^64/phi, masked to the
    table size (a power of two up to 2^32)."""
    return np.int64((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask


@njit(cache=True, nogil=True)
def _rehash(tkeys: np.ndarray, trows: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """The table's entries in a new table of capacity ``cap`` (a power of two)."""
    nkeys = np.zeros(cap, np.uint64)
    nrows = np.full(cap, -1, np.int64)
    mask = cap - 1
    for i in range(tkeys.shape[0]):
        if trows[i] >= 0:
            h = _slot(tkeys[i], mask)
            while nrows[h] >= 0:
                h = (h + 1) & mask
            nkeys[h] = tkeys[i]
            nrows[h] = trows[i]
    return nkeys, nrows


@njit(cache=True, nogil=True, inline="always")
def _find_or_add(tkeys: np.ndarray, trows: np.ndarray, key: np.uint64, free: int) -> int:
    """The row of ``key``; an unseen key is added with row ``free`` (returned as is)."""
    mask = tkeys.shape[0] - 1
    h = _slot(key, mask)
    while True:
        r = trows[h]
        if r < 0:
            tkeys[h] = key
            trows[h] = free
            return free
        if tkeys[h] == key:
            return r
        h = (h + 1) & mask


@njit(cache=True, nogil=True)
def _keys_from(tkeys: np.ndarray, trows: np.ndarray, used: int, m: int) -> np.ndarray:
    """The table's keys with rows ``used .. used + m - 1``, in row order."""
    out = np.empty(m, np.uint64)
    for h in range(trows.shape[0]):
        r = trows[h]
        if r >= used:
            out[r - used] = tkeys[h]
    return out


def empty_token_table() -> tuple[np.ndarray, np.ndarray]:
    """An empty token table (keys, rows) for :func:`token_rows`/:func:`qgram_token_rows`."""
    return np.zeros(1024, np.uint64), np.full(1024, -1, np.int64)


@njit(cache=True, nogil=True)
def _rows_until_full(
    keys: np.ndarray,
    start: int,
    tkeys: np.ndarray,
    trows: np.ndarray,
    free: int,
    rows: np.ndarray,
    m: int,
) -> tuple[int, int]:
    """token_rows' loop from ``keys[start]`` until done or the table would pass half full;
    returns (next key, new keys so far). (A loop that rebinds the table arrays when it grows
    runs 15x slower, so growing happens outside.)"""
    half = tkeys.shape[0] // 2
    for t in range(start, keys.shape[0]):
        if free + m + 1 > half:
            return t, m
        r = _find_or_add(tkeys, trows, keys[t], free + m)
        if r == free + m:
            m += 1
        rows[t] = r
    return keys.shape[0], m


@njit(cache=True, nogil=True)
def token_rows(
    keys: np.ndarray, tkeys: np.ndarray, trows: np.ndarray, used: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each key's row in a persistent table (an open-addressing hash map key -> row, kept at
    most half full); keys not yet in it get the next free rows ``used, used + 1, ...`` in
    first-appearance order.

    Returns (rows int32[T], new keys uint64[m] in row order, table keys, table rows); the
    table arrays are updated in place, or replaced by bigger ones when the table grows.
    """
    n = keys.shape[0]
    rows = np.empty(n, np.int32)
    t, m = _rows_until_full(keys, 0, tkeys, trows, used, rows, 0)
    while t < n:
        tkeys, trows = _rehash(tkeys, trows, 2 * tkeys.shape[0])
        t, m = _rows_until_full(keys, t, tkeys, trows, used, rows, m)
    return rows, _keys_from(tkeys, trows, used, m), tkeys, trows


ASCII_BITS = 7  # an ASCII character as a direct-cache index digit


@njit(cache=True, nogil=True)
def _qgram_rows_until_full(
    data: np.ndarray,
    offsets: np.ndarray,
    q: int,
    pad: int,
    all_ascii: bool,
    start: int,
    tkeys: np.ndarray,
    trows: np.ndarray,
    free: int,
    tok_off: np.ndarray,
    buf: np.ndarray,
    direct: np.ndarray,
    rows: np.ndarray,
    m: int,
) -> tuple[int, int]:
    """qgram_token_rows' second pass from string ``start`` until done or the table could
    pass half full within the next string; returns (next string, new keys so far).

    ASCII strings take a rolling key straight from the bytes and, for q <= 2, a direct cache
    indexed by the q characters (7 bits each; ``direct`` of size 1 when q = 3); other
    strings are decoded from UTF-8. (All in one loop body: moving the ASCII loop or the
    row lookup into helper functions made it 3-15x slower.)"""
    half = tkeys.shape[0] // 2
    n = offsets.shape[0] - 1
    key_mask = (np.uint64(1) << np.uint64(CP_BITS * q)) - np.uint64(1)
    idx_mask = (1 << (ASCII_BITS * q)) - 1
    use_direct = direct.shape[0] > 1
    for i in range(start, n):
        o = tok_off[i]
        cnt = tok_off[i + 1] - o
        if cnt == 0:
            continue
        if free + m + cnt > half:
            return i, m
        a, b = offsets[i], offsets[i + 1]
        length = b - a
        if length + 2 * pad >= q and (all_ascii or is_ascii(data, a, b)):
            key = np.uint64(0)
            idx = 0
            s = 0
            for t in range(-pad, length + pad):
                c = np.int64(data[a + t]) if 0 <= t < length else np.int64(0)
                key = ((key << np.uint64(CP_BITS)) | np.uint64(c)) & key_mask
                idx = ((idx << ASCII_BITS) | c) & idx_mask
                if t + pad + 1 >= q:
                    r = direct[idx] if use_direct else np.int64(-1)
                    if r < 0:
                        r = _find_or_add(tkeys, trows, key, free + m)
                        if r == free + m:
                            m += 1
                        if use_direct:
                            direct[idx] = r
                    rows[o + s] = r
                    s += 1
            continue
        for j in range(pad):
            buf[j] = PAD
        k = _decode_utf8(data, a, b, buf, pad)
        for j in range(pad):
            buf[k + j] = PAD
        total = k + pad
        width = q if total >= q else total
        for s in range(cnt):
            key = np.uint64(0)
            for j in range(width):
                key = (key << np.uint64(CP_BITS)) | np.uint64(buf[s + j])
            r = _find_or_add(tkeys, trows, key, free + m)
            if r == free + m:
                m += 1
            rows[o + s] = r
    return n, m


@njit(cache=True, nogil=True)
def qgram_token_rows(
    data: np.ndarray,
    offsets: np.ndarray,
    q: int,
    padding: bool,
    tkeys: np.ndarray,
    trows: np.ndarray,
    used: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`qgram_keys` and :func:`token_rows` in one pass, without the keys array:
    (tok_off int64[n+1], rows int32[T], new keys, table keys, table rows)."""
    n = offsets.shape[0] - 1
    pad = q - 1 if padding else 0
    all_ascii = is_ascii(data, 0, data.shape[0])
    tok_off, buf = _qgram_counts(data, offsets, q, pad, all_ascii)
    rows = np.empty(tok_off[n], np.int32)
    direct = np.full(1 << (ASCII_BITS * q) if q <= 2 else 1, -1, np.int32)
    args = (data, offsets, q, pad, all_ascii)
    i, m = _qgram_rows_until_full(*args, 0, tkeys, trows, used, tok_off, buf, direct, rows, 0)
    while i < n:
        tkeys, trows = _rehash(tkeys, trows, 2 * tkeys.shape[0])
        i, m = _qgram_rows_until_full(*args, i, tkeys, trows, used, tok_off, buf, direct, rows, m)
    return tok_off, rows, _keys_from(tkeys, trows, used, m), tkeys, trows


KERNELS = {
    "qgram_keys": qgram_keys,
    "qgram_token_rows": qgram_token_rows,
    "token_rows": token_rows,
    "set_bits": set_bits,
    "set_bits_parallel": set_bits_parallel,
    "or_unit_rows": or_unit_rows,
    "or_unit_rows_parallel": or_unit_rows_parallel,
}
