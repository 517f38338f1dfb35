"""Checks for parsing JSON documents (schemas and their sections): each error is one
:class:`~linkage.errors.SchemaError` naming the JSON path of the bad value (``$.fields[2].q``).

Shared by :mod:`linkage.schema`, :mod:`linkage.hardening` and the other schema sections, so
every section reports problems the same way.
"""

from __future__ import annotations

import math
from typing import Any

from linkage.errors import SchemaError


def expect(cond: bool, path: str, msg: str) -> None:
    """Raise ``SchemaError("{path}: {msg}")`` unless ``cond``."""
    if not cond:
        raise SchemaError(f"{path}: {msg}")


def kind(v: Any) -> str:
    """The JSON kind of ``v`` in words ("a string", "null", ...), for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def obj(doc: Any, path: str, allowed: set[str]) -> dict[str, Any]:
    """``doc`` as a JSON object whose keys are all in ``allowed`` (keys starting with ``_``
    are comments and always allowed)."""
    expect(isinstance(doc, dict), path, f"expected a JSON object, got {kind(doc)}")
    unknown = sorted(k for k in doc if k not in allowed and not k.startswith("_"))
    expect(
        not unknown,
        f"{path}.{unknown[0]}" if unknown else path,
        f"unknown key (expected one of: {', '.join(sorted(allowed))})",
    )
    return dict(doc)


def integer(v: Any, path: str, lo: int, hi: int) -> int:
    """``v`` as an integer in ``lo..hi`` (booleans refused)."""
    expect(
        isinstance(v, int) and not isinstance(v, bool), path, f"expected an integer, got {kind(v)}"
    )
    expect(lo <= v <= hi, path, f"expected an integer in {lo}..{hi}, got {v}")
    return int(v)


def string(v: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
    """``v`` as a string, one of ``choices`` when given."""
    expect(isinstance(v, str), path, f"expected a string, got {kind(v)}")
    if choices is not None:
        expect(v in choices, path, f"expected one of {', '.join(choices)}, got {v!r}")
    return str(v)


def number(v: Any, path: str) -> float:
    """``v`` as a finite number (booleans refused)."""
    expect(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
        path,
        f"expected a number, got {kind(v)}",
    )
    return float(v)
