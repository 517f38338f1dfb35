"""Frequency alignment (Christen, Ranbaduge, Vatsalan & Schnell, PAKDD 2017 family): rank the
encoded items by how many records share them, rank the reference's plaintext items the same
way, and align ranks where the frequencies stand out from their neighbours.

Applied to whole filters (identical filters = identical plaintext) and to keyed block keys:
the linkage unit sees which records share a key, even though it cannot invert the key, and
(Soundex of surname, year of birth) has a skewed, public distribution. The block-key parts
are recomputed on the attacker's plaintext from the public schema (:func:`block_strings`).

Applied also to each field's segment of a segmented file (``linkage.segments``; the layout is
in the file's public metadata): equal segments are equal field values (under any hardening
that is a deterministic function of the segment), so the linkage unit sees each field's
value-frequency distribution, a field-level Bloom filter's classic weakness (Kuzu et al.,
PETS 2011; Christen et al., PAKDD 2017). :func:`segment_items` gives the encoded side,
:func:`segment_values` the attacker's plaintext side (values as the partner hashed them).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from linkage.lab.audit.plaintext import SALT_SEP, Plain, field_units, salt_of
from linkage.lab.audit.plaintext import part_of as _part
from linkage.lab.audit.plaintext import soundex as soundex  # re-exported (tests, callers)


def block_strings(schema: Any, plain: Plain) -> dict[str, np.ndarray]:
    """Block key name -> object array of each record's key string (None: no key)."""
    out = {}
    for bk in schema.block_keys:
        col = np.full(plain.n, None, object)
        for i in range(plain.n):
            parts = [_part(p.transform, plain.values[p.field][i]) for p in bk.parts]
            if all(p is not None for p in parts):
                col[i] = "\x1f".join(parts)  # type: ignore[arg-type]
        out[bk.name] = col
    return out


def align(
    enc_items: Sequence[Hashable | None],
    ref_items: Sequence[str | None],
    *,
    top: int,
    min_gap: float,
) -> np.ndarray:
    """Guess each encoded item's plaintext by frequency rank: -> object array (None: none).

    Items are ranked by count on both sides (reference counts scaled to the encoded size);
    rank r is aligned when r < ``top`` and the item's count differs from both neighbours'
    by at least ``min_gap`` (relative) on both sides. Equal counts are ranked by the item's
    ``repr`` (not by row order: the guesses do not depend on the order of the records)."""
    e = _ranked(Counter(i for i in enc_items if i is not None), top + 1)
    r = _ranked(Counter(i for i in ref_items if i is not None), top + 1)

    def distinct(lst: list[tuple[Any, int]], k: int) -> bool:
        c = lst[k][1]
        for j in (k - 1, k + 1):
            if 0 <= j < len(lst) and abs(lst[j][1] - c) < min_gap * c:
                return False
        return c >= 2

    mapping = {}
    for k in range(min(top, len(e), len(r))):
        if distinct(e, k) and distinct(r, k):
            mapping[e[k][0]] = r[k][0]
    out = np.full(len(enc_items), None, object)
    for i, item in enumerate(enc_items):
        if item is not None:
            out[i] = mapping.get(item)
    return out


def _ranked(c: Counter[Any], k: int) -> list[tuple[Any, int]]:
    """The ``k`` commonest items with their counts; ties by ``repr`` of the item."""
    return heapq.nsmallest(k, c.items(), key=lambda kv: (-kv[1], repr(kv[0])))


def filter_items(x: np.ndarray) -> list[bytes]:
    """Each bool filter (row of ``x``) as a hashable item (identical filters, equal items)."""
    packed = np.packbits(x, axis=1)
    return [row.tobytes() for row in packed]


def block_key_items(keys: list[np.ndarray], names: list[str]) -> dict[str, list[int | None]]:
    """Split the encoded block-key lists into one item per record per block key. A record with
    all keys lists them in schema order; a key value seen at position j there belongs to
    block key j, which places the values of records that lack some keys too."""
    nk = len(names)
    owner: dict[int, int] = {}
    for row in keys:
        if len(row) == nk:
            for j, v in enumerate(row.tolist()):
                owner[v] = j
    return _placed(keys, names, owner)


