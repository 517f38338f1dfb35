"""Issue 10 item 16: oversized groups of look-alike records stay within memory.

20,000 identical records per party used 9.8 GB (every pair at Dice 1.0 held at once) and the
error told the user to lower a ``--batch-size`` that ``match`` does not have. The all-pairs
comparison now runs in chunks sized from a probe of the densest rows, each record keeps at
most ``--max-candidates`` pairs (its best; streamed, exact), and the out-of-memory message
names options of the command that ran.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import linkage.tlu.blocking as blocking
from linkage.tlu.blocking import PairPool, cap_pairs, exhaustive, generate


def _identical(n_per_party: int, parties: int = 2, words: int = 16) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    one = rng.integers(0, 2**63, words, dtype=np.uint64)
    filters = np.tile(one, (n_per_party * parties, 1))
    offsets = np.arange(parties + 1, dtype=np.int64) * n_per_party
    party = np.repeat(np.arange(parties, dtype=np.int32), n_per_party)
    return filters, offsets, party


def _run(filters: Any, offsets: Any, party: Any, **kw: Any) -> Any:
    warnings: list[str] = []
    pop = np.bitwise_count(filters).sum(axis=1).astype(np.int32)
    kw.setdefault("strategy", "none")
    dedupe = kw.pop("dedupe", False)
    cand = generate(filters, offsets, party, pop, 0.7, dedupe=dedupe, block_keys=None, seed=0,
                    parallel=False, warn=warnings.append, **kw)  # fmt: skip
    return cand, warnings


def _peak(n: int, dedupe: bool) -> tuple[int, Any, list[str]]:
    filters, offsets, party = _identical(n)
    tracemalloc.start()
    cand, warnings = _run(filters, offsets, party, dedupe=dedupe, max_candidates=10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, cand, warnings


@pytest.mark.parametrize("dedupe", [False, True])
def test_identical_records_stay_within_memory(monkeypatch: Any, dedupe: bool) -> None:
    monkeypatch.setattr(blocking, "CHUNK_PAIRS", 100_000)
    small, _, _ = _peak(500, dedupe)
    peak, cand, warnings = _peak(1500, dedupe)  # 2.25e6 cross pairs (+2.2e6 within), Dice 1
    assert peak < 1.5 * small, (peak, small)  # before: 9x (every pair held at once)
    deg = np.bincount(cand.left, minlength=3000) + np.bincount(cand.right, minlength=3000)
    assert len(cand.left) <= 10 * 3000
    assert deg.min() >= 10  # every record kept its 10 best
    assert any("--max-candidates" in w and "3000 record(s)" in w for w in warnings)
    assert cand.detail["capped_records"] == 3000


def _reference_cap(left: Any, right: Any, score: Any, rank: Any, k: int) -> set[tuple[int, int]]:
    keep = set()
    nodes = set(left.tolist()) | set(right.tolist())
    for u in nodes:
        inc = [e for e in range(len(left)) if u in (left[e], right[e])]
        other = [right[e] if left[e] == u else left[e] for e in inc]
        best = sorted(zip(inc, other, strict=True), key=lambda t: (-score[t[0]], rank[t[1]]))[:k]
        keep.update((int(left[e]), int(right[e])) for e, _ in best)
    return keep


@st.composite
def pair_sets(draw: Any) -> tuple[Any, Any, Any, Any, int]:
    n = draw(st.integers(2, 12))
    pairs = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
    pairs = sorted((min(a, b), max(a, b)) for a, b in pairs if a != b)
    pairs = sorted(set(pairs))
    left = np.array([p[0] for p in pairs], np.int64)
    right = np.array([p[1] for p in pairs], np.int64)
    score = np.array(draw(st.lists(st.sampled_from([0.7, 0.8, 1.0]), min_size=len(pairs),
                                   max_size=len(pairs))), np.float64)  # fmt: skip
    rank = np.array(draw(st.permutations(list(range(n)))), np.int64)
    return left, right, score, rank, draw(st.integers(1, 4))


@settings(max_examples=150, deadline=None)
@given(case=pair_sets(), split=st.integers(1, 5))
def test_streamed_cap_equals_the_cap_of_all_pairs(case: Any, split: int) -> None:
    left, right, score, rank, k = case
    want = _reference_cap(left, right, score, rank, k)
    got = cap_pairs(left, right, score, rank, k)
    assert {(int(a), int(b)) for a, b in zip(left[got], right[got], strict=True)} == want
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blocking, "CHUNK_PAIRS", 0)  # reduce after every chunk
        pool = PairPool(k, lambda: rank)
        for part in np.array_split(np.arange(len(left)), split):
            pool.add(left[part], right[part], score[part])
            pool.add(left[part], right[part], score[part])  # repeats (blocks overlap) merge
        pl, pr, _ = pool.result()
    assert {(int(a), int(b)) for a, b in zip(pl, pr, strict=True)} == want


@pytest.mark.parametrize("dedupe", [False, True])
def test_chunked_exhaustive_finds_the_same_pairs(monkeypatch: Any, dedupe: bool) -> None:
    rng = np.random.default_rng(4)
    base = rng.integers(0, 2**63, (40, 4), dtype=np.uint64)
    filters = base[rng.integers(0, 40, 900)]  # many near-duplicates
    filters[::7, 0] ^= np.uint64(0xFF)
    offsets = np.array([0, 400, 900], np.int64)
    full = exhaustive(filters, offsets, 0.8, dedupe, False)
    monkeypatch.setattr(blocking, "CHUNK_PAIRS", 3000)
    chunked = exhaustive(filters, offsets, 0.8, dedupe, False)
    key = lambda r: set(zip(r[0].tolist(), r[1].tolist(), r[2].tolist(), strict=True))  # noqa: E731
    assert key(full) == key(chunked) and len(full[0]) > 3000
    assert full[3] == chunked[3]


def test_cap_never_bites_on_ordinary_data() -> None:
    rng = np.random.default_rng(2)
    filters = rng.integers(0, 2**63, (600, 4), dtype=np.uint64)
    offsets = np.array([0, 300, 600], np.int64)
    party = np.repeat(np.arange(2, dtype=np.int32), 300)
    filters[300:] = filters[:300]  # one true match each
    capped, w1 = _run(filters, offsets, party, max_candidates=1)
    free, w2 = _run(filters, offsets, party, max_candidates=None)
    assert np.array_equal(capped.left, free.left) and not w1 and not w2


def test_out_of_memory_names_options_the_command_has(monkeypatch: Any, tmp_path: Any) -> None:
    from linkage.cli import main

    def boom(*a: Any, **k: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr("linkage.tlu.linker.match", boom)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    res = CliRunner().invoke(main, ["match", str(a), str(b), "-o", str(tmp_path / "l.parquet")])
    assert res.exit_code == 3
    assert "--max-candidates" in res.output and "--batch-size" not in res.output
    match_help = CliRunner().invoke(main, ["match", "--help"]).output
    assert "--max-candidates" in match_help


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=60),
    packed=st.booleans(),
)
def test_unique_pairs_keeps_the_first_of_each_pair_in_order(pairs: Any, packed: bool) -> None:
    left = np.array([p[0] for p in pairs], np.int64)
    right = np.array([p[1] for p in pairs], np.int64)
    firsts: dict[tuple[int, int], int] = {}
    for e, p in enumerate(pairs):
        firsts.setdefault(p, e)
    want = [firsts[p] for p in sorted(firsts)]
    with pytest.MonkeyPatch.context() as mp:
        if not packed:
            mp.setattr(blocking, "PACK_LIMIT", 0)  # the lexsort path of very large inputs
        got = blocking.unique_pairs(left, right)
    assert got.tolist() == want


def test_cap_ranks_only_the_pairs_of_records_over_the_cap(monkeypatch: Any) -> None:
    """The cap sorted every held pair (a lexsort of tens of millions at 1.6M records, issue 5):
    now only the pairs of records with more than k are ranked; the result is unchanged."""
    rng = np.random.default_rng(1)
    hub = np.zeros(150, np.int64)  # record 0: 150 pairs, over k = 100
    left = np.concatenate([hub, np.arange(1000, 21000, 2)])
    right = np.concatenate([np.arange(1, 151), np.arange(1001, 21001, 2)])
    score = rng.choice([0.6, 0.7, 0.9], len(left))
    rank = rng.permutation(21001).astype(np.int64)
    sizes: list[int] = []
    real = np.lexsort
    monkeypatch.setattr(np, "lexsort", lambda keys: sizes.append(len(keys[0])) or real(keys))
    got = cap_pairs(left, right, score, rank, 100)
    assert sizes == [150]  # was 2 * 10,150: every pair, from both ends
    want = _reference_cap(left[:150], right[:150], score[:150], rank, 100)
    kept = set(zip(left[got].tolist(), right[got].tolist(), strict=True))
    assert kept == want | set(zip(left[150:].tolist(), right[150:].tolist(), strict=True))
