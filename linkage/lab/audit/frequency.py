"""Frequency alignment (Christen, Ranbaduge, Vatsalan & Schnell, PAKDD 2017 family): rank the
encoded items by how many records share them, rank the reference's plaintext items the same
way, and align ranks where the frequencies stand out from their neighbours.

Applied to whole filters (identical filters = identical plaintext) and to keyed block keys:
the linkage unit sees which records share a key, even though it cannot invert the key, and
(Soundex of surname, year of birth) has a skewed, public distribution. The block-key parts
are recomputed on the attacker's plaintext from the public schema (:func:`block_strings`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from linkage.lab.audit.plaintext import Plain
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
    by at least ``min_gap`` (relative) on both sides."""
    ce = Counter(i for i in enc_items if i is not None)
    cr = Counter(i for i in ref_items if i is not None)
    e = ce.most_common(top + 1)
    r = cr.most_common(top + 1)

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
    out: dict[str, list[int | None]] = {nm: [None] * len(keys) for nm in names}
    for i, row in enumerate(keys):
        for v in row.tolist():
            pos = owner.get(v)
            if pos is not None:
                out[names[pos]][i] = v
    return out
