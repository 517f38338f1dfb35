"""Field-aware scoring (issue 13): segment Dice kernel, levels, EM, prior, coherent
clustering, waterfall and the match flow with the segmented layout."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import InputError
from linkage.kernels.segments import segment_dice, segment_dice_numpy
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.segments import with_segments
from linkage.tlu.coherent import coherent_clusters
from linkage.tlu.linker import match
from linkage.tlu.scoring.em import fit_em, level_frequencies
from linkage.tlu.scoring.explain import waterfall, waterfall_text
from linkage.tlu.scoring.levels import FIELD_EDGES, field_levels, joint_levels, to_levels
from linkage.tlu.scoring.prior import possible_pairs, prior_from_session


@st.composite
def segment_cases(draw):  # type: ignore[no-untyped-def]
    widths = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    n = draw(st.integers(1, 7))
    kind = draw(st.sampled_from(["random", "zero", "one"]))
    w = sum(widths)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if kind == "zero":
        f = np.zeros((n, w), np.uint64)
    elif kind == "one":
        f = np.full((n, w), np.iinfo(np.uint64).max, np.uint64)
    else:
        f = rng.integers(0, 2**63, (n, w), dtype=np.uint64) & rng.integers(
            0, 2**63, (n, w), dtype=np.uint64
        )
        f[rng.random((n, w)) < 0.3] = 0
    m = draw(st.integers(0, 9))
    left, right = rng.integers(0, n, m), rng.integers(0, n, m)
    bounds = np.r_[0, np.cumsum(widths)].astype(np.int64)
    segs = np.arange(len(widths))
    pairs = [(a, b) for a in segs for b in segs if widths[a] == widths[b]]
    sa = np.array([p[0] for p in pairs], np.int64)
    sb = np.array([p[1] for p in pairs], np.int64)
    return f, left, right, bounds, sa, sb


@settings(max_examples=150, deadline=None)
@given(segment_cases(), st.booleans())
def test_segment_dice_matches_numpy(case, parallel) -> None:  # type: ignore[no-untyped-def]
    f, left, right, bounds, sa, sb = case
    got = segment_dice(f, left, right, bounds, sa, sb, parallel=parallel)
    want = segment_dice_numpy(f, left, right, bounds, sa, sb)
    assert got.shape == (len(left), len(sa))
    np.testing.assert_array_equal(got, want)


def test_segment_dice_refuses_unequal_widths() -> None:
    f = np.zeros((2, 3), np.uint64)
    with pytest.raises(ValueError, match="equal widths"):
        segment_dice(f, [0], [1], np.array([0, 1, 3]), np.array([0]), np.array([1]))


def test_levels_and_joint_levels() -> None:
    d = np.array([[1.0, 0.85, 0.65, 0.45, 0.1, -1.0]], np.float32)
    assert to_levels(d).tolist() == [[0, 1, 2, 3, 4, -1]]
    a = np.array([0, 0, 3, -1, -1, 4], np.int8)
    b = np.array([0, 2, 4, 1, -1, 4], np.int8)
    assert joint_levels(a, b, 5).tolist() == [0, 1, 3, 2, -1, 4]


def test_date_levels_band_by_tokens_shared() -> None:
    """The date's levels follow the number of its five tokens two dates share: a day/month
    swap (2 shared) is its own level, not lumped with random dates sharing one token."""
    assert FIELD_EDGES["date_of_birth"] == (0.99, 0.62, 0.5, 0.38)
    d = np.array([[0.55, 0.55], [0.44, 0.44], [0.7, 0.7], [-1.0, 1.0]], np.float32)
    lv = field_levels(d, ["given_name", "date_of_birth"])
    assert lv[:, 0].tolist() == [3, 3, 2, -1]  # generic edges
    assert lv[:, 1].tolist() == [2, 3, 1, 0]  # swap band, one token, year typo, exact
    with pytest.raises(ValueError, match="must number"):
        field_levels(d, ["given_name", "date_of_birth"], field_edges={"date_of_birth": (0.5,)})


def test_em_holds_fixed_m_rows() -> None:
    """``fix_m`` keeps rows of m at their start (estimated in another session) while the
    other rows and lambda are fitted."""
    rng = np.random.default_rng(5)
    m_true = np.array([[0.9, 0.1], [0.7, 0.3]])
    u_true = np.array([[0.1, 0.9], [0.2, 0.8]])
    is_match = rng.random(20_000) < 0.4
    lv = np.empty((20_000, 2), np.int8)
    for f in range(2):
        lv[is_match, f] = rng.choice(2, is_match.sum(), p=m_true[f])
        lv[~is_match, f] = rng.choice(2, (~is_match).sum(), p=u_true[f])
    m0 = np.array([[0.9, 0.1], [0.5, 0.5]])
    res = fit_em(lv, m0, u_true, 0.5, fix_u=True, fix_m=np.array([True, False]))
    np.testing.assert_allclose(res.m[0], m0[0], atol=1e-9)
    np.testing.assert_allclose(res.m[1], m_true[1], atol=0.04)
    assert abs(res.lam - 0.4) < 0.03


def test_conditional_u_and_term_frequencies() -> None:
    """At exact location agreement the other comparisons use the u of such pairs (a
    household shares its surname: less evidence); elsewhere an exact name's u is its
    value's frequency (a rare name is more evidence than a common one)."""
    from linkage.tlu.scoring.compare import Comparisons
    from linkage.tlu.scoring.model import FieldModel
    from linkage.tlu.scoring.prior import Prior

    schema = Schema.from_dict(with_segments(uk_person_unhardened()))
    m = np.array([[0.9, 0.04, 0.03, 0.02, 0.01]] * 2)
    u = np.array([[0.01, 0.01, 0.01, 0.07, 0.9]] * 2)
    u_home = u.copy()
    u_home[0] = [0.5, 0.05, 0.05, 0.1, 0.3]  # surname among one household's pairs
    model = FieldModel(
        ["surname", "location"], (0.99, 0.8, 0.6, 0.4), m, u, Prior(1e-4, 1e-6, 1.0, 1.0),
        Comparisons(schema.segments), u_given={"location": u_home},
        tf={"surname": np.array([1e-4, 0.05, 0.0])},
    )  # fmt: skip
    lv = np.array([[0, 0], [0, 4], [0, 4], [3, -1]], np.int8)
    bits = model.contributions(lv)
    assert bits[0, 0] == pytest.approx(np.log2(0.9 / 0.5))  # household: conditional u
    assert bits[1, 0] == pytest.approx(np.log2(0.9 / 0.01))
    assert bits[3].tolist() == pytest.approx([np.log2(0.02 / 0.07), 0.0])
    tf = model.contributions(lv, left=np.array([0, 0, 1, 0]))
    assert tf[0, 0] == bits[0, 0]  # no term frequencies inside a household
    assert tf[1, 0] == pytest.approx(np.log2(0.9 / 1e-4))  # rare surname
    assert tf[2, 0] == pytest.approx(np.log2(0.9 / 0.05))  # common surname
    assert model.u_for(lv[0]) is u_home and model.u_for(lv[1]) is u
    rows = waterfall(model, lv[0], True)
    assert rows[1].u == 0.5


