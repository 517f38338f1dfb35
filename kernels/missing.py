"""ASCII fast paths for the missing-value tests of the normalisers.

A value is missing when, trimmed and upper-cased, it is empty or one of the field's sentinels
(:func:`ascii_missing`), or when its letters and digits spell a sentinel's (``N.A.`` for
``N/A``: :func:`ascii_loose_missing`). Values with any non-ASCII byte are left to the Arrow
path in :mod:`linkage.partner.values`, which is also the reference these kernels are tested
against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from linkage.kernels.text import _in_table, _is_alnum, _is_trim_space, _upper, is_ascii


@njit(cache=True, nogil=True)
def ascii_missing(
    data: np.ndarray, offsets: np.ndarray, sent_data: np.ndarray, sent_offsets: np.ndarray
) -> np.ndarray:
    """Per string: 1 if, trimmed of whitespace and upper-cased, it is empty or one of the
    sentinels (``sent_data[sent_offsets[j]:sent_offsets[j+1]]``, already trimmed and
    upper-case); 0 if not; 2 if it has a non-ASCII byte (undecided: the caller decides)."""
    n = offsets.shape[0] - 1
    out = np.zeros(n, np.int8)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        if not is_ascii(data, a, b):
            out[i] = 2
            continue
        while a < b and _is_trim_space(data[a]):
            a += 1
        while b > a and _is_trim_space(data[b - 1]):
            b -= 1
        if a == b or _in_table(data, a, b, sent_data, sent_offsets, True):
            out[i] = 1
    return out


@njit(cache=True, nogil=True)
def ascii_loose_missing(
    data: np.ndarray, offsets: np.ndarray, key_data: np.ndarray, key_offsets: np.ndarray
) -> np.ndarray:
    """Per string: 1 if it has a byte that is not an ASCII letter or digit and its letters and
    digits, upper-cased and in order, spell one of the keys
    (``key_data[key_offsets[j]:key_offsets[j+1]]``, upper-case letters and digits); 0 if not;
    2 if it has a non-ASCII byte (undecided: the caller decides). The ASCII case of
    :func:`linkage.partner.values.loose_missing` (``N.A.`` for the sentinel ``N/A``)."""
    n = offsets.shape[0] - 1
    out = np.zeros(n, np.int8)
    longest = 0
    for t in range(key_offsets.shape[0] - 1):
        longest = max(longest, key_offsets[t + 1] - key_offsets[t])
    key = np.empty(longest + 1, np.uint8)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        m = 0  # letters and digits seen (only the first longest + 1 kept)
        odd = False
        ascii_only = True
        for p in range(a, b):
            c = data[p]
            if c >= 128:
                ascii_only = False
                break
            if _is_alnum(c):
                if m <= longest:
                    key[m] = _upper(c)
                m += 1
            else:
                odd = True
        if not ascii_only:
            out[i] = 2
        elif odd and m <= longest and _in_table(key, 0, m, key_data, key_offsets, False):
            out[i] = 1
    return out


KERNELS: dict[str, Any] = {
    "ascii_missing": ascii_missing,
    "ascii_loose_missing": ascii_loose_missing,
}
