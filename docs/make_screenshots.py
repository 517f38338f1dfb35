"""Screenshots of the HTML reports for docs/reports.md, from synthetic data.

    .venv/bin/python docs/make_screenshots.py            # writes docs/img/report_*.png
    .venv/bin/python docs/make_screenshots.py match_fields   # only the ones named

Runs synth -> encode -> match -> evaluate -> a two-version linkage map on a few thousand
synthetic people (nothing real), and the audit report of a made-up audit result,
and a field-aware match of 1,000 people encoded with the segmented layout,
writes each report, opens it in headless Chromium with networking disabled (the harness of
tests/test_report_browser.py) and saves the top of the page as a PNG (kept under ~300 KB).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import find_chromium, open_page  # noqa: E402
from report_fixtures import PARTY_COLUMNS, audit_result, make_map, make_scenario  # noqa: E402

from linkage.report import (  # noqa: E402
    profile_extract,
    write_audit_report,
    write_encode_report,
    write_evaluation_report,
    write_map_report,
    write_match_report,
)

WIDTH, MAX_HEIGHT = 1100, 2300
HEIGHTS = {"audit": 2000, "map": 1500, "match_waterfall": 1350}  # under ~300 KB
START_AT = {  # the section shown, not the top
    "match_fields": "match-weights-by-field",
    "match_waterfall": "example-how-a-score-is-built",
}
NAMES = ("encode", "match", "evaluate", "audit", "map", "match_fields", "match_waterfall")


def _pages(work: Path, names: set[str]) -> dict[str, Path]:
    """Write the reports named in ``names`` under ``work``: name -> HTML file."""
    pages: dict[str, Path] = {}
    if names & {"encode", "match", "evaluate", "map"}:
        sc = make_scenario(work, people=3000)
        party = "council_b"
        pages = {
            "encode": write_encode_report(
                work / "encode.html",
                sc.summaries[party],
                encoded=sc.encoded[party],
                schema=sc.schema,
                profile=profile_extract(
                    sc.extracts[party], sc.schema, columns=PARTY_COLUMNS[party][1]
                ),
            ),
            "match": write_match_report(work / "match.html", sc.result),
            "evaluate": write_evaluation_report(
                work / "evaluate.html", sc.evaluation, threshold=0.55, links=sc.links,
                truth=sc.truth,
            ),
            "map": write_map_report(work / "map.html", make_map(sc, work)),
        }  # fmt: skip
    if "audit" in names:
        pages["audit"] = write_audit_report(work / "audit.html", audit_result())
    if names & {"match_fields", "match_waterfall"}:  # segmented encodings: field-aware
        fields = make_scenario(work / "fields", people=1000, segmented=True)
        html = write_match_report(work / "match_fields.html", fields.result)
        pages["match_fields"] = pages["match_waterfall"] = html
    return {k: v for k, v in pages.items() if k in names}


def main() -> None:
    if find_chromium() is None:
        sys.exit("chromium not found (apt-get install chromium, or set LINKAGE_CHROMIUM)")
    names = set(sys.argv[1:]) or set(NAMES)
    if names - set(NAMES):
        sys.exit(f"unknown report(s) {sorted(names - set(NAMES))}; choose from {NAMES}")
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="linkage-shots-") as tmp:
        pages = _pages(Path(tmp), names)
        for name, html in pages.items():
            t0 = time.perf_counter()
            shot = out / f"report_{name}.png"
            res = open_page(html, shot, width=WIDTH, max_height=HEIGHTS.get(name, MAX_HEIGHT),
                            start_at=START_AT.get(name))  # fmt: skip
            if res.errors or res.requests:
                sys.exit(f"{name}: errors {res.errors} requests {res.requests}")
            kb = shot.stat().st_size / 1024
            print(f"{shot.relative_to(ROOT)}: {kb:.0f} KB, {len(res.charts)} charts, "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
