"""Keyed-hash kernels vs Python's own hmac/hashlib and the SipHash specification.

linkage.kernels.hmac: hmac_batch / hmac_batch_parallel, sha256_compress, window_positions.
linkage.kernels.siphash: siphash_batch / siphash_batch_parallel (published test vectors).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_parity import same_with_and_without_jit

from linkage.kernels.hmac import (
    _H0,
    hmac_batch,
    hmac_batch_parallel,
    hmac_states,
    sha256_compress,
    window_positions,
)
from linkage.kernels.siphash import (
    key_words,
    siphash24_reference,
    siphash_batch,
    siphash_batch_parallel,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pack(messages: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(messages) + 1, np.int64)
    np.cumsum([len(m) for m in messages], out=off[1:])
    return np.frombuffer(b"".join(messages), np.uint8).copy(), off


def hmac_ref(key: bytes, msg: bytes, nblocks: int) -> bytes:
    """Docstring of hmac_batch: HMAC(key, msg || j) for j < nblocks; HMAC(key, msg) for 0."""
    if nblocks == 0:
        return hmac.digest(key, msg, "sha256")
    return b"".join(hmac.digest(key, msg + bytes([j]), "sha256") for j in range(nblocks))


def run_hmac(key: bytes, messages: list[bytes], nblocks: int, parallel: bool) -> np.ndarray:
    ist, ost = hmac_states(key)
    data, off = pack(messages)
    out = np.zeros((len(messages), 32 * max(nblocks, 1)), np.uint8)
    (hmac_batch_parallel if parallel else hmac_batch)(ist, ost, data, off, nblocks, out)
    return out


# -- sha256_compress -------------------------------------------------------------------------
def sha256_padded(msg: bytes) -> bytes:
    """FIPS 180-4 padding: msg || 0x80 || zeros || 64-bit big-endian bit length."""
    pad = b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + (8 * len(msg)).to_bytes(8, "big")
    return msg + pad


def sha256_kernel(msg: bytes) -> bytes:
    padded = sha256_padded(msg)
    state = _H0.copy()
    w = np.zeros(64, np.int64)
    for i in range(0, len(padded), 64):
        sha256_compress(state, np.frombuffer(padded[i : i + 64], np.uint8), w)
    return b"".join(int(v).to_bytes(4, "big") for v in state)


@pytest.mark.parametrize("n", [0, 1, 3, 31, 54, 55, 56, 63, 64, 65, 119, 120, 200])
def test_sha256_compress_matches_hashlib(n: int) -> None:
    msg = bytes((7 * i + n) & 0xFF for i in range(n))
    assert sha256_kernel(msg) == hashlib.sha256(msg).digest()


@SETTINGS
@given(st.binary(max_size=55))
def test_sha256_compress_single_block(msg: bytes) -> None:
    assert len(sha256_padded(msg)) == 64
    assert sha256_kernel(msg) == hashlib.sha256(msg).digest()


def test_sha256_compress_all_ones_block() -> None:
    msg = b"\xff" * 55
    assert sha256_kernel(msg) == hashlib.sha256(msg).digest()


# -- hmac_batch ------------------------------------------------------------------------------
KEYS = [b"k", b"test-secret-0123456789abcdef-XYZ", b"\x00" * 64, b"\xff" * 65, bytes(range(200))]


@pytest.mark.parametrize("nblocks", [0, 1, 2, 3])
@pytest.mark.parametrize("parallel", [False, True])
def test_hmac_batch_every_length(nblocks: int, parallel: bool) -> None:
    """Every message length 0..200 (SHA-256 block boundaries at 55/56/63/64/119/120)."""
    rng = np.random.default_rng(nblocks)
    messages = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in range(201)]
    messages += [b"\x00" * 56, b"\xff" * 64, b"\xff" * 119]
    for key in (KEYS[1], KEYS[3]):
        out = run_hmac(key, messages, nblocks, parallel)
        for i, m in enumerate(messages):
            assert out[i].tobytes() == hmac_ref(key, m, nblocks), (len(m), nblocks)


@SETTINGS
@given(
    st.binary(max_size=150),
    st.lists(st.binary(max_size=130), max_size=20),
    st.sampled_from([0, 1, 2, 3]),
    st.booleans(),
)
def test_hmac_batch_random_keys(
    key: bytes, messages: list[bytes], nblocks: int, parallel: bool
) -> None:
    """Random keys including empty, exactly 64 bytes and longer than 64 bytes (hashed first)."""
    out = run_hmac(key, messages, nblocks, parallel)
    assert out.shape == (len(messages), 32 * max(nblocks, 1))
    for i, m in enumerate(messages):
        assert out[i].tobytes() == hmac_ref(key, m, nblocks)


@pytest.mark.parametrize("key", KEYS)
def test_hmac_states_key_lengths(key: bytes) -> None:
    out = run_hmac(key, [b"", b"abc"], 1, False)
    assert out[1].tobytes() == hmac.digest(key, b"abc\x00", "sha256")


def test_hmac_batch_serial_equals_parallel_many() -> None:
    """More messages than one parallel chunk (256), offsets not starting at 0."""
    rng = np.random.default_rng(2)
    messages = [
        rng.integers(0, 256, rng.integers(0, 70), dtype=np.uint8).tobytes() for _ in range(700)
    ]
    data, off = pack([b"prefix", *messages])
    off = off[1:].copy()
    ist, ost = hmac_states(KEYS[1])
    a = np.zeros((700, 64), np.uint8)
    b = np.zeros((700, 64), np.uint8)
    hmac_batch(ist, ost, data, off, 2, a)
    hmac_batch_parallel(ist, ost, data, off, 2, b)
    assert np.array_equal(a, b)
    for i in (0, 255, 256, 511, 699):
        assert a[i].tobytes() == hmac_ref(KEYS[1], messages[i], 2)


def test_hmac_batch_empty_batch() -> None:
    ist, ost = hmac_states(b"key")
    out = np.zeros((0, 32), np.uint8)
    hmac_batch(ist, ost, np.zeros(0, np.uint8), np.zeros(1, np.int64), 1, out)
    hmac_batch_parallel(ist, ost, np.zeros(0, np.uint8), np.zeros(1, np.int64), 1, out)


# -- window_positions ------------------------------------------------------------------------
def window_positions_ref(
    digests: np.ndarray, length: int, kmax: int
) -> tuple[list[list[int]], list[bool]]:
    """Each 32-byte block read as a little-endian 256-bit int; window t is bits
    b t .. b t + b - 1 (t < 256 // b); accepted if < length; first kmax per row."""
    b = max(1, (length - 1).bit_length())
    mask = (1 << b) - 1
    rows, short = [], []
    for row in digests:
        acc: list[int] = []
        for blk in range(len(row) // 32):
            v = int.from_bytes(row[32 * blk : 32 * blk + 32].tobytes(), "little")
            for t in range(256 // b):
                w = (v >> (b * t)) & mask
                if w < length and len(acc) < kmax:
                    acc.append(w)
        rows.append(acc)
        short.append(len(acc) < kmax)
    return rows, short


def check_windows(digests: np.ndarray, length: int, kmax: int) -> None:
    out = np.full((digests.shape[0], kmax), 2**32 - 1, np.uint32)
    short = window_positions(digests, length, kmax, out)
    want_rows, want_short = window_positions_ref(digests, length, kmax)
    assert short.tolist() == want_short
    for i, want in enumerate(want_rows):
        assert out[i, : len(want)].tolist() == want
        assert (out[i, : len(want)] < length).all()


LENGTHS = st.one_of(
    st.sampled_from([1, 2, 64, 512, 960, 1000, 1024, 1600, 2048, 4096, 65536]),
    st.integers(1, 65536),
)


@SETTINGS
@given(
    LENGTHS,
    st.integers(1, 200),
    st.integers(0, 6),
    st.integers(0, 5),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["random", "zero", "ones"]),
)
def test_window_positions_match_reference(
    length: int, kmax: int, rows: int, nblocks: int, seed: int, fill: str
) -> None:
    rng = np.random.default_rng(seed)
    if fill == "random":
        digests = rng.integers(0, 256, (rows, 32 * nblocks), dtype=np.uint8)
    elif fill == "zero":
        digests = np.zeros((rows, 32 * nblocks), np.uint8)
    else:
        digests = np.full((rows, 32 * nblocks), 255, np.uint8)
    check_windows(digests, length, kmax)


@pytest.mark.parametrize("length", [960, 1600, 1000, 1024])
def test_window_positions_rejection_and_short_flag(length: int) -> None:
    """All-one digests give only window 2^b - 1: rejected unless L is a power of two."""
    digests = np.full((2, 64), 255, np.uint8)
    out = np.zeros((2, 5), np.uint32)
    short = window_positions(digests, length, 5, out)
    pow2 = length & (length - 1) == 0
    assert short.tolist() == [not pow2, not pow2]
    if pow2:
        assert (out == length - 1).all()
    check_windows(digests, length, 5)
    # kmax exactly the number of windows available: not short; one more: short
    b = max(1, (length - 1).bit_length())
    zeros = np.zeros((1, 64), np.uint8)
    per = 2 * (256 // b)
    assert not window_positions(zeros, length, per, np.zeros((1, per), np.uint32))[0]
    assert window_positions(zeros, length, per + 1, np.zeros((1, per + 1), np.uint32))[0]


def test_window_positions_real_digests() -> None:
    """Windows of actual HMAC digests at the lengths the encoder uses."""
    data, off = pack([b"JO", b"OH", b"HN", b""])
    ist, ost = hmac_states(b"field-key")
    dig = np.zeros((4, 96), np.uint8)
    hmac_batch(ist, ost, data, off, 3, dig)
    for length in (512, 960, 1024, 1600, 4096):
        check_windows(dig, length, 30)


def test_window_positions_kmax_zero() -> None:
    digests = np.zeros((3, 32), np.uint8)
    out = np.zeros((3, 0), np.uint32)
    # the Python body (py_func) would raise IndexError on an out-of-bounds write
    short = window_positions.py_func(digests, 1024, 0, out)
    assert not short.any()
    assert not window_positions(digests, 1024, 0, out).any()


# -- SipHash-2-4 -----------------------------------------------------------------------------
VECTOR_KEY = bytes(range(16))


def run_siphash(key: bytes, messages: list[bytes], parallel: bool) -> list[int]:
    k0, k1 = key_words(key)
    data, off = pack(messages)
    out = np.zeros(len(messages), np.uint64)
    (siphash_batch_parallel if parallel else siphash_batch)(k0, k1, data, off, out)
    return [int(v) for v in out]


@pytest.mark.parametrize("parallel", [False, True])
def test_siphash_published_vectors(parallel: bool) -> None:
    """Aumasson & Bernstein, appendix A: key 00..0f; message 00..0e and the empty message."""
    got = run_siphash(VECTOR_KEY, [bytes(range(15)), b""], parallel)
    assert got == [0xA129CA6149BE45E5, 0x726FDB47DD0E0E31]
    assert siphash24_reference(VECTOR_KEY, bytes(range(15))) == 0xA129CA6149BE45E5
    assert siphash24_reference(VECTOR_KEY, b"") == 0x726FDB47DD0E0E31


@SETTINGS
@given(
    st.binary(min_size=16, max_size=16),
    st.lists(st.binary(max_size=40), max_size=30),
    st.booleans(),
)
def test_siphash_batch_matches_reference(key: bytes, messages: list[bytes], parallel: bool) -> None:
    got = run_siphash(key, messages, parallel)
    assert got == [siphash24_reference(key, m) for m in messages]


def test_siphash_every_length_and_extreme_keys() -> None:
    messages = [bytes(range(n)) for n in range(41)] + [b"\xff" * 17, b"\x00" * 8]
    for key in (VECTOR_KEY, b"\x00" * 16, b"\xff" * 16):
        assert run_siphash(key, messages, False) == [siphash24_reference(key, m) for m in messages]
        assert run_siphash(key, messages, True) == run_siphash(key, messages, False)


def test_siphash_key_words() -> None:
    k0, k1 = key_words(VECTOR_KEY + b"ignored")
    assert int(k0) == 0x0706050403020100 and int(k1) == 0x0F0E0D0C0B0A0908
    with pytest.raises(ValueError):
        key_words(b"short")


# -- NUMBA_DISABLE_JIT -----------------------------------------------------------------------
def test_hash_kernels_without_jit_match_jit() -> None:
    """hmac_batch, window_positions and siphash_batch under NUMBA_DISABLE_JIT=1 give the same
    bytes as compiled (and as Python's hmac)."""
    code = textwrap.dedent(
        """
        import hmac
        import numpy as np
        from linkage.kernels.hmac import hmac_batch, hmac_batch_parallel, hmac_states
        from linkage.kernels.hmac import window_positions
        from linkage.kernels.siphash import key_words, siphash_batch, siphash_batch_parallel
        msgs = [b"", b"a", b"x" * 55, b"y" * 56, b"z" * 64, bytes(range(120))]
        off = np.zeros(len(msgs) + 1, np.int64); np.cumsum([len(m) for m in msgs], out=off[1:])
        data = np.frombuffer(b"".join(msgs), np.uint8).copy()
        key = b"k" * 70
        ist, ost = hmac_states(key)
        res = {}
        for nb in (0, 2):
            for name, f in (("s", hmac_batch), ("p", hmac_batch_parallel)):
                o = np.zeros((len(msgs), 32 * max(nb, 1)), np.uint8)
                f(ist, ost, data, off, nb, o)
                res[f"h{nb}{name}"] = o
        for i, m in enumerate(msgs):
            assert res["h2s"][i, 32:].tobytes() == hmac.digest(key, m + b"\\x01", "sha256")
        for length in (960, 1024):
            o = np.zeros((len(msgs), 20), np.uint32)
            res[f"w{length}s"] = window_positions(res["h2s"], length, 20, o)
            res[f"w{length}o"] = o
        k0, k1 = key_words(bytes(range(16)))
        for name, f in (("s", siphash_batch), ("p", siphash_batch_parallel)):
            o = np.zeros(len(msgs), np.uint64)
            f(k0, k1, data, off, o)
            res["sip" + name] = o
        np.savez(OUT, **res)
        """
    )
    same_with_and_without_jit(code)


# -- SIMD lanes ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=16, max_size=80),
    st.lists(st.binary(max_size=60), max_size=40),
    st.integers(0, 3),
)
def test_hmac_short_lanes_matches_hmac(key: bytes, msgs: list[bytes], nblocks: int) -> None:
    from linkage.kernels.hmac import hmac_short_lanes

    ist, ost = hmac_states(key)
    data = np.frombuffer(b"".join(msgs), np.uint8) if msgs else np.zeros(0, np.uint8)
    off = np.zeros(len(msgs) + 1, np.int64)
    off[1:] = np.cumsum([len(m) for m in msgs])
    lengths = np.diff(off) + (1 if nblocks else 0)
    idx = np.flatnonzero(lengths <= 55)
    out = np.zeros((len(msgs), 32 * max(nblocks, 1)), np.uint8)
    hmac_short_lanes(ist.astype(np.uint32), ost.astype(np.uint32), data, off, idx, nblocks, out)
    for i in idx:
        if nblocks == 0:
            want = hmac.digest(key, msgs[i], "sha256")
        else:
            want = b"".join(
                hmac.digest(key, msgs[i] + bytes([j]), "sha256") for j in range(nblocks)
            )
        assert bytes(out[i]) == want
    for i in np.flatnonzero(lengths > 55):
        assert not out[i].any()  # long messages are left to the scalar kernel


def test_hmac_short_lanes_without_jit() -> None:
    code = (
        "import hmac, numpy as np\n"
        "from linkage.kernels.hmac import hmac_states, hmac_short_lanes\n"
        "key = bytes(range(32)); msgs = [b'', b'a', b'x' * 40, b'y' * 54]\n"
        "ist, ost = hmac_states(key)\n"
        "data = np.frombuffer(b''.join(msgs), np.uint8)\n"
        "off = np.array([0, 0, 1, 41, 95], np.int64)\n"
        "out = np.zeros((4, 32), np.uint8)\n"
        "hmac_short_lanes(ist.astype(np.uint32), ost.astype(np.uint32), data, off,"
        " np.arange(4), 1, out)\n"
        "assert all(bytes(out[i]) == hmac.digest(key, m + b'\\x00', 'sha256')"
        " for i, m in enumerate(msgs))\n"
        "print('ok')\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ok"
