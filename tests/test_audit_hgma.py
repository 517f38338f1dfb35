"""Homomorphism-based graph matching in the audit (``lab/audit/hgma.py``): the tuples of
near-duplicate records survive diffusion, the bound counts exactly the records in them, and
the colour-refinement matcher finds what structure tells apart."""

from __future__ import annotations

import numpy as np

import linkage
from linkage.lab.audit import hgma
from linkage.lab.audit.plaintext import Plain
from linkage.lab.audit.scenario import synthetic_scenario
from linkage.schema_template import uk_person_template


def _graph(n: int, edges: list[tuple[int, int]]) -> list[set[int]]:
    nb: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        nb[a].add(b)
        nb[b].add(a)
    return nb


def test_refinement_finds_the_structurally_unique_node() -> None:
    # a star (centre 0), a triangle and an edge; node 9 isolated
    g = _graph(10, [(0, 1), (0, 2), (0, 3), (4, 5), (5, 6), (4, 6), (7, 8)])
    for rounds in (1, 2, 3):
        guess = hgma.wl_match(g, g, rounds, seed=0)
        assert guess[0] == 0  # the only node of degree 3
        assert guess[9] == -1  # not in the graph: no guess
        # leaves, triangle and edge nodes are guessed within their own kind only
        assert set(guess[1:4]) == {1, 2, 3} and set(guess[4:7]) == {4, 5, 6}
        assert set(guess[7:9]) == {7, 8}


def test_duplicates_are_exposed_through_diffusion() -> None:
    s = linkage.Schema.from_dict(uk_person_template())  # diffusion, 8 taps
    sc = synthetic_scenario(s, 40, seed=3)
    vals = {k: v.copy() for k, v in sc.truth.values.items()}
    f = sc.filters.copy()
    for dst, src in ((1, 0), (3, 2)):  # two records each recorded twice, identically
        for v in vals.values():
            v[dst] = v[src]
        f[dst] = f[src]
    plain = Plain(vals, sc.truth.n)
    r = hgma.run(s, f, plain, seed=0, sample=40)
    assert r.name == "hgma" and r.records == 40 and r.precision is None
    # pairs (0,1), (2,3) and the four (0,1,2,3) cancel exactly; nothing else in a clean sample
    assert r.metrics["tau2_tuples_2"] == 2 and r.metrics["tau2_tuples_4"] == 1
    assert r.metrics["tau2_relations_recovered"] == 1.0
    assert r.metrics["tau2_records_in_tuples_both_sides_find"] == 4 / 40
    # the four form one clique of twins (every relation of weight 0): one orbit, so no
    # matcher gets more than one of them right in expectation
    assert r.right == 1 and r.reidentified == 1 / 40
    assert r.counts == (1, 40)


def test_twin_classes() -> None:
    g = _graph(7, [(0, 1), (0, 2), (0, 3), (4, 5)])  # star 0-{1,2,3}; edge 4-5; 6 alone
    assert hgma.twin_classes(g, np.arange(7)) == 4  # {0}, {1,2,3} open twins, {4,5}, {6}
    assert hgma.twin_classes(g, np.array([0, 1])) == 2
    assert hgma.twin_classes(g, np.zeros(0, np.int64)) == 0


def test_audit_runs_it_on_an_extract_with_duplicates() -> None:
    r = linkage.audit(uk_person_template(), people=120, attacks="hgma", seed=0)
    a = r.attack("hgma")
    assert [x.name for x in r.attacks] == ["hgma"]
    assert "mode (b)" in a.note and "upper bound" in a.note
    assert 0.0 <= a.reidentified <= a.metrics["tau4_records_in_tuples_both_sides_find"] + 1e-12
    assert {"tau2_tuples_4", "tau4_matched_by_refinement"} <= set(a.metrics)
    assert "homomorphism" in r.worst_line()


def test_sample_option_is_checked_and_matches_the_library() -> None:
    import click
    import pytest

    from linkage.cli import main
    from linkage.errors import InputError

    opt = next(p for p in main.commands["audit"].params if p.name == "hgma_sample")
    assert isinstance(opt, click.Option) and opt.default == hgma.SAMPLE
    for bad in (9, 1001):
        with pytest.raises(InputError, match=r"--hgma-sample must be in 10\.\.1,000"):
            linkage.audit(uk_person_template(), people=60, attacks="hgma", hgma_sample=bad)
    r = linkage.audit(uk_person_template(), people=200, attacks="hgma", hgma_sample=30)
    assert r.attack("hgma").settings["sample"] <= 30


def test_result_does_not_depend_on_row_order() -> None:
    s = linkage.Schema.from_dict(uk_person_template())
    sc = synthetic_scenario(s, 200, seed=5, duplicates=0.2, corruption="medium")
    a = hgma.run(s, sc.filters, sc.truth, seed=0, sample=150)
    perm = np.random.default_rng(1).permutation(len(sc.filters))
    b = hgma.run(s, sc.filters[perm], sc.truth.take(perm), seed=0, sample=150)
    assert a.right == b.right and a.metrics == b.metrics
    assert a.metrics["tau4_tuples_2"] > 0  # the extract has duplicates to find


