"""A map update breaks ties as a full match does: by the records (party, record id), never by
their order in the new extract (issue 10 item 3 for the linkage map)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import linkage
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret

PERSON = {
    "given_name": "Ann",
    "surname": "Smith",
    "date_of_birth": "1980-01-02",
    "sex": "F",
    "postcode": "CF10 1AA",
    "address": "1 High St",
    "nhs_number": None,
}


def _table(ids: list[str]) -> pa.Table:
    return pa.table({"record_id": ids, **{k: [v] * len(ids) for k, v in PERSON.items()}})


def _linked_to_a(map_path: Path) -> set[str]:
    links = linkage.map_links(map_path).to_pylist()
    ent = {r["entity_id"] for r in links if r["party"] == "a"}
    return {r["record_id"] for r in links if r["party"] == "b" and r["entity_id"] in ent}


def test_update_ties_do_not_depend_on_row_order(tmp_path: Path, secret: Secret) -> None:
    schema = Schema.from_dict(uk_person_unhardened())
    a = linkage.encode(_table(["a1"]), schema, secret, party="a")
    ids = [f"b{i}" for i in range(1, 9)]  # eight identical records: a tie for a1
    chosen = []
    for order in (ids, ids[::-1], ids[3:] + ids[:3]):
        m = tmp_path / f"m{len(chosen)}.duckdb"
        linkage.map_create(m, [a, linkage.encode(_table(["c0"]), schema, secret, party="c")])
        # party b arrives in an update, the same records in three row orders
        linkage.map_update(m, [linkage.encode(_table(order), schema, secret, party="b")])
        chosen.append(_linked_to_a(m))
    assert len(chosen[0]) == 1, chosen
    assert chosen[0] == chosen[1] == chosen[2]
