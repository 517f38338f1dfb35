"""HMAC-SHA256 in numba, batched over many short messages, and keyed bit positions.

Python's ``hmac.digest`` costs microseconds per call in interpreter and context overhead;
encoding hashes hundreds of thousands of distinct tokens per batch. Here the HMAC key's inner
and outer states are computed once (:func:`hmac_states`), then each message costs two or
more SHA-256 compressions in compiled code, in parallel and without the GIL.

Arithmetic uses int64 holding 32-bit words (masked), so the same code runs unchanged under
``NUMBA_DISABLE_JIT=1``. The reference is Python's own :mod:`hmac` (tests compare bytes).
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import serial_and_parallel

M32 = 0xFFFFFFFF
_K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.int64,
)  # fmt: skip
_H0 = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
     0x5BE0CD19],
    dtype=np.int64,
)  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & M32


@njit(cache=True, nogil=True)
def sha256_compress(state: np.ndarray, block: np.ndarray, w: np.ndarray) -> None:
    """One SHA-256 compression (FIPS 180-4 section 6.2.2) of the 64-byte ``block`` into
    ``state`` (8 int64 words < 2^32), using ``w`` (64 int64) as scratch."""
    for t in range(16):
        w[t] = (
            (np.int64(block[4 * t]) << 24)
            | (np.int64(block[4 * t + 1]) << 16)
            | (np.int64(block[4 * t + 2]) << 8)
            | np.int64(block[4 * t + 3])
        )
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & M32
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ ((~e & M32) & g)
        t1 = (h + s1 + ch + _K[t] + w[t]) & M32
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (s0 + maj) & M32
        h, g, f, e = g, f, e, (d + t1) & M32
        d, c, b, a = c, b, a, (t1 + t2) & M32
    state[0] = (state[0] + a) & M32
    state[1] = (state[1] + b) & M32
    state[2] = (state[2] + c) & M32
    state[3] = (state[3] + d) & M32
    state[4] = (state[4] + e) & M32
    state[5] = (state[5] + f) & M32
    state[6] = (state[6] + g) & M32
    state[7] = (state[7] + h) & M32


def hmac_states(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """SHA-256 states after the ipad and opad blocks of an HMAC key (RFC 2104)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    w = np.zeros(64, np.int64)
    out = []
    for pad in (0x36, 0x5C):
        st = _H0.copy()
        sha256_compress(st, np.frombuffer(bytes(b ^ pad for b in key), np.uint8), w)
        out.append(st)
    return out[0], out[1]


@njit(cache=True, nogil=True)
def _hmac_one(
    istate: np.ndarray,
    ostate: np.ndarray,
    data: np.ndarray,
    start: int,
    end: int,
    suffix: int,
    st: np.ndarray,
    block: np.ndarray,
    w: np.ndarray,
    digest: np.ndarray,
) -> None:
    """HMAC of ``data[start:end]`` followed by the byte ``suffix`` (if suffix >= 0) into
    ``digest`` (32 uint8)."""
    m0 = end - start
    mlen = m0 + (1 if suffix >= 0 else 0)
    for i in range(8):
        st[i] = istate[i]
    # inner hash: (ipad block, precomputed) || message || suffix || 0x80 || 0.. || bit length
    bits = (64 + mlen) * 8
    nblocks = (mlen + 9 + 63) // 64
    for blk in range(nblocks):
        lo = 64 * blk
        for j in range(64):
            block[j] = 0
        if lo < m0:
            for j in range(min(64, m0 - lo)):
                block[j] = data[start + lo + j]
        if suffix >= 0 and lo <= m0 < lo + 64:
            block[m0 - lo] = suffix
        if lo <= mlen < lo + 64:
            block[mlen - lo] = 0x80
        if blk == nblocks - 1:
            for j in range(8):
                block[63 - j] = (bits >> (8 * j)) & 0xFF
        sha256_compress(st, block, w)
    # outer hash: opad block (precomputed) || inner digest || padding (96 bytes total)
    for i in range(8):
        v = st[i]
        block[4 * i] = (v >> 24) & 0xFF
        block[4 * i + 1] = (v >> 16) & 0xFF
        block[4 * i + 2] = (v >> 8) & 0xFF
        block[4 * i + 3] = v & 0xFF
        st[i] = ostate[i]
    block[32] = 0x80
    for j in range(33, 62):
        block[j] = 0
    block[62] = (96 * 8) >> 8
    block[63] = (96 * 8) & 0xFF
    sha256_compress(st, block, w)
    for i in range(8):
        v = st[i]
        digest[4 * i] = (v >> 24) & 0xFF
        digest[4 * i + 1] = (v >> 16) & 0xFF
        digest[4 * i + 2] = (v >> 8) & 0xFF
        digest[4 * i + 3] = v & 0xFF


