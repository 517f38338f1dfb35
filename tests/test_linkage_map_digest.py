"""The linkage map's record digests: the batched BLAKE2b kernel (linkage.kernels.blake2b)
equals hashlib's, and ``records.digests`` keeps its definition (BLAKE2b-128 of the filter
bytes, then the block keys as little-endian uint64), so maps made before it was vectorised
still see unchanged records as unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.encoded import EncodedTable, filters_to_arrow, make_meta
from linkage.kernels.blake2b import blake2b_batch, blake2b_reference
from linkage.tlu.linkage_map import records
from linkage.tlu.linkage_map.records import digests


@st.composite
def messages(draw):  # type: ignore[no-untyped-def]
    lens = draw(st.lists(st.integers(0, 40), min_size=0, max_size=12))
    fill = draw(st.sampled_from(["random", "zero", "one"]))
    total = int(sum(lens))
    if fill == "random":
        seed = draw(st.integers(0, 2**32 - 1))
        words = np.random.default_rng(seed).integers(0, 2**64, total, np.uint64, endpoint=False)
    else:
        words = np.full(total, 0 if fill == "zero" else 2**64 - 1, np.uint64)
    return words, np.r_[0, np.cumsum(lens)].astype(np.int64)


@given(messages(), st.sampled_from([1, 16, 33, 64]), st.booleans())
@settings(max_examples=60, deadline=None)
def test_blake2b_batch_equals_hashlib(case, size, parallel) -> None:  # type: ignore[no-untyped-def]
    words, offsets = case
    got = blake2b_batch(words, offsets, size, parallel=parallel)
    assert got.shape == (len(offsets) - 1, size)
    assert (got == blake2b_reference(words, offsets, size)).all()


def test_blake2b_known_answer() -> None:
    """The empty message (one all-zero final block) and one word, against hashlib."""
    empty = blake2b_batch(np.zeros(0, np.uint64), np.array([0, 0]), 64)[0].tobytes()
    assert empty == hashlib.blake2b(b"").digest()
    word = np.frombuffer(b"abcdefgh", "<u8")
    got = blake2b_batch(word, np.array([0, 1]), 16)[0].tobytes()
    assert got == hashlib.blake2b(b"abcdefgh", digest_size=16).digest()


def _table(n: int, with_keys: bool, seed: int) -> EncodedTable:
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 2**64, (n, 4), np.uint64, endpoint=False)
    cols = {"record_id": pa.array([f"r{i}" for i in range(n)]), "clk": filters_to_arrow(f)}
    if with_keys:
        lens = rng.integers(0, 5, n)
        keys = rng.integers(0, 2**64, int(lens.sum()), np.uint64, endpoint=False)
        offs = np.r_[0, np.cumsum(lens)].astype(np.int32)
        cols["block_keys"] = pa.ListArray.from_arrays(pa.array(offs), pa.array(keys))
    meta = make_meta(fingerprint="b" * 64, key_check="c" * 16, party="a", filter_length=256,
                     record_count=n)  # fmt: skip
    return EncodedTable(pa.table(cols), meta)


@pytest.mark.parametrize(
    ("batch", "small"),
    [(1 << 18, 20_000), (1 << 18, 0), (128, 64)],
    ids=["hashlib", "kernel", "both"],  # "both": slices of 128, the last (44) with hashlib
)
def test_digest_definition_is_stable(monkeypatch, batch: int, small: int) -> None:  # type: ignore[no-untyped-def]
    """Small batches are hashed with hashlib, larger ones with the kernel: same digests."""
    monkeypatch.setattr(records, "DIGEST_BATCH", batch)
    monkeypatch.setattr(records, "SMALL_DIGESTS", small)
    for with_keys in (True, False):
        enc = _table(300, with_keys, 3)
        raw = enc.filters.view(np.uint8).reshape(len(enc), -1)
        want = []
        keys = enc.table.column("block_keys").to_pylist() if with_keys else [[]] * len(enc)
        for i in range(len(enc)):
            h = hashlib.blake2b(raw[i].tobytes(), digest_size=16)
            h.update(np.array(keys[i], "<u8").tobytes())
            want.append(h.digest())
        assert digests(enc).tolist() == want
    assert len(digests(_table(0, True, 1))) == 0
