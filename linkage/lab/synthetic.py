"""Synthetic UK populations with ground truth, for evaluating record linkage.

``synth(out_dir, people, parties)`` draws a population of ``people`` persons (frequency-weighted
names of diverse origins from the small tables in ``linkage/data``, households sharing an address
and postcode, a UK-like age structure, valid unique NHS numbers) and writes one extract per
partner, each with its own overlap, column names, date format, sex coding, record ids,
within-party duplicates and corruption, plus ``truth.csv`` (party, record_id, person_id) and
``manifest.json``. Every rate lives in :data:`RATES`; docs/synth.md documents them.

Everything is vectorised with numpy / pyarrow: string columns are dictionary-coded (codes into
a table of strings), and a corruption calls Python only once per distinct (value, variant) pair
among the affected records. Output is byte-identical for identical arguments.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage.errors import LinkageError

__all__ = [
    "CORRUPTION_LEVELS",
    "PARTY_NAMES",
    "POSTCODE_REGEX",
    "RATES",
    "PartySummary",
    "SynthError",
    "SynthSummary",
    "keyboard_typo",
    "nhs_check_digit",
    "nhs_is_valid",
    "ocr_typo",
    "phonetic_misspelling",
    "postcode_typo",
    "strip_accents",
    "synth",
]


class SynthError(LinkageError, ValueError):
    """Invalid arguments to :func:`synth`, or an output directory that cannot be written."""


ProgressFn = Callable[[str, float], None]

CORRUPTION_LEVELS = ("none", "low", "medium", "high")

# Corruption rates: kind -> level -> probability. The unit (per record, per field, per eligible
# record) is given in docs/synth.md; this dict is the single source of truth.
RATES: dict[str, dict[str, float]] = {
    # value changes (applied first)
    "surname_change": {"none": 0.0, "low": 0.02, "medium": 0.05, "high": 0.10},
    "nickname": {"none": 0.0, "low": 0.03, "medium": 0.08, "high": 0.15},
    "moved": {"none": 0.0, "low": 0.03, "medium": 0.08, "high": 0.15},
    "dob_swap": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "dob_typo": {"none": 0.0, "low": 0.005, "medium": 0.01, "high": 0.03},
    "sex_error": {"none": 0.0, "low": 0.002, "medium": 0.005, "high": 0.01},
    # spelling errors
    "phonetic": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "keyboard_typo": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.08},
    "ocr_typo": {"none": 0.0, "low": 0.003, "medium": 0.01, "high": 0.03},
    "postcode_typo": {"none": 0.0, "low": 0.005, "medium": 0.015, "high": 0.04},
    "nhs_typo": {"none": 0.0, "low": 0.002, "medium": 0.005, "high": 0.01},
    # presentation noise
    "title_prefix": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "format_noise": {"none": 0.0, "low": 0.05, "medium": 0.10, "high": 0.20},
    # missing values (applied last)
    "missing": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "nhs_missing": {"none": 0.0, "low": 0.30, "medium": 0.50, "high": 0.70},
}

PARTY_NAMES = (
    "council_a", "council_b", "nhs", "housing", "charity_x", "council_c", "police", "schools",
    "dwp", "charity_y", "council_d", "gp_north", "council_e", "hmrc", "charity_z", "council_f",
    "ambulance", "council_g", "probation", "council_h", "hospice", "council_i", "college",
    "council_j", "food_bank", "council_k",
)  # fmt: skip
# Health parties record NHS numbers routinely: they get the generic "missing" rate, not
# "nhs_missing".
HEALTH_PARTIES = frozenset({"nhs", "gp_north", "ambulance", "hospice"})

FIELDS = ("given", "family", "dob", "sex", "address", "town", "postcode", "nhs")
# One vocabulary per party (cycled), then a casing style per block of 8 parties, so that all
# 26 parties have distinct column names. None: the party does not hold that field.
VOCABULARIES: tuple[tuple[str | None, ...], ...] = (
    ("forename", "surname", "dob", "gender", "address_line_1", "town", "post_code", "nhs_no"),
    ("first_name", "last_name", "birth_date", "sex", "street_address", "city", "postcode",
     "nhs_number"),
    ("given_name", "family_name", "date_of_birth", "sex", "address", "post_town", "postcode",
     "nhs_number"),
    ("fname", "lname", "birthdate", "gender", "addr1", "addr2", "pcode", "nhsno"),
    ("name_first", "name_last", "born", "sex_code", "address_1", "locality", "zip", None),
    ("christian_name", "surname", "d_o_b", "gender", "house_and_street", "town_city",
     "postal_code", "nhs"),
    ("first", "last", "dob", "sex", "line1", "line2", "postcode", "nhs_num"),
    ("forenames", "family_name", "birth_dt", "gender_code", "address_line1", "address_town",
     "post_code", "nhsnumber"),
)  # fmt: skip
CASINGS = ("snake", "upper", "camel", "title")
DATE_FORMATS = (
    "%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%Y/%m/%d", "%d%m%Y",
)  # fmt: skip
SEX_CODINGS: dict[str, tuple[str, str, str]] = {  # values for (male, female, unknown)
    "MFU": ("M", "F", "U"),
    "words": ("Male", "Female", "Unknown"),
    "iso5218": ("1", "2", "0"),
}
ID_STYLES = ("hex12", "digits9", "hex16", "alnum10")

REFERENCE_DATE = "2024-01-01"  # ages are counted back from this fixed date
# Share of the population in 5-year age bands 0-4 ... 95-99 (roughly ONS 2021, England & Wales).
AGE_BANDS = (5.4, 5.9, 6.0, 5.7, 6.0, 6.6, 6.9, 6.7, 6.3, 6.5, 6.9, 6.8, 5.9, 5.1, 5.0, 3.7, 2.5,
             1.5, 0.7, 0.2)  # fmt: skip
HOUSEHOLD_SIZES = (0.30, 0.34, 0.15, 0.13, 0.05, 0.03)  # 1..6 people
SEX_SHARES = (0.492, 0.503, 0.005)  # M, F, U
SHARE_HOUSEHOLD_SURNAME = 0.8
MATCH_NAME_ORIGIN = 0.8  # chance that the given name comes from the surname's culture
HOUSEHOLDS_PER_STREET = 40
HOUSES_PER_UNIT = 15  # consecutive houses in a street share a postcode unit
OVERLAP_JITTER = 0.1
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in inward codes (no C I K M O V)
POSTCODE_REGEX = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][ABD-HJLNP-UW-Z]{2}$"
GIVEN_ORIGINS: dict[str, tuple[str, ...]] = {  # surname origin -> given-name origins
    "english": ("english",),
    "welsh": ("welsh", "english"),
    "scottish": ("scottish", "english"),
    "irish": ("irish", "english"),
    "caribbean": ("caribbean", "english"),
}

_VAR = 1 << 20  # variants per corruption (the random parameter handed to a transform)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PartySummary:
    name: str
    path: Path
    records: int
    persons: int
    duplicates: int


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    people: int
    households: int
    parties: tuple[PartySummary, ...]
    truth_path: Path
    manifest_path: Path

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parties)


# --------------------------------------------------------------------------------------------
# NHS numbers


_NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)


def nhs_check_digit(body: np.ndarray) -> np.ndarray:
    """Mod-11 check digit of 9-digit NHS number bodies (int64); 10 marks an invalid body.

    ``check = 11 - (sum(d_i * w_i) mod 11)`` with weights 10..2 on the nine digits; 11 -> 0.
    """
    body = np.asarray(body, dtype=np.int64)
    total = np.zeros(body.shape, dtype=np.int64)
    for k, w in enumerate(_NHS_WEIGHTS):
        total += ((body // 10 ** (8 - k)) % 10) * w
    check = 11 - total % 11
    return np.where(check == 11, 0, check)


def nhs_is_valid(number: str) -> bool:
    """Whether ``number`` (10 digits, spaces allowed) is a valid NHS number."""
    digits = number.replace(" ", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    check = int(nhs_check_digit(np.array([int(digits[:9])]))[0])
    return check != 10 and check == int(digits[9])


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers (int64), first digit 4, 6 or 7, in random order."""
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        want = int((n - out.size) * 1.15) + 16
        raw = rng.integers(0, 300_000_000, want, dtype=np.int64)
        body = np.where(raw < 100_000_000, 400_000_000 + raw, 500_000_000 + raw)
        check = nhs_check_digit(body)
        cand = np.concatenate([out, (body * 10 + check)[check != 10]])
        _, first = np.unique(cand, return_index=True)
        out = cand[np.sort(first)]
    return out[:n]