def test_em_recovers_m_with_u_fixed() -> None:
    """Simulated comparison vectors: EM with u known recovers m and the match share."""
    rng = np.random.default_rng(3)
    m_true = np.array([[0.9, 0.05, 0.05], [0.8, 0.15, 0.05], [0.85, 0.1, 0.05]])
    u_true = np.array([[0.01, 0.04, 0.95], [0.02, 0.08, 0.9], [0.05, 0.15, 0.8]])
    n, lam = 40_000, 0.3
    is_match = rng.random(n) < lam
    lv = np.empty((n, 3), np.int8)
    for f in range(3):
        lv[is_match, f] = rng.choice(3, is_match.sum(), p=m_true[f])
        lv[~is_match, f] = rng.choice(3, (~is_match).sum(), p=u_true[f])
    lv[rng.random((n, 3)) < 0.05] = -1  # missing values are neutral
    res = fit_em(lv, np.full((3, 3), 1 / 3), u_true, 0.5, fix_u=True)
    assert res.converged
    assert abs(res.lam - lam) < 0.02
    np.testing.assert_allclose(res.m, m_true, atol=0.03)
    freq = level_frequencies(lv[~is_match], 3)
    np.testing.assert_allclose(freq, u_true, atol=0.02)


def test_prior_falls_with_the_number_of_records() -> None:
    assert possible_pairs(np.array([3, 2])) == (6.0, 4.0)
    small = prior_from_session(0.5, 1000, 0.9, 0.9, np.array([10_000, 10_000]))
    big = prior_from_session(0.5, 10_000, 0.9, 0.9, np.array([100_000, 100_000]))
    assert big.cross < small.cross / 5  # ten times the records: ~ a tenth of the prior
    assert small.within < small.cross


