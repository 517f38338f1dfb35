"""Corruptions of the synthetic population: string transforms (keyboard, OCR and phonetic
misspellings, case / spacing / punctuation noise, titles, postcode slips), each a
deterministic function of (string, variant), and :func:`corrupt_records`, which applies every
kind at its rate (:data:`linkage.lab.rates.RATES`) to all parties' records and logs what
changed. docs/synth.md describes each kind.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from linkage.identifiers import digit_matrix
from linkage.lab.columns import VARIANTS, CodedColumn, take_index
from linkage.lab.population import Party, Population, Tables, weighted_choice
from linkage.lab.rates import FIELDS, HEALTH_PARTIES, RATES, REFERENCE_DATE

__all__ = [
    "CorruptionLog",
    "Records",
    "corrupt_records",
    "keyboard_typo",
    "ocr_typo",
    "phonetic_misspelling",
    "postcode_typo",
    "strip_accents",
]

# String corruptions: deterministic functions of (string, variant); variant in [0, VARIANTS).

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


class CorruptionLog:
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
        return pa.array(labels, pa.string()).take(take_index(inverse))


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
class Records:
    """All parties' records after corruption (row order: party by party)."""

    strings: dict[str, CodedColumn]  # given, family, address, town, postcode
    dob: np.ndarray
    sex: np.ndarray
    nhs: np.ndarray
    nulls: dict[str, np.ndarray]


def corrupt_records(
    rng: np.random.Generator,
    level: str,
    pop: Population,
    t: Tables,
    person: np.ndarray,
    party_of: np.ndarray,
    parties: list[Party],
    log: CorruptionLog,
) -> Records:
    n = person.size
    rate = {k: v[level] for k, v in RATES.items()}
    every = np.arange(n, dtype=np.int64)

    def var(k: int) -> np.ndarray:
        return rng.integers(0, VARIANTS, k, dtype=np.int64)

    given = CodedColumn(pa.array(t.given), pop.given[person])
    family = CodedColumn(pa.array(t.surname), pop.family[person])
    hh = pop.household[person]
    address = CodedColumn(pop.hh_address, hh)
    postcode = CodedColumn(pop.hh_postcode, hh)
    town = CodedColumn(pa.array(t.town), pop.hh_town[hh])
    dob = pop.dob[person].copy()
    sex = pop.sex[person].copy()
    nhs = pop.nhs[person].copy()

    # --- value changes
    ref = int(np.datetime64(REFERENCE_DATE, "D").astype(np.int64))
    adult_women = every[(sex == 1) & (dob <= ref - 18 * 365.25)]
    rows = _pick(rng, adult_women, rate["surname_change"])
    if rows.size:
        all_s = np.flatnonzero(t.surname_weight > 0)
        other = weighted_choice(rng, all_s, t.surname_weight, rows.size)
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
        digits = digit_matrix(nhs[rows], 10)
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
    return Records(strings, dob, sex, nhs, nulls)
