"""The schema's ``hardening`` section: steps applied to every filter before it is written.

Steps, in the order given (docs/schema.md, "hardening"; kernels in
:mod:`linkage.kernels.harden`, keyed application in :mod:`linkage.partner.harden`):
``balance``, ``xor_fold``, ``rule90``, ``blip`` and ``diffusion``. The section is part of the
schema's canonical form (and so of its fingerprint) only when it has steps, so schemas
without it keep their fingerprints. ``Hardening.output_length`` gives the bits on the wire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from linkage.schema_checks import expect as _expect
from linkage.schema_checks import integer as _int
from linkage.schema_checks import kind as _kind
from linkage.schema_checks import number as _number
from linkage.schema_checks import obj as _obj
from linkage.schema_checks import string as _str

__all__ = ["HARDENING_STEPS", "Hardening", "HardeningStep", "parse_hardening"]

HARDENING_STEPS = ("balance", "xor_fold", "rule90", "blip", "diffusion")
MAX_DIFFUSION_TAPS = 64
MAX_RULE90_STEPS = 64


@dataclass(frozen=True)
class HardeningStep:
    """One step applied to every filter after its bits are set (see docs/schema.md).

    - ``balance``: the filter followed by its complement (twice the length, popcount always
      the input length), bits permuted by a keyed permutation when ``permute``.
    - ``xor_fold``: first half XOR second half (half the length).
    - ``rule90``: ``steps`` rounds of cyclic Rule 90, b'_i = b_(i-1) XOR b_(i+1).
    - ``blip``: each bit flipped with ``flip_probability``, or with 1 / (1 + e^(epsilon / k))
      (randomised response), coins keyed by the secret and the record id.
    - ``diffusion``: ``output_bits`` bits, each the XOR of ``taps`` keyed-random input bits.
    """

    type: str
    permute: bool = True
    steps: int = 1
    flip_probability: float | None = None
    epsilon: float | None = None
    k: int | None = None
    taps: int = 8
    output_bits: int = 0
    description: str = ""

    @property
    def flip(self) -> float:
        """BLIP's flip probability (given, or from epsilon and k)."""
        if self.flip_probability is not None:
            return self.flip_probability
        assert self.epsilon is not None and self.k is not None
        return 1.0 / (1.0 + math.exp(self.epsilon / self.k))

    def output_length(self, length: int) -> int:
        """Bits out of this step for ``length`` bits in."""
        if self.type == "balance":
            return 2 * length
        if self.type == "xor_fold":
            return length // 2
        if self.type == "diffusion":
            return self.output_bits
        return length

    def canonical(self) -> dict[str, Any]:
        if self.type == "balance":
            return {"type": "balance", "permute": self.permute}
        if self.type == "rule90":
            return {"type": "rule90", "steps": self.steps}
        if self.type == "blip":
            if self.flip_probability is not None:
                return {"type": "blip", "flip_probability": self.flip_probability}
            return {"type": "blip", "epsilon": self.epsilon, "k": self.k}
        if self.type == "diffusion":
            return {"type": "diffusion", "taps": self.taps, "output_bits": self.output_bits}
        return {"type": self.type}


@dataclass(frozen=True)
class Hardening:
    """The ordered hardening steps of a schema (none by default)."""

    steps: tuple[HardeningStep, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.steps)

    def output_length(self, filter_length: int) -> int:
        """Bits on the wire: ``filter_length`` passed through every step."""
        length = filter_length
        for st in self.steps:
            length = st.output_length(length)
        return length

    def canonical(self) -> list[dict[str, Any]]:
        return [st.canonical() for st in self.steps]


# -- parsing (errors name the JSON path: linkage.schema_checks) ----------------------------


_STEP_KEYS = {
    "balance": {"permute"},
    "xor_fold": set(),
    "rule90": {"steps"},
    "blip": {"flip_probability", "epsilon", "k"},
    "diffusion": {"taps", "output_bits"},
}


def parse_hardening(doc: Any, length: int, max_bits: int) -> Hardening:
    """The ``hardening`` list of a schema whose filters have ``length`` bits (each step's
    output at most ``max_bits``); errors name the JSON path."""
    _expect(isinstance(doc, list), "$.hardening", "expected a list of steps")
    steps: list[HardeningStep] = []
    for i, sd in enumerate(doc):
        path = f"$.hardening[{i}]"
        _expect(isinstance(sd, dict), path, f"expected a JSON object, got {_kind(sd)}")
        _expect("type" in sd, f"{path}.type", f"missing (one of {', '.join(HARDENING_STEPS)})")
        typ = _str(sd["type"], f"{path}.type", HARDENING_STEPS)
        so = _obj(sd, path, {"type", "description"} | _STEP_KEYS[typ])
        desc = so.get("description", "")
        _expect(isinstance(desc, str), f"{path}.description", "expected a string")
        st = _parse_step(typ, so, path, length, desc)
        out = st.output_length(length)
        _expect(
            out <= max_bits,
            path,
            f"{typ} gives {out}-bit filters (at most {max_bits})",
        )
        steps.append(st)
        length = out
    return Hardening(tuple(steps))


def _parse_step(typ: str, so: dict[str, Any], path: str, length: int, desc: str) -> HardeningStep:
    if typ == "balance":
        perm = so.get("permute", True)
        _expect(isinstance(perm, bool), f"{path}.permute", f"expected true or false, got {perm!r}")
        return HardeningStep("balance", permute=perm, description=desc)
    if typ == "xor_fold":
        _expect(
            length % 128 == 0,
            path,
            f"xor_fold halves the filter, so it needs a length that is a multiple of 128 "
            f"(the filter has {length} bits at this step)",
        )
        return HardeningStep("xor_fold", description=desc)
    if typ == "rule90":
        n = _int(so.get("steps", 1), f"{path}.steps", 1, MAX_RULE90_STEPS)
        return HardeningStep("rule90", steps=n, description=desc)
    if typ == "blip":
        f, eps = so.get("flip_probability"), so.get("epsilon")
        _expect(
            (f is None) != (eps is None),
            path,
            "expected exactly one of flip_probability and epsilon",
        )
        if f is not None:
            fp = _number(f, f"{path}.flip_probability")
            _expect(
                0.0 < fp <= 0.5,
                f"{path}.flip_probability",
                f"expected a number in (0, 0.5], got {f}",
            )
            _expect("k" not in so, f"{path}.k", "k goes with epsilon, not with flip_probability")
            return HardeningStep("blip", flip_probability=fp, description=desc)
        e = _number(eps, f"{path}.epsilon")
        _expect(e > 0, f"{path}.epsilon", f"expected a positive number, got {eps}")
        _expect(
            "k" in so,
            f"{path}.k",
            "missing: with epsilon, give k, the most bits one token sets (its bits_per_token)",
        )
        k = _int(so["k"], f"{path}.k", 1, 65536)
        return HardeningStep("blip", epsilon=e, k=k, description=desc)
    # diffusion
    t = _int(so.get("taps", 8), f"{path}.taps", 1, min(MAX_DIFFUSION_TAPS, length))
    m = _int(so.get("output_bits", length), f"{path}.output_bits", 64, 65536)
    _expect(m % 64 == 0, f"{path}.output_bits", f"expected a multiple of 64, got {m}")
    return HardeningStep("diffusion", taps=t, output_bits=m, description=desc)