def test_coherent_clusters_do_not_chain_through_one_weak_edge() -> None:
    # records 0-1 and 2-3 are strong pairs; one edge 1-2 at p 0.6 would chain them in a
    # single-linkage clustering; the mean over the four cross pairs is 0.15
    left = np.array([0, 2, 1])
    right = np.array([1, 3, 2])
    p = np.array([0.99, 0.99, 0.6])
    party = np.array([0, 1, 0, 1])
    lab = coherent_clusters(left, right, p, np.log2(p / (1 - p)), party)
    assert lab.tolist() == [0, 0, 1, 1]
    # a duplicate within party 0 (record 2) that agrees with both records of the entity joins
    left = np.array([0, 0, 1])
    right = np.array([1, 2, 2])
    p = np.array([0.99, 0.9, 0.9])
    party = np.array([0, 1, 0])
    lab = coherent_clusters(left, right, p, np.log2(p / (1 - p)), party)
    assert lab.tolist() == [0, 0, 0]
    lab = coherent_clusters(left, right, p, np.log2(p / (1 - p)), party, one_to_one=True)
    assert lab.tolist() == [0, 0, 1]


def _partition(roots: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i, r in enumerate(roots.tolist()):
        groups.setdefault(r, set()).add(i)
    return {frozenset(g) for g in groups.values()}


@st.composite
def coherent_cases(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 13))
    m = draw(st.integers(0, 40)) if n else 0
    kind = draw(st.sampled_from(["random", "zero", "one"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    left, right = rng.integers(0, max(n, 1), m), rng.integers(0, max(n, 1), m)
    prob = {"zero": np.zeros(m), "one": np.ones(m), "random": rng.integers(0, 9, m) / 8}[kind]
    party = rng.integers(0, draw(st.integers(1, 4)), n)
    return n, np.minimum(left, right), np.maximum(left, right), prob, rng.permutation(m), party


@settings(max_examples=200, deadline=None)
@given(coherent_cases(), st.booleans(), st.sampled_from([0.5, 0.3, 1.0]))
def test_coherent_kernel_matches_reference(case, one_to_one, threshold) -> None:  # type: ignore[no-untyped-def]
    from linkage.kernels.coherent import coherent_roots, coherent_roots_reference

    n, lo, hi, prob, order, party = case
    got = coherent_roots(n, lo, hi, prob, order, party, threshold, one_to_one)
    want = coherent_roots_reference(n, lo, hi, prob, order, party, threshold, one_to_one)
    assert got.shape == (n,)
    assert _partition(got) == _partition(want)


def test_coherent_kernel_refuses_bad_input() -> None:
    from linkage.kernels.coherent import coherent_roots

    with pytest.raises(ValueError, match="out of range"):
        coherent_roots(2, np.array([0]), np.array([2]), np.array([1.0]), np.array([0]),
                       np.zeros(2, np.int64), 0.5, False)  # fmt: skip
    with pytest.raises(ValueError, match="equal length"):
        coherent_roots(2, np.array([0]), np.array([1]), np.array([1.0, 1.0]), np.array([0]),
                       np.zeros(2, np.int64), 0.5, False)  # fmt: skip


def test_coherent_clusters_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(0)
    n = 60
    left, right = rng.integers(0, n, 300), rng.integers(0, n, 300)
    keep = left != right
    left, right = left[keep], right[keep]
    p = np.round(rng.random(len(left)), 1)  # many ties
    party = rng.integers(0, 3, n)
    rank = rng.permutation(n)
    lab = coherent_clusters(left, right, p, p, party, rank=rank)
    perm = rng.permutation(n)  # record i moves to position perm[i]
    order = rng.permutation(len(left))
    lab2 = coherent_clusters(
        perm[left][order], perm[right][order], p[order], p[order], party[np.argsort(perm)],
        rank=rank[np.argsort(perm)],
    )  # fmt: skip
    assert (lab2[perm] == lab).all()


def _people(n: int, seed: int) -> dict[str, list[str | None]]:
    rng = np.random.default_rng(seed)
    given = ["JOHN", "MARY", "ALI", "SITA", "PETER", "ANNA", "OMAR", "LUCY", "KEVIN", "ZOE"]
    sur = ["SMITH", "JONES", "KHAN", "PATEL", "BROWN", "TAYLOR", "EVANS", "WILSON", "HUGHES"]
    rows: dict[str, list[str | None]] = {k: [] for k in
        ("record_id", "given_name", "surname", "date_of_birth", "sex", "postcode", "address",
         "nhs_number")}  # fmt: skip
    for i in range(n):
        rows["record_id"].append(f"r{i}")
        rows["given_name"].append(str(rng.choice(given)) + str(rng.choice(given))[:2])
        rows["surname"].append(str(rng.choice(sur)) + str(rng.choice(sur))[:3])
        rows["date_of_birth"].append(
            f"{rng.integers(1930, 2015)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        )
        rows["sex"].append(str(rng.choice(["M", "F"])))
        rows["postcode"].append(f"L{rng.integers(1, 30)} {rng.integers(1, 10)}AB")
        rows["address"].append(f"{rng.integers(1, 200)} {rng.choice(sur)} ROAD")
        rows["nhs_number"].append(None)
    return rows


def test_match_with_segments_links_swaps_and_missing_dates(secret: Secret) -> None:
    """End to end: field-aware scoring is the default for segmented encodings; a record with
    given name and surname swapped and one without a date of birth still link, a
    household member (same surname and address, other given name and date) does not."""
    schema = Schema.from_dict(with_segments(uk_person_unhardened()))
    a = _people(400, 1)
    b = {k: list(v) for k, v in a.items()}
    b["record_id"] = [f"b{i}" for i in range(400)]
    b["given_name"][0], b["surname"][0] = a["surname"][0], a["given_name"][0]  # swapped
    b["date_of_birth"][1] = None  # missing date of birth
    # a household member of a[2] in party b: same surname, postcode and address
    for k in ("given_name", "date_of_birth"):
        b[k].append({"given_name": "QUENTIN", "date_of_birth": "2001-07-07"}[k])
    for k in ("surname", "postcode", "address", "sex"):
        b[k].append(a[k][2])
    b["record_id"].append("household")
    b["nhs_number"].append(None)
    # a son named after his father a[3]: same full name, sex and address, another date
    for k in ("given_name", "surname", "sex", "postcode", "address"):
        b[k].append(a[k][3])
    b["date_of_birth"].append("2012-12-12")
    b["record_id"].append("junior")
    b["nhs_number"].append(None)
    enc_a = encode(pa.table(a), schema, secret, party="a")
    enc_b = encode(pa.table(b), schema, secret, party="b")
    res = match([enc_a, enc_b], seed=1)
    assert res.field_scores is not None
    ent = dict(zip(zip(res.links["party"].to_pylist(), res.links["record_id"].to_pylist(),
                       strict=True), res.links["entity_id"].to_pylist(), strict=True))  # fmt: skip
    assert ent[("a", "r0")] == ent[("b", "b0")]  # swapped names
    assert ent[("a", "r1")] == ent[("b", "b1")]  # missing date of birth
    assert ent[("b", "household")] != ent[("a", "r2")]
    assert ent[("b", "junior")] != ent[("a", "r3")]
    # the date's m comes from pairs blocked on the full name, without the comparisons that
    # people of one name and one household share (location, sex)
    assert res.field_scores.model.sessions[1]["left_out"] == ["location", "sex"]
    linked = sum(ent[("a", f"r{i}")] == ent[("b", f"b{i}")] for i in range(400))
    assert linked >= 395
    fs = res.field_scores
    rows = waterfall(fs.model, fs.levels[0], True)
    assert rows[0].comparison == "prior" and rows[-1].total == pytest.approx(
        rows[0].bits + sum(r.bits for r in rows[1:])
    )
    assert "match probability" in waterfall_text(rows)
    # the record-level layout keeps the Dice flow; scoring='fields' on it is one clear error
    plain = Schema.from_dict(uk_person_unhardened())
    pa_, pb_ = (encode(pa.table(t), plain, secret, party=p) for t, p in ((a, "a"), (b, "b")))
    assert match([pa_, pb_], seed=1).field_scores is None
    from linkage.errors import InputError

    with pytest.raises(InputError, match="segmented layout"):
        match([pa_, pb_], scoring="fields")


def test_segmented_encodings_on_dask_are_one_clear_error(secret: Secret) -> None:
    """Field-aware scoring runs where the filters are; a Dask engine (workers read the files)
    must not silently fall back to Dice scoring of segmented encodings."""
    from linkage.tlu.engines import InProcessEngine

    class IdsOnly(InProcessEngine):  # an engine that, like Dask, loads no filters
        def load(self, inputs):  # type: ignore[no-untyped-def]
            encs, names = super().load(inputs)
            return [type(e)(e.table.drop_columns(["clk"]), e.meta) for e in encs], names

    schema = Schema.from_dict(with_segments(uk_person_unhardened()))
    rows = _people(20, 3)
    encs = [encode(pa.table(rows), schema, secret, party=p) for p in ("a", "b")]
    with pytest.raises(InputError, match="--scoring dice"):
        match(encs, engine=IdsOnly(), seed=1)
