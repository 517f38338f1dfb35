"""BLAKE2b (RFC 7693, Saarinen & Aumasson 2015) of many short messages, batched in numba.

The linkage map keeps a BLAKE2b-128 digest of every record (its filter bytes, then its block
keys) to tell a changed record from an unchanged one; a Python loop over ``hashlib`` costs
about a microsecond per record, this kernel hashes a batch in one call (threads with
``prange``). Unkeyed BLAKE2b with a digest of ``nn`` bytes (1..64) of messages made of
whole little-endian 64-bit words, identical to ``hashlib.blake2b(message, digest_size=nn)``
(:func:`blake2b_reference`, which the tests compare against).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import serial_and_parallel

IV = np.array(
    [
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ],
    np.uint64,
)

SIGMA = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
        [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
        [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
        [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
        [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
        [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
        [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
        [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
        [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    ],
    np.int64,
)


@njit(cache=True, nogil=True, inline="always")
def _rotr(x: Any, b: int) -> Any:
    return (x >> np.uint64(b)) | (x << np.uint64(64 - b))


@njit(cache=True, nogil=True, inline="always")
def _g(a: Any, b: Any, c: Any, d: Any, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    a = a + b + x
    d = _rotr(d ^ a, 32)
    c = c + d
    b = _rotr(b ^ c, 24)
    a = a + b + y
    d = _rotr(d ^ a, 16)
    c = c + d
    b = _rotr(b ^ c, 63)
    return a, b, c, d


@njit(cache=True, nogil=True)
def blake2b_compress(h: np.ndarray, m: np.ndarray, t: int, last: bool) -> None:
    """RFC 7693 function F: compress the block ``m`` (16 uint64) into ``h`` (8 uint64);
    ``t``: bytes hashed so far (< 2**63), ``last``: the final block."""
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = IV[0], IV[1], IV[2], IV[3]
    v12 = IV[4] ^ np.uint64(t)
    v13 = IV[5]
    v14 = ~IV[6] if last else IV[6]
    v15 = IV[7]
    for r in range(12):
        v0, v4, v8, v12 = _g(v0, v4, v8, v12, m[SIGMA[r, 0]], m[SIGMA[r, 1]])
        v1, v5, v9, v13 = _g(v1, v5, v9, v13, m[SIGMA[r, 2]], m[SIGMA[r, 3]])
        v2, v6, v10, v14 = _g(v2, v6, v10, v14, m[SIGMA[r, 4]], m[SIGMA[r, 5]])
        v3, v7, v11, v15 = _g(v3, v7, v11, v15, m[SIGMA[r, 6]], m[SIGMA[r, 7]])
        v0, v5, v10, v15 = _g(v0, v5, v10, v15, m[SIGMA[r, 8]], m[SIGMA[r, 9]])
        v1, v6, v11, v12 = _g(v1, v6, v11, v12, m[SIGMA[r, 10]], m[SIGMA[r, 11]])
        v2, v7, v8, v13 = _g(v2, v7, v8, v13, m[SIGMA[r, 12]], m[SIGMA[r, 13]])
        v3, v4, v9, v14 = _g(v3, v4, v9, v14, m[SIGMA[r, 14]], m[SIGMA[r, 15]])
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@njit(cache=True, nogil=True)
def blake2b_words(
    words: np.ndarray,
    start: int,
    end: int,
    out: np.ndarray,
    h: np.ndarray,
    m: np.ndarray,
) -> None:
    """``out[:] = BLAKE2b(bytes of words[start:end])`` (little-endian uint64 words), a digest
    of ``len(out)`` bytes (1..64); ``h`` (8), ``m`` (16): uint64 scratch."""
    nn = out.shape[0]
    for i in range(8):
        h[i] = IV[i]
    h[0] ^= np.uint64(0x01010000 ^ nn)
    n = end - start
    blocks = max(1, (n + 15) // 16)
    for blk in range(blocks):
        base = start + 16 * blk
        take = min(16, end - base)
        for w in range(16):
            m[w] = words[base + w] if w < take else np.uint64(0)
        blake2b_compress(h, m, 8 * (16 * blk + max(take, 0)), blk == blocks - 1)
    for j in range(nn):
        out[j] = np.uint8((h[j // 8] >> np.uint64(8 * (j % 8))) & np.uint64(0xFF))


def _blake2b_batch_body(words: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = BLAKE2b(words[offsets[i]:offsets[i+1]])``, ``out``: (n, nn) uint8; scratch
    once per chunk of 4096 messages."""
    n = offsets.shape[0] - 1
    chunks = (n + 4095) // 4096
    for c in prange(chunks):
        h = np.empty(8, np.uint64)
        m = np.empty(16, np.uint64)
        for i in range(4096 * c, min(n, 4096 * (c + 1))):
            blake2b_words(words, offsets[i], offsets[i + 1], out[i], h, m)


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
blake2b_batch_serial, blake2b_batch_parallel = serial_and_parallel(_blake2b_batch_body, nogil=True)


def blake2b_batch(
    words: np.ndarray, offsets: np.ndarray, digest_size: int = 16, *, parallel: bool = False
) -> np.ndarray:
    """BLAKE2b digests of the messages ``words[offsets[i]:offsets[i+1]]`` (their bytes,
    little-endian: messages of whole 64-bit words, as filters and block keys are):
    (n, digest_size) uint8, equal to ``hashlib.blake2b(msg, digest_size=digest_size)``.
    ``words``: uint64[L]; ``offsets``: int64[n+1] in words, non-decreasing, within ``words``.
    Raises ValueError on bad offsets or a digest size outside 1..64."""
    words = np.ascontiguousarray(words, "<u8").reshape(-1).view(np.uint64)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if not 1 <= digest_size <= 64:
        raise ValueError(f"BLAKE2b digest size must be 1..64 bytes, got {digest_size}")
    if offsets.ndim != 1 or len(offsets) == 0:
        raise ValueError("offsets must be int64[n+1]")
    if (np.diff(offsets) < 0).any() or offsets[0] < 0 or offsets[-1] > len(words):
        raise ValueError("offsets must be non-decreasing and within the words")
    out = np.empty((len(offsets) - 1, digest_size), np.uint8)
    if len(out):
        with np.errstate(over="ignore"):  # wrap-around is the algorithm (NUMBA_DISABLE_JIT=1)
            (blake2b_batch_parallel if parallel else blake2b_batch_serial)(words, offsets, out)
    return out


def blake2b_reference(words: np.ndarray, offsets: np.ndarray, digest_size: int = 16) -> np.ndarray:
    """The same with ``hashlib`` (a loop: the reference for tests)."""
    raw = np.ascontiguousarray(words, "<u8").reshape(-1)
    out = np.empty((len(offsets) - 1, digest_size), np.uint8)
    for i in range(len(offsets) - 1):
        msg = raw[offsets[i] : offsets[i + 1]].tobytes()
        out[i] = np.frombuffer(hashlib.blake2b(msg, digest_size=digest_size).digest(), np.uint8)
    return out


KERNELS: dict[str, Any] = {"blake2b_batch": blake2b_batch}
