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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "reidentified": self.reidentified,
            "precision": self.precision,
            "records": self.records,
            "sampled": self.sampled,
            "seconds": round(self.seconds, 3),
            "settings": dict(self.settings),
            "per_field": {k: dict(v) for k, v in self.per_field.items()},
            "metrics": dict(self.metrics),
            "sweep": [dict(s) for s in self.sweep],
            "note": self.note,
        }

    def lines(self) -> list[str]:
        head = f"{self.title} [{self.name}]"
        if self.reidentified is not None:
            prec = "n/a" if self.precision is None else f"{100 * self.precision:.1f}%"
            head += f": {100 * self.reidentified:.1f}% re-identified (precision {prec})"
        out = [head]
        samp = " (sample)" if self.sampled else ""
        out.append(f"  records {self.records:,}{samp}, {self.seconds:.1f} s")
        if self.settings:
            out.append("  worst-case settings: " + _kv(self.settings))
        for k, v in self.per_field.items():
            out.append(
                f"  {k}: {100 * v.get('reidentified', 0.0):.1f}% re-identified, "
                f"precision {100 * v.get('precision', 0.0):.1f}%"
            )
        for k, m in self.metrics.items():
            out.append(f"  {k}: {m:.4g}")
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

    @property
    def worst(self) -> float:
        rates = [a.reidentified for a in self.attacks if a.reidentified is not None]
        return max(rates, default=0.0)

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
        out.append(f"Worst case: {100 * self.worst:.1f}% of records re-identified")
        for a in self.attacks:
            out.append("")
            out.extend(a.lines())
        return "\n".join(out) + "\n"


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())
