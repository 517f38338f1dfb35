"""linkage audit: the attack boundary, scoring helpers, and small end-to-end runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import linkage
from linkage.lab.audit import frequency, graph
from linkage.lab.audit.plaintext import Plain, simulate_filters, unpack, value_tokens
from linkage.lab.audit.runner import audit
from linkage.schema_template import uk_person_unhardened

AUDIT = Path(linkage.__file__).parent / "lab" / "audit"
ATTACK_MODULES = ("leaks", "frequency", "patterns", "graph", "plaintext", "results")


@pytest.mark.parametrize("mod", ATTACK_MODULES)
def test_attack_modules_never_import_the_secret_or_encoder(mod: str) -> None:
    tree = ast.parse((AUDIT / f"{mod}.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "linkage"
            and node.attr in ("Secret", "encode", "encode_file")
        ):
            raise AssertionError(f"{mod}.py uses linkage.{node.attr}")
    bad = [n for n in names if n.startswith(("linkage.secret", "linkage.partner"))]
    assert not bad, bad


def test_tokens_follow_the_encoder() -> None:
    s = linkage.Schema.from_dict(uk_person_unhardened())
    assert value_tokens(s.field("surname").tokeniser, "ANN") == ["\0A", "AN", "NN", "N\0"]
    assert value_tokens(s.field("date_of_birth").tokeniser, "1990-12-05") == [
        "D05", "M12", "Y1990", "DM0512", "F19901205",
    ]  # fmt: skip


def test_soundex() -> None:
    assert frequency.soundex("ROBERT") == "R163"
    assert frequency.soundex("ASHCRAFT") == "A261"
    assert frequency.soundex("TYMCZAK") == "T522"


def test_frequency_align_by_rank() -> None:
    enc = ["a"] * 50 + ["b"] * 20 + ["c"] * 5
    ref = ["X"] * 100 + ["Y"] * 40 + ["Z"] * 10
    g = frequency.align(enc, ref, top=3, min_gap=0.1)
    assert g[0] == "X" and g[60] == "Y" and g[74] == "Z"


def test_graph_matching_full_overlap_small() -> None:
    """On the same records the own-key simulation mimics the encoding well enough to match."""
    s = linkage.Schema.from_dict(uk_person_unhardened())
    from linkage.lab.audit.scenario import synthetic_scenario

    sc = synthetic_scenario(s, 600, seed=3, reference_people=100)
    a = simulate_filters(sc.truth, s, seed=11)
    m = graph.match_graphs(unpack(sc.filters), a, pool_nodes=500, seeds=50)
    assert (m == np.arange(sc.truth.n)).mean() > 0.8


def test_audit_end_to_end_small(tmp_path: Path) -> None:
    r = audit(
        uk_person_unhardened(), people=500, graph_sample=300, overlaps=(1.0,),
        attacks=("leaks", "frequency", "graph"), pattern_sample=500,
    )  # fmt: skip
    d = r.to_dict()
    json.dumps(d)
    assert set(d["rates"]) == {"leaks", "frequency", "graph"}
    assert r.attack("graph").reidentified > 0.5
    assert "Threat model" in r.to_text()


def test_plain_identity_order_free() -> None:
    p = Plain({"b": np.array(["x", None], object), "a": np.array(["y", "z"], object)}, 2)
    ids = p.identity()
    assert ids[0] != ids[1] and p.take(np.array([1, 0])).identity()[0] == ids[1]
