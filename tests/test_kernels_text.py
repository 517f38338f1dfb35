"""ASCII normaliser kernel (linkage.kernels.text.ascii_normalise) vs the general Unicode path.

The reference is ``linkage.partner.normalisers.normalise(kind, values, fast=False)``
(Arrow regexes);
for ASCII input the fast path must give the same values and statuses.
"""

from __future__ import annotations

import itertools
import textwrap
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_parity import same_with_and_without_jit

from linkage.kernels.text import (
    MODE_NAME,
    MODE_NONE,
    MODE_TEXT,
    TITLE_DATA,
    TITLE_OFFSETS,
    TITLE_WORDS,
    ascii_normalise,
)
from linkage.partner.normalisers import _SIMPLE, TITLES, normalise
from linkage.partner.values import unify_spaces

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("name", "text", "none")
MODES = {"name": MODE_NAME, "text": MODE_TEXT, "none": MODE_NONE}

FRAGMENTS = [
    "Mr", "MRS.", "mrs", "Dr", "Dr Dr", "Miss", "sir", "Lady", "PROF.", "Mx",
    " ", "  ", "\t", "\x0b", "\x0c", "\r", "\n", "\r\n",
    "'", "`", '"', ".", ",", "-", "/", "&", "(", ")",
    "O'Brien", "Smith-Jones", "de la Cruz", "12", "Flat 3b", "St.", "mary", "ANNE",
]  # fmt: skip
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
WHITESPACE = st.sampled_from(["\t", "\x0b", "\x0c", "\r", "\n"])
VALUE = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(st.one_of(PRINTABLE, WHITESPACE), max_size=6)),
    max_size=6,
).map("".join)
ANY_ASCII = st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12)


def kernel(kind: str, values: list[str]) -> list[str]:
    enc = [v.encode("ascii") for v in values]
    off = np.zeros(len(enc) + 1, np.int64)
    np.cumsum([len(e) for e in enc], out=off[1:])
    data = np.frombuffer(b"".join(enc), np.uint8).copy()
    out, out_off = ascii_normalise(data, off, MODES[kind], TITLE_DATA, TITLE_OFFSETS)
    assert out_off.shape == (len(values) + 1,) and out_off[-1] == len(out)
    raw = out.tobytes()
    return [raw[out_off[i] : out_off[i + 1]].decode("ascii") for i in range(len(values))]


def general(kind: str, values: list[str]) -> list[str]:
    """The Unicode path's normaliser itself, after ``unify_spaces`` as ``normalise`` does
    (no missing-value handling)."""
    vals, _ = _SIMPLE[kind](unify_spaces(pa.array(values, pa.string())))
    return [v if v is not None else "" for v in vals.to_pylist()]


def assert_fast_equals_general(kind: str, values: list[str]) -> None:
    fast = normalise(kind, values)
    slow = normalise(kind, values, fast=False)
    assert fast.values.to_pylist() == slow.values.to_pylist(), values
    assert fast.status.tolist() == slow.status.tolist(), values


@SETTINGS
@given(st.sampled_from(KINDS), st.lists(VALUE, max_size=12))
def test_fast_path_equals_unicode_path(kind: str, values: list[str]) -> None:
    assert_fast_equals_general(kind, values)


@SETTINGS
@given(st.sampled_from(KINDS), st.lists(ANY_ASCII, max_size=12))
def test_kernel_equals_general_normaliser_any_ascii(kind: str, values: list[str]) -> None:
    """Every ASCII byte, control characters included, straight through the kernel."""
    assert kernel(kind, values) == general(kind, values)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_edge_values(kind: str) -> None:
    values = [
        "", " ", "\t\n", "\x0b", "\x0c", "Mr", "MRS.", "Dr Dr", "Mr Dr Smith", "Mr. John  Smith ",
        "  leading", "trailing  ", "a\x0bb", "a\x0cb", "O'Brien", "`quoted`", '"Q"', "'", "...",
        "Sir Lady", "MISSY", "Mrs.Smith", "dr .  who", "12 High St., Apt 3", "x" * 300,
    ]  # fmt: skip
    assert_fast_equals_general(kind, values)
    assert kernel(kind, values) == general(kind, values)
    # mixed ASCII / non-ASCII batches take both paths and are merged back in order
    assert_fast_equals_general(kind, [*values, "Zoë", "Mr Siân", "李明"])


