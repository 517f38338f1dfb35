"""Each HTML report opens in headless Chromium with networking disabled: no console errors, no
network request, every chart drawn; a screenshot is saved in the test's temp folder.

Skipped (with the reason) when no Chromium is installed; CI installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import PageResult, find_chromium, open_page

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not installed (apt-get install chromium, or set LINKAGE_CHROMIUM)",
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from report_fixtures import make_scenario

    return make_scenario(tmp_path_factory.mktemp("report"), people=1200)


def check_page(html: Path, tmp_path: Path, min_charts: int) -> PageResult:
    shot = tmp_path / (html.stem + ".png")
    res = open_page(html, shot)
    assert res.errors == [], res.errors
    assert res.requests == [], f"the page tried to fetch {res.requests}"
    assert res.console == [], res.console
    assert len(res.charts) == html.read_text().count('<figure class="chart">')
    assert len(res.charts) >= min_charts
    for c in res.charts:
        assert c["kind"] in ("svg", "canvas"), c
        assert c["width"] > 100 and c["height"] > 50, c
        assert c["marks"] > 0, f"chart drawn without data marks: {c}"
        assert c["caption"].strip(), "every chart needs a caption"
    assert res.text_chars > 500
    assert shot.exists() and shot.stat().st_size > 10_000
    return res


def test_browser_harness_sees_errors_and_fetches(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><figure class='chart'><svg width='200' height='100'></svg>"
        "<figcaption>x</figcaption></figure><img src='https://example.org/x.png'>"
        "<script>console.error('boom')</script></body></html>"
    )
    res = open_page(bad, tmp_path / "bad.png")
    assert any("boom" in e for e in res.errors)
    assert res.requests == ["https://example.org/x.png"]
    assert res.charts[0]["marks"] == 0


def test_encode_report_renders(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from report_fixtures import PARTY_COLUMNS

    from linkage.report.encode_report import write_encode_report
    from linkage.report.profile import profile_extract

    party = "council_a"
    out = write_encode_report(
        tmp_path / "encode.html",
        scenario.summaries[party],
        encoded=scenario.encoded[party],
        schema=scenario.schema,
        profile=profile_extract(
            scenario.extracts[party], scenario.schema, columns=PARTY_COLUMNS[party][1]
        ),
    )
    check_page(out, tmp_path, min_charts=3)


def test_evaluation_report_renders(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.evaluate_report import write_evaluation_report

    out = write_evaluation_report(
        tmp_path / "evaluate.html",
        scenario.evaluation,
        threshold=0.55,
        links=scenario.links,
        truth=scenario.truth,
    )
    check_page(out, tmp_path, min_charts=2)


def test_match_report_renders(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.match_report import write_match_report

    out = write_match_report(tmp_path / "match.html", scenario.result)
    check_page(out, tmp_path, min_charts=4)


def test_audit_report_renders(tmp_path: Path) -> None:
    from report_fixtures import audit_result

    from linkage.report.audit_report import write_audit_report

    out = write_audit_report(tmp_path / "audit.html", audit_result())
    check_page(out, tmp_path, min_charts=4)


def test_map_report_renders(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from report_fixtures import make_map

    from linkage.report.map_report import write_map_report

    out = write_map_report(tmp_path / "map.html", make_map(scenario, tmp_path))
    check_page(out, tmp_path, min_charts=2)


def test_field_aware_match_report_renders(tmp_path: Path) -> None:
    """Segmented encodings (field-aware scoring): the match weights chart and the two example
    waterfalls are drawn too."""
    from report_fixtures import make_scenario

    from linkage.report.match_report import write_match_report

    sc = make_scenario(tmp_path / "fields", people=400, segmented=True)
    assert sc.result.field_scores is not None
    out = write_match_report(tmp_path / "match_fields.html", sc.result)
    res = check_page(out, tmp_path, min_charts=7)
    captions = " ".join(c["caption"] for c in res.charts)
    assert "Long blue bars" in captions and captions.count("Read from the top") == 2
