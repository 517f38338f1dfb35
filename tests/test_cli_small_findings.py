"""Smaller new-user findings: the match summary speaks words (no raw dict); every error's row
number counts data rows from 1; a UTF-16 file without a byte-order mark gets the UTF-16 hint."""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.errors import InputError
from linkage.partner.reader import InputFile
from linkage.report.text import blocking_detail_words, match_summary_lines
from linkage.tlu.result import MatchStats


def _stats(detail: dict[str, object]) -> MatchStats:
    return MatchStats(
        records_per_party={"a": 3, "b": 3}, threshold=0.8, dedupe_threshold=None,
        blocking="keys", blocking_detail=detail, candidates=4, possible_pairs=9,
        reduction_ratio=0.5, pairs_above_threshold=3, matched_pairs=3, entities=3,
        entities_by_size={2: 3}, engine="numba", threads=1, seconds={"score": 0.1},
    )  # fmt: skip


@pytest.mark.parametrize(
    "detail",
    [
        {"seconds": 0.654},
        {"blocks": 12, "blocks_scored": 11, "oversize_blocks": 1, "compared_with_repeats": 40,
         "capped_records": 2, "seconds": 1.5},
        {"bands": 20, "rows": 12, "fill": 0.31, "blocks": 5, "seconds": 0.1},
        {"tasks": 4, "partitions": 8, "compared_with_repeats": 9, "seconds": 0.2, "other": 3},
    ],
)  # fmt: skip
def test_match_summary_has_no_raw_dict(detail: dict[str, object]) -> None:
    text = "\n".join(match_summary_lines(_stats(detail)))
    assert "{" not in text and "'" not in text and "_" not in text, text
    assert "candidate search:" in text
    assert blocking_detail_words({"seconds": 0.654}) == "candidate search: took 0.65s"
    assert blocking_detail_words({}) == ""


def test_evaluate_errors_count_rows_from_1(tmp_path: Path) -> None:
    """The 3rd data row is row 3 (as in encode's messages), in the CLI and the library."""
    links = pa.table({"entity_id": ["e1", "e1", "e2"], "party": ["A", "B", "A"],
                      "record_id": ["a1", "b1", "zz"]})  # fmt: skip
    truth = pa.table({"party": ["A", "B", "A"], "record_id": ["a1", "b1", "a2"],
                      "person_id": ["p1", "p1", "p2"]})  # fmt: skip
    pq.write_table(links, tmp_path / "links.parquet")
    pq.write_table(truth, tmp_path / "truth.parquet")
    r = CliRunner().invoke(
        main,
        ["evaluate", str(tmp_path / "links.parquet"), "--truth", str(tmp_path / "truth.parquet")],
    )
    assert r.exit_code == 2 and "record_id 'zz', row 3)" in r.output, r.output
    dup = pa.concat_tables([links.slice(0, 2), links.slice(0, 1)])
    pq.write_table(dup, tmp_path / "dup.parquet")
    r = CliRunner().invoke(
        main,
        ["evaluate", str(tmp_path / "dup.parquet"), "--truth", str(tmp_path / "truth.parquet")],
    )
    assert r.exit_code == 2 and "record_id 'a1', row 3 repeats row 1)" in r.output, r.output
    empty = links.set_column(2, "record_id", pa.array(["a1", "b1", ""]))
    pq.write_table(empty, tmp_path / "empty.parquet")
    r = CliRunner().invoke(
        main,
        ["evaluate", str(tmp_path / "empty.parquet"), "--truth", str(tmp_path / "truth.parquet")],
    )
    assert r.exit_code == 2 and "first at row 3)" in r.output, r.output


@pytest.mark.parametrize(("codec", "order"), [("utf-16-le", "LE"), ("utf-16-be", "BE")])
def test_utf16_without_bom_gets_the_utf16_hint(tmp_path: Path, codec: str, order: str) -> None:
    p = tmp_path / "x.csv"
    text = "record_id,given_name,surname\nr1,Zoë,Łukasiewicz\nr2,李,王\n" * 3
    p.write_bytes(text.encode(codec))
    with pytest.raises(InputError, match=f"UTF-16{order} text without a byte-order mark") as e:
        InputFile(p)
    assert "CSV UTF-8" in str(e.value)


def test_utf8_with_other_scripts_is_not_mistaken_for_utf16(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("record_id,surname\n" + "".join(f"r{i},王李{i}\n" for i in range(50)))
    assert InputFile(p).columns == ["record_id", "surname"]


# -- docs that disagreed with the code ------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*path, name))
        else:
            out.append((" ".join((*path, name)), cmd))
    return out


def test_every_report_command_is_in_the_reports_doc_and_has_force() -> None:
    doc = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    with_report = [
        (name, cmd)
        for name, cmd in _commands(main)
        if any(p.name == "report_path" for p in cmd.params)
    ]
    assert len(with_report) >= 6
    for name, cmd in with_report:
        assert f"`linkage {name}" in doc, name
        assert any(p.name == "force" for p in cmd.params), name  # an existing report is refused


def test_schema_doc_states_the_templates_hardening() -> None:
    from linkage.schema_template import uk_person_template

    doc = " ".join((ROOT / "docs" / "schema.md").read_text(encoding="utf-8").split())
    t = uk_person_template()
    (step,) = t["hardening"]
    assert (
        f'{{"type": "diffusion", "taps": {step["taps"]}, "output_bits": {step["output_bits"]}}}'
        in doc
    )
    assert f'"match": {{"threshold": {t["match"]["threshold"]}}}' in doc
