"""Typed audit results: one :class:`AttackResult` per attack (its worst case over the attack's
own settings), gathered in an :class:`AuditResult` with the threat model, as text or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

THREAT_MODEL = (
    "Threat model: the attacker holds the encoded file (as the linkage unit does, or anyone it "
    "leaks to), knows the schema and the tokenisation (public by assumption: partners share "
    "the schema), and holds a plaintext population like the encoded one (an electoral roll, a "
    "leaked register; for graph matching a list that contains the encoded persons). The "
    "attacker does NOT know the secret: no attack uses it. The partner's plaintext is used "
    "only to score the attacks' guesses. Each attack sweeps its own settings and the audit "
    "reports the worst case (most records re-identified)."
)
BOUNDS = {"hgma"}  # attacks whose rate is an upper bound, not a matcher's result
TARGET = 0.01
"""The share of records any attack may re-identify (issue 12's bound for the default)."""

SHORT = {
    "leaks": "leak statistics",
    "frequency": "frequency alignment",
    "patterns": "pattern mining",
    "graph": "graph matching",
    "hgma": "homomorphism-based graph matching (upper bound)",
}


SMALL_LEAKS = 200
"""Fewer records than this: leak statistics are mostly chance (said in their note)."""


def small_sample_caveat(records: int) -> str | None:
    """What leak statistics on ``records`` records are worth, when under :data:`SMALL_LEAKS`
    (the text and the HTML report say it alike); None from there up."""
    if records >= SMALL_LEAKS:
        return None
    return (
        f"on {records:,} records these are mostly chance (co-occurrence and neighbours need "
        f"a few hundred records): read them from {SMALL_LEAKS} up"
    )


@dataclass(frozen=True)
class AttackResult:
    """The worst case of one attack over its settings.

    ``reidentified``: share (0..1) of encoded records whose identity (record-level attacks) or
    field value (value-level attacks; worst field) the attacker got right; ``precision``:
    right guesses / guesses made. ``per_field`` maps a field (or block key) to its
    ``{"reidentified": .., "precision": .., "guesses": ..}``. ``records``: how many encoded
    records the attack ran on (a sample where ``sampled``), ``settings``: the settings that
    gave the worst case; ``metrics``: other measured numbers (leak statistics);
    ``sweep``: every setting tried with its rate; ``seconds``: wall time of the whole sweep.
    """

    name: str
    title: str
    reidentified: float | None
    precision: float | None
    records: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    per_field: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    sweep: tuple[dict[str, Any], ...] = ()
    sampled: bool = False
    note: str = ""
    right: int | None = None
    category: tuple[str, ...] = ()  # per_field keys naming a category (sex), not counted

    @property
    def counts(self) -> tuple[int, int] | None:
        """(records re-identified, records attacked) behind ``reidentified`` (None: none)."""
        if self.reidentified is None:
            return None
        n = self.records
        return (round(self.reidentified * n) if self.right is None else self.right), n

    def label(self) -> str:
        """Short name with where the worst case was: e.g. ``graph matching (25% overlap, list
        of other people)``, ``frequency alignment (block key surname_soundex_yob)`` or
        ``frequency alignment (segment surname)`` (a segmented file's field segment)."""
        name = SHORT.get(self.name, self.name)
        where = ""
        if self.name == "graph" and "overlap" in self.settings:
            who = "the file's population" if self.settings.get("list") == "population" else (
                "other people"
            )  # fmt: skip
            where = f"{float(self.settings['overlap']):.0%} overlap, list of {who}"
        elif self.name == "hgma" and "tau" in self.settings:
            where = f"tuples up to {self.settings['tau']} tokens apart"
        else:
            where = self.worst_item() or ""
        return f"{name} ({where})" if where else name

    def worst_item(self) -> str | None:
        """The item (field, block key, whole filter or segment) of a per-item attack that gave
        its worst case, as the text names it (``segment given_name``); None for graph
        matching, whose worst case is a setting."""
        counted = [k for k in self.per_field if k not in self.category]
        if not counted or self.name == "graph":
            return None
        top = max(counted, key=lambda k: self.per_field[k].get("reidentified", 0.0))
        where = item_name(top)
        return where if where.startswith(("block key", "whole", "segment")) else f"field {where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "reidentified": self.reidentified,
            "reidentified_records": None if self.counts is None else self.counts[0],
            "precision": self.precision,
            "records": self.records,
            "sampled": self.sampled,
            "seconds": round(self.seconds, 3),
            "settings": dict(self.settings),
            "per_field": {k: dict(v) for k, v in self.per_field.items()},
            "metrics": dict(self.metrics),
            "sweep": [dict(s) for s in self.sweep],
            "note": self.note,
            "category": list(self.category),
        }

    def lines(self) -> list[str]:
        head = f"{self.title} [{self.name}]"
        if self.counts is not None:
            k, n = self.counts
            if self.name in BOUNDS:
                head += f": at most {_k_of_n(k, n)} could be re-identified (an upper bound)"
            else:
                item = self.worst_item() if k else None  # the worst item's figure
                head += f": {_k_of_n(k, n)} re-identified (precision {_pct(self.precision)}"
                head += f"; worst: {item})" if item else ")"
        elif not self.metrics:
            head += ": not run"
        out = [head]
        samp = " (sample)" if self.sampled else ""
        out.append(f"  records {self.records:,}{samp}, {self.seconds:.1f} s")
        if self.settings:
            out.append("  worst-case settings: " + _kv(self.settings))
        for name, v in self.per_field.items():
            n = int(v.get("records", self.records))
            right = int(v.get("right", round(v.get("reidentified", 0.0) * n)))
            prec = None if not v.get("guesses") else v.get("precision")
            if name in self.category:
                out.append(f"  {item_name(name)}: value named for {_k_of_n(right, n)} (a "
                           "category, not a person: not counted as re-identification)")  # fmt: skip
                continue
            name = item_name(name)
            out.append(
                f"  {name}: at most {_k_of_n(right, n)}"
                if self.name in BOUNDS
                else f"  {name}: {_k_of_n(right, n)} re-identified, precision {_pct(prec)}"
            )
        for name, m in self.metrics.items():
            out.append(f"  {name}: {int(m):,}" if float(m).is_integer() and abs(m) >= 1 else
                       f"  {name}: {m:.4g}")  # fmt: skip
        if self.note:
            out.append(f"  note: {self.note}")
        return out


