"""UK personal identifiers: the NHS number check digit, the one definition that the partner
normaliser (``linkage.partner.normalisers``), the synthetic population (``linkage.lab``) and
the benchmarks use.

An NHS number is 10 digits: a 9-digit body and a mod-11 check digit (NHS Data Dictionary,
"NHS Number"): multiply the body digits by the weights 10, 9, ..., 2, sum, take the remainder
``r`` modulo 11; the check digit is ``11 - r``, where 11 becomes 0 and 10 means that the body
has no valid check digit (it is never issued). Vectorised with numpy; no secret, no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "NHS_WEIGHTS",
    "NO_CHECK_DIGIT",
    "digit_matrix",
    "nhs_check_digit",
    "nhs_is_valid",
    "nhs_number_valid",
]

NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # on body digits 1..9
NO_CHECK_DIGIT = 10  # what nhs_check_digit returns for a body that has none


def digit_matrix(numbers: ArrayLike, width: int) -> NDArray[np.int64]:
    """Decimal digits of non-negative integers, most significant first: shape ``(n, width)``
    (``numbers`` of shape ``(n,)``), zero-padded on the left. Digits beyond ``width`` are lost."""
    v = np.asarray(numbers, dtype=np.int64)
    powers = np.int64(10) ** np.arange(width - 1, -1, -1, dtype=np.int64)
    out: NDArray[np.int64] = (v[..., None] // powers) % 10
    return out


def nhs_check_digit(body: ArrayLike) -> NDArray[np.int64]:
    """Mod-11 check digit of NHS number bodies.

    ``body``: digit values, shape ``(..., 9)`` (any integer dtype). Returns int64 of shape
    ``(...)``: ``11 - (sum(d_i * w_i) mod 11)`` with weights 10..2, 11 -> 0; 10
    (:data:`NO_CHECK_DIGIT`) where the body has no valid check digit.
    """
    d = np.asarray(body)
    if d.shape[-1:] != (9,):
        raise ValueError(f"NHS number bodies must have 9 digits on the last axis, got {d.shape}")
    check = 11 - (d.astype(np.int64) @ NHS_WEIGHTS) % 11
    out: NDArray[np.int64] = np.where(check == 11, 0, check)
    return out


def nhs_number_valid(digits: ArrayLike) -> NDArray[np.bool_]:
    """Whether each 10-digit NHS number passes the mod-11 check.

    ``digits``: digit values, shape ``(..., 10)``. Returns bool of shape ``(...)``: True where
    the body has a check digit and it equals the tenth digit.
    """
    d = np.asarray(digits)
    if d.shape[-1:] != (10,):
        raise ValueError(f"NHS numbers must have 10 digits on the last axis, got {d.shape}")
    check = nhs_check_digit(d[..., :9])
    out: NDArray[np.bool_] = (check != NO_CHECK_DIGIT) & (check == d[..., 9])
    return out


def nhs_is_valid(number: str) -> bool:
    """Whether ``number`` (10 ASCII digits, spaces allowed) is a valid NHS number."""
    digits = number.replace(" ", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    return bool(nhs_number_valid(np.frombuffer(digits.encode(), np.uint8) - ord("0")))