def _placed(
    keys: list[np.ndarray], names: list[str], owner: dict[int, int]
) -> dict[str, list[int | None]]:
    """Each record's key values under the block key ``owner`` places them at."""
    out: dict[str, list[int | None]] = {nm: [None] * len(keys) for nm in names}
    for i, row in enumerate(keys):
        for v in row.tolist():
            pos = owner.get(v)
            if pos is not None:
                out[names[pos]][i] = v
    return out


def block_key_hypotheses(
    keys: list[np.ndarray], names: list[str]
) -> list[dict[str, list[int | None]]]:
    """:func:`block_key_items` when some record has every key; otherwise (a key absent from
    every record, e.g. no NHS numbers in a council's extract) the fullest records list
    ``m < len(names)`` keys and the attacker does not know which ones: one assignment per
    choice of the ``m`` present keys (in schema order), to be attacked each, worst case kept.
    Empty when no record has a key."""
    nk = len(names)
    full = max((len(r) for r in keys), default=0)
    if full == 0:
        return []
    if full >= nk:
        return [block_key_items(keys, names)]
    out = []
    for present in itertools.combinations(range(nk), full):
        owner: dict[int, int] = {}
        for row in keys:
            if len(row) == full:
                for j, v in zip(present, row.tolist(), strict=True):
                    owner[v] = j
        out.append(_placed(keys, names, owner))
    return out


def segment_items(filters: np.ndarray, start: int, bits: int) -> list[bytes | None]:
    """Each record's segment (bits ``start .. start + bits - 1`` of the (n, L/64) uint64
    ``filters``; both multiples of 64) as a hashable item; None for an empty segment (a
    missing value: the field set no bit)."""
    block = np.ascontiguousarray(filters[:, start // 64 : (start + bits) // 64], np.uint64)
    has = np.asarray(block.any(axis=1), bool)
    return [block[i].tobytes() if has[i] else None for i in range(len(block))]


def segment_values(schema: Any, field: str, plain: Plain) -> np.ndarray:
    """Each record's item for the segment of ``field``, as the partner hashed the field:
    the normalised value, or ``value + U+001E + salt`` for a field salted by another field
    (each (value, salt) pair is its own segment). Values with the same (salted) token set
    and bits per token write the same segment, so they share one item: the commonest of
    them (then the smallest). None: an empty segment (no value, no salt, or no tokens).
    -> object array of str or None."""
    f = schema.field(field)
    units, uor, ks = field_units(schema, f, plain)
    vals = plain.values[field]
    salts = salt_of(schema, f, plain)
    item: list[str] = [""] * len(units)
    count = np.bincount(uor[uor >= 0], minlength=len(units))
    for i in np.flatnonzero(uor >= 0):  # a unit is one (salt, value): any of its rows
        v = vals[i] if salts is None else f"{vals[i]}{SALT_SEP}{salts[i]}"
        item[int(uor[i])] = v
    canon: dict[tuple[frozenset[str], int], tuple[int, str]] = {}
    for u, (toks, k) in enumerate(zip(units, ks, strict=True)):
        key, cand = (frozenset(toks), k), (-int(count[u]), item[u])
        if key not in canon or cand < canon[key]:
            canon[key] = cand
    name = [canon[(frozenset(toks), k)][1] for toks, k in zip(units, ks, strict=True)]
    out = np.full(plain.n, None, object)
    for i in np.flatnonzero(uor >= 0):
        out[i] = name[int(uor[i])]
    return out


def value_of(guess: np.ndarray) -> np.ndarray:
    """Guessed segment items -> the guessed field values (a salted item without its salt)."""
    out = np.full(len(guess), None, object)
    for i, g in enumerate(guess):
        if g is not None:
            out[i] = str(g).split(SALT_SEP, 1)[0]
    return out
