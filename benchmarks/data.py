"""Benchmark data that needs no ``linkage synth``: a 10-field person table (syllable names,
UK-shaped postcodes, valid NHS numbers, phones, e-mails) for encoding benchmarks, random Bloom
filters and bit flips for matching kernels, and a plain numpy Dice reference. Deterministic
given the seed. Imports nothing from ``linkage`` at import time (the NHS check digit comes
from :mod:`linkage.identifiers` when a table is drawn).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "PERSON_FIELDS",
    "dice_reference",
    "flip_bits",
    "person_columns",
    "random_filters",
    "write_person_csv",
]


PERSON_FIELDS: tuple[str, ...] = (
    "given_name",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
    "town",
    "phone",
    "email",
)


_SYLLABLES = np.array(
    [
        "an",
        "ar",
        "be",
        "bo",
        "ca",
        "da",
        "el",
        "em",
        "fa",
        "ga",
        "ha",
        "is",
        "ja",
        "ka",
        "la",
        "le",
        "li",
        "lo",
        "ma",
        "mi",
        "mo",
        "na",
        "ne",
        "ni",
        "no",
        "ol",
        "or",
        "pa",
        "ra",
        "re",
        "ri",
        "ro",
        "sa",
        "se",
        "si",
        "so",
        "ta",
        "te",
        "ti",
        "to",
        "ul",
        "va",
        "vi",
        "wa",
        "ya",
        "ze",
    ]
)


_STREET_KIND = np.array(["Road", "Street", "Lane", "Avenue", "Close", "Way", "Drive", "Court"])


_DOMAINS = np.array(["example.com", "mail.test", "post.example", "inbox.test"])


_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUWXYZ"))


def _words(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n capitalised pseudo-words of lo..hi syllables (vectorised)."""
    k = rng.integers(lo, hi + 1, size=n)
    parts = rng.choice(_SYLLABLES, size=(n, hi))
    out = parts[:, 0].astype(object)
    for j in range(1, hi):
        out = np.where(k > j, out + parts[:, j].astype(object), out)
    return np.strings.capitalize(out.astype(str))


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    d = rng.integers(0, 10, size=(n, width)).astype("U1")
    out = d[:, 0]
    for j in range(1, width):
        out = np.strings.add(out, d[:, j])
    return out


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid 10-digit NHS numbers (mod-11 check digit; a body with check 10 is redrawn)."""
    from linkage.identifiers import NO_CHECK_DIGIT, nhs_check_digit

    body = rng.integers(0, 10, size=(n, 9))
    check = nhs_check_digit(body)
    bad = check == NO_CHECK_DIGIT
    while bad.any():
        body[bad] = rng.integers(0, 10, size=(int(bad.sum()), 9))
        check = nhs_check_digit(body)
        bad = check == NO_CHECK_DIGIT
    digits = np.concatenate([body, check[:, None]], axis=1).astype("U1")
    out = digits[:, 0]
    for j in range(1, 10):
        out = np.strings.add(out, digits[:, j])
    return out


def person_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """A random UK-style person table: ``record_id`` plus :data:`PERSON_FIELDS`, as numpy
    string arrays of length ``n``. Deterministic in ``seed``; no missing values."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    given = _words(rng, n, 2, 3)
    surname = _words(rng, n, 2, 4)
    days = rng.integers(0, 365 * 90, size=n)
    dob = (np.datetime64("1930-01-01") + days.astype("timedelta64[D]")).astype(str)
    sex = rng.choice(np.array(["F", "M"]), size=n)
    pc_out = np.strings.add(
        np.strings.add(rng.choice(_LETTERS, n), rng.choice(_LETTERS, n)),
        rng.integers(1, 30, n).astype(str),
    )
    pc_in = np.strings.add(
        rng.integers(0, 10, n).astype(str),
        np.strings.add(rng.choice(_LETTERS, n), rng.choice(_LETTERS, n)),
    )
    postcode = np.strings.add(np.strings.add(pc_out, " "), pc_in)
    address = np.strings.add(
        np.strings.add(rng.integers(1, 300, n).astype(str), " "),
        np.strings.add(np.strings.add(_words(rng, n, 2, 3), " "), rng.choice(_STREET_KIND, n)),
    )
    town = _words(rng, n, 2, 4)
    phone = np.strings.add("07", _digits(rng, n, 9))
    email = np.strings.add(
        np.strings.add(np.strings.lower(given), "."),
        np.strings.add(np.strings.add(np.strings.lower(surname), "@"), rng.choice(_DOMAINS, n)),
    )
    record_id = np.strings.add("r", np.arange(n).astype(str))
    return {
        "record_id": record_id,
        "given_name": given,
        "surname": surname,
        "date_of_birth": dob,
        "sex": sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": _nhs_numbers(rng, n),
        "town": town,
        "phone": phone,
        "email": email,
    }


def write_person_csv(path: str | os.PathLike[str], n: int, seed: int) -> Path:
    """Write :func:`person_columns` as a CSV with a header (``record_id`` first).

    Uses pyarrow's CSV writer (values are quoted; any RFC 4180 reader, clkhash's included,
    reads them back unchanged).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = person_columns(n, seed)
    table = pa.table({k: pa.array(v.astype(object), type=pa.string()) for k, v in cols.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    return path


def random_filters(n: int, n_bits: int, density: float, seed: int) -> np.ndarray:
    """``(n, n_bits // 8)`` uint8 filters with each bit set independently with ``density``."""
    if n_bits <= 0 or n_bits % 8:
        raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    rng = np.random.default_rng(seed)
    bits = rng.random((n, n_bits), dtype=np.float32) < density
    return np.packbits(bits, axis=1, bitorder="little")


def flip_bits(filters: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """A copy of ``filters`` (uint8, LSB-first) with each bit flipped with probability ``rate``."""
    rng = np.random.default_rng(seed)
    n, nbytes = filters.shape
    mask = rng.random((n, nbytes * 8), dtype=np.float32) < rate
    return filters ^ np.packbits(mask, axis=1, bitorder="little")


def dice_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense Dice matrix between uint8 filter arrays (numpy reference, small inputs only)."""
    ua = np.unpackbits(a, axis=1).astype(np.int32)
    ub = np.unpackbits(b, axis=1).astype(np.int32)
    inter = ua @ ub.T
    tot = ua.sum(1)[:, None] + ub.sum(1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(tot > 0, 2.0 * inter / np.maximum(tot, 1), 0.0)
    return d
