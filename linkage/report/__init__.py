"""Rendering of results for people: text summaries and self-contained HTML reports.

Takes result objects; never imports the secret or the partner encoder. HTML reports (one
file each, no network access when opened, small counts suppressed):

- :func:`write_encode_report` (partner side; :func:`profile_extract` gives fill rates),
- :func:`write_match_report` (trusted linkage unit),
- :func:`write_evaluation_report` (against ground truth),
- :func:`write_audit_report` (``linkage audit``: attacks against published baselines),
- :func:`write_map_report` (a persistent linkage map's versions),

each with ``disclosure=Disclosure(min_count=10, round_to=5)`` by default.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Disclosure": "linkage.report.disclosure",
    "write_encode_report": "linkage.report.encode_report",
    "profile_extract": "linkage.report.profile",
    "write_match_report": "linkage.report.match_report",
    "write_evaluation_report": "linkage.report.evaluate_report",
    "write_audit_report": "linkage.report.audit_report",
    "write_map_report": "linkage.report.map_report",
}

__all__ = [
    "Disclosure",
    "profile_extract",
    "write_audit_report",
    "write_encode_report",
    "write_evaluation_report",
    "write_map_report",
    "write_match_report",
]

if TYPE_CHECKING:  # pragma: no cover
    from linkage.report.audit_report import write_audit_report
    from linkage.report.disclosure import Disclosure
    from linkage.report.encode_report import write_encode_report
    from linkage.report.evaluate_report import write_evaluation_report
    from linkage.report.map_report import write_map_report
    from linkage.report.match_report import write_match_report
    from linkage.report.profile import profile_extract


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linkage.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
