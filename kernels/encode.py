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
    tok_off = np.zeros(n + 1, np.int64)
    maxlen = 0
    for i in range(n):
        ln = offsets[i + 1] - offsets[i]
        if ln > maxlen:
            maxlen = ln
    buf = np.zeros(maxlen + 2 * q, np.uint32)
    # pass 1: count
    pad = q - 1 if padding else 0
    for i in range(n):
        m = _decode_utf8(data, offsets[i], offsets[i + 1], buf, 0)
        if m == 0:
            cnt = 0
        elif m + 2 * pad >= q:
            cnt = m + 2 * pad - q + 1
        else:
            cnt = 1
        tok_off[i + 1] = tok_off[i] + cnt
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


@njit(cache=True, nogil=True)
def _dense_table(uniq: np.ndarray, nu: int, log2: int) -> np.ndarray:
    """An open-addressing table (capacity 2**log2) holding indices 0..nu-1 of ``uniq``."""
    cap = 1 << log2
    mask = cap - 1
    shift = np.uint64(64 - log2)
    table = np.full(cap, -1, np.int64)
    for i in range(nu):
        h = np.int64((uniq[i] * np.uint64(0x9E3779B97F4A7C15)) >> shift) & mask
        while table[h] >= 0:
            h = (h + 1) & mask
        table[h] = i
    return table


@njit(cache=True, nogil=True)
def dense_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys in first-appearance order, and each key's index among them.

    ``uniq[ids[t]] == keys[t]`` for every t; ``uniq`` has no repeats. An open-addressing hash
    table (linear probing, Fibonacci hashing) makes this O(T), unlike sorting. The table grows
    with the number of *distinct* keys (kept at most half full), so for the few thousand
    distinct q-grams of a field it stays in cache however many tokens there are.
    """
    t_len = keys.shape[0]
    log2 = 10
    cap = 1 << log2
    uniq = np.empty(t_len, np.uint64)
    ids = np.empty(t_len, np.int64)
    table = np.full(cap, -1, np.int64)
    shift = np.uint64(64 - log2)
    mask = cap - 1
    nu = 0
    for t in range(t_len):
        k = keys[t]
        h = np.int64((k * np.uint64(0x9E3779B97F4A7C15)) >> shift) & mask
        while True:
            slot = table[h]
            if slot < 0:
                uniq[nu] = k
                ids[t] = nu
                nu += 1
                if 2 * nu > cap:  # grow: rehash the distinct keys into a table twice as big
                    log2 += 1
                    cap <<= 1
                    mask = cap - 1
                    shift = np.uint64(64 - log2)
                    table = _dense_table(uniq, nu, log2)
                else:
                    table[h] = nu - 1
                break
            if uniq[slot] == k:
                ids[t] = slot
                break
            h = (h + 1) & mask
    return ids, uniq[:nu]


KERNELS = {
    "dense_ids": dense_ids,
    "qgram_keys": qgram_keys,
    "set_bits": set_bits,
    "set_bits_parallel": set_bits_parallel,
}
