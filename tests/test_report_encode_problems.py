"""Issue 10 robustness 5: the encode summary's row-problem heading is true for every reason
(a suspected placeholder is kept unless --suspected-placeholders missing)."""

from __future__ import annotations

from collections import Counter

from linkage.partner.pipeline import EncodeSummary
from linkage.partner.values import REASONS, SUSPECTED_KEPT, SUSPECTED_MISSING
from linkage.report.text import encode_summary_lines


def test_each_row_problem_says_whether_its_value_was_kept() -> None:
    s = EncodeSummary(party="p", rows_read=10, rows_encoded=10)
    s.problems = Counter(
        {
            ("date_of_birth", REASONS[SUSPECTED_KEPT]): 3,
            ("postcode", REASONS[SUSPECTED_MISSING]): 2,
            ("postcode", REASONS[7]): 1,
        }
    )
    lines = encode_summary_lines(s, 1024)
    head = next(i for i, line in enumerate(lines) if line.startswith("row problems"))
    assert "treated as missing" not in lines[head]  # not true of a kept placeholder
    body = lines[head + 1 :]
    assert len(body) == 3
    for line in body:
        assert ("kept" in line) != ("treated as missing" in line), line
    assert any("invalid UK postcode: 1 (treated as missing)" in line for line in body)
