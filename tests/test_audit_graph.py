"""Graph matching at partial overlap (issue 11): on a clkhash-like CLK, Schäfer et al. (ACSAC
2024) re-identify 98.7% of records when the encoded file is half of the attacker's list. The
audit must reach at least half of that on a small file (it fell to 0.1% before its node
features were made to survive the file being part of the list)."""

from __future__ import annotations

import numpy as np
import pytest

import linkage
from linkage.lab.audit import graph
from linkage.lab.audit.plaintext import simulate_averaged, simulate_filters, unpack
from linkage.lab.audit.runner import graph_lists
from linkage.lab.audit.scenario import clkhash_like_schema, synthetic_scenario


def clk_like() -> dict:
    """clkhash-style record-level CLK (as benchmarks/bench_audit.py)."""
    return clkhash_like_schema()


def test_half_overlap_clk_reidentified() -> None:
    s = linkage.Schema.from_dict(clk_like())
    sc = synthetic_scenario(s, 1000, seed=5, reference_people=1001)
    rows, lst, ident = graph_lists(sc, 0.5, 1000, 5)
    a = simulate_filters(lst, s, seed=6)
    m = graph.match_graphs(unpack(sc.filters)[rows], a, pool_nodes=1000, seeds=50)
    lid = lst.identity()
    right = np.array([j >= 0 and lid[j] == t for j, t in zip(m, ident, strict=True)])
    assert right.mean() >= 0.5, right.mean()


def test_population_list_contains_the_sample() -> None:
    """``population`` lists: a random part of the file's own population holding the sample."""
    s = linkage.Schema.from_dict(clk_like())
    sc = synthetic_scenario(s, 400, seed=1, reference_people=10)
    rows, lst, ident = graph_lists(sc, 0.25, 1000, 2, "population")
    assert len(rows) == 100 and lst.n == 400
    assert set(ident) <= set(lst.identity())
    with pytest.raises(ValueError, match="kind"):
        graph_lists(sc, 0.5, 10, 2, "everyone")


def test_features_reject_unknown_mode() -> None:
    x = np.zeros((4, 64), bool)
    with pytest.raises(ValueError, match="mode"):
        graph.graph_features(x, x, "ranks")


def test_averaged_simulation_is_keys_side_by_side() -> None:
    s = linkage.Schema.from_dict(clk_like())
    sc = synthetic_scenario(s, 60, seed=2, reference_people=10)
    x = simulate_averaged(sc.truth, s, seed=3, keys=3)
    one = simulate_filters(sc.truth, s, seed=3)
    assert x.shape == (60, 3 * one.shape[1])
    assert np.array_equal(x[:, : one.shape[1]], one)  # first block: the seed's own key
    assert not np.array_equal(x[:, one.shape[1] : 2 * one.shape[1]], one)  # others differ
    assert np.array_equal(x, simulate_averaged(sc.truth, s, seed=3, keys=3))  # seeded
    with pytest.raises(ValueError, match="keys"):
        simulate_averaged(sc.truth, s, keys=0)
