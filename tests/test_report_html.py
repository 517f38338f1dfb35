"""HTML reports without a browser: disclosure control, self-containment, no ids or values."""

from __future__ import annotations

import csv
import re
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from linkage.report.disclosure import Disclosure
from linkage.report.page import Page, write_html

# --------------------------------------------------------------------------- helpers

_COUNT_CELL = re.compile(r'<(?:td|div) class="[^"]*\bcount\b[^"]*">([^<]*(?:&lt;[^<]*)?)</')


def count_cells(html: str) -> list[str]:
    return [m.group(1).replace("&lt;", "<") for m in _COUNT_CELL.finditer(html)]


def assert_counts_disclosed(html: str, limit: int = 10) -> None:
    """Every count printed is 0, suppressed (<limit) or at least ``limit``."""
    cells = count_cells(html)
    assert cells, "no count cells found"
    for text in cells:
        if text == f"<{limit:,}":
            continue
        n = int(text.replace(",", ""))
        assert n == 0 or n >= limit, f"count {text} below the limit {limit}"


def assert_self_contained(html: str) -> None:
    low = html.lower()
    assert "http://" not in low and "https://" not in low
    assert "<script" not in low and "<link" not in low and "<img" not in low
    assert "@import" not in low and "url(" not in low
    assert not re.search(r"\ssrc\s*=", low)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith("#") for h in hrefs), hrefs


def assert_no_ids(html: str, ids: set[str]) -> None:
    leaked = [i for i in ids if i and i in html]
    assert not leaked, f"record ids in the report: {leaked[:5]}"


def extract_values(paths: list[Path], min_len: int = 7, limit: int = 300) -> set[str]:
    """Distinctive cell values of the extracts (names, addresses, dates...)."""
    out: set[str] = set()
    for p in paths:
        with p.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for v in row.values():
                    v = (v or "").strip()
                    if len(v) >= min_len:
                        out.add(v)
                if len(out) > limit * len(paths):
                    break
    return out


# --------------------------------------------------------------------------- disclosure


def test_disclosure_suppresses_and_rounds() -> None:
    d = Disclosure()
    assert d.count(0) == "0"
    assert [d.count(n) for n in (1, 5, 9)] == ["<10"] * 3
    assert d.count(10) == "10"
    assert d.count(12) == "10" and d.count(13) == "15"
    assert d.count(123456) == "123,455"
    assert d.value(3) is None and d.approx(3) == 5.0
    # a share or rate never gives away a small count, from either side
    assert d.share(3, 1000) == "under 1.0%"
    assert d.share(997, 1000) == "over 99.0%"
    assert d.share(500, 1000) == "50.0%"
    assert d.rate(997, 1000) == "over 0.990"
    assert d.rate(2, 1000) == "under 0.010"
    assert d.rate(5, 8) == "-"  # the total itself is small


def test_disclosure_limit_is_configurable() -> None:
    d = Disclosure(min_count=20, round_to=1)
    assert d.count(19) == "<20" and d.count(20) == "20" and d.count(21) == "21"
    assert "1 to 19" in d.statement()
    with pytest.raises(ValueError):
        Disclosure(min_count=0)


def test_page_is_escaped_atomic_and_private(tmp_path: Path) -> None:
    p = Page("A <b>title</b>", disclosure=Disclosure())
    s = p.section("Numbers & more")
    s.table(["what", "rows"], [["<script>x</script>", 3], ["many", 1234]])
    out = p.write(tmp_path / "r.html")
    html = out.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*partial"))
    assert_counts_disclosed(html)
    assert_self_contained(html)
    assert "Disclosure control" in html and "no record identifiers" in html
    write_html(out, "again")  # replaces atomically
    assert out.read_text() == "again"