def test_known_values() -> None:
    assert kernel("name", ["Mr John Smith", "Dr Dr", "MRS.", "O'Brien", "Mr. Mrs x"]) == [
        "JOHNSMITH",
        "DR",
        "MRS",
        "OBRIEN",
        "X",
    ]
    assert kernel("text", ["12, High St.", "O'Brien's `Yard`", " -- ", ""]) == [
        "12 HIGH ST",
        "OBRIENS YARD",
        "",
        "",
    ]
    assert kernel("none", ["  a \t b  ", "x\x0by", "\r\n"]) == ["a b", "x y", ""]  # VT is space


def test_title_table_matches_normaliser() -> None:
    assert TITLE_WORDS == TITLES
    blob = TITLE_DATA.tobytes().decode()
    assert [blob[a:b] for a, b in itertools.pairwise(TITLE_OFFSETS.tolist())] == list(TITLES)


@pytest.mark.parametrize("kind", KINDS)
def test_kernel_empty_batch_and_offset_buffer(kind: str) -> None:
    out, out_off = ascii_normalise(
        np.zeros(0, np.uint8), np.zeros(1, np.int64), MODES[kind], TITLE_DATA, TITLE_OFFSETS
    )
    assert out.shape == (0,) and out_off.tolist() == [0]
    # strings that do not start at byte 0 of the buffer (a sliced Arrow array)
    data = np.frombuffer(b"junkMr  Jo'hn Smith", np.uint8).copy()
    off = np.array([4, 11, 19], np.int64)
    out, out_off = ascii_normalise(data, off, MODES[kind], TITLE_DATA, TITLE_OFFSETS)
    got = [out[out_off[i] : out_off[i + 1]].tobytes().decode() for i in range(2)]
    assert got == general(kind, ["Mr  Jo'", "hn Smith"])


def test_sliced_arrow_array_with_nulls() -> None:
    arr = pa.array(["x", "Mr Bean", None, " Dr  Who ", "", "a'b"], pa.string()).slice(1)
    for kind in KINDS:
        fast = normalise(kind, arr)
        slow = normalise(kind, arr, fast=False)
        assert fast.values.to_pylist() == slow.values.to_pylist()
        assert fast.status.tolist() == slow.status.tolist()


