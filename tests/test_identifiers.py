"""The one NHS number check (linkage.identifiers), against the NHS Data Dictionary definition
written out in plain Python, and the modules that must use it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.identifiers import digit_matrix, nhs_check_digit, nhs_is_valid, nhs_number_valid


def _definition(body: list[int]) -> int | None:
    """NHS Data Dictionary: weights 10..2, check = 11 - (sum mod 11), 11 -> 0, 10 -> invalid."""
    check = 11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
    return None if check == 10 else check % 11


def test_published_example_and_edge_cases() -> None:
    assert nhs_is_valid("943 476 5919")  # the NHS's published example
    assert nhs_is_valid("9434765919")
    assert not nhs_is_valid("9434765918")
    assert not nhs_is_valid("943476591")
    assert not nhs_is_valid("94347659x9")
    assert not nhs_is_valid("９４３４７６５９１９")  # full-width digits are not ASCII
    assert int(nhs_check_digit([4, 0, 0, 0, 0, 0, 0, 0, 4])) == 7  # 48 % 11 = 4
    assert int(nhs_check_digit([0] * 9)) == 0  # remainder 0: 11 -> 0
    assert int(nhs_check_digit([0, 0, 0, 0, 0, 0, 0, 0, 6])) == 10  # 12 % 11 = 1: none
    assert not any(nhs_number_valid([0] * 8 + [6, c]) for c in range(10))


def test_shapes() -> None:
    assert nhs_check_digit(np.zeros((0, 9), np.uint8)).shape == (0,)
    assert nhs_number_valid(np.zeros((0, 10), np.uint8)).shape == (0,)
    assert nhs_number_valid(np.zeros((2, 3, 10), np.uint8)).shape == (2, 3)
    with pytest.raises(ValueError, match="9 digits"):
        nhs_check_digit(np.zeros((3, 10), np.uint8))
    with pytest.raises(ValueError, match="10 digits"):
        nhs_number_valid(np.zeros((3, 9), np.uint8))
    assert digit_matrix([943476591, 7], 9).tolist() == [
        [9, 4, 3, 4, 7, 6, 5, 9, 1],
        [0, 0, 0, 0, 0, 0, 0, 0, 7],
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), min_size=10, max_size=10), max_size=20))
def test_matches_the_definition(numbers: list[list[int]]) -> None:
    d = np.array(numbers, dtype=np.uint8).reshape(-1, 10)
    want_check = [_definition(n[:9]) for n in numbers]
    got_check = nhs_check_digit(d[:, :9]).tolist()
    assert got_check == [10 if c is None else c for c in want_check]
    want_valid = [c is not None and c == n[9] for c, n in zip(want_check, numbers, strict=True)]
    assert nhs_number_valid(d).tolist() == want_valid
    assert [nhs_is_valid("".join(map(str, n))) for n in numbers] == want_valid


def test_one_definition_is_used() -> None:
    """The partner normaliser checks NHS numbers with this module's function."""
    from linkage.partner import normalisers

    assert normalisers.nhs_check_ok is nhs_number_valid


@given(st.integers(0, 999_999_999))
def test_integer_bodies_through_digit_matrix(body: int) -> None:
    """The synthetic population checks integer bodies via digit_matrix."""
    want = _definition([int(c) for c in f"{body:09d}"])
    assert int(nhs_check_digit(digit_matrix([body], 9))[0]) == (10 if want is None else want)