def test_write_html_uses_the_project_writer(tmp_path: Path) -> None:
    """Reports go through linkage._files.atomic_outputs: OS errors become one OutputError
    naming the report (never a temporary name), and nothing is left behind."""
    from linkage._files import OutputError

    with pytest.raises(OutputError, match="no_such_folder"):
        write_html(tmp_path / "no_such_folder" / "r.html", "x")
    (tmp_path / "d.html").mkdir()
    with pytest.raises(OutputError, match=r"d\.html"):
        write_html(tmp_path / "d.html", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.html"]


# --------------------------------------------------------------------------- real reports


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from report_fixtures import make_scenario

    return make_scenario(tmp_path_factory.mktemp("report"), people=1500)


def _check_report(html: str, scenario, limit: int = 10) -> None:  # type: ignore[no-untyped-def]
    assert_self_contained(html)
    assert_counts_disclosed(html, limit)
    assert_no_ids(html, scenario.record_ids)
    values = extract_values(list(scenario.extracts.values()))
    leaked = [v for v in values if v in html]
    assert not leaked, f"extract values in the report: {leaked[:5]}"
    assert f"Counts from 1 to {limit - 1} are suppressed" in html


def test_encode_report(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from report_fixtures import PARTY_COLUMNS

    from linkage.report.encode_report import write_encode_report
    from linkage.report.profile import profile_extract

    party = "council_b"
    prof = profile_extract(
        scenario.extracts[party], scenario.schema, columns=PARTY_COLUMNS[party][1]
    )
    assert 0 < prof.filled["surname"] <= prof.rows
    out = write_encode_report(
        tmp_path / "encode.html",
        scenario.summaries[party],
        encoded=scenario.encoded[party],
        schema=scenario.schema,
        profile=prof,
    )
    html = out.read_text()
    _check_report(html, scenario)
    assert scenario.schema.fingerprint in html
    assert html.count("<svg") >= 3


def test_encode_report_suppresses_planted_small_counts(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.encode_report import write_encode_report

    summary = scenario.summaries["nhs"]
    summary.problems = Counter(
        {
            ("sex", "invalid sex code"): 3,
            ("postcode", "invalid UK postcode"): 17,
            ("*", "no usable field"): 7,
        }
    )
    out = write_encode_report(
        tmp_path / "e.html", summary, encoded=scenario.encoded["nhs"],
        disclosure=Disclosure(min_count=20, round_to=1),
    )  # fmt: skip
    html = out.read_text()
    assert_counts_disclosed(html, 20)
    cells = count_cells(html)
    assert "3" not in cells and "7" not in cells and "17" not in cells
    assert cells.count("<20") >= 3


def test_evaluation_report(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.evaluate_report import write_evaluation_report

    out = write_evaluation_report(
        tmp_path / "evaluate.html",
        scenario.evaluation,
        threshold=0.55,
        links=scenario.links,
        truth=scenario.truth,
    )
    html = out.read_text()
    _check_report(html, scenario)
    assert "Errors by party pair" in html and "entity size" in html
    assert html.count("<svg") >= 2


def test_bit_counts_match_a_direct_count() -> None:
    from linkage.report.encode_report import bit_counts

    rng = np.random.default_rng(0)
    f = rng.integers(0, 2**63, (300, 4), dtype=np.uint64)
    direct = np.array([[(int(r[p // 64]) >> (p % 64)) & 1 for p in range(256)] for r in f]).sum(0)
    assert (bit_counts(f, chunk=64) == direct).all()


def test_match_report(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.match_report import write_match_report

    out = write_match_report(tmp_path / "match.html", scenario.result)
    html = out.read_text()
    _check_report(html, scenario)
    assert "Estimated precision and recall" in html
    # no individual pair score: the matched pairs' scores with 4+ decimals never appear
    scores = {
        f"{s:.4f}" for s in scenario.result.pairs.column("score").to_pylist()[:200] if s < 0.9999
    }
    assert not [s for s in scores if s in html]


# --------------------------------------------------------------------------- audit report


def test_audit_report(tmp_path: Path) -> None:
    from report_fixtures import audit_result

    from linkage.report.audit_report import PUBLISHED, write_audit_report

    result = audit_result()
    out = write_audit_report(tmp_path / "audit.html", result)
    html = out.read_text()
    assert_self_contained(html)
    assert_counts_disclosed(html)
    assert "Counts from 1 to 9 are suppressed" in html
    assert result.threat_model.split(":")[0] in html and "does NOT know the secret" in html
    # every published baseline beside ours, with its source
    for b in PUBLISHED:
        assert f"{b.rate:.1%}" in html and esc_text(b.source) in html
    for rate in ("79.0%", "98.7%", "99.8%", "20.7%", "0.1%"):
        assert rate in html
    # per attack, per field, per overlap, settings, run times
    assert "23.5%" in html and "3.4%" in html  # graph at 100% overlap; block key
    assert "seeds=100, pool_nodes=3000" in html and "96.0 s" in html
    assert "block key surname_soundex_yob" in html
    # rates resting on a small count (4 of 2,000 records re-identified) are bounds
    assert "0.2%" not in html.replace("under 0.2%", "")
    assert "under 0.5%" in html
    assert html.count("<svg") >= 4 and "target 1%" in html
    assert "Above the 1% target" in html


def test_audit_report_from_a_real_audit(tmp_path: Path) -> None:
    """The report reads what linkage.audit returns (not only the fixture's shapes)."""
    from linkage.lab.audit.runner import audit
    from linkage.report.audit_report import write_audit_report
    from linkage.schema_template import uk_person_unhardened

    result = audit(uk_person_unhardened(), people=200, attacks=("leaks", "frequency"), seed=1)
    html = write_audit_report(tmp_path / "a.html", result).read_text()
    assert_self_contained(html)
    assert_counts_disclosed(html)
    assert "Frequency alignment" in html and "Leak statistics" in html


def esc_text(text: str) -> str:
    import html as _html

    return _html.escape(text, quote=True)


# --------------------------------------------------------------------------- match statistics


def test_match_stats_for_the_report(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The match records a binned histogram of every scored candidate (keys blocking: below
    the threshold from a sample), peak memory per stage and the partners' stub counts; the
    report shows them without single scores or small counts."""
    import linkage
    from linkage.encoded import EncodedTable
    from linkage.report.match_report import write_match_report

    encs = [scenario.encoded[p] for p in sorted(scenario.encoded)]
    first = encs[0]
    encs[0] = EncodedTable(first.table, {**first.meta, "rows_unlinkable": "12"})
    res = linkage.match(encs, threshold=0.7, blocking="keys", seed=1)
    st = res.stats
    h = st.score_histogram
    assert h is not None and h["scope"] == "all candidates" and len(h["counts"]) == 100
    counts = np.asarray(h["counts"])
    below = _below_threshold_reference(encs, 0.7)
    # below the threshold: an estimate from every 64th scored slot
    assert abs(counts[:70].sum() / below.sum() - 1) < 0.25
    # at and above it exact: every matched pair is among the candidates counted there
    matched, _ = np.histogram(res.pairs.column("score").to_numpy(), bins=100, range=(0, 1))
    assert (counts[70:] >= matched[70:]).all() and counts[70:].sum() == st.pairs_above_threshold
    assert counts[:70].sum() > 3 * counts[70:].sum()  # the different-people hump is there
    assert list(st.memory) == list(st.seconds)
    mem = list(st.memory.values())
    assert mem[0] > 10_000_000 and mem == sorted(mem)
    assert st.stub_records == {first.party: 12}

    html = write_match_report(tmp_path / "m.html", res).read_text()
    _check_report(html, scenario)
    assert "Scores of scored candidate pairs" in html and "every 64th" in html
    assert "stub records left out by the partner" in html and "peak memory after" in html
    assert "MiB" in html or "GiB" in html  # the test process may be past 1 GiB


def _below_threshold_reference(encs: list, threshold: float) -> np.ndarray:  # type: ignore[type-arg]
    """Histogram of the Dice scores under ``threshold`` of every cross-party pair sharing a
    block key, once per shared key, by plain numpy (the reference for keys blocking)."""
    from linkage.tlu.engines import block_key_arrays

    sizes = [len(e) for e in encs]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    filters = np.concatenate([e.filters for e in encs])
    party = np.repeat(np.arange(len(encs)), sizes)
    bk = block_key_arrays(encs, offsets)
    assert bk is not None
    keys, owners = bk
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    scores = []
    for grp in np.split(owners, cuts):
        if len(grp) < 2:
            continue
        a, b = np.triu_indices(len(grp), 1)
        i, j = grp[a], grp[b]
        keep = party[i] != party[j]
        i, j = i[keep], j[keep]
        inter = np.bitwise_count(filters[i] & filters[j]).sum(1)
        den = np.bitwise_count(filters[i]).sum(1) + np.bitwise_count(filters[j]).sum(1)
        scores.append(2 * inter / np.maximum(den, 1))
    s = np.concatenate(scores)
    counts, _ = np.histogram(s[s < threshold], bins=100, range=(0, 1))
    return counts


def test_keys_histogram_below_threshold_is_exact_without_sampling(scenario, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import linkage
    import linkage.tlu.blocking as blocking

    monkeypatch.setattr(blocking, "SAMPLE_STRIDE", 1)
    encs = [scenario.encoded[p] for p in sorted(scenario.encoded)]
    res = linkage.match(encs, threshold=0.7, blocking="keys", seed=1)
    h = res.stats.score_histogram
    assert h is not None and h["sample_stride"] == 1
    ref = _below_threshold_reference(encs, 0.7)
    assert (np.asarray(h["counts"][:70]) == ref[:70]).all()


def test_exhaustive_match_histogram_covers_pairs_above_threshold(scenario) -> None:  # type: ignore[no-untyped-def]
    import linkage

    res = linkage.match(list(scenario.encoded.values()), threshold=0.8, blocking="none")
    h = res.stats.score_histogram
    assert h is not None and h["scope"] == "at or above the threshold"
    assert sum(h["counts"]) == res.stats.pairs_above_threshold
    assert sum(h["counts"][:80]) == 0 and res.stats.stub_records is None


def test_map_report(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from report_fixtures import make_map

    from linkage.report.map_report import write_map_report
    from linkage.tlu.linkage_map import map_info

    path = make_map(scenario, tmp_path)
    html = write_map_report(tmp_path / "map.html", path).read_text()
    _check_report(html, scenario)
    assert "Versions" in html and "ids retired" in html and html.count("<svg") == 2
    info = map_info(path)
    assert info["current_version"] == 2
    assert f">{info['versions'][1]['retired']:,}<" in html  # 200 retired: a round count


def test_cli_audit_report(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from linkage.cli import main
    from linkage.schema_template import uk_person_unhardened

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(uk_person_unhardened()))
    args = ["audit", "-s", str(schema), "--people", "200", "--attacks", "leaks,frequency"]
    out = tmp_path / "audit.html"
    res = CliRunner().invoke(main, [*args, "--report", str(out), "--report-min-count", "20"])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert_self_contained(html)
    assert_counts_disclosed(html, 20)
    assert "Counts from 1 to 19 are suppressed" in html
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # an existing report is refused before any work, with one Error line
    res = CliRunner().invoke(main, [*args, "--report", str(out)])
    assert res.exit_code == 2 and res.output.count("Error:") == 1 and "audit:" not in res.output


def test_encode_report_uses_the_wire_length(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # hardened default template: 1024-bit filters diffused to 2048 bits on the wire; the
    # report labelled the bits-set chart "of 1024"
    from report_fixtures import PARTY_COLUMNS, SECRET

    import linkage
    from linkage.report.encode_report import write_encode_report
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_template
    from linkage.secret import Secret

    schema = Schema.from_dict(uk_person_template())
    assert schema.output_length == 2048 and schema.filter_length == 1024
    party = "council_b"
    id_col, cols = PARTY_COLUMNS[party]
    enc = tmp_path / "h.parquet"
    summary = linkage.encode_file(
        scenario.extracts[party], enc, schema, Secret(SECRET), party=party, id_column=id_col,
        columns=cols,
    )  # fmt: skip
    encoded = linkage.read_encoded(enc)
    for sch in (schema, None):
        html = write_encode_report(
            tmp_path / f"e{sch is None}.html", summary, encoded=encoded, schema=sch
        ).read_text()
        assert "of 2048" in html and "of 1024" not in html
        assert "2048 bits" in html


# --------------------------------------------------------------------------- field-aware


@pytest.fixture(scope="module")
def field_scenario(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """400 synthetic people in three parties, segmented layout: field-aware scoring."""
    from report_fixtures import make_scenario

    return make_scenario(tmp_path_factory.mktemp("fields"), people=400, segmented=True)


def test_match_report_field_weights_and_example(field_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.match_report import write_match_report

    res = field_scenario.result
    fs = res.field_scores
    assert fs is not None
    html = write_match_report(tmp_path / "m.html", res).read_text()
    _check_report(html, field_scenario)
    assert "Match weights by field" in html and "Example: how a score is built" in html
    assert "not taken from a real pair" in html
    assert "Field-aware scoring: pairs whose" in html  # the summary says how pairs were scored
    model = fs.model
    w = model.weights()
    # every comparison's exact-level weight is in the table, with its m and u
    for c, name in enumerate(model.names):
        assert f"<td>{name}</td>" in html
        assert f"{w[c, 0]:+.2f}" in html
    assert f"{model.prior.log2_odds(np.array([True]))[0]:+.2f}" in html
    assert html.count("A typical match") >= 1 and "A typical non-match" in html
    part = html[html.index('id="match-weights-by-field"') : html.index('id="entities-by-size')]
    assert part.count('<figure class="chart">') == 3  # the weights and two waterfalls
    # no individual pair's score: no candidate's probability to 4 decimals, no pair's weight
    # (as whole numbers: "0.0026" inside a model figure "0.00264" is no pair's score)
    numbers = set(re.findall(r"[-+]?\d+\.\d+", html))
    probs = {f"{p:.4f}" for p in fs.probability.tolist() if 0.001 < p < 0.999}
    assert not probs & numbers
    weights = {f"{x:+.3f}" for x in fs.weight.tolist()} | {f"{x:.3f}" for x in fs.weight}
    assert not weights & numbers


def test_typical_levels_need_enough_pairs() -> None:
    from linkage.report.field_weights import typical_levels

    lv = np.array([[0, 4]] * 12 + [[1, -1]] * 5, np.int8)
    everyone = np.ones(len(lv), bool)
    assert typical_levels(lv, everyone, 5, 10).tolist() == [0, 4]
    # a group below the limit, or a most common level held by fewer than the limit: nothing
    assert typical_levels(lv, np.arange(len(lv)) >= 8, 5, 10) is None
    assert typical_levels(lv, everyone, 5, 13) is None
    # missing counts as a level of its own
    assert typical_levels(lv[12:], np.ones(5, bool), 5, 5).tolist() == [1, -1]


def test_match_report_without_field_scores_has_no_weights(scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from linkage.report.match_report import write_match_report

    assert scenario.result.field_scores is None
    html = write_match_report(tmp_path / "d.html", scenario.result).read_text()
    assert "Match weights by field" not in html and "how a score is built" not in html


def test_match_report_shows_settings_as_they_are_and_says_how_fields_link(  # type: ignore[no-untyped-def]
    field_scenario, scenario, tmp_path: Path
) -> None:
    """A setting (max candidates 16) is not a count of people: no rounding to 5; counts keep
    theirs. Field-aware scoring keeps candidates at Dice >= 0.5 and links by probability, so
    the score chart does not say pairs under a threshold are dropped."""
    from dataclasses import replace

    from linkage.report.match_report import write_match_report

    res = field_scenario.result
    detail = {**res.stats.blocking_detail, "max_candidates": 16, "capped_records": 16}
    res = replace(res, stats=replace(res.stats, blocking_detail=detail))
    html = write_match_report(tmp_path / "f.html", res, disclosure=Disclosure()).read_text()
    assert re.search(r"<td>max candidates</td><td[^>]*>16</td>", html)
    assert re.search(r"<td>capped records</td><td[^>]*>15</td>", html)  # a count: rounded
    part = html[html.index('id="score-distribution"') : html.index('id="estimated-precision')]
    assert "at or above the threshold are kept" not in part
    assert "match probability" in part and "Dice similarity of at least 0.5" in part
    dice = write_match_report(tmp_path / "d.html", scenario.result).read_text()
    part = dice[dice.index('id="score-distribution"') : dice.index('id="estimated-precision')]
    assert "match probability" not in part and "threshold" in part


@pytest.mark.parametrize(
    ("template", "risky"),
    [("uk-person", False), ("uk-person-unhardened", True), ("uk-person-fields", True)],
)
def test_encode_report_carries_the_schemas_risk_warnings(  # type: ignore[no-untyped-def]
    scenario, tmp_path: Path, template: str, risky: bool
) -> None:
    """The measured-risk warnings `encode` prints to stderr are in the report too, first."""
    import html as html_mod

    from linkage.report.encode_report import write_encode_report
    from linkage.schema import Schema
    from linkage.schema_template import TEMPLATES, risk_warnings

    schema = Schema.from_dict(TEMPLATES[template]())
    out = write_encode_report(
        tmp_path / "e.html", scenario.summaries["nhs"], encoded=scenario.encoded["nhs"],
        schema=schema,
    )  # fmt: skip
    text = html_mod.unescape(out.read_text())
    warnings = risk_warnings(schema)
    assert bool(warnings) is risky
    assert ("Privacy risk of this schema" in text) is risky
    for msg in warnings:
        assert msg in text
        assert text.index("Privacy risk of this schema") < text.index("Summary")
