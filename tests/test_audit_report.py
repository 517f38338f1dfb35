"""The audit's HTML report says what the measurements support: no claim that a sample
overstates the risk, no hardening caption for an unhardened schema, no figure that rounds
across the 1% target, and no advice to add hardening the schema already has."""

from __future__ import annotations

from pathlib import Path

from linkage.lab.audit.results import AttackResult, AuditResult
from linkage.report.audit_report import write_audit_report


def _graph(rate: float, n: int) -> AttackResult:
    return AttackResult(
        "graph", "Graph matching", rate, 1.0, n, 1.0,
        settings={"overlap": 1.0, "list": "others"},
        per_field={f"overlap 100% ({n:,} of {n:,})": {"reidentified": rate, "precision": 1.0}},
        sweep=({"settings": {"overlap": 1.0, "list": "others"}, "reidentified": rate,
                "precision": 1.0},),
    )  # fmt: skip


def _html(tmp_path: Path, rate: float, n: int = 500, hardening: tuple[str, ...] = ()) -> str:
    r = AuditResult("f" * 64, "schema", n, n, 0, (_graph(rate, n),), 1.0, hardening=hardening)
    return write_audit_report(tmp_path / "a.html", r).read_text()


def test_sample_note_says_a_sample_may_understate(tmp_path: Path) -> None:
    html = _html(tmp_path, 0.5)
    assert "overstate" not in html and "may understate" in html


def test_hardening_caption_only_with_hardening(tmp_path: Path) -> None:
    assert "hardening works" not in _html(tmp_path, 0.5)
    assert "hardening works" in _html(tmp_path, 0.5, hardening=("diffusion",))


def test_figures_never_round_across_the_target(tmp_path: Path) -> None:
    html = _html(tmp_path, 4 / 500)  # a small count: the bound was "under 2.0%"
    assert "No attack re-identified 1% of the records or more" in html
    assert "under 2.0%" not in html and "under 1%" in html
    html = _html(tmp_path, 498 / 50_000, n=50_000)  # 0.996% printed as "1.0%"
    assert "No attack re-identified 1% of the records or more" in html and ">1.0%<" not in html


def test_advice_leaves_out_what_the_schema_has(tmp_path: Path) -> None:
    html = _html(tmp_path, 0.5, hardening=("balance", "diffusion"))
    assert "Harden the encoding (diffusion" not in html and "diffusion taps" in html
    assert "Harden the encoding (diffusion" in _html(tmp_path, 0.5)


def test_skipped_attack_is_said(tmp_path: Path) -> None:
    g = AttackResult("graph", "Graph matching", None, None, 40, 0.1,
                     note="skipped (under 50 encoded records to attack): 100% overlap")  # fmt: skip
    r = AuditResult("f" * 64, "file", 40, 40, 0, (g,), 1.0)
    html = write_audit_report(tmp_path / "a.html", r).read_text()
    assert "not measured" in html and "Graph matching: not run" in html