def test_ascii_normalise_without_jit_matches_jit() -> None:
    """NUMBA_DISABLE_JIT=1 runs the same body in Python: same bytes."""
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.text import TITLE_DATA, TITLE_OFFSETS, ascii_normalise
        vals = [b"", b"Mr John Smith", b"Dr Dr", b" O'Brien\\t", b"12, High St.", b"a\\x0bb"]
        off = np.zeros(len(vals) + 1, np.int64); np.cumsum([len(v) for v in vals], out=off[1:])
        data = np.frombuffer(b"".join(vals), np.uint8).copy()
        res = {}
        for mode in (0, 1, 2):
            o, oo = ascii_normalise(data, off, mode, TITLE_DATA, TITLE_OFFSETS)
            res[f"o{mode}"] = o; res[f"oo{mode}"] = oo
        np.savez(OUT, **res)
        """
    )
    same_with_and_without_jit(code)


# -- soundex ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ HWÖ李'-", max_size=14)),
        max_size=40,
    )
)
def test_soundex_kernel_matches_reference(values: list[str | None]) -> None:
    from linkage.partner.normalisers import soundex, soundex_reference

    got = soundex(pa.array(values, pa.string())).to_pylist()
    assert got == [soundex_reference(v) for v in values]


def test_soundex_known_codes() -> None:
    from linkage.partner.normalisers import soundex

    names = ["ROBERT", "RUPERT", "ASHCRAFT", "TYMCZAK", "PFISTER", "HONEYMAN", "LEE", "李"]
    want = ["R163", "R163", "A261", "T522", "P236", "H555", "L000", None]
    assert soundex(pa.array(names)).to_pylist() == want


def assert_kernel_matches_general(fast: Any, general: Any, values: list[str]) -> None:
    """A kernel normaliser and its Arrow-regex reference give the same statuses, and the same
    values where the status is OK (other values are dropped by the caller). The reference
    gets the values as ``normalise()`` hands them over: every Unicode space as a space."""
    from linkage.partner.normalisers import OK
    from linkage.partner.values import unify_spaces

    arr = pa.array(values, pa.string())
    fast_vals, fast_status = fast(arr)
    ref_vals, ref_status = general(unify_spaces(arr))
    assert fast_status.tolist() == ref_status.tolist()
    ok = fast_status == OK
    fv, rv = fast_vals.to_pylist(), ref_vals.to_pylist()
    assert [v for v, k in zip(fv, ok, strict=True) if k] == [
        v for v, k in zip(rv, ok, strict=True) if k
    ]


# -- postcodes ----------------------------------------------------------------------------------
POSTCODE_CHARS = "ABCDEFGHJKLMNOPRSTUVWXYZ0123456789 abcgirx\t\r\n\x0b-"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=POSTCODE_CHARS, max_size=10),
            st.sampled_from(["L1 8JQ", "l18jq", "GIR 0AA", "EC1A 1BB", "AA99 9AA", "A9A9AA"]),
        ),
        max_size=40,
    )
)
def test_postcode_kernel_matches_regex_path(values: list[str]) -> None:
    from linkage.partner.normalisers import _norm_postcode, _norm_postcode_general

    assert_kernel_matches_general(_norm_postcode, _norm_postcode_general, values)


# -- join_strings -------------------------------------------------------------------------------
def _pack(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(strings) + 1, np.int64)
    np.cumsum([len(s) for s in strings], out=off[1:])
    return np.frombuffer(b"".join(strings), np.uint8).copy(), off


def _check_join(strings: list[bytes], rows: np.ndarray, sep: int) -> None:
    from linkage.kernels.reference import join_strings_ref
    from linkage.kernels.text import join_strings

    data, off = _pack(strings)
    out, out_off, ok = join_strings(data, off, rows, sep)
    want, want_ok = join_strings_ref(strings, rows, sep)
    assert ok.tolist() == want_ok
    assert len(out_off) == rows.shape[1] + 1 and out_off[0] == 0
    got = [out[out_off[r] : out_off[r + 1]].tobytes() for r in range(rows.shape[1])]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=9), min_size=1, max_size=12).flatmap(
        lambda strings: st.tuples(
            st.just(strings),
            st.integers(1, 4).flatmap(
                lambda m: st.lists(
                    st.lists(st.integers(-1, len(strings) - 1), min_size=m, max_size=m),
                    max_size=20,
                )
            ),
            st.integers(0, 255),
        )
    )
)
def test_join_strings_matches_reference(args: tuple[list[bytes], list[list[int]], int]) -> None:
    strings, cols, sep = args
    m = len(cols[0]) if cols else 2
    rows = np.array(cols, np.int64).reshape(len(cols), m).T.copy()
    _check_join(strings, rows, sep)


@pytest.mark.parametrize(
    "strings, rows",
    [
        ([b"A"], np.zeros((2, 0), np.int64)),  # no rows
        ([b""], np.zeros((3, 2), np.int64)),  # empty strings: only separators
        ([b"\x00\xff", b"\xff"], np.ones((1, 5), np.int64)),  # one part: no separator
        ([b"AB", b"C"], np.array([[0, -1, 1], [1, 1, -1]], np.int64)),  # missing parts
    ],
)
def test_join_strings_edge_cases(strings: list[bytes], rows: np.ndarray) -> None:
    _check_join(strings, rows, 0x1F)


def test_join_strings_without_jit_matches_jit() -> None:
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.text import join_strings
        data = np.frombuffer(b"ABCDEFG", np.uint8).copy()
        off = np.array([0, 2, 2, 5, 7], np.int64)
        rows = np.array([[0, 1, -1, 3, 2], [3, 0, 1, 2, 2]], np.int64)
        out, out_off, ok = join_strings(data, off, rows, 31)
        np.savez(OUT, out=out, out_off=out_off, ok=ok)
        """
    )
    same_with_and_without_jit(code)


