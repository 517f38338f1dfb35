"""SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed 64-bit PRF, batched in numba.

Block keys need a keyed 64-bit hash that the linkage unit cannot reverse by dictionary; SipHash
is designed for exactly that (a PRF on short inputs under a 128-bit key) and costs a few
nanoseconds per key, where HMAC-SHA256 costs two SHA-256 compressions. The keys are derived
with HKDF from the project secret, like every other key.

A plain-Python reference, :func:`siphash24_reference`, is used by the tests (with the
published test vectors).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from linkage.kernels.popcount import serial_and_parallel

_M64 = (1 << 64) - 1


@njit(cache=True, nogil=True, inline="always")
def _rotl(x: Any, b: int) -> Any:
    return (x << np.uint64(b)) | (x >> np.uint64(64 - b))


@njit(cache=True, nogil=True, inline="always")
def _round(v0: Any, v1: Any, v2: Any, v3: Any) -> tuple[Any, Any, Any, Any]:
    v0 = v0 + v1
    v1 = _rotl(v1, 13)
    v1 ^= v0
    v0 = _rotl(v0, 32)
    v2 = v2 + v3
    v3 = _rotl(v3, 16)
    v3 ^= v2
    v0 = v0 + v3
    v3 = _rotl(v3, 21)
    v3 ^= v0
    v2 = v2 + v1
    v1 = _rotl(v1, 17)
    v1 ^= v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


@njit(cache=True, nogil=True)
def siphash24_one(k0: Any, k1: Any, data: np.ndarray, start: int, end: int) -> Any:
    """SipHash-2-4 of ``data[start:end]`` under the key (k0, k1) (two little-endian uint64)."""
    v0 = k0 ^ np.uint64(0x736F6D6570736575)
    v1 = k1 ^ np.uint64(0x646F72616E646F6D)
    v2 = k0 ^ np.uint64(0x6C7967656E657261)
    v3 = k1 ^ np.uint64(0x7465646279746573)
    n = end - start
    full = n // 8
    for w in range(full):
        m = np.uint64(0)
        base = start + 8 * w
        for j in range(8):
            m |= np.uint64(data[base + j]) << np.uint64(8 * j)
        v3 ^= m
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
        v0 ^= m
    b = np.uint64(n & 0xFF) << np.uint64(56)
    base = start + 8 * full
    for j in range(n - 8 * full):
        b |= np.uint64(data[base + j]) << np.uint64(8 * j)
    v3 ^= b
    v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= np.uint64(0xFF)
    for _ in range(4):
        v0, v1, v2, v3 = _round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def _siphash_batch_body(
    k0: Any, k1: Any, data: np.ndarray, offsets: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = SipHash-2-4(key, data[offsets[i]:offsets[i+1]])``."""
    for i in prange(offsets.shape[0] - 1):
        out[i] = siphash24_one(k0, k1, data, offsets[i], offsets[i + 1])


# distinct qualnames: numba's cache key ignores parallel=True (see serial_and_parallel)
siphash_batch, siphash_batch_parallel = serial_and_parallel(_siphash_batch_body, nogil=True)


def key_words(key: bytes) -> tuple[np.uint64, np.uint64]:
    """The 16-byte key as (k0, k1), little-endian."""
    if len(key) < 16:
        raise ValueError("SipHash needs a 16-byte key")
    return np.uint64(int.from_bytes(key[:8], "little")), np.uint64(
        int.from_bytes(key[8:16], "little")
    )


def siphash24_reference(key: bytes, message: bytes) -> int:
    """Plain-Python SipHash-2-4 (the specification, for tests)."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    v = [
        k0 ^ 0x736F6D6570736575,
        k1 ^ 0x646F72616E646F6D,
        k0 ^ 0x6C7967656E657261,
        k1 ^ 0x7465646279746573,
    ]

    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & _M64

    def sipround() -> None:
        v[0] = (v[0] + v[1]) & _M64
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M64
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _M64
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _M64
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    n = len(message)
    for w in range(n // 8):
        m = int.from_bytes(message[8 * w : 8 * w + 8], "little")
        v[3] ^= m
        sipround()
        sipround()
        v[0] ^= m
    b = ((n & 0xFF) << 56) | int.from_bytes(message[8 * (n // 8) :], "little")
    v[3] ^= b
    sipround()
    sipround()
    v[0] ^= b
    v[2] ^= 0xFF
    for _ in range(4):
        sipround()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


KERNELS = {
    "siphash24_one": siphash24_one,
    "siphash_batch": siphash_batch,
    "siphash_batch_parallel": siphash_batch_parallel,
}
