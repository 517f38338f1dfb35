"""The encode report says what became of suspected placeholders, in words that agree with
its own tables: under ``--suspected-placeholders report`` they are kept (not "rejected
(treated as missing)"), under ``missing`` they are rejected; the placeholder section never
says "no value looks like a placeholder" beside a table of flagged rows.

Found on the bundled demo: "305 values rejected (treated as missing)" of which 303 were kept,
and "No value looks like a placeholder" above a table flagging 91% of rows.
"""

from __future__ import annotations

import html as _html
import re
from collections import Counter
from pathlib import Path

import pytest

from linkage.partner.pipeline import EncodeSummary
from linkage.partner.values import REASONS, SUSPECTED_KEPT, SUSPECTED_MISSING
from linkage.report import Disclosure
from linkage.report.encode_report import write_encode_report
from linkage.report.profile import FieldProfile
from linkage.report.text import encode_summary_lines

EXACT = Disclosure(min_count=1, round_to=1)


def _summary(mode: str | None) -> EncodeSummary:
    """The demo's run: 15 postcodes on 303 rows suspected (``mode``: report or missing;
    None: nothing suspected), 2 invalid postcodes, 2 bad NHS numbers, 1 row unlinkable."""
    s = EncodeSummary(party="p", rows_read=333, rows_encoded=332, rows_unlinkable=1)
    s.problems = Counter(
        {
            ("postcode", REASONS[7]): 2,
            ("nhs_number", "NHS number fails the mod-11 check"): 2,
            ("*", "too little identifying information"): 1,
        }
    )
    if mode is not None:
        s.suspected_placeholders = [("postcode", 20 + (i >= 12), 0.06) for i in range(15)]
        why = REASONS[SUSPECTED_KEPT if mode == "report" else SUSPECTED_MISSING]
        s.problems[("postcode", why)] = sum(r for _, r, _ in s.suspected_placeholders)
    return s


def _text(path: Path) -> str:
    t = path.read_text()
    t = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", t, flags=re.S)
    t = _html.unescape(re.sub(r"<[^>]+>", " ", t))
    return re.sub(r"\s+", " ", t)


def _section(text: str, title: str, after: str) -> str:
    start = text.rindex(title)  # the section, not its entry in the contents
    return text[start : text.index(after, start)]


def _report(tmp_path: Path, mode: str | None, **kw: object) -> str:
    sm = _summary(mode)
    assert sum(r for _, r, _ in sm.suspected_placeholders) in (0, 303)
    out = write_encode_report(tmp_path / "e.html", sm, disclosure=EXACT, **kw)  # type: ignore[arg-type]
    return _text(out)


def test_kept_placeholders_are_not_counted_as_rejected(tmp_path: Path) -> None:
    text = _report(tmp_path, "report")
    assert "4 values rejected (treated as missing)" in text  # 2 postcodes + 2 NHS numbers
    assert "303 values kept, flagged as suspected placeholders" in text
    assert "1 rows left out (too little identifying information)" in text
    assert "Suspected placeholder values were kept" in text
    problems = _section(text, "Rejected and flagged values", "Field completeness")
    assert "suspected placeholder (one value on many rows; kept, see " in problems
    assert "kept 303" in problems and "treated as missing 2" in problems


def test_placeholder_section_agrees_with_the_flagged_rows(tmp_path: Path) -> None:
    prof = FieldProfile(rows=333, filled={"postcode": 317})  # the profile found nothing
    text = _report(tmp_path, "report", profile=prof)
    sec = _section(text, "Suspected placeholder values", "Bloom filters")
    assert "No value looks like a placeholder" not in sec
    assert "The encoder found no value" not in sec
    assert "No value of the extract matches a known placeholder pattern" in sec  # the profile
    assert "postcode 15 303 91.0% kept" in sec
    assert "--suspected-placeholders missing" in sec  # the way to drop them, as they were kept


def test_placeholders_encoded_as_missing_are_rejected(tmp_path: Path) -> None:
    text = _report(tmp_path, "missing")
    assert "307 values rejected (treated as missing)" in text
    assert "values kept" not in text and "were kept" not in text
    assert "were treated as missing (--suspected-placeholders missing)" in text
    sec = _section(text, "Suspected placeholder values", "Bloom filters")
    assert "postcode 15 303 91.0% treated as missing" in sec
    assert "encode again with --suspected-placeholders missing" not in sec


def test_no_suspects_says_so(tmp_path: Path) -> None:
    text = _report(tmp_path, None, profile=FieldProfile(rows=333, filled={"postcode": 317}))
    assert "4 values rejected (treated as missing)" in text and "values kept" not in text
    sec = _section(text, "Suspected placeholder values", "Bloom filters")
    assert "The encoder found no value on far more rows than its field's other values" in sec
    assert "No value of the extract matches a known placeholder pattern" in sec


def test_default_disclosure_rounds_the_kept_and_rejected_counts_apart(tmp_path: Path) -> None:
    out = write_encode_report(tmp_path / "e.html", _summary("report"))
    text = _text(out)
    assert "<10 values rejected (treated as missing)" in text
    assert "305 values kept, flagged as suspected placeholders" in text


@pytest.mark.parametrize("mode", ["report", "missing"])
def test_command_line_summary_says_what_was_done(mode: str) -> None:
    lines = encode_summary_lines(_summary(mode), 1024)
    (line,) = [x for x in lines if x.startswith("field postcode")]
    if mode == "report":
        assert line.endswith("--suspected-placeholders missing encodes them as missing)")
    else:  # already done: no hint to do it
        assert "--suspected-placeholders" not in line
        assert line.endswith("(listed in --rejects; encoded as missing)")


def test_the_profile_lists_known_patterns_only_never_common_names() -> None:
    """The encode report's profile judged frequency with its own rule (over 0.5% of rows and
    20 times the median count), so every common surname of a synthetic extract was listed
    under 'Suspected placeholder values' beside the encoder's 'found no value'. Frequency is
    the encoder's judgment; the profile lists known placeholder patterns only."""
    import pyarrow as pa

    from linkage.report.profile import profile_extract
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_template

    n = 2000
    surnames = ["SMITH"] * 75 + ["JONES"] * 55 + [f"NAME{i}" for i in range(n - 130)]
    postcodes = ["ZZ99 3VZ"] * 3 + [f"L{i % 9 + 1} {i % 7 + 1}AB" for i in range(n - 3)]
    table = pa.table({"record_id": [str(i) for i in range(n)], "surname": surnames,
                      "postcode": postcodes})  # fmt: skip
    schema = Schema.from_dict(uk_person_template())
    absent = [f for f in schema.field_names if f not in ("surname", "postcode")]
    prof = profile_extract(table, schema, absent=absent)
    assert [(s.field, s.label, s.rows) for s in prof.suspects] == [("postcode", "ZZ99 3VZ", 3)]