@dataclass(frozen=True)
class AuditResult:
    """All attacks of one audit. ``worst`` is the highest re-identification rate of any attack
    (0..1); :meth:`rates` gives each attack's rate, for sweeping configurations."""

    schema_fingerprint: str
    mode: str
    records: int
    reference_records: int
    seed: int
    attacks: tuple[AttackResult, ...]
    seconds: float
    threat_model: str = THREAT_MODEL
    hardening: tuple[str, ...] = ()  # the schema's hardening step types (public)
    salted: tuple[str, ...] = ()  # fields the schema salts (public)

    @property
    def worst(self) -> float | None:
        """The highest rate of any attack; None when no re-identifying attack ran."""
        a = self.worst_attack
        return None if a is None else a.reidentified

    @property
    def worst_attack(self) -> AttackResult | None:
        scored = [a for a in self.attacks if a.reidentified is not None]
        return max(scored, key=lambda a: a.reidentified or 0.0, default=None)

    def worst_line(self) -> str:
        """``Worst case: graph matching (...): 3 of 500 records re-identified (0.6%)``, or why
        there is none."""
        a = self.worst_attack
        if a is None or a.counts is None:
            skipped = self.skipped_names()
            why = (f"{skipped} skipped (too few records; see the note)" if skipped
                   else "leak statistics only")  # fmt: skip
            return f"Worst case: not measured: no attack that re-identifies records ran ({why})"
        k, n = a.counts
        # an attack skipped for too few records is not in this figure: say so on its line
        skipped = self.skipped_names()
        tail = (f"; not run: {skipped} (too few records; see the note), so this figure does "
                "not include it" if skipped else "")  # fmt: skip
        if a.name in BOUNDS:
            return (f"Worst case: {a.label()}: at most {k:,} of {n:,} records could be "
                    f"re-identified ({_rate(k, n)}, an upper bound){tail}")  # fmt: skip
        return (f"Worst case: {a.label()}: {k:,} of {n:,} records re-identified "
                f"({_rate(k, n)}){tail}")  # fmt: skip

    def skipped(self) -> list[str]:
        """Re-identifying attacks that were asked for but did not run (too few records)."""
        return [a.name for a in self.attacks if a.reidentified is None and a.name != "leaks"]

    def skipped_names(self) -> str:
        """:meth:`skipped` as text ("graph matching, ..."); empty when none."""
        return ", ".join(SHORT.get(n, n) for n in self.skipped())

    def above(self, target: float = TARGET) -> bool | None:
        """Whether the worst case exceeds ``target`` (a share, 0..1); None when it is not
        measured: no re-identifying attack ran, or one was skipped while the others stayed
        at or below the target (a skipped attack might have exceeded it)."""
        w = self.worst
        if w is None:
            return None
        if w > target:
            return True
        return None if self.skipped() else False

    def verdict_line(self, target: float = TARGET) -> str:
        """The worst case against ``target`` (the project's bound, 1%), in words."""
        above, t = self.above(target), f"{100 * target:g}%"
        if above is None:
            skipped = self.skipped_names()
            if not skipped:
                return f"Against the {t} target: not measured (no re-identifying attack ran)"
            return (f"Against the {t} target: not measured ({skipped} did not run: too few "
                    "records; small files are more exposed, docs/privacy.md)")  # fmt: skip
        a = self.worst_attack
        noise = ""
        if a is not None and a.counts is not None and 0 < a.counts[1] < 200:
            n = a.counts[1]
            noise = f"; on {n:,} records one re-identified record is {_rate(1, n)}"
        if above:
            return (f"Against the {t} target: ABOVE it (docs/privacy.md: hardening, small "
                    f"files){noise}")  # fmt: skip
        return (f"Against the {t} target: at or below it (for the attacks and settings "
                f"above){noise}")  # fmt: skip

    def rates(self) -> dict[str, float | None]:
        return {a.name: a.reidentified for a in self.attacks}

    def attack(self, name: str) -> AttackResult:
        for a in self.attacks:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threat_model": self.threat_model,
            "schema_fingerprint": self.schema_fingerprint,
            "mode": self.mode,
            "records": self.records,
            "reference_records": self.reference_records,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "worst": self.worst,
            "worst_attack": None if self.worst_attack is None else self.worst_attack.name,
            "target": TARGET,
            "above_target": self.above(),
            "not_run": self.skipped(),
            "hardening": list(self.hardening),
            "salted": list(self.salted),
            "rates": self.rates(),
            "attacks": [a.to_dict() for a in self.attacks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_text(self) -> str:
        out = [self.threat_model, ""]
        out.append(
            f"Audit ({self.mode}): {self.records:,} encoded records, "
            f"{self.reference_records:,} attacker reference records, seed {self.seed}, "
            f"{self.seconds:.1f} s; schema {self.schema_fingerprint[:12]}"
        )
        out.append(self.worst_line())
        out.append(self.verdict_line())
        for a in self.attacks:
            out.append("")
            out.extend(a.lines())
        return "\n".join(out) + "\n"


def item_name(key: str) -> str:
    """A ``per_field`` key as text and reports name it: ``segment:surname`` ->
    ``segment surname``, ``block_key:sx`` -> ``block key sx``, ``whole_filter`` -> ``whole
    filter``; anything else (a field, a graph setting) as it is. JSON keeps the keys."""
    if key == "whole_filter":
        return "whole filter"
    for prefix, words in (("block_key:", "block key "), ("segment:", "segment ")):
        if key.startswith(prefix):
            return words + key[len(prefix) :]
    return key


def _rate(k: int, n: int) -> str:
    """k / n as a percentage that never rounds across 1% (0.996% is "0.99%", not "1.0%")."""
    if n <= 0:
        return "n/a"
    pct, digits = 100 * k / n, 1
    while 0 < pct < 1 and not 0 < round(pct, digits) < 1 and digits < 4:
        digits += 1  # never "0.0%" for some records, nor "1.0%" under 1%
    if 0 < pct < 1 and round(pct, digits) >= 1:
        return "under 1%"
    return f"{pct:.{digits}f}%"


def _k_of_n(k: int, n: int) -> str:
    return f"{k:,} of {n:,} ({_rate(k, n)})"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())
