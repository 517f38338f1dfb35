"""Field hashers for the segmented layout (:mod:`linkage.segments`), partner side.

A field with a segment draws its token positions within ``segment.bits`` bits (the same
HMAC-SHA256 windows and rejection sampling as the whole-filter hashing, see
:mod:`linkage.partner.encoder`) and shifts them by ``segment.start``. Fields with one
``shared_key`` use one key, ``Secret.field_key(fingerprint, "shared:<key>")``: a token sets
the same offsets in each of their (equal) segments, so the linkage unit can compare them
crosswise (given name against surname). A field without a shared key keeps its own key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from linkage.schema import Field, Schema
from linkage.secret import Secret
from linkage.segments import Segment

__all__ = ["SegmentHasher", "field_hasher", "hash_key"]


class Hasher(Protocol):
    def positions(
        self, data: np.ndarray, offsets: np.ndarray, length: int, kmax: int
    ) -> np.ndarray: ...


class SegmentHasher:
    """Positions of a field's tokens inside its segment (the ``length`` asked for is ignored:
    the segment's length is used)."""

    def __init__(self, inner: Hasher, segment: Segment) -> None:
        self.inner = inner
        self.segment = segment

    def positions(
        self, data: np.ndarray, offsets: np.ndarray, length: int, kmax: int
    ) -> np.ndarray:
        """(n, kmax) uint32 positions in ``start .. start + bits - 1``."""
        out = self.inner.positions(data, offsets, self.segment.bits, kmax)
        out += np.uint32(self.segment.start)
        return out


def hash_key(schema: Schema, secret: Secret, field: Field) -> bytes:
    """The field's hashing key: its own, or its shared key group's with the segmented layout."""
    if schema.layout == "segments" and field.shared_key is not None:
        return secret.field_key(schema.fingerprint, "shared:" + field.shared_key)
    return secret.field_key(schema.fingerprint, field.name)


def field_hasher(
    schema: Schema,
    secret: Secret,
    field: Field,
    make: Callable[[bytes, bool], Any],
    parallel: bool,
) -> Any:
    """``make(key, parallel)``'s hasher for ``field``, confined to its segment if it has one."""
    inner = make(hash_key(schema, secret, field), parallel)
    for seg in schema.segments:
        if seg.field == field.name:
            return SegmentHasher(inner, seg)
    return inner
