"""Column helpers of the synthetic population: Arrow string arrays built from ASCII matrices,
record ids, column-name casings, and :class:`CodedColumn`, a dictionary-coded string column
that a corruption rewrites once per distinct (value, variant) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "VARIANTS",
    "CodedColumn",
    "ascii_rows",
    "column_name",
    "digit_rows",
    "join_strings",
    "record_ids",
    "take_index",
    "unique_ints",
]

VARIANTS = 1 << 20  # variants per corruption (the random parameter handed to a transform)


def unique_ints(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
    """``n`` distinct uniform integers in [0, high), redrawing collisions."""
    vals = rng.integers(0, high, n, dtype=np.int64)
    while n > 1:
        order = np.argsort(vals, kind="stable")
        s = vals[order]
        dup = order[1:][s[1:] == s[:-1]]
        if dup.size == 0:
            break
        vals[dup] = rng.integers(0, high, dup.size, dtype=np.int64)
    return vals


def ascii_rows(mat: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Arrow string array from an (n, w) uint8 matrix of ASCII codes (one string per row)."""
    n, w = mat.shape
    data = np.ascontiguousarray(mat, dtype=np.uint8).tobytes()
    offsets = np.arange(n + 1, dtype=np.int32) * w
    bitmap = None
    nulls = 0
    if null is not None and null.any():
        bitmap = pa.py_buffer(np.packbits(~null, bitorder="little").tobytes())
        nulls = int(null.sum())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data),
                                       bitmap, nulls)  # fmt: skip


def digit_rows(vals: np.ndarray, width: int, base: int = 10) -> np.ndarray:
    """(n, width) uint8 ASCII matrix of ``vals`` in ``base`` (10 or 16), zero-padded."""
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    vals = np.asarray(vals, dtype=np.int64)
    out = np.empty((vals.size, width), dtype=np.uint8)
    v = vals.copy()
    for k in range(width - 1, -1, -1):
        out[:, k] = alphabet[v % base]
        v //= base
    return out


def record_ids(rng: np.random.Generator, n: int, style: str) -> pa.Array:
    if style == "hex12":
        return ascii_rows(digit_rows(unique_ints(rng, n, 16**12), 12, 16))
    if style == "hex16":
        return ascii_rows(digit_rows(unique_ints(rng, n, 2**62), 16, 16))
    if style == "digits9":
        return ascii_rows(digit_rows(unique_ints(rng, n, 10**9), 9))
    # alnum10: upper-case letters and digits, base 36
    vals = unique_ints(rng, n, 36**10)
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    out = np.empty((n, 10), dtype=np.uint8)
    for k in range(9, -1, -1):
        out[:, k] = alphabet[vals % 36]
        vals //= 36
    return ascii_rows(out)


def take_index(codes: np.ndarray, null: np.ndarray | None = None) -> Any:
    """Arrow int64 index array (for ``take``); ``null`` marks missing entries."""
    return pa.array(np.asarray(codes, dtype=np.int64), type=pa.int64(), mask=null)


def join_strings(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays / scalars; the last argument is the separator."""
    join: Any = pc.binary_join_element_wise
    out: pa.Array = join(*parts)
    return out


def column_name(name: str, casing: str) -> str:
    if casing == "upper":
        return name.upper()
    if casing == "camel":
        return "".join(p[:1].upper() + p[1:] for p in name.split("_"))
    if casing == "title":
        return " ".join(p[:1].upper() + p[1:] for p in name.split("_"))
    return name


class CodedColumn:
    """A string column as codes into a growing table of strings (-1 = missing)."""

    def __init__(self, base: pa.Array, codes: np.ndarray) -> None:
        self.base = base.cast(pa.string())
        self.extra: list[str] = []
        self.codes = np.array(codes, dtype=np.int64)  # own copy: columns may share codes

    def _strings(self, codes: np.ndarray) -> list[str]:
        nb = len(self.base)
        out: list[str] = [""] * codes.size
        in_base = np.flatnonzero(codes < nb)
        for i, s in zip(in_base.tolist(), self.base.take(take_index(codes[in_base])).to_pylist(),
                        strict=True):  # fmt: skip
            out[i] = s or ""
        for i in np.flatnonzero(codes >= nb).tolist():
            out[i] = self.extra[int(codes[i]) - nb]
        return out

    def transform(
        self, rows: np.ndarray, fn: Callable[[str, int], str], variants: np.ndarray
    ) -> np.ndarray:
        """Replace the value of each row by ``fn(value, variant)``; returns the changed rows."""
        codes = self.codes[rows]
        keep = codes >= 0
        rows, codes, variants = rows[keep], codes[keep], variants[keep]
        if rows.size == 0:
            return rows
        key = codes * VARIANTS + variants
        ukey, inverse = np.unique(key, return_inverse=True)
        ucodes = ukey // VARIANTS
        strings = self._strings(ucodes)
        new = [fn(s, int(v)) for s, v in zip(strings, (ukey % VARIANTS).tolist(), strict=True)]
        changed = np.fromiter((a != b for a, b in zip(new, strings, strict=True)), bool, len(new))
        start = len(self.base) + len(self.extra)
        new_codes = np.where(changed, start + np.cumsum(changed) - 1, ucodes)
        self.extra.extend(s for s, c in zip(new, changed.tolist(), strict=True) if c)
        self.codes[rows] = new_codes[inverse]
        return rows[changed[inverse]]

    def set(self, rows: np.ndarray, codes: np.ndarray | int) -> None:
        self.codes[rows] = codes

    def to_arrow(self, sl: slice) -> pa.Array:
        table = pa.concat_arrays([self.base, pa.array(self.extra, pa.string())])
        codes = self.codes[sl]
        return table.take(take_index(codes, codes < 0))