def _hmac_batch_body(
    istate: np.ndarray,
    ostate: np.ndarray,
    data: np.ndarray,
    offsets: np.ndarray,
    nblocks: int,
    out: np.ndarray,
) -> None:
    """``out[i, 32j:32j+32] = HMAC(key, msg_i || j)`` for j < nblocks, where msg_i is
    ``data[offsets[i]:offsets[i+1]]``; with nblocks == 0, ``out[i, :32] = HMAC(key, msg_i)``."""
    n = offsets.shape[0] - 1
    nchunks = (n + 255) // 256
    for c in prange(nchunks):
        st = np.empty(8, np.int64)
        block = np.empty(64, np.uint8)
        w = np.empty(64, np.int64)
        digest = np.empty(32, np.uint8)
        for i in range(c * 256, min(n, c * 256 + 256)):
            a, b = offsets[i], offsets[i + 1]
            if nblocks == 0:
                _hmac_one(istate, ostate, data, a, b, -1, st, block, w, digest)
                for t in range(32):
                    out[i, t] = digest[t]
            for j in range(nblocks):
                _hmac_one(istate, ostate, data, a, b, j, st, block, w, digest)
                for t in range(32):
                    out[i, 32 * j + t] = digest[t]


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
hmac_batch, hmac_batch_parallel = serial_and_parallel(_hmac_batch_body, nogil=True)


@njit(cache=True, nogil=True)
def window_positions(digests: np.ndarray, length: int, kmax: int, out: np.ndarray) -> np.ndarray:
    """First ``kmax`` accepted b-bit windows per row, b = ceil(log2 length).

    Row i of ``digests`` is a sequence of 32-byte blocks; window t of a block is bits
    b*t .. b*t+b-1 of the block read as a little-endian 256-bit integer, for t < 256 // b.
    A window w is accepted when w < length (b <= 17: windows are read from 3 bytes, enough for
    filters of up to 2^17 bits). Returns a bool per row: True where the blocks ran
    out before ``kmax`` windows were accepted (the caller hashes more blocks).
    """
    b = 0
    while (1 << b) < length:
        b += 1
    if b == 0:
        b = 1
    per_block = 256 // b
    mask = (1 << b) - 1
    rows = digests.shape[0]
    nblocks = digests.shape[1] // 32
    short = np.zeros(rows, np.bool_)
    if kmax <= 0:
        return short
    for i in range(rows):
        got = 0
        for blk in range(nblocks):
            base = 32 * blk
            for t in range(per_block):
                bit = b * t
                byte = bit >> 3
                v = 0
                for q in range(3):
                    if byte + q < 32:
                        v |= np.int64(digests[i, base + byte + q]) << (8 * q)
                w = (v >> (bit & 7)) & mask
                if w < length:
                    out[i, got] = w
                    got += 1
                    if got == kmax:
                        break
            if got == kmax:
                break
        if got < kmax:
            short[i] = True
    return short


KERNELS = {
    "sha256_compress": sha256_compress,
    "hmac_batch": hmac_batch,
    "hmac_batch_parallel": hmac_batch_parallel,
    "window_positions": window_positions,
}


# -- 16 messages at a time ----------------------------------------------------------------------
# The same compression, with the 16 messages in SIMD lanes (the loop over lanes is innermost, so
# LLVM vectorises it); about 6x the scalar throughput on short messages.
LANES = 16
_K32 = _K.astype(np.uint32)
_U = np.uint32


