"""The synthetic population: reference tables (``linkage/data``: names, streets, towns,
nicknames), people in households with addresses, postcodes, a UK-like age structure and valid
unique NHS numbers, and the partner extracts' layouts (:class:`Party`).

Rates and shares come from :mod:`linkage.lab.rates`. Deterministic given the generator.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa

from linkage.identifiers import NO_CHECK_DIGIT, digit_matrix, nhs_check_digit
from linkage.lab.columns import (
    ascii_rows,
    column_name,
    digit_rows,
    join_strings,
    take_index,
    unique_ints,
)
from linkage.lab.rates import (
    AGE_BANDS,
    CASINGS,
    DATE_FORMATS,
    FIELDS,
    GIVEN_ORIGINS,
    HOUSEHOLD_SIZES,
    HOUSEHOLDS_PER_STREET,
    HOUSES_PER_UNIT,
    INWARD_LETTERS,
    MATCH_NAME_ORIGIN,
    OVERLAP_JITTER,
    PARTY_NAMES,
    REFERENCE_DATE,
    SEX_CODINGS,
    SEX_SHARES,
    SHARE_HOUSEHOLD_SURNAME,
    VOCABULARIES,
)

__all__ = [
    "Party",
    "Population",
    "Tables",
    "draw_parties",
    "draw_population",
    "reference_tables",
    "weighted_choice",
]


@dataclass(frozen=True)
class Tables:
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


_TABLES: Tables | None = None


def reference_tables() -> Tables:
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
    _TABLES = Tables(
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


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct valid NHS numbers (int64), first digit 4, 6 or 7, in random order."""
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        want = int((n - out.size) * 1.15) + 16
        raw = rng.integers(0, 300_000_000, want, dtype=np.int64)
        body = np.where(raw < 100_000_000, 400_000_000 + raw, 500_000_000 + raw)
        check = nhs_check_digit(digit_matrix(body, 9))
        cand = np.concatenate([out, (body * 10 + check)[check != NO_CHECK_DIGIT]])
        _, first = np.unique(cand, return_index=True)
        out = cand[np.sort(first)]
    return out[:n]


@dataclass
class Population:
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


def weighted_choice(
    rng: np.random.Generator, cands: np.ndarray, w: np.ndarray, k: int
) -> np.ndarray:
    p = w[cands] / w[cands].sum()
    return cands[rng.choice(cands.size, size=k, p=p)]


def draw_population(rng: np.random.Generator, n: int, t: Tables) -> Population:
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
    hh_postcode = join_strings(
        areas.take(take_index(st_town[st])),
        pa.array(st_district[st]).cast(pa.string()),
        pa.scalar(" "),
        pa.array(st_sector[st]).cast(pa.string()),
        letters.take(take_index(unit)),
        "",
    )
    hh_address = join_strings(
        pa.array(number).cast(pa.string()),
        pa.array(t.streets).take(take_index(st_name[st])),
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
    hh_family = weighted_choice(rng, all_s, t.surname_weight, n_hh)
    own = weighted_choice(rng, all_s, t.surname_weight, n)
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
            given[who] = weighted_choice(rng, cands, w, who.size)

    nhs = _nhs_numbers(rng, n)
    person_id = ascii_rows(digit_rows(unique_ints(rng, n, 2**60), 15, 16))
    return Population(n, person_id, sex, dob, given, family, household, nhs, n_hh, hh_address,
                       hh_postcode, hh_town)  # fmt: skip


@dataclass(frozen=True)
class Party:
    name: str
    columns: dict[str, str]  # field -> column name (fields the party holds)
    record_id: str
    date_format: str
    sex_coding: str
    nhs_format: str
    overlap: float


def draw_parties(rng: np.random.Generator, k: int, overlap: float) -> list[Party]:
    jitter = rng.uniform(-OVERLAP_JITTER, OVERLAP_JITTER, k)
    out = []
    for i in range(k):
        vocab = VOCABULARIES[i % len(VOCABULARIES)]
        casing = CASINGS[(i // len(VOCABULARIES)) % len(CASINGS)]
        cols = {f: column_name(c, casing) for f, c in zip(FIELDS, vocab, strict=True) if c}
        out.append(
            Party(
                name=PARTY_NAMES[i],
                columns=cols,
                record_id=column_name(("record_id", "id", "ref", "client_id")[i % 4], casing),
                date_format=DATE_FORMATS[(3 * i) % len(DATE_FORMATS)],
                sex_coding=tuple(SEX_CODINGS)[i % len(SEX_CODINGS)],
                nhs_format=("plain", "spaced")[(i // 2) % 2],
                overlap=float(np.clip(overlap + jitter[i], 0.0, 1.0)),
            )
        )
    return out
