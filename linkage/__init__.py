"""linkage: privacy-preserving record linkage with keyed Bloom-filter encodings.

The library has the same verbs as the command line::

    import linkage
    schema = linkage.Schema.load("schema.json")
    secret = linkage.Secret.from_file("secret.key")
    a = linkage.encode("council_a.csv", schema, secret, party="council_a")
    b = linkage.encode("nhs.csv", schema, secret, party="nhs", columns={"surname": "family"})
    result = linkage.match([a, b], threshold=0.8)
    result.links  # pyarrow Table: entity_id, party, record_id

Names are imported on first use, so ``import linkage`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Schema": "linkage.schema",
    "Secret": "linkage.secret",
    "encode": "linkage.partner.pipeline",
    "encode_file": "linkage.partner.pipeline",
    "EncodeSummary": "linkage.partner.pipeline",
    "EncodedTable": "linkage.encoded",
    "audit": "linkage.lab.audit.runner",
    "read_encoded": "linkage.encoded",
    "match": "linkage.tlu.linker",
    "LinkageResult": "linkage.tlu.result",
    "solve": "linkage.tlu.solver",
    "synth": "linkage.lab.synthetic",
    "evaluate": "linkage.lab.quality",
    "normalise": "linkage.partner.normalisers",
    "LinkageError": "linkage.errors",
    "SchemaError": "linkage.errors",
    "SecretError": "linkage.errors",
    "InputError": "linkage.errors",
    "CompatibilityError": "linkage.errors",
    "map_changes": "linkage.tlu.linkage_map",
    "map_create": "linkage.tlu.linkage_map",
    "map_export": "linkage.tlu.linkage_map",
    "map_history": "linkage.tlu.linkage_map",
    "map_info": "linkage.tlu.linkage_map",
    "map_keygen": "linkage.tlu.linkage_map",
    "map_links": "linkage.tlu.linkage_map",
    "map_update": "linkage.tlu.linkage_map",
    "write_audit_report": "linkage.report.audit_report",
    "write_encode_report": "linkage.report.encode_report",
    "write_evaluation_report": "linkage.report.evaluate_report",
    "write_map_report": "linkage.report.map_report",
    "write_match_report": "linkage.report.match_report",
}

__all__ = [
    "CompatibilityError",
    "EncodeSummary",
    "EncodedTable",
    "InputError",
    "LinkageError",
    "LinkageResult",
    "Schema",
    "SchemaError",
    "Secret",
    "SecretError",
    "__version__",
    "audit",
    "encode",
    "encode_file",
    "evaluate",
    "map_changes",
    "map_create",
    "map_export",
    "map_history",
    "map_info",
    "map_keygen",
    "map_links",
    "map_update",
    "match",
    "normalise",
    "read_encoded",
    "solve",
    "synth",
    "write_audit_report",
    "write_encode_report",
    "write_evaluation_report",
    "write_map_report",
    "write_match_report",
]

if TYPE_CHECKING:  # pragma: no cover
    from linkage.encoded import EncodedTable, read_encoded
    from linkage.errors import (
        CompatibilityError,
        InputError,
        LinkageError,
        SchemaError,
        SecretError,
    )
    from linkage.lab.synthetic import synth
    from linkage.partner.normalisers import normalise
    from linkage.partner.pipeline import EncodeSummary, encode, encode_file
    from linkage.report.audit_report import write_audit_report
    from linkage.report.encode_report import write_encode_report
    from linkage.report.evaluate_report import write_evaluation_report
    from linkage.report.map_report import write_map_report
    from linkage.report.match_report import write_match_report
    from linkage.schema import Schema
    from linkage.secret import Secret
    from linkage.tlu.linker import LinkageResult, match
    from linkage.tlu.solver import solve


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linkage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
