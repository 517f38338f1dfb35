"""The attacker models the schema's hardening steps under its own key (issue 11): its
filters then have the encoded filters' length and similarity law, which graph matching
needs; without the model the two similarity graphs differ."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import linkage
from linkage.lab.audit.plaintext import harden_own_key, pack, simulate_filters, unpack
from linkage.lab.audit.scenario import synthetic_scenario
from linkage.schema_template import uk_person_unhardened


def _dice(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float32)
    p = z.sum(1)
    d = 2 * (z @ z.T) / np.maximum(p[:, None] + p[None, :], 1)
    return d[np.triu_indices(len(x), 1)]


def test_pack_unpack_round_trip() -> None:
    bits = np.random.default_rng(0).random((5, 192)) < 0.3
    assert (unpack(pack(bits)) == bits).all()


@pytest.mark.parametrize(
    "step",
    [
        {"type": "diffusion", "taps": 3, "output_bits": 1024},
        {"type": "balance", "permute": True},
        {"type": "xor_fold"},
    ],
)
def test_own_key_hardening_follows_the_encoded_similarity_law(step: dict) -> None:
    doc = uk_person_unhardened()
    doc["hardening"] = [step]
    s = linkage.Schema.from_dict(doc)
    sc = synthetic_scenario(s, 300, seed=4, reference_people=50)
    enc = unpack(sc.filters)
    own = simulate_filters(sc.truth, s, seed=9)
    assert own.shape == enc.shape
    plain = linkage.Schema.from_dict(uk_person_unhardened())
    du = _dice(simulate_filters(sc.truth, plain, seed=9))  # plaintext similarity
    de, do = _dice(enc), _dice(own)
    # the same law: the mean encoded Dice at each level of plaintext similarity
    edges = np.quantile(du, [0.0, 0.5, 0.9, 0.99, 0.999, 1.0])
    for lo, hi in itertools.pairwise(edges):
        sel = (du >= lo) & (du <= hi)
        assert abs(de[sel].mean() - do[sel].mean()) < 0.03, (lo, hi)
    if step["type"] != "balance":  # without the model the law is another one
        assert abs(de.mean() - du.mean()) > 0.04


def test_no_hardening_is_identity() -> None:
    s = linkage.Schema.from_dict(uk_person_unhardened())
    bits = np.random.default_rng(0).random((3, 1024)) < 0.3
    assert harden_own_key(bits, s) is bits
