"""Peer tool configurations equivalent to linkage's: a clkhash v3 linkage schema for the
10-field person table (the same fields, q-grams and bit budgets as
:func:`benchmarks.linkage_cli.linkage_person_schema`) and a blocklib P-Sig blocking schema.
Imports nothing from ``linkage``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.data import PERSON_FIELDS

__all__ = ["blocklib_psig_schema", "clkhash_schema_v3"]


def clkhash_schema_v3(
    fields: Sequence[str] = PERSON_FIELDS,
    *,
    n_bits: int = 1024,
    ngram: int = 2,
    bits_per_feature: int | None = 70,
    bits_per_token: int | None = None,
    hash_type: str = "blakeHash",
    id_column: str | None = "record_id",
    kdf_salt: bytes | None = None,
    kdf_info: bytes | None = None,
    missing_sentinel: str | None = None,
) -> dict[str, Any]:
    """A clkhash v3 linkage schema (as a JSON-able dict) hashing every field as a string.

    Each field: utf-8 string, n-gram comparison (``ngram``, default bigrams), and either
    ``bitsPerFeature`` (default 70 per field: ~700 insertions into 1024 bits, about half set)
    or ``bitsPerToken`` (give exactly one of the two). ``id_column`` is prepended as an
    ignored feature so that the CSV's first column can carry the record id. KDF: HKDF-SHA256
    with optional salt/info (base64 in the schema).
    """
    import base64

    if (bits_per_feature is None) == (bits_per_token is None):
        raise ValueError("give exactly one of bits_per_feature or bits_per_token")
    strategy = (
        {"bitsPerFeature": int(bits_per_feature)}
        if bits_per_feature is not None
        else {"bitsPerToken": int(bits_per_token)}  # type: ignore[arg-type]
    )
    if next(iter(strategy.values())) < 1:
        raise ValueError(f"bits per feature/token must be >= 1, got {strategy}")
    if n_bits < 8:
        raise ValueError(f"n_bits must be >= 8, got {n_bits}")
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    if hash_type not in ("blakeHash", "doubleHash"):
        raise ValueError(f"hash_type must be 'blakeHash' or 'doubleHash', got {hash_type!r}")
    names = list(fields) if id_column is None else [id_column, *fields]
    if not fields:
        raise ValueError("need at least one field")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate column names in {names}")

    kdf: dict[str, Any] = {"type": "HKDF", "hash": "SHA256", "keySize": 64}
    if kdf_salt is not None:
        kdf["salt"] = base64.b64encode(kdf_salt).decode("ascii")
    if kdf_info is not None:
        kdf["info"] = base64.b64encode(kdf_info).decode("ascii")

    features: list[dict[str, Any]] = []
    if id_column is not None:
        features.append({"identifier": id_column, "ignored": True})
    for name in fields:
        hashing: dict[str, Any] = {
            "comparison": {"type": "ngram", "n": int(ngram)},
            "strategy": dict(strategy),
            "hash": {"type": hash_type},
        }
        if missing_sentinel is not None:
            hashing["missingValue"] = {"sentinel": missing_sentinel}
        features.append(
            {
                "identifier": name,
                "format": {"type": "string", "encoding": "utf-8", "case": "mixed"},
                "hashing": hashing,
            }
        )
    return {"version": 3, "clkConfig": {"l": int(n_bits), "kdf": kdf}, "features": features}


def blocklib_psig_schema(
    name_fields: Sequence[str] = ("given_name", "surname"),
    exact_fields: Sequence[str] = ("date_of_birth",),
    *,
    max_ratio: float = 0.02,
    bf_len: int = 2048,
    n_hash: int = 4,
) -> dict[str, Any]:
    """A blocklib 0.1 P-Sig blocking schema (JSON-able dict) over named CSV columns.

    Signatures: first two characters of every name field together, metaphone of every name
    field together, and each exact field's value on its own; blocks larger than
    ``max_ratio`` of a party's records are dropped (blocklib's ratio filter).
    """
    if not name_fields and not exact_fields:
        raise ValueError("need at least one blocking field")
    if not 0.0 < max_ratio <= 1.0:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio}")
    if bf_len < 8 or n_hash < 1:
        raise ValueError(f"need bf_len >= 8 and n_hash >= 1, got {bf_len}, {n_hash}")
    specs: list[list[dict[str, Any]]] = []
    if name_fields:
        specs.append(
            [
                {"type": "characters-at", "config": {"pos": ["0:2"]}, "feature": f}
                for f in name_fields
            ]
        )
        specs.append([{"type": "metaphone", "feature": f} for f in name_fields])
    specs += [[{"type": "feature-value", "feature": f}] for f in exact_fields]
    return {
        "type": "p-sig",
        "version": 1,
        "config": {
            "blocking-features": [*name_fields, *exact_fields],
            "filter": {"type": "ratio", "max": float(max_ratio), "min": 0.0},
            "blocking-filter": {
                "type": "bloom filter",
                "number-hash-functions": int(n_hash),
                "bf-len": int(bf_len),
            },
            "signatureSpecs": specs,
        },
    }
