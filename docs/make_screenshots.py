"""Screenshots of the HTML reports for docs/reports.md, from synthetic data.

    .venv/bin/python docs/make_screenshots.py            # writes docs/img/report_*.png

Runs synth -> encode -> match -> evaluate -> a two-version linkage map on a few thousand
synthetic people (nothing real), and the audit report of a made-up audit result,
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
HEIGHTS = {"audit": 2000, "map": 1500}  # the top of the page, under ~300 KB


def main() -> None:
    if find_chromium() is None:
        sys.exit("chromium not found (apt-get install chromium, or set LINKAGE_CHROMIUM)")
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="linkage-shots-") as tmp:
        work = Path(tmp)
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
            "audit": write_audit_report(work / "audit.html", audit_result()),
            "map": write_map_report(work / "map.html", make_map(sc, work)),
        }  # fmt: skip
        for name, html in pages.items():
            t0 = time.perf_counter()
            shot = out / f"report_{name}.png"
            res = open_page(html, shot, width=WIDTH, max_height=HEIGHTS.get(name, MAX_HEIGHT))
            if res.errors or res.requests:
                sys.exit(f"{name}: errors {res.errors} requests {res.requests}")
            kb = shot.stat().st_size / 1024
            print(f"{shot.relative_to(ROOT)}: {kb:.0f} KB, {len(res.charts)} charts, "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