# -- distinct_strings and ascii_missing (kernels.missing) ---------------------------------------
def _distinct(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    from linkage.kernels.text import distinct_strings, padded_words

    data, off = _pack(strings)
    return distinct_strings(padded_words(data), off)


# short alphabets make repeats and hash-slot collisions common; lengths cross the 8-byte words
DISTINCT_STRINGS = st.lists(
    st.one_of(
        st.binary(max_size=20), st.sampled_from([b"", b"A", b"AB", b"ABCDEFGH", b"ABCDEFGHI"])
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(DISTINCT_STRINGS)
def test_distinct_strings_matches_reference(strings: list[bytes]) -> None:
    from linkage.kernels.reference import distinct_strings_ref

    ids, first = _distinct(strings)
    want_ids, want_first = distinct_strings_ref(strings)
    assert ids.tolist() == want_ids
    assert first.tolist() == want_first


@pytest.mark.parametrize(
    "strings",
    [
        [],
        [b""] * 5,
        [b"\x00"] * 3 + [b"", b"\x00\x00"],  # zero bytes vs padding vs length
        [b"\xff" * 8, b"\xff" * 9, b"\xff" * 7, b"\xff" * 8],
        [str(i % 3000).encode() for i in range(20000)],  # many repeats
        [str(i % 150_000).encode() for i in range(300_000)],  # past the first table: regrows
        [b"same prefix 12345678" + bytes([i]) for i in range(256)],
    ],
)
def test_distinct_strings_edge_cases(strings: list[bytes]) -> None:
    from linkage.kernels.reference import distinct_strings_ref

    ids, first = _distinct(strings)
    want_ids, want_first = distinct_strings_ref(strings)
    assert ids.tolist() == want_ids and first.tolist() == want_first


ASCII_MISSING_CHARS = [*"ANKUnk/ ", "\t", "\x0b", "\x1c", "\x1f", "\x7f", "é", "\u00a0"]
SENTINELS = [b"NK", b"N/A", b"UNKNOWN", b"NOT KNOWN"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=ASCII_MISSING_CHARS, max_size=9),
            st.sampled_from([" nk ", "n/a", "Unknown\t", "not known", "NOT  KNOWN", "\x1c"]),
        ),
        max_size=40,
    )
)
def test_ascii_missing_matches_reference_and_arrow(values: list[str]) -> None:
    from linkage.kernels.missing import ascii_missing
    from linkage.kernels.reference import ascii_missing_ref
    from linkage.partner.normalisers import _missing_mask

    strings = [v.encode() for v in values]
    data, off = _pack(strings)
    sdata, soff = _pack(SENTINELS)
    got = ascii_missing(data, off, sdata, soff)
    assert got.tolist() == ascii_missing_ref(strings, SENTINELS)
    # decided values agree with the Arrow definition of missing
    arrow = _missing_mask(pa.array(values, pa.string()), [s.decode() for s in SENTINELS])
    arrow_np = arrow.to_numpy(zero_copy_only=False)
    for g, a in zip(got.tolist(), arrow_np.tolist(), strict=True):
        if g != 2:
            assert bool(g) == a


LOOSE_CHARS = [*"ANKUOWnkow01/.- ", "\t", "\x00", "\x7f", "é", "Ä", "\u00a0", "\u00ad"]
LOOSE_SENTINELS = ["N/A", "NK", "UNKNOWN", "NOT KNOWN", "NO 1", "-", "01/01/1900", "Äö"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=LOOSE_CHARS, max_size=12),
            st.sampled_from(["N.A.", "n/a", "n a", "Not-Known", "NA", "nk", " ", "u.n.k.n.o.w.n"]),
            st.none(),
        ),
        max_size=40,
    )
)
def test_ascii_loose_missing_matches_reference_and_arrow(values: list[str | None]) -> None:
    """The kernel against its plain-Python reference, and loose_missing (kernel + Arrow for
    non-ASCII values) against the all-Arrow definition it replaced."""
    from linkage.kernels.missing import ascii_loose_missing
    from linkage.kernels.reference import ascii_loose_missing_ref
    from linkage.partner.values import (
        _loose_keys,
        _loose_missing_arrow,
        loose_missing,
        string_buffers,
    )

    keys, kdata, koff = _loose_keys(tuple(LOOSE_SENTINELS))
    strings = [(v or "").encode() for v in values]
    data, off = _pack(strings)
    got = ascii_loose_missing(data, off, kdata, koff)
    assert got.tolist() == ascii_loose_missing_ref(strings, [k.encode() for k in keys])
    arr = pa.array(values, pa.string())
    want = _loose_missing_arrow(arr, *string_buffers(arr), keys)
    assert loose_missing(arr, LOOSE_SENTINELS).tolist() == want.tolist()
    assert loose_missing(arr[1:], LOOSE_SENTINELS).tolist() == want[1:].tolist()  # offset


def test_loose_missing_examples() -> None:
    from linkage.partner.values import loose_missing

    vals = ["N.A.", "n / a", "NA", "Not-Known", "n/ä", "unknown!", "Nö", "N.K", "NKK.", None, ""]
    got = loose_missing(pa.array(vals, pa.string()), ["N/A", "NOT KNOWN", "NK", "UNKNOWN"])
    assert got.tolist() == [True, True, False, True, False, True, False, True, False] + [False] * 2


