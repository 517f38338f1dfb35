"""Lab commands: ``synth`` (synthetic populations), ``evaluate`` (quality against truth)
and ``audit`` (attack simulation)."""

from __future__ import annotations

from pathlib import Path

import click

from linkage.cli.common import (
    EXIT_CHECK_FAILED,
    _check_report,
    _cli_words,
    _show_progress,
    _write_report,
    handle_errors,
    main,
    report_options,
)


@main.command()
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory to write (must be new or empty).",
)
@click.option("--people", required=True, type=int, help="Population size.")
@click.option("--parties", required=True, type=int, help="Number of partner extracts (1-26).")
@click.option(
    "--overlap",
    default=0.7,
    show_default=True,
    type=float,
    help="Mean share of the population in each extract (varied +-0.1 per party).",
)
@click.option(
    "--duplicates",
    default=0.02,
    show_default=True,
    type=float,
    help="Share of each extract's people with a second record.",
)
@click.option(
    "--corruption",
    default="medium",
    show_default=True,
    type=click.Choice(["none", "low", "medium", "high"]),
    help="Error level (rates in docs/synth.md).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Same seed, same bytes.",
)
@click.option(
    "--format",
    "fmt",
    default="csv",
    show_default=True,
    type=click.Choice(["csv", "parquet"]),
    help="Extract file format.",
)
@click.option("--corruption-log", is_flag=True, help="Also write corruptions.csv.")
@click.option("--force", is_flag=True, help="Replace earlier synth output in DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@handle_errors
def synth(
    out_dir: str,
    people: int,
    parties: int,
    overlap: float,
    duplicates: float,
    corruption: str,
    seed: int,
    fmt: str,
    corruption_log: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Write a synthetic UK population with ground truth: one extract per partner (own
    column names, date formats, duplicates and corruption), truth.csv and manifest.json."""
    from linkage.lab.synthetic import synth as run

    show = _show_progress(quiet)

    def progress(stage: str, fraction: float) -> None:
        if show:
            click.echo(f"\r{stage:<11} {fraction:6.1%}", nl=False, err=True)

    s = run(
        out_dir,
        people,
        parties,
        overlap=overlap,
        duplicates=duplicates,
        corruption=corruption,
        seed=seed,
        fmt=fmt,
        progress=progress,
        corruption_log=corruption_log,
        overwrite=force,
    )
    if show:
        click.echo("", err=True)
    if not quiet:
        click.echo(
            f"wrote {s.records} records of {s.people} people in {len(s.parties)} extracts "
            f"to {s.out_dir} (truth.csv, manifest.json)",
            err=True,
        )


@main.command("evaluate")
@click.argument("links")
@click.option(
    "--truth",
    required=True,
    help="Ground truth CSV or Parquet (party, record_id, person_id), e.g. from linkage synth.",
)
@click.option(
    "--pairs",
    help="Scored pairs Parquet (party_a, record_id_a, party_b, record_id_b, score).",
)
@click.option(
    "--sweep",
    metavar="LO:HI:STEP",
    help="Threshold sweep over --pairs, e.g. 0.5:0.95:0.01 (needs --pairs). It cannot look "
    "below the threshold the pairs were matched at: match at LO or lower. Pairs from "
    "field-aware scoring hold match probabilities: the sweep is over those, from 0.5.",
)
@click.option(
    "--within-party/--no-within-party",
    default=None,
    help="Report same-party pairs (default: when the links join records of one party).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    help="The threshold the links were matched at (marked in the --report).",
)
@click.option("--force", is_flag=True, help="Replace an existing --report file.")
@report_options
@handle_errors
def evaluate_cmd(
    links: str,
    truth: str,
    pairs: str | None,
    sweep: str | None,
    within_party: bool | None,
    as_json: bool,
    threshold: float | None,
    force: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Measure links.parquet against ground truth: pairwise precision, recall and F1
    (cross-party, within-party, per party pair), split and merged entities; with --pairs a
    threshold sweep and the best-F1 threshold (over thresholds at or above the one the pairs
    were matched at). Details in docs/evaluate.md."""
    from linkage.errors import InputError
    from linkage.lab.quality import evaluate, parse_sweep
    from linkage.report.text import evaluation_text

    if sweep is not None and pairs is None:
        raise InputError("--sweep needs --pairs (a scored pairs file)")
    inputs = [links, truth, *([pairs] if pairs else [])]
    _check_report(report_path, inputs, force=force)
    steps = parse_sweep(sweep) if sweep is not None else None
    fields = pairs is not None and _pairs_scoring(pairs) == "fields"
    if steps is not None and pairs is not None:
        _check_sweep_floor(pairs, steps[0], fields=fields)
    report = evaluate(
        links,
        truth,
        pairs=pairs,
        sweep=steps,
        within_party=within_party,
    )
    if fields and steps is not None:
        _probability_notes(report.notes)
    text = evaluation_text(report, probabilities=fields)
    click.echo(report.to_json() if as_json else _cli_words(text))

    def evaluation_report(path: str) -> None:
        from linkage.report import Disclosure, write_evaluation_report

        write_evaluation_report(
            path, report, threshold=threshold, links=links, truth=truth,
            disclosure=Disclosure(min_count=report_min_count), probabilities=fields,
        )  # fmt: skip

    _write_report(True, report_path, evaluation_report)


LINK_PROBABILITY = 0.5  # field-aware scoring links coherent clusters at this match probability


def _pairs_meta(pairs: str) -> dict[bytes, bytes]:
    """The pairs file's Parquet key-value metadata ({} when unreadable: evaluate() says)."""
    import pyarrow.parquet as pq

    try:
        return dict(pq.read_metadata(pairs).metadata or {})
    except (OSError, ValueError):
        return {}


def _pairs_scoring(pairs: str) -> str:
    """How the pairs were scored (metadata ``linkage.scoring``): ``dice`` or ``fields`` (match
    probabilities); ``dice`` for files written before the key existed."""
    return _pairs_meta(pairs).get(b"linkage.scoring", b"dice").decode(errors="replace")


def _check_sweep_floor(pairs: str, lo: float, *, fields: bool = False) -> None:
    """Refuse a sweep that starts below the threshold the pairs file was matched at (its
    metadata says): pairs under it were never written, so the sweep would be silently wrong.
    Field-aware pairs hold match probabilities of the linked pairs only: no threshold option
    would add pairs below :data:`LINK_PROBABILITY`, so the refusal says so instead."""
    from linkage.errors import InputError

    if fields:
        if lo < LINK_PROBABILITY - 1e-9:
            raise InputError(
                f"{pairs}: the pairs come from field-aware scoring, so their scores are match "
                f"probabilities, not Dice; links are decided by coherent clusters at probability "
                f"{LINK_PROBABILITY:g}, not by a threshold option, and only linked pairs were "
                f"written, so a sweep from {lo:g} cannot see the unlinked pairs below "
                f"{LINK_PROBABILITY:g}; "
                f"sweep from {LINK_PROBABILITY:g} (e.g. --sweep {LINK_PROBABILITY:g}:0.95:0.05)"
            )
        return
    raw = _pairs_meta(pairs).get(b"linkage.threshold")
    if raw is None:
        return
    used = float(raw.decode())
    if lo < used - 1e-9:
        raise InputError(
            f"{pairs}: the pairs were matched at threshold {used:g}, so a sweep from {lo:g} "
            f"cannot see pairs below {used:g}; run `linkage match --threshold {lo:g} --pairs "
            "...` for the sweep"
        )


def _probability_notes(notes: list[str]) -> None:
    """The first note of a sweep over field-aware pairs: the scores are match probabilities."""
    notes.insert(
        0,
        "the pairs come from field-aware scoring: their scores are match probabilities, not "
        "Dice, so the sweep is over match probability; links are decided by coherent clusters "
        f"at probability {LINK_PROBABILITY:g}, not by a threshold option, and the file holds "
        "only the linked pairs, so a higher cut-off can only drop pairs",
    )


# -- audit (issue 11): a thin skin over linkage.lab.audit.runner.audit --------------------------
@main.command("audit")
@click.argument("encoded", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-s",
    "--schema",
    "schema_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The project's schema (the attacker is assumed to know it).",
)
@click.option(
    "--plaintext",
    type=click.Path(dir_okay=False),
    help="With ENCODED: the partner's plaintext of it (CSV/Parquet), used only to "
    "score the attacks.",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False),
    help="The attacker's plaintext population (default: a `linkage synth` draw).",
)
@click.option(
    "--people",
    type=int,
    default=5000,
    show_default=True,
    help="Without ENCODED: synthetic records to encode under a throwaway secret.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option(
    "--attacks",
    default="leaks,frequency,patterns,graph,hgma",
    show_default=True,
    help="Comma-separated attacks to run.",
)
@click.option(
    "--graph-sample",
    type=int,
    default=2000,
    show_default=True,
    help="Encoded records per graph-matching run, at least 50 (a sample; the list is sample "
    "/ overlap). A run with under 50 encoded records (a small file) is skipped, with a note.",
)
@click.option(
    "--hgma-sample",
    type=int,
    default=400,
    show_default=True,
    help="Records the homomorphism attack (hgma) searches for 3-4-record tuples, 10-1000 "
    "(its pairs cover the whole file). The search grows as the fourth power: the attack takes "
    "about 1-2 minutes at 400, many at 1000 (the published attack's limit).",
)
@click.option(
    "--overlaps",
    default="1,0.5,0.25",
    show_default=True,
    help="Graph matching: encoded sample as a share of the attacker's list, each in [0.05, 1].",
)
@click.option(
    "--pattern-sample",
    type=int,
    default=10000,
    show_default=True,
    help="Records mined for bit patterns.",
)
@click.option(
    "--id-column", default="record_id", show_default=True, help="Record id column of --plaintext."
)
@click.option(
    "--column",
    "column_map",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="As for encode: map a schema field to the column of --plaintext and --reference "
    "(repeatable).",
)
@click.option(
    "--date-format",
    "date_formats",
    multiple=True,
    metavar="FIELD=FORMAT",
    help="As for encode: date format of a field in --plaintext and --reference, e.g. "
    "date_of_birth=%d/%m/%Y (default: detected, as for encode).",
)
@click.option(
    "--absent",
    multiple=True,
    metavar="FIELD",
    help="A schema field the file was encoded without (encode --absent); repeatable.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    help="Also write the full result as JSON (atomically).",
)
@click.option("--force", is_flag=True, help="Replace existing --json and --report files.")
@click.option(
    "--fail-above",
    type=click.FloatRange(0, 100),
    metavar="PERCENT",
    help="Exit with status 1 (after writing every output) when the worst case re-identifies "
    "more than PERCENT of the records, e.g. 1 (the project's target), or when it could not "
    "be measured (an attack skipped for too few records): for scripts and CI. Bad input "
    "exits with 2, an internal error with 70, so neither reads as a result.",
)
@report_options
@handle_errors
def audit_cmd(
    encoded: str | None, schema_file: str, plaintext: str | None, reference: str | None,
    people: int, seed: int, attacks: str, graph_sample: int, hgma_sample: int, overlaps: str,
    pattern_sample: int, id_column: str, column_map: tuple[str, ...],
    date_formats: tuple[str, ...], absent: tuple[str, ...], json_out: str | None, force: bool,
    fail_above: float | None, report_path: str | None, report_min_count: int,
) -> None:  # fmt: skip
    """Play the attacker against an encoding and report the worst case of each attack.

    \b
    Mode (b), before touching real data:  linkage audit -s schema.json --people 5000
    Mode (a), an encoded file:            linkage audit enc.parquet -s schema.json \\
                                              --plaintext extract.csv [--reference roll.csv]

    In mode (a) every schema field needs a column in --plaintext (and --reference): give
    the --column, --date-format and --absent options the file was encoded with.

    Attacks: leak statistics (Vidanage et al. 2023), frequency alignment of filters, block
    keys and (segmented layout) each field's segment, pattern mining (Christen et al. 2018),
    graph matching (Vidanage et al. 2020,
    Schafer et al. 2024) at several overlaps, and homomorphism-based graph matching on
    diffusion (hgma; Armknecht & Schafer 2026), reported as an upper bound. No attack uses
    the secret. See docs/privacy.md.
    """
    from linkage.cli.common import _pairs
    from linkage.errors import InputError
    from linkage.lab.audit.runner import audit

    try:  # every comma-separated item a number: ",1" or "1,,0.5" is a typo, not "1"
        ovs = tuple(float(v) for v in overlaps.split(",")) if overlaps.strip() else ()
    except ValueError:
        msg = f"--overlaps: expected numbers like 1,0.5,0.25, got {overlaps!r}"
        raise InputError(msg) from None
    if encoded is None and (column_map or date_formats or absent):
        raise InputError("--column, --date-format and --absent read --plaintext: give ENCODED")
    source = click.get_current_context().get_parameter_source("people")
    if encoded is not None and source == click.core.ParameterSource.COMMANDLINE:
        raise InputError(
            "--people is for a schema audit on synthetic people (mode b); an encoded file is "
            "audited on its own records: leave --people out, or leave out ENCODED"
        )
    inputs = [p for p in (encoded, plaintext, reference, schema_file) if p is not None]
    from linkage._files import JSON, Output, check_outputs

    # --json and --report alike: never an input, never each other, not replaced unless --force
    outs = [Output(Path(json_out), "--json output", JSON)] if json_out is not None else []
    if report_path is not None:
        outs.append(Output(Path(report_path), "report", (".html", ".htm")))
    check_outputs(outs, inputs, force=force)
    result = audit(
        schema_file, encoded=encoded, plaintext=plaintext, reference=reference, people=people,
        seed=seed, attacks=attacks, graph_sample=graph_sample, overlaps=ovs,
        pattern_sample=pattern_sample, hgma_sample=hgma_sample, id_column=id_column,
        columns=_pairs(column_map, "--column"), date_formats=_pairs(date_formats, "--date-format"),
        absent=absent, progress=lambda msg: click.echo(f"audit: {msg}", err=True),
    )  # fmt: skip
    if json_out is not None:
        from linkage._files import atomic_outputs

        # mode 0600 (the default): the result may hold re-identified values
        with atomic_outputs(Path(json_out)) as (tmp,):
            tmp.write_text(result.to_json(), encoding="utf-8")
        click.echo(f"wrote {json_out}", err=True)

    def audit_report(path: str) -> object:
        from linkage.report import Disclosure, write_audit_report

        return write_audit_report(path, result, disclosure=Disclosure(min_count=report_min_count))

    _write_report(False, report_path, audit_report)
    click.echo(result.to_text(), nl=False)
    above = None if fail_above is None else result.above(fail_above / 100)
    if fail_above is not None and above is not False:  # unmeasured fails closed, as above
        if above:
            pct = 100 * (result.worst or 0.0)
            why = f"above --fail-above {fail_above:g}%: the worst case is {pct:.2f}%"
        else:
            ran = result.skipped_names()
            ran = f"{ran} did not run: too few records" if ran else "no re-identifying attack ran"
            why = f"not measured against --fail-above {fail_above:g}% ({ran})"
        click.echo(f"audit: {why}", err=True)
        raise SystemExit(EXIT_CHECK_FAILED)
