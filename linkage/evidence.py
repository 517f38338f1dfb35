"""The minimum-evidence rule: how much identifying information a record needs to be linked.

A record that carries almost nothing (only a sex code, or only a surname) has a Bloom filter
that equals, at Dice 1.0, every other record carrying the same little: two different people
``a1,,,,M`` and ``b1,,,,M`` would link, and six of them would become one entity under
dedupe. The rule is part of the schema (``min_evidence``, in the fingerprint) and is applied
by each partner when encoding, so records below it never reach the linkage unit: they are
left out of the encoded file and listed in the rejects with reason
:data:`TOO_LITTLE_EVIDENCE`.

The rule counts *evidence groups*: each group names fields that together identify one aspect
of a person (the full name, the date of birth, where they live, a national identifier). A
group is present in a record when ``all`` of its fields have a usable value (or ``any`` of
them, for alternatives such as postcode or address); the record's evidence is the sum of the
weights of its present groups, and it can be linked when that sum reaches ``at_least``.
This is the usual identifiability argument in record linkage (Christen, *Data Matching*,
2012, ch. 2; Sweeney, 2000: date of birth with a postcode, or a full name with either,
singles out most people; a name, a sex code or a birth year alone does not). The uk-person
template asks for 2 of: full name (given name and surname), date of birth, postcode or
address; an NHS number (mod-11 checked) weighs 2 on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from linkage.errors import SchemaError

TOO_LITTLE_EVIDENCE = "too little identifying information"
NEEDS = ("all", "any")
MAX_WEIGHT = 100


@dataclass(frozen=True)
class EvidenceGroup:
    """Fields that together count as one piece of identifying evidence of ``weight``."""

    name: str
    fields: tuple[str, ...]
    need: str = "all"
    weight: int = 1

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fields": list(self.fields),
            "need": self.need,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class MinEvidence:
    """A record can be linked when the weights of its present groups sum to ``at_least``."""

    at_least: int
    groups: tuple[EvidenceGroup, ...]
    description: str = ""

    @property
    def fields(self) -> set[str]:
        return {f for g in self.groups for f in g.fields}

    def score(self, present: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """int64[n] evidence of each record from ``present[field]`` (bool[n]: the field has a
        usable value; a field not in ``present`` counts as missing)."""
        total = np.zeros(n, np.int64)
        none = np.zeros(n, bool)
        for g in self.groups:
            cols = [present.get(f, none) for f in g.fields]
            have = np.logical_and.reduce(cols) if g.need == "all" else np.logical_or.reduce(cols)
            total += g.weight * have.astype(np.int64)
        return total

    def satisfied(self, present: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """bool[n]: records with enough identifying information to be linked."""
        return self.score(present, n) >= self.at_least

    def canonical(self) -> dict[str, Any]:
        return {"at_least": self.at_least, "groups": [g.canonical() for g in self.groups]}

    def summary(self) -> str:
        parts = []
        for g in self.groups:
            joint = " and " if g.need == "all" else " or "
            w = f" (weight {g.weight})" if g.weight != 1 else ""
            parts.append(joint.join(g.fields) + w)
        return f"min_evidence: at least {self.at_least} of: " + "; ".join(parts)


def _err(path: str, msg: str) -> SchemaError:
    return SchemaError(f"{path}: {msg}")


def _int(v: Any, path: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _err(path, f"expected an integer in {lo}..{hi}, got {v!r}")
    return int(v)


def parse_min_evidence(doc: Any, field_names: list[str]) -> MinEvidence:
    """Validate ``$.min_evidence`` against the schema's field names."""
    path = "$.min_evidence"
    if not isinstance(doc, dict):
        raise _err(path, "expected a JSON object with at_least and groups")
    allowed = {"at_least", "groups", "description"}
    unknown = sorted(k for k in doc if k not in allowed and not k.startswith("_"))
    if unknown:
        raise _err(f"{path}.{unknown[0]}", f"unknown key (expected one of: {', '.join(allowed)})")
    if "at_least" not in doc:
        raise _err(f"{path}.at_least", "missing (the evidence a record needs, e.g. 2)")
    at_least = _int(doc["at_least"], f"{path}.at_least", 1, MAX_WEIGHT)
    raw = doc.get("groups")
    if not isinstance(raw, list) or not raw:
        raise _err(f"{path}.groups", "expected a non-empty list of groups")
    groups: list[EvidenceGroup] = []
    names: set[str] = set()
    for i, gd in enumerate(raw):
        gp = f"{path}.groups[{i}]"
        if not isinstance(gd, dict):
            raise _err(gp, "expected a JSON object with name and fields")
        bad = sorted(k for k in gd if k not in {"name", "fields", "need", "weight", "description"})
        if bad:
            raise _err(f"{gp}.{bad[0]}", "unknown key (expected name, fields, need, weight)")
        name = gd.get("name")
        if not isinstance(name, str) or not name:
            raise _err(f"{gp}.name", "expected a non-empty string")
        if name in names:
            raise _err(f"{gp}.name", f"duplicate group name {name!r}")
        names.add(name)
        fields = gd.get("fields")
        if not isinstance(fields, list) or not fields:
            raise _err(f"{gp}.fields", "expected a non-empty list of field names")
        for j, f in enumerate(fields):
            if f not in field_names:
                raise _err(f"{gp}.fields[{j}]", f"unknown field {f!r}")
        if len(set(fields)) != len(fields):
            raise _err(f"{gp}.fields", "a field is listed twice")
        need = gd.get("need", "all")
        if need not in NEEDS:
            raise _err(f"{gp}.need", f"expected 'all' or 'any', got {need!r}")
        weight = _int(gd.get("weight", 1), f"{gp}.weight", 1, MAX_WEIGHT)
        groups.append(EvidenceGroup(name, tuple(fields), need, weight))
    if sum(g.weight for g in groups) < at_least:
        raise _err(
            f"{path}.at_least",
            f"no record can reach {at_least}: the group weights sum to "
            f"{sum(g.weight for g in groups)}",
        )
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        raise _err(f"{path}.description", "expected a string")
    return MinEvidence(at_least, tuple(groups), desc)
