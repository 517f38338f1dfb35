"""Invisible spaces (issue 10 item 14): every Unicode space and zero-width character is
whitespace for every normaliser and for record ids."""

from __future__ import annotations

import sys
import unicodedata

import pyarrow as pa
import pytest

from linkage.errors import InputError
from linkage.partner.normalisers import DateFormat, normalise
from linkage.partner.plan import check_ids

SPACES = [
    chr(c)
    for c in range(sys.maxunicode + 1)
    if unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp") and c != 0x20
] + ["\u0085", "\u180e", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
# every other character Python's str.isspace counts (tab..CR, vertical tab, U+001C-U+001F)
SPACES += [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in SPACES]
SPACES.remove(" ")

# (normaliser, value written with ASCII spaces, keyword arguments)
CASES = [
    ("postcode", "CF10 1AA", {}),
    ("postcode", " l1 8jq ", {}),
    ("nhs_number", "943 476 5919", {}),
    ("name", "Mary Ann", {}),
    ("name", " Dr Zoë ", {}),
    ("text", "1 High Street", {}),
    ("text", "Flat 9 Marigold Towers", {}),
    ("sex", " M ", {}),
    ("integer", " 1 200 ", {}),
    ("none", "a b", {}),
    ("date", "14 03 1971", {"date_format": DateFormat("%d %m %Y")}),
    ("date", " 1971-03-14 ", {"date_format": DateFormat("%Y-%m-%d")}),
]


def one(kind: str, value: str, kw: dict) -> str | None:
    return normalise(kind, pa.array([value]), **kw).values[0].as_py()


def test_every_unicode_space_is_listed() -> None:
    assert "\u00a0" in SPACES and "\u3000" in SPACES and "\u202f" in SPACES
    assert len(SPACES) >= 25
    assert {"\x0b", "\x1c", "\x1d", "\x1e", "\x1f", "\t"} <= set(SPACES)


@pytest.mark.parametrize(("kind", "value", "kw"), CASES)
def test_unicode_spaces_are_spaces_to_every_normaliser(kind: str, value: str, kw: dict) -> None:
    want = one(kind, value, kw)
    assert want is not None, (kind, value)
    variants = [value.replace(" ", s) for s in SPACES]
    variants += [s + value.strip() + s for s in SPACES]  # padding only
    got = normalise(kind, pa.array(variants), **kw).values.to_pylist()
    bad = [(f"U+{ord(s):04X}", g) for s, g in zip(SPACES + SPACES, got, strict=True) if g != want]
    assert not bad, (kind, value, want, bad[:5])


@pytest.mark.parametrize(
    ("kind", "value", "want"),
    [
        ("postcode", "CF10\u00a01AA", "CF10 1AA"),  # the example of the issue
        ("postcode", "CF10\u200b1AA", "CF10 1AA"),
        ("nhs_number", "943\u00a0476\u00a05919", "9434765919"),
        ("nhs_number", "9434765919\u200b", "9434765919"),
        ("name", "Jo\u200bhn", "JOHN"),
        ("postcode", "CF10\x0b1AA", "CF10 1AA"),  # vertical tab (issue 10 robustness 1)
        ("nhs_number", "943\x0b476\x1f5919", "9434765919"),
        ("name", "Mary\x1cAnn", "MARYANN"),
        ("name", "Jo\u00adhn", "JOHN"),  # the soft hyphen is removed, not a space
        ("text", "High\u00adStreet", "HIGHSTREET"),
        ("postcode", "CF10 1\u00adAA", "CF10 1AA"),
    ],
)
def test_examples(kind: str, value: str, want: str) -> None:
    assert one(kind, value, {}) == want


@pytest.mark.parametrize("kind", ["postcode", "nhs_number", "name", "text", "sex", "integer"])
def test_a_value_of_invisible_characters_is_missing(kind: str) -> None:
    out = normalise(kind, pa.array(["\u00a0", "\u200b\u3000", "\ufeff"]))
    assert out.values.to_pylist() == [None, None, None]
    assert not out.problems().size  # missing, not invalid


@pytest.mark.parametrize("blank", ["\u00a0", "\u200b", "\ufeff", "\u3000\u200b", "\x0b", "\x1f"])
def test_an_invisible_record_id_is_empty(blank: str) -> None:
    with pytest.raises(InputError, match="row 2, column 'id': empty record id"):
        check_ids(pa.array(["a1", blank]), "x.csv", "id")


@pytest.mark.parametrize("pad", ["\u00a0", "\u200b", " ", "\u2009", "\ufeff"])
def test_record_ids_differing_only_by_invisible_spaces_are_duplicates(pad: str) -> None:
    with pytest.raises(InputError, match="row 3 repeats row 1"):
        check_ids(pa.array(["a1", "b2", "a1" + pad]), "x.csv", "id")
    check_ids(pa.array(["a 1", "a1"]), "x.csv", "id")  # an inner space still tells ids apart


@pytest.mark.parametrize("pad", ["\x0b", "\x1e", "\t"])
def test_a_control_character_padding_an_id_is_refused(pad: str) -> None:
    """Control characters that Unicode also counts as spaces (vertical tab, record
    separator) are refused wherever they are in an id, not trimmed away as padding."""
    with pytest.raises(InputError, match="row 3, column 'id': the record id contains a control"):
        check_ids(pa.array(["a1", "b2", "a1" + pad]), "x.csv", "id")
