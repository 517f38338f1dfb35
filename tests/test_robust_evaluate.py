"""Issue 10 item 17: evaluate scores only the parties that were linked.

A two-party linkage scored against a three-party truth counted every true pair involving the
third party as missed (recall 0.34 at F1 0.98 on the two linked parties). Truth parties not in
the links are now left out, and the report says so.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from linkage.errors import InputError
from linkage.lab.quality import evaluate
from linkage.report.text import evaluation_text


def _truth(parties: list[str], people: int) -> pa.Table:
    rows = [(p, f"{p}{i}", f"person{i}") for p in parties for i in range(people)]
    return pa.table(
        {k: [r[j] for r in rows] for j, k in enumerate(["party", "record_id", "person_id"])}
    )


def _links(parties: list[str], people: int) -> pa.Table:
    rows = [(f"e{i}", p, f"{p}{i}") for p in parties for i in range(people)]
    return pa.table(
        {k: [r[j] for r in rows] for j, k in enumerate(["entity_id", "party", "record_id"])}
    )


def test_two_party_links_against_three_party_truth() -> None:
    rep = evaluate(_links(["a", "b"], 50), _truth(["a", "b", "c"], 50))
    assert rep.cross.recall == 1.0 and rep.cross.precision == 1.0  # was recall 1/3
    assert rep.parties == ["a", "b"]
    text = evaluation_text(rep)
    assert "2 parties (a, b)" in text
    assert "left out: c" in text


def test_all_linked_parties_keep_every_truth_record() -> None:
    rep = evaluate(_links(["a", "b", "c"], 20), _truth(["a", "b", "c"], 20))
    assert rep.cross.recall == 1.0 and not any("left out" in n for n in rep.notes)


def test_links_of_parties_absent_from_the_truth_are_an_error() -> None:
    with pytest.raises(InputError, match="ids do not match the truth file"):
        evaluate(_links(["x"], 5), _truth(["a", "b"], 5))
