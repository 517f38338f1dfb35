"""Encoding kernels (linkage.kernels.encode) vs plain-Python / numpy references.

The references below are written from the kernels' docstrings, not from their code.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_parity import same_with_and_without_jit

from linkage.kernels.encode import (
    CP_BITS,
    empty_token_table,
    or_unit_rows,
    or_unit_rows_parallel,
    qgram_keys,
    qgram_token_rows,
    set_bits,
    set_bits_parallel,
    token_rows,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
M64 = (1 << 64) - 1


# -- references ------------------------------------------------------------------------------
def qgram_ref(s: str, q: int, padding: bool) -> list[int]:
    """Docstring of qgram_keys: pad q-1 codepoint-0 characters each side (padding), or
    left-pad a too-short string to q; key of (c_0..c_{q-1}) = sum_j c_j << 21 (q-1-j)."""
    cps = [ord(c) for c in s]
    if not cps:
        return []
    if padding:
        cps = [0] * (q - 1) + cps + [0] * (q - 1)
    if len(cps) < q:
        cps = [0] * (q - len(cps)) + cps
    out = []
    for i in range(len(cps) - q + 1):
        out.append(sum(c << (CP_BITS * (q - 1 - j)) for j, c in enumerate(cps[i : i + q])))
    return out


def pack(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = [s.encode("utf-8") for s in strings]
    off = np.zeros(len(enc) + 1, np.int64)
    np.cumsum([len(e) for e in enc], out=off[1:])
    return np.frombuffer(b"".join(enc), np.uint8).copy(), off


def set_bits_ref(
    out: np.ndarray,
    unit_of_row: np.ndarray,
    unit_tok_off: np.ndarray,
    unit_tok: np.ndarray,
    unit_k: np.ndarray,
    pos: np.ndarray,
) -> np.ndarray:
    """numpy: unpack to one bool per bit, set the positions row by row, pack again."""
    n, w = out.shape
    bits = np.unpackbits(
        out.astype("<u8").view(np.uint8).reshape(n, 8 * w), axis=1, bitorder="little"
    ).astype(bool)
    for r in range(n):
        u = int(unit_of_row[r])
        if u < 0:
            continue
        toks = unit_tok[unit_tok_off[u] : unit_tok_off[u + 1]]
        p = pos[toks, : int(unit_k[u])].reshape(-1).astype(np.int64)
        bits[r, p] = True
    return np.packbits(bits, axis=1, bitorder="little").view("<u8").astype(np.uint64)


# -- qgram_keys ------------------------------------------------------------------------------
NON_ASCII = "éßŁø李Дм\u0301\u200b€𝔘😀🇬🇧\U0010fffd"
CHARS = st.one_of(
    st.characters(min_codepoint=1, max_codepoint=0x7F),
    st.sampled_from(list(NON_ASCII)),
    st.characters(min_codepoint=1, exclude_categories=["Cs"]),
)
STRINGS = st.lists(st.text(CHARS, max_size=9), max_size=12)


def check_qgrams(strings: list[str], q: int, padding: bool) -> None:
    data, off = pack(strings)
    tok_off, keys = qgram_keys(data, off, q, padding)
    assert tok_off.dtype == np.int64 and keys.dtype == np.uint64
    assert tok_off.shape == (len(strings) + 1,)
    assert tok_off[0] == 0 and tok_off[-1] == len(keys)
    for i, s in enumerate(strings):
        got = keys[tok_off[i] : tok_off[i + 1]].tolist()
        assert got == qgram_ref(s, q, padding), (s, q, padding)


@SETTINGS
@given(STRINGS, st.integers(1, 3), st.booleans())
def test_qgram_keys_match_reference(strings: list[str], q: int, padding: bool) -> None:
    check_qgrams(strings, q, padding)


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("padding", [False, True])
def test_qgram_keys_edge_strings(q: int, padding: bool) -> None:
    strings = [
        "",
        "A",
        "AB",
        "ABC",
        "ABCD",
        "",
        "é",
        "李",
        "😀",
        "😀a",
        "a😀b",
        "\U0010ffff",
        "🇬🇧",
        "ZOË",
        "",
        "x" * 101,
    ]
    check_qgrams(strings, q, padding)


def test_qgram_keys_known_values() -> None:
    data, off = pack(["AB"])
    _, keys = qgram_keys(data, off, 2, True)
    assert keys.tolist() == [ord("A"), (ord("A") << 21) | ord("B"), ord("B") << 21]
    _, keys = qgram_keys(data, off, 3, False)  # shorter than q: one key, left-padded
    assert keys.tolist() == [(ord("A") << 21) | ord("B")]
    data, off = pack(["😀"])  # 4-byte UTF-8
    _, keys = qgram_keys(data, off, 1, False)
    assert keys.tolist() == [0x1F600]


def test_qgram_keys_empty_batch() -> None:
    tok_off, keys = qgram_keys(np.zeros(0, np.uint8), np.zeros(1, np.int64), 2, True)
    assert tok_off.tolist() == [0] and keys.shape == (0,)


def test_qgram_keys_respects_offsets_into_shared_buffer() -> None:
    """Strings need not start at byte 0: offsets index into a larger buffer."""
    data, off = pack(["junk", "MARY", "李明", "tail"])
    tok_off, keys = qgram_keys(data, off[1:3].copy(), 2, True)
    assert keys.tolist() == qgram_ref("MARY", 2, True)
    assert len(tok_off) == 2


# -- set_bits --------------------------------------------------------------------------------
@st.composite
def set_bits_case(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    w = draw(st.sampled_from([1, 8, 16, 32]))
    length = 64 * w
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(0, 40))
    nu = draw(st.integers(0, 10))
    ntok_pos = draw(st.integers(1, 30))
    kmax = draw(st.integers(0, 8))
    pos = rng.integers(0, length, (ntok_pos, kmax)).astype(np.uint32)
    if kmax:
        pos[0, 0] = 0
        pos[-1, -1] = length - 1
    ntok = rng.integers(0, 6, nu)
    ntok[: min(nu, 1)] = 0  # a unit with no tokens
    unit_tok_off = np.zeros(nu + 1, np.int64)
    np.cumsum(ntok, out=unit_tok_off[1:])
    unit_tok = rng.integers(0, ntok_pos, unit_tok_off[-1]).astype(np.int32)
    if unit_tok.size:
        unit_tok[0] = 0
        unit_tok[-1] = ntok_pos - 1
    unit_k = rng.integers(0, kmax + 1, nu).astype(np.int32)
    if nu and kmax:
        unit_k[-1] = kmax
    unit_of_row = rng.integers(-1, nu, n).astype(np.int32)  # -1: row has no value
    init = draw(st.sampled_from(["zero", "random", "ones"]))
    if init == "zero":
        out = np.zeros((n, w), np.uint64)
    elif init == "ones":
        out = np.full((n, w), M64, np.uint64)
    else:
        out = rng.integers(0, 2**63, (n, w), dtype=np.int64).astype(np.uint64)
        out[::3] = 0
    return out, unit_of_row, unit_tok_off, unit_tok, unit_k, pos


@SETTINGS
@given(set_bits_case(), st.booleans())
def test_set_bits_match_reference(case: tuple[np.ndarray, ...], parallel: bool) -> None:
    out, *args = case
    want = set_bits_ref(out, *args)
    got = out.copy()
    (set_bits_parallel if parallel else set_bits)(got, *args)
    assert np.array_equal(got, want)


def test_set_bits_serial_equals_parallel_large() -> None:
    rng = np.random.default_rng(3)
    n, nu, w, kmax = 3000, 200, 16, 30
    pos = rng.integers(0, 64 * w, (500, kmax)).astype(np.uint32)
    ntok = rng.integers(0, 12, nu)
    tok_off = np.zeros(nu + 1, np.int64)
    np.cumsum(ntok, out=tok_off[1:])
    toks = rng.integers(0, 500, tok_off[-1]).astype(np.int32)
    unit_k = rng.integers(0, kmax + 1, nu).astype(np.int32)
    rows = rng.integers(-1, nu, n).astype(np.int32)
    a = np.zeros((n, w), np.uint64)
    b = np.zeros((n, w), np.uint64)
    set_bits(a, rows, tok_off, toks, unit_k, pos)
    set_bits_parallel(b, rows, tok_off, toks, unit_k, pos)
    assert np.array_equal(a, b)
    assert np.array_equal(
        a, set_bits_ref(np.zeros((n, w), np.uint64), rows, tok_off, toks, unit_k, pos)
    )
    assert not a[rows < 0].any()


def test_set_bits_end_positions_and_noop_cases() -> None:
    pos = np.array([[0, 1023], [63, 64]], np.uint32)
    out = np.zeros((4, 16), np.uint64)
    tok_off = np.array([0, 2, 2, 3], np.int64)  # unit 1 has no tokens
    toks = np.array([0, 1, 1], np.int32)
    unit_k = np.array([2, 2, 0], np.int32)  # unit 2 has k = 0
    rows = np.array([0, -1, 1, 2], np.int32)
    set_bits(out, rows, tok_off, toks, unit_k, pos)
    expect = np.zeros((4, 16), np.uint64)
    expect[0, 0] = (1 << 0) | (1 << 63)
    expect[0, 1] = 1
    expect[0, 15] = np.uint64(1 << 63)
    assert np.array_equal(out, expect)
    # empty batch
    set_bits(np.zeros((0, 16), np.uint64), np.zeros(0, np.int32), tok_off, toks, unit_k, pos)


# -- or_unit_rows: filters through per-unit filters ----------------------------------------
@SETTINGS
@given(st.integers(0, 60), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_unit_filters_ored_into_rows_equal_set_bits(n: int, nu: int, seed: int) -> None:
    """set_bits into one filter per unit, then or_unit_rows, gives set_bits per row."""
    rng = np.random.default_rng(seed)
    tok_off = np.zeros(nu + 1, np.int64)
    np.cumsum(rng.integers(0, 5, nu), out=tok_off[1:])
    toks = rng.integers(0, 50, tok_off[-1]).astype(np.int32)
    pos = rng.integers(0, 1024, (50, 8)).astype(np.uint32)
    unit_k = rng.integers(0, 9, nu).astype(np.int32)
    rows = rng.integers(-1, nu, n).astype(np.int32)
    start = rng.integers(0, 2**63, (n, 16), dtype=np.int64).astype(np.uint64)
    want = start.copy()
    set_bits(want, rows, tok_off, toks, unit_k, pos)
    unit_bits = np.zeros((nu, 16), np.uint64)
    set_bits(unit_bits, np.arange(nu, dtype=np.int32), tok_off, toks, unit_k, pos)
    for f in (or_unit_rows, or_unit_rows_parallel):
        got = start.copy()
        f(got, rows, unit_bits)
        assert np.array_equal(got, want)


# -- the token table (token_rows, qgram_token_rows) ------------------------------------------
def token_rows_ref(keys: list[int], table: dict[int, int]) -> tuple[list[int], list[int]]:
    """Docstring of token_rows: each key's row; unseen keys get the next free rows in
    first-appearance order (``table`` is updated)."""
    rows, new = [], []
    for k in keys:
        if k not in table:
            table[k] = len(table)
            new.append(k)
        rows.append(table[k])
    return rows, new


def run_token_rows(batches: list[np.ndarray]) -> None:
    """Feed batches through one table (as the encoder does) and compare with the dict."""
    tkeys, trows = empty_token_table()
    used = 0
    ref: dict[int, int] = {}
    for keys in batches:
        rows, new, tkeys, trows = token_rows(keys, tkeys, trows, used)
        want_rows, want_new = token_rows_ref([int(k) for k in keys], ref)
        assert rows.tolist() == want_rows
        assert new.tolist() == want_new
        used += len(new)
        assert (trows >= 0).sum() == used and 2 * used <= len(trows)  # at most half full


@SETTINGS
@given(
    st.lists(
        st.lists(
            st.one_of(st.integers(0, 40), st.integers(0, M64), st.sampled_from([0, M64])),
            max_size=300,
        ),
        max_size=4,
    )
)
def test_token_rows_match_reference(batches: list[list[int]]) -> None:
    run_token_rows([np.array(b, np.uint64) for b in batches])


@pytest.mark.parametrize(
    "keys",
    [
        np.zeros(0, np.uint64),
        np.zeros(1, np.uint64),
        np.full(1000, 7, np.uint64),
        np.full(33, M64, np.uint64),
        np.arange(5000, dtype=np.uint64)[::-1].copy(),  # grows the table several times
        # keys that collide in the multiplicative hash's low bits: multiples of 2**60
        (np.arange(64, dtype=np.uint64) % np.uint64(16)) << np.uint64(60),
        np.array([M64, 0, M64 - 1, 1, M64, 0], np.uint64),
    ],
)
def test_token_rows_edge_cases(keys: np.ndarray) -> None:
    run_token_rows([keys, keys[::-1].copy(), keys[: len(keys) // 2]])


def test_token_rows_random_large() -> None:
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**63, 20000, dtype=np.int64).astype(np.uint64)
    run_token_rows([keys[rng.integers(0, 20000, 30000)] for _ in range(3)])


@SETTINGS
@given(
    st.lists(st.lists(st.text(CHARS, max_size=8), max_size=20), max_size=3),
    st.integers(1, 3),
    st.booleans(),
)
def test_qgram_token_rows_equal_qgram_keys_then_token_rows(
    batches: list[list[str]], q: int, padding: bool
) -> None:
    """The fused kernel gives qgram_keys' offsets and token_rows' rows for the same table."""
    t1 = empty_token_table()
    t2 = empty_token_table()
    used1 = used2 = 0
    for strings in batches:
        data, off = pack(strings)
        tok_off, keys = qgram_keys(data, off, q, padding)
        rows, new, *t1 = token_rows(keys, *t1, used1)
        f_off, f_rows, f_new, *t2 = qgram_token_rows(data, off, q, padding, *t2, used2)
        assert f_off.tolist() == tok_off.tolist()
        assert f_rows.tolist() == rows.tolist()
        assert f_new.tolist() == new.tolist()
        used1 += len(new)
        used2 += len(f_new)


# -- NUMBA_DISABLE_JIT -----------------------------------------------------------------------
def test_encode_kernels_without_jit_match_jit() -> None:
    """The same calls under NUMBA_DISABLE_JIT=1 give the same arrays as the compiled kernels."""
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.encode import (
            empty_token_table, or_unit_rows, or_unit_rows_parallel, qgram_keys, qgram_token_rows,
            set_bits, set_bits_parallel, token_rows,
        )
        strings = ["", "MARY", "ZOË", "李明", "😀x", "A"]
        enc = [s.encode() for s in strings]
        off = np.zeros(len(enc) + 1, np.int64); np.cumsum([len(e) for e in enc], out=off[1:])
        data = np.frombuffer(b"".join(enc), np.uint8).copy()
        res = {}
        for q in (1, 2, 3):
            for pad in (False, True):
                t, k = qgram_keys(data, off, q, pad)
                res[f"q{q}{pad}t"] = t; res[f"q{q}{pad}k"] = k
        rng = np.random.default_rng(1)
        keys = rng.integers(0, 50, 400).astype(np.uint64); keys[3] = np.uint64(2**64 - 1)
        res["rows"], res["new"], res["tk"], res["tr"] = token_rows(keys, *empty_token_table(), 5)
        for pad in (False, True):
            t, r, nk, tk, tr = qgram_token_rows(data, off, 2, pad, *empty_token_table(), 0)
            res[f"qr{pad}"] = r; res[f"qn{pad}"] = nk
        pos = rng.integers(0, 1024, (40, 6)).astype(np.uint32)
        tok_off = np.array([0, 3, 3, 9, 12], np.int64)
        toks = rng.integers(0, 40, 12).astype(np.int32)
        unit_k = np.array([6, 2, 0, 4], np.int32)
        rows = rng.integers(-1, 4, 50).astype(np.int32)
        ub = np.zeros((4, 16), np.uint64)
        set_bits(ub, np.arange(4, dtype=np.int32), tok_off, toks, unit_k, pos)
        for name, f in (("or", or_unit_rows), ("orp", or_unit_rows_parallel)):
            o = np.zeros((50, 16), np.uint64)
            f(o, rows, ub)
            res[name] = o
        for name, f in (("sb", set_bits), ("sbp", set_bits_parallel)):
            o = np.zeros((50, 16), np.uint64)
            f(o, rows, tok_off, toks, unit_k, pos)
            res[name] = o
        np.savez(OUT, **res)
        """
    )
    jit = same_with_and_without_jit(code)
    assert jit["sb"].any()
