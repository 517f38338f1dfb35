"""A small synthetic population (with truth) and monthly extracts for the linkage map tests.

``month(k)`` gives each party's extract for month k: month 0 holds 80% of each party's
records; later months add new people, drop some (deaths/erasures) and change some
encodings (a move or a married name: the record keeps its id but takes the encoding of the
same person's record at another party, so the truth stays right).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.encoded import EncodedTable
from linkage.lab.synthetic import encode_arguments, synth
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret
from linkage.segments import with_segments

SECRET = Secret(hashlib.sha256(b"map-test-secret").digest())


@dataclass
class Population:
    dir: Path
    encs: list[EncodedTable]  # every record of each party
    truth: Path
    person: dict[tuple[str, str], str]


def make_population(
    out: Path, people: int = 1500, parties: int = 3, segmented: bool = False
) -> Population:
    """``segmented``: encode with the segmented filter layout (field-aware scoring)."""
    synth(out, people=people, parties=parties, corruption="medium", seed=11)
    manifest = json.loads((out / "manifest.json").read_text())
    doc = uk_person_unhardened()
    schema = Schema.from_dict(with_segments(doc) if segmented else doc)
    encs = [
        encode(out / p["file"], schema, SECRET, rejects=[], **encode_arguments(p))
        for p in manifest["parties"]
    ]
    with open(out / "truth.csv", newline="", encoding="utf-8") as fh:
        person = {(r["party"], r["record_id"]): r["person_id"] for r in csv.DictReader(fh)}
    return Population(out, encs, out / "truth.csv", person)


def subset(enc: EncodedTable, rows: np.ndarray) -> EncodedTable:
    meta = dict(enc.meta)
    meta["record_count"] = str(len(rows))
    return EncodedTable(enc.table.take(pa.array(np.sort(rows))), meta)


def with_changed(pop: Population, enc: EncodedTable, count: int, seed: int) -> EncodedTable:
    """``count`` records take the encoding of the same person's record at another party."""
    rng = np.random.default_rng(seed)
    by_person: dict[str, tuple[int, int]] = {}
    for pi, other in enumerate(pop.encs):
        if other.party == enc.party:
            continue
        for row, rid in enumerate(other.record_ids.to_pylist()):
            by_person.setdefault(pop.person[(other.party, rid)], (pi, row))
    ids = enc.record_ids.to_pylist()
    eligible = [i for i, r in enumerate(ids) if pop.person[(enc.party, r)] in by_person]
    pick = rng.choice(eligible, size=min(count, len(eligible)), replace=False)
    clk = enc.table.column("clk").combine_chunks().to_pylist()
    keys = enc.table.column("block_keys").combine_chunks().to_pylist()
    for i in pick:
        pi, row = by_person[pop.person[(enc.party, ids[i])]]
        src = pop.encs[pi].table
        clk[i] = src.column("clk")[row].as_py()
        keys[i] = src.column("block_keys")[row].as_py()
    t = enc.table.set_column(1, "clk", pa.array(clk, enc.table.schema.field("clk").type))
    t = t.set_column(2, "block_keys", pa.array(keys, t.schema.field("block_keys").type))
    return EncodedTable(t, dict(enc.meta))


def months(pop: Population, n_months: int = 3, seed: int = 5) -> list[list[EncodedTable]]:
    """Each month's full extracts (one per party)."""
    rng = np.random.default_rng(seed)
    present = []
    for enc in pop.encs:
        n = len(enc)
        present.append(rng.random(n) < 0.8)
    out = []
    for m in range(n_months + 1):
        extracts = []
        for pi, enc in enumerate(pop.encs):
            if m > 0:
                p = present[pi]
                new = ~p & (rng.random(len(p)) < 0.35)  # new people / new registrations
                gone = p & (rng.random(len(p)) < 0.03)  # deaths, erasures
                present[pi] = (p | new) & ~gone
            e = subset(enc, np.flatnonzero(present[pi]))
            if m > 0:
                e = with_changed(pop, e, 15, seed * 100 + m * 10 + pi)
            extracts.append(e)
        out.append(extracts)
    return out


def partition(links: pa.Table) -> set[frozenset[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = {}
    cols = [links.column(c).to_pylist() for c in ("entity_id", "party", "record_id")]
    for e, p, r in zip(*cols, strict=True):
        groups.setdefault(e, set()).add((p, r))
    return {frozenset(g) for g in groups.values()}


def entity_of(links: pa.Table) -> dict[tuple[str, str], str]:
    cols = [links.column(c).to_pylist() for c in ("entity_id", "party", "record_id")]
    return {(p, r): e for e, p, r in zip(*cols, strict=True)}


def sort_links(t: pa.Table) -> pa.Table:
    return t.take(pc.sort_indices(t, [("party", "ascending"), ("record_id", "ascending")]))