# --------------------------------------------------------------------------------------------
# Small helpers


def _unique_ints(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
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


def _ascii_rows(mat: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
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


def _digits(vals: np.ndarray, width: int, base: int = 10) -> np.ndarray:
    """(n, width) uint8 ASCII matrix of ``vals`` in ``base`` (10 or 16), zero-padded."""
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    vals = np.asarray(vals, dtype=np.int64)
    out = np.empty((vals.size, width), dtype=np.uint8)
    v = vals.copy()
    for k in range(width - 1, -1, -1):
        out[:, k] = alphabet[v % base]
        v //= base
    return out


def _record_ids(rng: np.random.Generator, n: int, style: str) -> pa.Array:
    if style == "hex12":
        return _ascii_rows(_digits(_unique_ints(rng, n, 16**12), 12, 16))
    if style == "hex16":
        return _ascii_rows(_digits(_unique_ints(rng, n, 2**62), 16, 16))
    if style == "digits9":
        return _ascii_rows(_digits(_unique_ints(rng, n, 10**9), 9))
    # alnum10: upper-case letters and digits, base 36
    vals = _unique_ints(rng, n, 36**10)
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    out = np.empty((n, 10), dtype=np.uint8)
    for k in range(9, -1, -1):
        out[:, k] = alphabet[vals % 36]
        vals //= 36
    return _ascii_rows(out)


def _idx(codes: np.ndarray, null: np.ndarray | None = None) -> Any:
    """Arrow int64 index array (for ``take``); ``null`` marks missing entries."""
    return pa.array(np.asarray(codes, dtype=np.int64), type=pa.int64(), mask=null)


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays / scalars; the last argument is the separator."""
    join: Any = pc.binary_join_element_wise
    out: pa.Array = join(*parts)
    return out


def _column_name(name: str, casing: str) -> str:
    if casing == "upper":
        return name.upper()
    if casing == "camel":
        return "".join(p[:1].upper() + p[1:] for p in name.split("_"))
    if casing == "title":
        return " ".join(p[:1].upper() + p[1:] for p in name.split("_"))
    return name


# --------------------------------------------------------------------------------------------
# Reference tables


@dataclass(frozen=True)
class _Tables:
    given: list[str]
    given_sex: np.ndarray  # 0 M, 1 F, 2 unisex
    given_weight: np.ndarray
    given_origin: np.ndarray  # index into origins
    surname: list[str]
    surname_weight: np.ndarray
    surname_origin: np.ndarray
    feminine: np.ndarray  # surname index -> feminine form index (Polish -ski -> -ska)
    origins: list[str]
    streets: list[str]
    town: list[str]
    town_area: list[str]
    town_districts: np.ndarray
    town_weight: np.ndarray
    nicknames: dict[str, list[str]]


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("linkage.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


_TABLES: _Tables | None = None


def _tables() -> _Tables:
    global _TABLES
    if _TABLES is not None:
        return _TABLES
    g = _read_csv("given_names.csv")
    s = _read_csv("surnames.csv")
    origins = sorted({r["origin"] for r in g} | {r["origin"] for r in s})
    oi = {o: i for i, o in enumerate(origins)}
    surname = [r["name"] for r in s]
    weight = [float(r["weight"]) for r in s]
    origin = [oi[r["origin"]] for r in s]
    feminine = list(range(len(surname)))
    for i, name in enumerate(list(surname)):
        if origins[origin[i]] == "polish" and name.endswith(("ski", "cki", "dzki")):
            surname.append(name[:-1] + "a")
            weight.append(0.0)  # only reached through ``feminine``
            origin.append(origin[i])
            feminine[i] = len(surname) - 1
            feminine.append(len(surname) - 1)
    t = _read_csv("towns.csv")
    nick: dict[str, list[str]] = {}
    for r in _read_csv("nicknames.csv"):
        nick.setdefault(r["formal"], []).append(r["nickname"])
    _TABLES = _Tables(
        given=[r["name"] for r in g],
        given_sex=np.array([{"M": 0, "F": 1, "U": 2}[r["sex"]] for r in g], dtype=np.int8),
        given_weight=np.array([float(r["weight"]) for r in g]),
        given_origin=np.array([oi[r["origin"]] for r in g], dtype=np.int64),
        surname=surname,
        surname_weight=np.array(weight),
        surname_origin=np.array(origin, dtype=np.int64),
        feminine=np.array(feminine, dtype=np.int64),
        origins=origins,
        streets=[r["name"] for r in _read_csv("streets.csv")],
        town=[r["town"] for r in t],
        town_area=[r["area"] for r in t],
        town_districts=np.array([int(r["districts"]) for r in t], dtype=np.int64),
        town_weight=np.array([float(r["weight"]) for r in t]),
        nicknames=nick,
    )
    return _TABLES


# --------------------------------------------------------------------------------------------
# String corruptions: deterministic functions of (string, variant); variant in [0, _VAR).

_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_KEY_ROWS) for i, c in enumerate(row)}
    out: dict[str, str] = {}
    for c, (r, i) in pos.items():
        near = []
        for dr, di in ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0)):
            rr, ii = r + dr, i + di
            if 0 <= rr < 3 and 0 <= ii < len(_KEY_ROWS[rr]):
                near.append(_KEY_ROWS[rr][ii])
        out[c] = "".join(near)
    for d in "0123456789":  # digits: neighbours on the number row
        k = int(d)
        out[d] = "".join(str(x % 10) for x in (k - 1, k + 1) if 0 <= x <= 9)
    return out


_NEIGHBOURS = _keyboard_neighbours()


def _match_case(c: str, like: str) -> str:
    return c.upper() if like.isupper() else c


def keyboard_typo(s: str, v: int) -> str:
    """One keyboard slip chosen by ``v``: adjacent-key substitution, deletion, double-tap
    insertion of a neighbouring key, or transposition of two adjacent characters."""
    n = len(s)
    if n == 0:
        return s
    i = v % n  # first typable character at or after a position chosen by v (cyclically)
    v //= n
    for _ in range(n):
        if s[i].lower() in _NEIGHBOURS:
            break
        i = (i + 1) % n
    else:
        return s
    op = v % 20
    v //= 20
    c = s[i]
    near = _NEIGHBOURS[c.lower()]
    if op < 9 or len(s) < 3:  # substitute
        return s[:i] + _match_case(near[v % len(near)], c) + s[i + 1 :]
    if op < 13:  # delete
        return s[:i] + s[i + 1 :]
    if op < 17:  # insert a neighbour (or repeat the key) after i
        extra = (near + c.lower())[v % (len(near) + 1)]
        return s[: i + 1] + extra + s[i + 1 :]
    j = i + 1 if i + 1 < len(s) else i - 1  # transpose with a neighbour position
    a, b = min(i, j), max(i, j)
    if s[a] == s[b]:
        return s[:i] + s[i + 1 :]
    return s[:a] + s[b] + s[a] + s[b + 1 :]


_OCR = (
    ("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("l", "1"), ("1", "l"), ("I", "l"),
    ("l", "I"), ("O", "0"), ("0", "O"), ("o", "0"), ("S", "5"), ("5", "S"), ("B", "8"),
    ("8", "B"), ("e", "c"), ("c", "e"), ("h", "b"), ("u", "v"), ("vv", "w"), ("w", "vv"),
    ("Z", "2"), ("2", "Z"), ("g", "9"), ("a", "o"), ("i", "l"), ("n", "h"), ("E", "F"),
    ("Q", "O"), ("D", "0"), ("6", "b"), ("7", "1"), ("1", "7"), ("3", "8"), ("G", "6"),
    ("U", "V"), ("N", "H"), ("W", "VV"), ("ii", "u"), ("t", "f"),
)  # fmt: skip


def _by_first(rules: tuple[tuple[str, str], ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for a, b in rules:
        out.setdefault(a[0], []).append((a, b))
    return {k: tuple(v) for k, v in out.items()}


_OCR_BY_FIRST = _by_first(_OCR)


def _rewrite(s: str, key: str, v: int, rules: dict[str, tuple[tuple[str, str], ...]]) -> str | None:
    """Apply one rule ``a -> b`` whose ``a`` occurs in ``key`` (``s`` or its lower case) at the
    first matching position at or after ``v mod len`` (cyclically); None if none occurs."""
    n = len(s)
    if n == 0:
        return None
    i = v % n
    v //= n
    for _ in range(n):
        cands = [r for r in rules.get(key[i], ()) if key.startswith(r[0], i)]
        if cands:
            a, b = cands[v % len(cands)]
            return s[:i] + b + s[i + len(a) :]
        i = (i + 1) % n
    return None


def ocr_typo(s: str, v: int) -> str:
    """One optical-recognition confusion (rn/m, cl/d, l/1, O/0, S/5, e/c...) chosen by ``v``;
    a keyboard slip where no confusion applies."""
    out = _rewrite(s, s, v, _OCR_BY_FIRST)
    return keyboard_typo(s, v) if out is None else out


_PHONETIC = (
    ("ph", "f"), ("f", "ph"), ("ck", "k"), ("k", "ck"), ("c", "k"), ("ie", "y"), ("y", "ie"),
    ("ey", "y"), ("ee", "ea"), ("ea", "ee"), ("ou", "ow"), ("ow", "ou"), ("ai", "ay"),
    ("ay", "ai"), ("th", "t"), ("s", "z"), ("z", "s"), ("son", "sen"), ("sen", "son"),
    ("mc", "mac"), ("mac", "mc"), ("ll", "l"), ("tt", "t"), ("nn", "n"), ("rr", "r"),
    ("ss", "s"), ("i", "y"), ("y", "i"), ("our", "or"), ("wh", "w"), ("ght", "t"),
    ("tch", "ch"), ("dge", "ge"), ("x", "cks"), ("qu", "kw"), ("kh", "k"), ("mu", "mo"),
    ("mo", "mu"), ("ei", "ie"), ("ie", "ei"), ("ch", "sh"), ("sh", "ch"), ("oo", "u"),
    ("ah", "a"), ("aa", "a"), ("ee", "i"), ("v", "w"), ("w", "v"), ("j", "dj"), ("ine", "een"),
    ("ja", "ya"), ("ham", "um"), ("er", "a"),
)  # fmt: skip


_PHONETIC_BY_FIRST = _by_first(_PHONETIC)


def phonetic_misspelling(s: str, v: int) -> str:
    """A sound-alike respelling (ph/f, ck/k, ie/y, son/sen, Mc/Mac, double/single consonant...)
    chosen by ``v``; doubles a consonant where no rule applies. Keeps an initial capital."""
    low = s.lower()
    out = _rewrite(s, low, v, _PHONETIC_BY_FIRST) if len(low) == len(s) else None
    if out is not None:
        if s[:1].isupper() and out[:1].islower():
            out = out[:1].upper() + out[1:]
        return out
    cons = [i for i, c in enumerate(s) if c.isalpha() and c.lower() not in "aeiouy"]
    if not cons:
        return keyboard_typo(s, v)
    i = cons[v % len(cons)]
    return s[: i + 1] + s[i].lower() + s[i + 1 :]


_FOLD = str.maketrans("ŁłØøĐđßÆæ", "LlOoDdsAa")


def strip_accents(s: str) -> str:
    """Drop diacritics (Zoë -> Zoe, Łukasz -> Lukasz, Ó Briain -> O Briain)."""
    if s.isascii():
        return s
    s = s.translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


_NAME_NOISE: tuple[Callable[[str], str], ...] = (
    str.upper,
    str.lower,
    strip_accents,
    lambda s: s.replace("'", " ").replace("-", " ").upper(),
    lambda s: s.replace("'", "").replace("-", ""),
    lambda s: "  " + s,
    lambda s: s + " ",
    lambda s: s.replace(" ", "  ") if " " in s else s + "  ",
    lambda s: s.replace("'", "").lower(),
)

_ABBREVIATIONS = (
    (" Road", " Rd"), (" Street", " St"), (" Avenue", " Ave"), (" Lane", " Ln"),
    (" Close", " Cl"), (" Drive", " Dr"), (" Crescent", " Cres"), (" Grove", " Gr"),
)  # fmt: skip


def _abbreviate(s: str) -> str:
    for long, short in _ABBREVIATIONS:
        if long in s:
            s = s.replace(long, short)
    return s


_ADDRESS_NOISE: tuple[Callable[[str], str], ...] = (
    _abbreviate,
    str.upper,
    str.lower,
    lambda s: s.replace(" ", ", ", 1),
    lambda s: _abbreviate(s).upper(),
    lambda s: strip_accents(s.replace("'", "")),
    lambda s: s.replace(" ", "  ", 1),
    lambda s: _abbreviate(s) + ".",
)

_POSTCODE_NOISE: tuple[Callable[[str], str], ...] = (
    lambda s: s.replace(" ", ""),
    str.lower,
    lambda s: s.replace(" ", "  "),
    lambda s: " " + s,
    lambda s: s.lower().replace(" ", ""),
)


def _noise(variants: tuple[Callable[[str], str], ...]) -> Callable[[str, int], str]:
    """Case / spacing / punctuation noise: the first variant, cyclically from ``v``, that
    changes the string."""

    def go(s: str, v: int) -> str:
        for j in range(len(variants)):
            out = variants[(v + j) % len(variants)](s)
            if out != s:
                return out
        return s

    return go


def postcode_typo(s: str, v: int) -> str:
    """A slip typing a postcode: neighbouring key, transposed inward letters, or a dropped
    character."""
    op = v % 4
    if op == 0 and len(s) >= 2 and s[-1] != s[-2]:
        return s[:-2] + s[-1] + s[-2]
    if op == 1 and len(s) > 1:
        return s[:-1] if v % 8 < 4 else s[1:]
    return keyboard_typo(s, v // 4)


_TITLES = (("Mr ", "Mr. ", "MR ", "Dr "), ("Mrs ", "Ms ", "Miss ", "Mrs. ", "Dr "), ("Mx ", "Dr "))


def _title(s: str, v: int) -> str:
    titles = _TITLES[v % 3]
    return titles[(v // 3) % len(titles)] + s


# --------------------------------------------------------------------------------------------
# Dictionary-coded string column


class _Column:
    """A string column as codes into a growing table of strings (-1 = missing)."""

    def __init__(self, base: pa.Array, codes: np.ndarray) -> None:
        self.base = base.cast(pa.string())
        self.extra: list[str] = []
        self.codes = np.array(codes, dtype=np.int64)  # own copy: columns may share codes

    def _strings(self, codes: np.ndarray) -> list[str]:
        nb = len(self.base)
        out: list[str] = [""] * codes.size
        in_base = np.flatnonzero(codes < nb)
        for i, s in zip(in_base.tolist(), self.base.take(_idx(codes[in_base])).to_pylist(),
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
        key = codes * _VAR + variants
        ukey, inverse = np.unique(key, return_inverse=True)
        ucodes = ukey // _VAR
        strings = self._strings(ucodes)
        new = [fn(s, int(v)) for s, v in zip(strings, (ukey % _VAR).tolist(), strict=True)]
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
        return table.take(_idx(codes, codes < 0))


# --------------------------------------------------------------------------------------------
# Population


@dataclass
class _Population:
    n: int
    person_id: pa.Array
    sex: np.ndarray  # int8: 0 M, 1 F, 2 U
    dob: np.ndarray  # int32 days since 1970-01-01
    given: np.ndarray
    family: np.ndarray
    household: np.ndarray
    nhs: np.ndarray
    n_households: int
    hh_address: pa.Array
    hh_postcode: pa.Array
    hh_town: np.ndarray


def _weighted(rng: np.random.Generator, cands: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    p = w[cands] / w[cands].sum()
    return cands[rng.choice(cands.size, size=k, p=p)]


def _population(rng: np.random.Generator, n: int, t: _Tables) -> _Population:
    # households and streets
    sizes = np.empty(0, dtype=np.int64)
    while sizes.sum() < n:
        more = rng.choice(np.arange(1, 7), size=n // 2 + 8, p=np.array(HOUSEHOLD_SIZES))
        sizes = np.concatenate([sizes, more])
    cum = np.cumsum(sizes)
    n_hh = int(np.searchsorted(cum, n)) + 1
    sizes = sizes[:n_hh].copy()
    sizes[-1] -= int(cum[n_hh - 1]) - n
    household = np.repeat(np.arange(n_hh, dtype=np.int64), sizes)

    n_streets = max(1, n_hh // HOUSEHOLDS_PER_STREET)
    st_town = rng.choice(len(t.town), size=n_streets, p=t.town_weight / t.town_weight.sum())
    st_district = 1 + (rng.random(n_streets) * t.town_districts[st_town]).astype(np.int64)
    st_sector = rng.integers(0, 10, n_streets)
    st_name = rng.integers(0, len(t.streets), n_streets)
    st_unit0 = rng.integers(0, len(INWARD_LETTERS) ** 2, n_streets)
    hh_street = rng.integers(0, n_streets, n_hh)
    order = np.argsort(hh_street, kind="stable")
    starts = np.searchsorted(hh_street[order], np.arange(n_streets))
    rank = np.empty(n_hh, dtype=np.int64)
    rank[order] = np.arange(n_hh) - starts[hh_street[order]]
    number = rank + 1
    unit = (st_unit0[hh_street] + rank // HOUSES_PER_UNIT) % len(INWARD_LETTERS) ** 2
    letters = pa.array([a + b for a in INWARD_LETTERS for b in INWARD_LETTERS])
    areas = pa.array(t.town_area)
    st = hh_street
    hh_postcode = _join(
        areas.take(_idx(st_town[st])),
        pa.array(st_district[st]).cast(pa.string()),
        pa.scalar(" "),
        pa.array(st_sector[st]).cast(pa.string()),
        letters.take(_idx(unit)),
        "",
    )
    hh_address = _join(
        pa.array(number).cast(pa.string()),
        pa.array(t.streets).take(_idx(st_name[st])),
        " ",
    )
    hh_town = st_town[st].astype(np.int64)

    # sex and age
    sex = rng.choice(3, size=n, p=np.array(SEX_SHARES)).astype(np.int8)
    bands = np.array(AGE_BANDS) / sum(AGE_BANDS)
    age_days = (rng.choice(len(bands), size=n, p=bands) * 5 + rng.random(n) * 5) * 365.2425
    ref = int(np.datetime64(REFERENCE_DATE, "D").astype(np.int64))
    dob = (ref - 1 - np.floor(age_days)).astype(np.int32)

    # surnames: household surname, shared by most members
    all_s = np.flatnonzero(t.surname_weight > 0)
    hh_family = _weighted(rng, all_s, t.surname_weight, n_hh)
    own = _weighted(rng, all_s, t.surname_weight, n)
    family = np.where(rng.random(n) < SHARE_HOUSEHOLD_SURNAME, hh_family[household], own)
    family = np.where(sex == 1, t.feminine[family], family)

    # given names: culture of the surname (mostly), and sex
    origin = t.surname_origin[family]
    matched = rng.random(n) < MATCH_NAME_ORIGIN
    group = np.where(matched, origin, len(t.origins))  # len(origins) = any culture
    given = np.empty(n, dtype=np.int64)
    gorigin = t.given_origin
    for gi in range(len(t.origins) + 1):
        if gi < len(t.origins):
            allowed = GIVEN_ORIGINS.get(t.origins[gi], (t.origins[gi],))
            omask = np.isin(gorigin, [t.origins.index(o) for o in allowed if o in t.origins])
        else:
            omask = np.ones(gorigin.size, dtype=bool)
        for sx in range(3):
            who = np.flatnonzero((group == gi) & (sex == sx))
            if who.size == 0:
                continue
            smask = (t.given_sex == sx) | (t.given_sex == 2) if sx < 2 else np.ones_like(omask)
            cands = np.flatnonzero(omask & smask)
            if cands.size == 0:
                cands = np.flatnonzero(smask)
            w = t.given_weight * np.where(t.given_sex == 2, 0.5, 1.0)  # unisex: half to each
            given[who] = _weighted(rng, cands, w, who.size)

    nhs = _nhs_numbers(rng, n)
    person_id = _ascii_rows(_digits(_unique_ints(rng, n, 2**60), 15, 16))
    return _Population(n, person_id, sex, dob, given, family, household, nhs, n_hh, hh_address,
                       hh_postcode, hh_town)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Parties and corruption


@dataclass(frozen=True)
class _Party:
    name: str
    columns: dict[str, str]  # field -> column name (fields the party holds)
    record_id: str
    date_format: str
    sex_coding: str
    nhs_format: str
    overlap: float


def _parties(rng: np.random.Generator, k: int, overlap: float) -> list[_Party]:
    jitter = rng.uniform(-OVERLAP_JITTER, OVERLAP_JITTER, k)
    out = []
    for i in range(k):
        vocab = VOCABULARIES[i % len(VOCABULARIES)]
        casing = CASINGS[(i // len(VOCABULARIES)) % len(CASINGS)]
        cols = {f: _column_name(c, casing) for f, c in zip(FIELDS, vocab, strict=True) if c}
        out.append(
            _Party(
                name=PARTY_NAMES[i],
                columns=cols,
                record_id=_column_name(("record_id", "id", "ref", "client_id")[i % 4], casing),
                date_format=DATE_FORMATS[(3 * i) % len(DATE_FORMATS)],
                sex_coding=tuple(SEX_CODINGS)[i % len(SEX_CODINGS)],
                nhs_format=("plain", "spaced")[(i // 2) % 2],
                overlap=float(np.clip(overlap + jitter[i], 0.0, 1.0)),
            )
        )
    return out


class _Log:
    """Per-record bit set of the corruptions applied (kind:field)."""

    def __init__(self, n: int) -> None:
        self.bits = np.zeros(n, dtype=np.uint64)
        self.names: list[str] = []

    def mark(self, rows: np.ndarray, kind: str, fld: str) -> None:
        name = f"{kind}:{fld}"
        if name not in self.names:
            self.names.append(name)
        self.bits[rows] |= np.uint64(1 << self.names.index(name))

    def strings(self, sl: slice) -> pa.Array:
        bits = self.bits[sl]
        ubits, inverse = np.unique(bits, return_inverse=True)
        labels = [
            ";".join(nm for j, nm in enumerate(self.names) if int(b) >> j & 1)
            for b in ubits.tolist()
        ]
        return pa.array(labels, pa.string()).take(_idx(inverse))


def _pick(rng: np.random.Generator, rows: np.ndarray, rate: float) -> np.ndarray:
    if rate <= 0 or rows.size == 0:
        return rows[:0]
    return rows[rng.random(rows.size) < rate]


def _dob_parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    year = y.astype(np.int64) + 1970
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def _make_date(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since epoch; days past the end of a month roll over into the next."""
    m = (year - 1970) * 12 + (month - 1)
    return (m.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + day - 1).astype(
        np.int32
    )


@dataclass
class _Records:
    """All parties' records after corruption (row order: party by party)."""

    strings: dict[str, _Column]  # given, family, address, town, postcode
    dob: np.ndarray
    sex: np.ndarray
    nhs: np.ndarray
    nulls: dict[str, np.ndarray]


def _corrupt(
    rng: np.random.Generator,
    level: str,
    pop: _Population,
    t: _Tables,
    person: np.ndarray,
    party_of: np.ndarray,
    parties: list[_Party],
    log: _Log,
) -> _Records:
    n = person.size
    rate = {k: v[level] for k, v in RATES.items()}
    every = np.arange(n, dtype=np.int64)

    def var(k: int) -> np.ndarray:
        return rng.integers(0, _VAR, k, dtype=np.int64)

    given = _Column(pa.array(t.given), pop.given[person])
    family = _Column(pa.array(t.surname), pop.family[person])
    hh = pop.household[person]
    address = _Column(pop.hh_address, hh)
    postcode = _Column(pop.hh_postcode, hh)
    town = _Column(pa.array(t.town), pop.hh_town[hh])
    dob = pop.dob[person].copy()
    sex = pop.sex[person].copy()
    nhs = pop.nhs[person].copy()

    # --- value changes
    ref = int(np.datetime64(REFERENCE_DATE, "D").astype(np.int64))
    adult_women = every[(sex == 1) & (dob <= ref - 18 * 365.25)]
    rows = _pick(rng, adult_women, rate["surname_change"])
    if rows.size:
        all_s = np.flatnonzero(t.surname_weight > 0)
        other = _weighted(rng, all_s, t.surname_weight, rows.size)
        barrel = rng.random(rows.size) < 0.2
        family.set(rows[~barrel], other[~barrel])
        family.transform(rows[barrel], lambda s, v: f"{s}-{t.surname[v]}", other[barrel])
        log.mark(rows, "surname_change", "family")

    nick_idx = np.array([bool(t.nicknames.get(g)) for g in t.given], dtype=bool)
    rows = _pick(rng, every[nick_idx[given.codes]], rate["nickname"])
    if rows.size:
        nick = t.nicknames
        given.transform(rows, lambda s, v: nick[s][v % len(nick[s])], var(rows.size))
        log.mark(rows, "nickname", "given")

    rows = _pick(rng, every, rate["moved"])
    if rows.size:
        new_hh = rng.integers(0, pop.n_households, rows.size)
        address.set(rows, new_hh)
        postcode.set(rows, new_hh)
        town.set(rows, pop.hh_town[new_hh])
        log.mark(rows, "moved", "address")

    year, month, day = _dob_parts(dob)
    rows = _pick(rng, every[(day <= 12) & (day != month)], rate["dob_swap"])
    dob[rows] = _make_date(year[rows], day[rows], month[rows])
    log.mark(rows, "dob_swap", "dob")
    rows = _pick(rng, every, rate["dob_typo"])
    if rows.size:
        year, month, day = _dob_parts(dob[rows])
        op = rng.integers(0, 4, rows.size)
        step = np.where(rng.random(rows.size) < 0.5, -1, 1)
        year = np.where(op == 0, year + step, np.where(op == 1, year + 10 * step, year))
        day = np.where(op >= 2, day + step, day)
        new = _make_date(year, month, day)
        new = np.where(new >= ref, dob[rows] - 1, new)
        dob[rows] = new
        log.mark(rows, "dob_typo", "dob")
    rows = _pick(rng, every, rate["sex_error"])
    sex[rows] = np.where(rng.random(rows.size) < 0.8, 1 - np.minimum(sex[rows], 1), 2)
    log.mark(rows, "sex_error", "sex")

    # --- spelling errors
    for fld, col in (("given", given), ("family", family)):
        rows = _pick(rng, every, rate["phonetic"])
        log.mark(col.transform(rows, phonetic_misspelling, var(rows.size)), "phonetic", fld)
    for fld, col in (("given", given), ("family", family), ("address", address)):
        rows = _pick(rng, every, rate["keyboard_typo"])
        log.mark(col.transform(rows, keyboard_typo, var(rows.size)), "keyboard_typo", fld)
    for fld, col in (("given", given), ("family", family), ("address", address),
                     ("postcode", postcode)):  # fmt: skip
        rows = _pick(rng, every, rate["ocr_typo"])
        log.mark(col.transform(rows, ocr_typo, var(rows.size)), "ocr_typo", fld)
    rows = _pick(rng, every, rate["postcode_typo"])
    log.mark(postcode.transform(rows, postcode_typo, var(rows.size)), "postcode_typo", "postcode")
    rows = _pick(rng, every, rate["nhs_typo"])
    if rows.size:
        pos = rng.integers(0, 10, rows.size)
        digits = (nhs[rows, None] // 10 ** np.arange(9, -1, -1)) % 10
        swap = (rng.random(rows.size) < 0.5) & (pos < 9)
        r = np.arange(rows.size)
        a, b = digits[r, pos].copy(), digits[r, np.minimum(pos + 1, 9)].copy()
        digits[r[swap], pos[swap]] = b[swap]
        digits[r[swap], pos[swap] + 1] = a[swap]
        sub = ~swap
        digits[r[sub], pos[sub]] = (a[sub] + rng.integers(1, 10, int(sub.sum()))) % 10
        new = (digits * 10 ** np.arange(9, -1, -1)).sum(axis=1)
        changed = new != nhs[rows]
        nhs[rows] = new
        log.mark(rows[changed], "nhs_typo", "nhs")

    # --- presentation noise
    rows = _pick(rng, every, rate["title_prefix"])
    log.mark(given.transform(rows, _title, sex[rows] + 3 * rng.integers(0, 8, rows.size)),
             "title_prefix", "given")  # fmt: skip
    for fld, col, fn in (
        ("given", given, _NAME_NOISE),
        ("family", family, _NAME_NOISE),
        ("address", address, _ADDRESS_NOISE),
        ("postcode", postcode, _POSTCODE_NOISE),
    ):
        rows = _pick(rng, every, rate["format_noise"])
        log.mark(col.transform(rows, _noise(fn), var(rows.size) % 64), "format_noise", fld)

    # --- missing values
    nulls: dict[str, np.ndarray] = {}
    for fld in FIELDS:
        if fld == "nhs":
            is_health = np.array([p.name in HEALTH_PARTIES for p in parties], dtype=bool)
            r = np.where(is_health[party_of], rate["missing"], rate["nhs_missing"])
            rows = every[rng.random(n) < r] if r.max() > 0 else every[:0]
        else:
            rows = _pick(rng, every, rate["missing"])
        nulls[fld] = np.zeros(n, dtype=bool)
        nulls[fld][rows] = True
        log.mark(rows, "missing", fld)
    for fld, col in (("given", given), ("family", family), ("address", address),
                     ("town", town), ("postcode", postcode)):  # fmt: skip
        col.set(np.flatnonzero(nulls[fld]), -1)
    strings = {"given": given, "family": family, "address": address, "town": town,
               "postcode": postcode}  # fmt: skip
    return _Records(strings, dob, sex, nhs, nulls)


def _nhs_strings(nhs: np.ndarray, null: np.ndarray, fmt: str) -> pa.Array:
    d = _digits(nhs, 10)
    if fmt == "spaced":
        sp = np.full((d.shape[0], 1), ord(" "), dtype=np.uint8)
        d = np.hstack([d[:, :3], sp, d[:, 3:6], sp, d[:, 6:]])
    return _ascii_rows(d, null)


# --------------------------------------------------------------------------------------------
# Entry point


def _validate(people: object, parties: object, overlap: object, duplicates: object,
              corruption: object, seed: object, fmt: object) -> None:  # fmt: skip
    def is_int(x: object) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    def is_num(x: object) -> bool:
        return (is_int(x) or isinstance(x, float)) and math.isfinite(float(x))  # type: ignore[arg-type]

    if not is_int(people) or int(people) < 1:  # type: ignore[call-overload]
        raise SynthError(f"people must be an integer >= 1, got {people!r}")
    if not is_int(parties) or not 1 <= int(parties) <= len(PARTY_NAMES):  # type: ignore[call-overload]
        raise SynthError(
            f"parties must be an integer from 1 to {len(PARTY_NAMES)}, got {parties!r}"
        )
    if not is_num(overlap) or not 0.0 <= float(overlap) <= 1.0:  # type: ignore[arg-type]
        raise SynthError(f"overlap must be a number from 0 to 1, got {overlap!r}")
    if not is_num(duplicates) or not 0.0 <= float(duplicates) <= 1.0:  # type: ignore[arg-type]
        raise SynthError(f"duplicates must be a number from 0 to 1, got {duplicates!r}")
    if corruption not in CORRUPTION_LEVELS:
        raise SynthError(
            f"corruption must be one of {', '.join(CORRUPTION_LEVELS)}, got {corruption!r}"
        )
    if not is_int(seed) or int(seed) < 0:  # type: ignore[call-overload]
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    if fmt not in ("csv", "parquet"):
        raise SynthError(f"format must be 'csv' or 'parquet', got {fmt!r}")


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SynthError(f"{out_dir} exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise SynthError(f"{out_dir} is not empty (pass overwrite=True to replace earlier output)")
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
        ours = manifest.get("generator") == "linkage.synth"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise SynthError(f"{out_dir} is not empty and holds no linkage synth output; not replacing")


def synth(
    out_dir: str | os.PathLike[str],
    people: int,
    parties: int,
    *,
    overlap: float = 0.7,
    duplicates: float = 0.02,
    corruption: str = "medium",
    seed: int = 0,
    fmt: str = "csv",
    progress: ProgressFn | None = None,
    corruption_log: bool = False,
    overwrite: bool = False,
) -> SynthSummary:
    """Write a synthetic population's partner extracts and ground truth to ``out_dir``.

    Files: ``<party>.csv`` (or ``.parquet``) per party, ``truth.csv`` (party, record_id,
    person_id), ``manifest.json`` and, with ``corruption_log``, ``corruptions.csv`` (party,
    record_id, corruptions as ``kind:field`` joined by ``;``). Output is written to a temporary
    directory beside ``out_dir`` and renamed into place at the end. ``out_dir`` must not exist or
    be empty, unless ``overwrite`` and it holds earlier synth output. ``progress(stage, fraction)``
    is called as work proceeds. Same arguments, same bytes.
    """
    _validate(people, parties, overlap, duplicates, corruption, seed, fmt)
    people, parties, seed = int(people), int(parties), int(seed)
    out = Path(out_dir)
    _prepare_out(out, overwrite)

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    t = _tables()
    ss = np.random.SeedSequence([seed, 0x5E17])
    rng_pop, rng_party, rng_corrupt, rng_ids = (np.random.default_rng(s) for s in ss.spawn(4))
    report("population", 0.0)
    pop = _population(rng_pop, people, t)
    report("population", 0.3)

    plist = _parties(rng_party, parties, float(overlap))
    persons, party_of, counts = [], [], []
    for j, p in enumerate(plist):
        k = round(p.overlap * people)
        chosen = rng_party.choice(people, size=k, replace=False) if k else np.empty(0, np.int64)
        n_dup = int(rng_party.binomial(k, float(duplicates))) if k else 0
        dups = rng_party.choice(chosen, size=n_dup, replace=False) if n_dup else chosen[:0]
        order = rng_party.permutation(np.concatenate([chosen, dups]))
        persons.append(order.astype(np.int64))
        party_of.append(np.full(order.size, j, dtype=np.int64))
        counts.append((order.size, k, n_dup))
    person = np.concatenate(persons)  # persons behind the records, party by party
    party_idx = np.concatenate(party_of)
    bounds = np.concatenate([[0], np.cumsum([c[0] for c in counts])]).astype(np.int64)
    report("corruption", 0.35)

    log = _Log(person.size)
    rec = _corrupt(rng_corrupt, corruption, pop, t, person, party_idx, plist, log)
    nulls = rec.nulls
    report("writing", 0.6)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        summaries, manifest_parties, truth_parts = [], [], []
        ext = "csv" if fmt == "csv" else "parquet"
        for j, p in enumerate(plist):
            sl = slice(int(bounds[j]), int(bounds[j + 1]))
            n_rec = sl.stop - sl.start
            ids = _record_ids(rng_ids, n_rec, ID_STYLES[j % len(ID_STYLES)])
            cols: dict[str, pa.Array] = {p.record_id: ids}
            for fld, name in p.columns.items():
                if fld == "dob":
                    days = pa.array(rec.dob[sl], type=pa.date32(), mask=nulls["dob"][sl])
                    arr: pa.Array = pc.strftime(days, format=p.date_format)
                elif fld == "sex":
                    coding = pa.array(SEX_CODINGS[p.sex_coding])
                    arr = coding.take(_idx(rec.sex[sl], nulls["sex"][sl]))
                elif fld == "nhs":
                    arr = _nhs_strings(rec.nhs[sl], nulls["nhs"][sl], p.nhs_format)
                else:
                    arr = rec.strings[fld].to_arrow(sl)
                cols[name] = arr
            _write(pa.table(cols), tmp / f"{p.name}.{ext}", fmt)
            truth_parts.append(
                pa.table({
                    "party": pa.array([p.name]).take(_idx(np.zeros(n_rec, np.int64))),
                    "record_id": ids,
                    "person_id": pop.person_id.take(_idx(person[sl])),
                })
            )  # fmt: skip
            if corruption_log:
                pacsv.write_csv(
                    pa.table({"party": truth_parts[-1]["party"], "record_id": ids,
                              "corruptions": log.strings(sl)}),
                    tmp / f".corruptions-{j:02d}.csv",
                )  # fmt: skip
            n_rec, k, n_dup = counts[j]
            summaries.append(PartySummary(p.name, out / f"{p.name}.{ext}", n_rec, k, n_dup))
            manifest_parties.append({
                "name": p.name,
                "file": f"{p.name}.{ext}",
                "records": n_rec,
                "persons": k,
                "duplicates": n_dup,
                "overlap": round(p.overlap, 6),
                "record_id_column": p.record_id,
                "columns": p.columns,
                "date_format": p.date_format,
                "sex_coding": dict(zip(("M", "F", "U"), SEX_CODINGS[p.sex_coding], strict=True)),
                "nhs_format": p.nhs_format if "nhs" in p.columns else None,
            })  # fmt: skip
            report("writing", 0.6 + 0.35 * (j + 1) / len(plist))
        pacsv.write_csv(pa.concat_tables(truth_parts), tmp / "truth.csv")
        if corruption_log:
            parts = sorted(tmp.glob(".corruptions-*.csv"))
            with open(tmp / "corruptions.csv", "wb") as dst:
                for i, part in enumerate(parts):
                    data = part.read_bytes()
                    dst.write(data if i == 0 else data.split(b"\n", 1)[1])
                    part.unlink()
        manifest = {
            "generator": "linkage.synth",
            "version": 1,
            "seed": seed,
            "people": people,
            "households": pop.n_households,
            "overlap": float(overlap),
            "duplicates": float(duplicates),
            "corruption": corruption,
            "rates": {k: v[corruption] for k, v in RATES.items()},
            "reference_date": REFERENCE_DATE,
            "format": fmt,
            "fields": list(FIELDS),
            "parties": manifest_parties,
            "records": int(bounds[-1]),
            "truth": "truth.csv",
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        (tmp / "manifest.json").write_text(text, encoding="utf-8")
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report("done", 1.0)
    return SynthSummary(out, people, pop.n_households, tuple(summaries), out / "truth.csv",
                        out / "manifest.json")  # fmt: skip


def _install(tmp: Path, out: Path) -> None:
    """Move the finished temporary directory to ``out`` (replacing earlier synth output)."""
    os.chmod(tmp, 0o755)
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
