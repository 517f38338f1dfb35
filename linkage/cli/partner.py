"""The partner's command: ``encode`` (extract -> encoded file)."""

from __future__ import annotations

from pathlib import Path

import click

from linkage.cli.common import (
    _Bar,
    _check_report,
    _pairs,
    _say_if_compiling,
    _show_progress,
    _warn,
    _write_report,
    handle_errors,
    main,
    report_options,
)


@main.command()
@click.argument("input_file", metavar="INPUT")
@click.option("-s", "--schema", "schema_file", required=True, help="The project's schema JSON.")
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False),
    help="File holding the project secret (else the LINKAGE_SECRET environment variable).",
)
@click.option("--party", required=True, help="This partner's name, e.g. council_a.")
@click.option("--id-column", default="record_id", show_default=True, help="Record id column.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Encoded file (.parquet).",
)
@click.option(
    "--rejects", type=click.Path(dir_okay=False), help="CSV of row problems to write (.csv)."
)
@click.option("--force", is_flag=True, help="Replace existing output and rejects files.")
@click.option(
    "--column",
    "column_map",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Map a schema field to your column name (repeatable).",
)
@click.option(
    "--date-format",
    "date_formats",
    multiple=True,
    metavar="FIELD=FORMAT",
    help="Date format of a field, e.g. date_of_birth=%d/%m/%Y (default: detected).",
)
@click.option(
    "--absent",
    multiple=True,
    metavar="FIELD",
    help="A schema field your extract does not have; encoded as missing (repeatable).",
)
@click.option(
    "--suspected-placeholders",
    type=click.Choice(["report", "missing"]),
    default="report",
    show_default=True,
    help="A value held by an implausible share of rows (one date of birth on 1%, one "
    "postcode or address on 2%, one name on 5%, one NHS number on 0.1%; never under 10 rows) "
    "is a suspected placeholder: report it in the summary and --rejects, or also encode it "
    "as missing. Towns and other categorical columns are not checked (docs/schema.md).",
)
@click.option(
    "--delimiter",
    default=",",
    show_default=True,
    help="CSV delimiter: one character, or 'tab'.",
)
@click.option("--threads", type=click.IntRange(1), help="Worker threads (default: all cores).")
@click.option(
    "--scheduler",
    metavar="local[:N]|tls://HOST:PORT",
    help="Encode batches on your own Dask cluster (pip install 'pprl-linkage[dask]'); needs "
    "--secret-file readable by every worker. See docs/scale.md.",
)
@click.option(
    "--batch-size",
    default=50_000,
    show_default=True,
    type=click.IntRange(1000),
    help="Rows encoded at a time (memory grows with it).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@report_options
@handle_errors
def encode(
    input_file: str,
    schema_file: str,
    secret_file: str | None,
    party: str,
    id_column: str,
    output: str,
    rejects: str | None,
    force: bool,
    column_map: tuple[str, ...],
    date_formats: tuple[str, ...],
    absent: tuple[str, ...],
    suspected_placeholders: str,
    delimiter: str,
    threads: int | None,
    scheduler: str | None,
    batch_size: int,
    quiet: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Encode a CSV or Parquet extract into keyed Bloom filters for the linkage unit.

    The output Parquet holds record_id, clk and block_keys, plus metadata (schema
    fingerprint, key-check value, party); no input value appears in it. Rows with invalid
    values are still encoded from their valid fields and listed in --rejects (record id,
    field, reason; never the value). Exit status 2 on any file-level problem, with no output.
    """
    from linkage.partner import encode_file
    from linkage.report.text import encode_summary_lines
    from linkage.schema import Schema
    from linkage.secret import Secret

    _check_report(report_path, [input_file], force)
    s = Schema.load(schema_file)
    secret = Secret.resolve(secret_file, warn=_warn)
    _say_if_compiling(quiet, "encode", "text")
    bar = _Bar(_show_progress(quiet), f"encoding {Path(input_file).name}")
    try:
        summary = encode_file(
            input_file,
            output,
            s,
            secret,
            party=party,
            id_column=id_column,
            columns=_pairs(column_map, "--column"),
            date_formats=_pairs(date_formats, "--date-format"),
            absent=absent,
            rejects_path=rejects,
            delimiter=delimiter,
            batch_size=batch_size,
            threads=threads,
            suspected_placeholders=suspected_placeholders,
            scheduler=scheduler,
            secret_file=secret_file,
            force=force,
            progress=bar.update,
        )
    finally:
        bar.close()
    if not quiet:
        for line in encode_summary_lines(summary, s.output_length):
            click.echo(line, err=True)
        click.echo(f"wrote {output}", err=True)
    from linkage.partner.dates import two_digit_year_warning

    for f, fmt in sorted(summary.date_formats.items()):
        if (msg := two_digit_year_warning(f, fmt)) is not None:
            _warn(msg)
    for f, distinct, given in summary.few_names:
        _warn(
            f"field {f}: only {distinct} distinct values in the {given} rows that give one; "
            f"names vary far more: is the right column mapped to it (--column {f}=COLUMN)?"
        )
    for f, n, given in summary.mostly_rejected():
        _warn(
            f"field {f}: {n} of the {given} values given ({100 * n / given:.0f}%) were "
            f"rejected as invalid and encoded as missing; is the right column mapped to it "
            f"(--column {f}=COLUMN)?"
        )
    from linkage.schema_template import risk_warnings

    for msg in risk_warnings(s):  # after the work: an error stays the only line of a failed run
        _warn(msg)

    def encode_report(path: str) -> None:
        from linkage.encoded import read_encoded
        from linkage.report import Disclosure, profile_extract, write_encode_report

        prof = profile_extract(
            input_file, s, columns=_pairs(column_map, "--column"), absent=absent,
            delimiter=delimiter,
        )  # fmt: skip
        write_encode_report(
            path, summary, encoded=read_encoded(output), schema=s, profile=prof,
            disclosure=Disclosure(min_count=report_min_count),
        )  # fmt: skip

    _write_report(quiet, report_path, encode_report)