@njit(cache=True, nogil=True)
def sha256_compress_lanes(
    state: np.ndarray, blocks: np.ndarray, w: np.ndarray, s: np.ndarray
) -> None:
    """:func:`sha256_compress` of ``blocks[l]`` into ``state[:, l]`` for the 16 lanes l.

    ``state`` (8, 16) uint32, ``blocks`` (16, 64) uint8, scratch ``w`` (64, 16) and ``s``
    (8, 16) uint32."""
    for t in range(16):
        for lane in range(LANES):
            w[t, lane] = (
                (_U(blocks[lane, 4 * t]) << _U(24))
                | (_U(blocks[lane, 4 * t + 1]) << _U(16))
                | (_U(blocks[lane, 4 * t + 2]) << _U(8))
                | _U(blocks[lane, 4 * t + 3])
            )
    for t in range(16, 64):
        for lane in range(LANES):
            x = w[t - 15, lane]
            y = w[t - 2, lane]
            s0 = ((x >> _U(7)) | (x << _U(25))) ^ ((x >> _U(18)) | (x << _U(14))) ^ (x >> _U(3))
            s1 = ((y >> _U(17)) | (y << _U(15))) ^ ((y >> _U(19)) | (y << _U(13))) ^ (y >> _U(10))
            w[t, lane] = _U(w[t - 16, lane] + s0 + w[t - 7, lane] + s1)
    for r in range(8):
        for lane in range(LANES):
            s[r, lane] = state[r, lane]
    for t in range(64):
        k = _K32[t]
        for lane in range(LANES):
            a = s[0, lane]
            b = s[1, lane]
            c = s[2, lane]
            d = s[3, lane]
            e = s[4, lane]
            f = s[5, lane]
            g = s[6, lane]
            h = s[7, lane]
            s1 = (
                ((e >> _U(6)) | (e << _U(26)))
                ^ ((e >> _U(11)) | (e << _U(21)))
                ^ ((e >> _U(25)) | (e << _U(7)))
            )
            ch = (e & f) ^ (~e & g)
            t1 = _U(h + s1 + ch + k + w[t, lane])
            s0 = (
                ((a >> _U(2)) | (a << _U(30)))
                ^ ((a >> _U(13)) | (a << _U(19)))
                ^ ((a >> _U(22)) | (a << _U(10)))
            )
            maj = (a & b) ^ (a & c) ^ (b & c)
            s[7, lane] = g
            s[6, lane] = f
            s[5, lane] = e
            s[4, lane] = _U(d + t1)
            s[3, lane] = c
            s[2, lane] = b
            s[1, lane] = a
            s[0, lane] = _U(t1 + s0 + maj)
    for r in range(8):
        for lane in range(LANES):
            state[r, lane] = _U(state[r, lane] + s[r, lane])


@njit(cache=True, nogil=True)
def hmac_short_lanes(
    istate: np.ndarray,
    ostate: np.ndarray,
    data: np.ndarray,
    offsets: np.ndarray,
    idx: np.ndarray,
    nblocks: int,
    out: np.ndarray,
) -> None:
    """:func:`hmac_batch` for the messages ``idx`` (each at most 55 bytes with its suffix
    byte, so the inner hash is one block), 16 at a time in SIMD lanes."""
    m = idx.shape[0]
    state = np.empty((8, LANES), np.uint32)
    blocks = np.zeros((LANES, 64), np.uint8)
    w = np.empty((64, LANES), np.uint32)
    s = np.empty((8, LANES), np.uint32)
    inner = np.empty((8, LANES), np.uint32)
    reps = max(nblocks, 1)
    for g0 in range(0, m, LANES):
        g1 = min(m, g0 + LANES)
        for j in range(reps):
            suffix = j if nblocks > 0 else -1
            for lane in range(LANES):
                for b in range(64):
                    blocks[lane, b] = 0
                if g0 + lane < g1:
                    i = idx[g0 + lane]
                    a0 = offsets[i]
                    n = offsets[i + 1] - a0
                    for b in range(n):
                        blocks[lane, b] = data[a0 + b]
                    mlen = n
                    if suffix >= 0:
                        blocks[lane, n] = suffix
                        mlen = n + 1
                    blocks[lane, mlen] = 0x80
                    bits = (64 + mlen) * 8
                    for b in range(8):
                        blocks[lane, 63 - b] = (bits >> (8 * b)) & 0xFF
            for r in range(8):
                for lane in range(LANES):
                    state[r, lane] = istate[r]
            sha256_compress_lanes(state, blocks, w, s)
            for r in range(8):
                for lane in range(LANES):
                    inner[r, lane] = state[r, lane]
            for lane in range(LANES):
                for r in range(8):
                    v = inner[r, lane]
                    blocks[lane, 4 * r] = (v >> 24) & 0xFF
                    blocks[lane, 4 * r + 1] = (v >> 16) & 0xFF
                    blocks[lane, 4 * r + 2] = (v >> 8) & 0xFF
                    blocks[lane, 4 * r + 3] = v & 0xFF
                blocks[lane, 32] = 0x80
                for b in range(33, 62):
                    blocks[lane, b] = 0
                blocks[lane, 62] = (96 * 8) >> 8
                blocks[lane, 63] = (96 * 8) & 0xFF
            for r in range(8):
                for lane in range(LANES):
                    state[r, lane] = ostate[r]
            sha256_compress_lanes(state, blocks, w, s)
            for lane in range(g1 - g0):
                i = idx[g0 + lane]
                for r in range(8):
                    v = state[r, lane]
                    out[i, 32 * j + 4 * r] = (v >> 24) & 0xFF
                    out[i, 32 * j + 4 * r + 1] = (v >> 16) & 0xFF
                    out[i, 32 * j + 4 * r + 2] = (v >> 8) & 0xFF
                    out[i, 32 * j + 4 * r + 3] = v & 0xFF


KERNELS["sha256_compress_lanes"] = sha256_compress_lanes
KERNELS["hmac_short_lanes"] = hmac_short_lanes