def test_distinct_and_missing_without_jit_match_jit() -> None:
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.missing import ascii_loose_missing, ascii_missing
        from linkage.kernels.text import distinct_strings, padded_words
        vals = [b"", b"ANN", b" nk", b"ANN", b"\\xc3\\xa9", b"ABCDEFGHIJ", b"ABCDEFGHIJ", b"\\t"]
        vals += [b"n.k.", b"NK", b"n/ a"]
        off = np.zeros(len(vals) + 1, np.int64); np.cumsum([len(v) for v in vals], out=off[1:])
        data = np.frombuffer(b"".join(vals), np.uint8).copy()
        ids, first = distinct_strings(padded_words(data), off)
        s = np.frombuffer(b"NKN/A", np.uint8).copy()
        miss = ascii_missing(data, off, s, np.array([0, 2, 5], np.int64))
        loose = ascii_loose_missing(data, off, s, np.array([0, 2, 5], np.int64))
        np.savez(OUT, ids=ids, first=first, miss=miss, loose=loose)
        """
    )
    same_with_and_without_jit(code)


# -- NHS numbers --------------------------------------------------------------------------------
NHS_CHARS = "0123456789 -\t\r\n\x0b\x0c/xé"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=NHS_CHARS, max_size=14),
            st.sampled_from(["943 476 5919", "943-476-5919", "9434765919", "0000000000"]),
            st.sampled_from(["9434765918", " 9434765919\t", "943476591", "94347659190"]),
        ),
        max_size=40,
    )
)
def test_nhs_kernel_matches_regex_path(values: list[str]) -> None:
    from linkage.partner.normalisers import _norm_nhs, _norm_nhs_general

    assert_kernel_matches_general(_norm_nhs, _norm_nhs_general, values)


def test_nhs_digits_without_jit_matches_jit() -> None:
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.text import nhs_digits
        vals = [b"943 476 5919", b"", b"12345678901", b"943-476-591x", b"\\x0b9434765919"]
        off = np.zeros(len(vals) + 1, np.int64); np.cumsum([len(v) for v in vals], out=off[1:])
        data = np.frombuffer(b"".join(vals), np.uint8).copy()
        digits, is10 = nhs_digits(data, off)
        np.savez(OUT, digits=digits, is10=is10)
        """
    )
    jit = same_with_and_without_jit(code)
    assert jit["is10"].tolist() == [True, False, False, False, True]  # VT is a space


# -- dates --------------------------------------------------------------------------------------
DATE_CHARS = "0123456789/-. T:Z+\t\x1cab"
FAST_FORMATS = [
    "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y",
    "%d-%m-%y", "%d %m %Y", "%y.%m.%d",
]  # fmt: skip


def test_date_programs_only_where_the_kernel_matches_like_the_regex() -> None:
    from linkage.partner.normalisers import COMMON_DATE_FORMATS, DateFormat

    for f in FAST_FORMATS:
        assert DateFormat(f).program is not None, f
    for f in ["%Y%m%d", "%d-%b-%Y", "%d %B %Y", "%d%m%Y", "%d1%m%Y"]:
        assert DateFormat(f).program is None, f
    assert {f for f in COMMON_DATE_FORMATS if DateFormat(f).program is not None} <= set(
        FAST_FORMATS
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FAST_FORMATS),
    st.lists(
        st.one_of(
            st.text(alphabet=DATE_CHARS, max_size=22),
            st.sampled_from(
                ["1990-12-05", " 1990-1-5 ", "05/12/1990", "5/12/90", "1990-12-05T10:00:00Z",
                 "1990-12-05 10:00+01:00", "1990-12-05T", "1990-12-05T10:00-", "31.12.1999",
                 "05/12/1990 00:00", "12/5/1990", "1990-012-05", "19901205"]
            ),
        ),
        max_size=30,
    ),
)  # fmt: skip
def test_date_kernel_matches_regex_path(fmt: str, values: list[str]) -> None:
    from linkage.kernels.text import parse_dates
    from linkage.partner.normalisers import DateFormat, string_buffers

    df = DateFormat(fmt)
    arr = pa.array(values, pa.string())
    program = df.program
    assert program is not None
    got = parse_dates(*string_buffers(arr), program)
    want = df._parse_regex(arr)
    assert got[3].tolist() == want[3].tolist()  # matched
    for g, w in zip(got[:3], want[:3], strict=True):
        assert g[got[3]].tolist() == w[want[3]].tolist()


def test_parse_dates_without_jit_matches_jit() -> None:
    code = textwrap.dedent(
        """
        import numpy as np
        from linkage.kernels.text import parse_dates
        from linkage.partner.normalisers import DateFormat
        vals = [b"1990-12-05", b" 1990-1-5T10:00Z", b"x", b"", b"1990-12-5 1:2+3", b"1990-123-1"]
        off = np.zeros(len(vals) + 1, np.int64); np.cumsum([len(v) for v in vals], out=off[1:])
        data = np.frombuffer(b"".join(vals), np.uint8).copy()
        y, m, d, ok = parse_dates(data, off, DateFormat("%Y-%m-%d").program)
        np.savez(OUT, y=y, m=m, d=d, ok=ok)
        """
    )
    jit = same_with_and_without_jit(code)
    assert jit["ok"].tolist() == [True, True, False, False, True, False]