def test_orbits_merge_isomorphic_components() -> None:
    five_pairs = _graph(10, [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])
    assert hgma.orbit_bound(five_pairs, np.arange(10)) == 1  # any pair can be any other
    assert hgma.twin_classes(five_pairs, np.arange(10)) == 1  # pairs, then the pairs merge
    # every record recorded twice, each two duplicate pairs a 4-tuple (a tester's file, which
    # read 149 of 300 when merged once): within-pair and cross-pair edges differ in colour
    n = 40
    w = hgma._weighted(n, {**{(i, i + 1): 0 for i in range(0, n, 2)},
                           **{(i, i + 1, j, j + 1): 0 for i in range(0, n, 2)
                              for j in range(i + 2, n, 2)}})  # fmt: skip
    assert hgma.orbit_bound(w, np.arange(n)) == 1
    star = _graph(7, [(0, 1), (0, 2), (0, 3), (4, 5)])
    assert hgma.orbit_bound(star, np.arange(6)) == 3  # centre, leaves, the edge
    path = _graph(4, [(0, 1), (1, 2), (2, 3)])
    assert hgma.orbit_bound(path, np.arange(4)) == 2  # ends, middles
    assert hgma.orbit_bound(path, np.zeros(0, np.int64)) == 0


def test_pairs_are_searched_over_the_whole_file() -> None:
    """A file bigger than the tuple sample: its duplicate pairs are all found, not only those
    whose two records both fell in the sample (a tester's 380-record file read 0% on a sample
    of 120 and 1.8% whole)."""
    s = linkage.Schema.from_dict(uk_person_template())
    sc = synthetic_scenario(s, 300, seed=7, duplicates=0.2, corruption="medium")
    whole = hgma.run(s, sc.filters, sc.truth, seed=0, sample=len(sc.filters))
    small = hgma.run(s, sc.filters, sc.truth, seed=0, sample=40)
    assert small.metrics["tau2_pairs_in_file"] == whole.metrics["tau2_pairs_in_file"] > 5
    # the 3-4-tuple sample takes the records in near-duplicate pairs first (where tuples form)
    assert small.right == whole.right > 1


def test_too_few_records_are_skipped_not_cleared() -> None:
    s = linkage.Schema.from_dict(uk_person_template())
    sc = synthetic_scenario(s, 60, seed=1)
    r = hgma.run(s, sc.filters[:5], sc.truth.take(np.arange(5)), seed=0)
    assert r.reidentified is None and "skipped" in r.note


def test_two_people_with_the_same_change_form_a_quad_outside_the_sample() -> None:
    """a ^ b ^ c ^ d = 0 when two people are each recorded twice with the same change (here
    sex): found over the whole file from its near-duplicate pairs, even with a tiny sample."""
    from linkage.lab.audit.plaintext import pack, simulate_filters

    s = linkage.Schema.from_dict(uk_person_template())
    sc = synthetic_scenario(s, 60, seed=2)
    vals = {k: v.copy() for k, v in sc.truth.values.items()}
    sex = vals["sex"]
    j = next(i for i in range(2, 60) if sex[i] == sex[0])
    flip = {"M": "F", "F": "M"}
    for dst, src in ((1, 0), (3, j)):
        for v in vals.values():
            v[dst] = v[src]
        sex[dst] = flip.get(sex[src], "M")
    plain = Plain(vals, sc.truth.n)
    enc = pack(simulate_filters(plain, s, seed=9))  # an encoding under some key
    qp, qe = hgma._quads(
        hgma.token_matrix(s, plain), np.array([[0, 1], [3, j]]), enc, np.array([[0, 1], [3, j]]), 2
    )
    assert qp == {tuple(sorted((0, 1, 3, j))): 0} and qe == set(qp)
    r = hgma.run(s, enc, plain, seed=0, sample=10)
    assert r.metrics["tau2_pair_quads_found"] >= 1


def test_weights_break_symmetry_and_no_relation_means_no_bound() -> None:
    """An exact duplicate pair (weight 0) and a pair one token apart are not interchangeable
    for an attacker who reads the encodings' XOR weights: two orbits, not one."""
    w = hgma._weighted(4, {(0, 1): 0, (2, 3): 1})
    assert hgma.orbit_bound(w, np.arange(4)) == 2
    assert hgma.orbit_bound(hgma._weighted(4, {(0, 1): 1, (2, 3): 1}), np.arange(4)) == 1
    s = linkage.Schema.from_dict(uk_person_template())
    sc = synthetic_scenario(s, 30, seed=4)  # a clean population: no relation at all
    r = hgma.run(s, sc.filters, sc.truth, seed=0)
    assert r.right == 0 and r.reidentified == 0.0
