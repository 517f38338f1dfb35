"""The ``linkage`` command line. Every command calls the library function of the same name.

Errors caused by input or usage print one line (``Error: ...``) and exit with status 2;
nothing is left half-written. Secrets are read from a file or the LINKAGE_SECRET
environment variable, never from an option value.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from linkage import __version__
from linkage.errors import LinkageError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn LinkageError and OS errors into one line (``Error: ...``) and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LinkageError as exc:
            _fail(_cli_words(str(exc)), exc.exit_code)
        except OSError as exc:
            from linkage._files import os_error_message

            _fail(os_error_message(exc))
        except KeyboardInterrupt:
            _fail("interrupted; no output written", 130)
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size", 1)
        except Exception as exc:  # a bug: one line (no values), the traceback on request
            if os.environ.get("LINKAGE_DEBUG"):
                raise
            _fail(
                f"internal error ({type(exc).__name__}); no output written. Please report it "
                "with the command you ran (LINKAGE_DEBUG=1 shows the traceback)",
                1,
            )

    return wrapper  # type: ignore[return-value]


# library keyword -> CLI parameter name, where they differ
_KEYWORD_ALIASES = {"overwrite": "force"}
_KEYWORD_RE = re.compile(r"\b([a-z][a-z_]*)=(True|False|None|[\w.:/-]+)")


def _cli_words(msg: str) -> str:
    """Say ``--force`` where a library message says ``force=True`` (or ``overwrite=True``),
    using the running command's own options."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return msg
    params = {p.name: p for p in ctx.command.params if isinstance(p, click.Option)}

    def swap(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        opt = params.get(_KEYWORD_ALIASES.get(name, name))
        if opt is None:
            return m.group(0)
        long = max(opt.opts, key=len)
        if value == "True" and opt.is_flag:
            return long
        if value == "False" and opt.is_flag:
            return opt.secondary_opts[0] if opt.secondary_opts else f"no {long}"
        return f"{long} {value}"

    return _KEYWORD_RE.sub(swap, msg)


def _pairs(values: Iterable[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"expected FIELD=VALUE, got {v!r}", param_hint=option)
        k, _, val = v.partition("=")
        k, val = k.strip(), val.strip()
        if not k or not val:
            raise click.BadParameter(f"expected FIELD=VALUE, got {v!r}", param_hint=option)
        if k in out:
            raise click.BadParameter(f"field {k!r} given twice", param_hint=option)
        out[k] = val
    return out


def _warn(msg: str) -> None:
    click.echo(f"Warning: {msg}", err=True)


def _say_if_compiling(quiet: bool, *modules: str) -> None:
    """Tell the user about the one-off wait while numba compiles kernels (~40 s on the first
    run, when its cache holds nothing for a module the command uses)."""
    if not quiet and _kernels_uncached(modules):
        click.echo("compiling kernels (first run only; this takes about a minute)...", err=True)


def _kernels_uncached(modules: Iterable[str]) -> bool:
    """True if numba's on-disk cache has no compiled kernel of one of ``modules`` (names in
    ``linkage.kernels``); False under NUMBA_DISABLE_JIT=1, where nothing is compiled."""
    import importlib

    for name in modules:
        mod = importlib.import_module(f"linkage.kernels.{name}")
        stem = Path(mod.__file__ or name).stem
        for obj in vars(mod).values():
            cache_dir = getattr(getattr(obj, "_cache", None), "_cache_path", None)
            if isinstance(cache_dir, str):
                if not any(Path(cache_dir).glob(f"{stem}.*.nbi")):
                    return True
                break
    return False


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def report_options(fn: F) -> F:
    """``--report FILE.html`` and ``--report-min-count N`` (HTML reports, docs/reports.md)."""
    fn = click.option(
        "--report-min-count",
        default=10,
        show_default=True,
        type=click.IntRange(1),
        help="In the --report, counts from 1 to N-1 are suppressed (others rounded to 5).",
    )(fn)
    return click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False),
        help="Also write a self-contained HTML report (.html): aggregate figures only, no "
        "record ids or values, small counts suppressed. See docs/reports.md.",
    )(fn)


def _check_report(path: str | None, inputs: Iterable[str], force: bool) -> None:
    """Refuse a --report path early (before any work), as every other output."""
    if path is not None:
        from linkage._files import Output, check_outputs

        check_outputs([Output(Path(path), "report", (".html", ".htm"))], list(inputs), force=force)


def _write_report(quiet: bool, path: str | None, write: Callable[[Any], object]) -> None:
    """Write an HTML report (if asked) with a progress line, under the small-count rule."""
    if path is None:
        return
    if _show_progress(quiet):
        click.echo(f"writing report {path} ...", err=True)
    write(path)
    if not quiet:
        click.echo(f"wrote report {path}", err=True)


class _Bar:
    """A progress bar on stderr, started once the total is known; off when not enabled."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.bar: Any = None

    def update(self, n: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(total, 1),
                label=self.label,
                file=sys.stderr,
                show_pos=True,
                show_eta=True,
            )
            self.bar.__enter__()
        if n:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="linkage")
def main() -> None:
    """Privacy-preserving record linkage with keyed Bloom-filter encodings.

    \b
    Partners (each locally, with the shared secret):
      linkage keygen -o secret.key
      linkage schema init -o schema.json
      linkage encode extract.csv -s schema.json --secret-file secret.key \\
          --party council_a --id-column record_id -o council_a.parquet
    The trusted linkage unit (no secret needed):
      linkage match council_a.parquet nhs.parquet --dedupe -o links.parquet
    Without real data (synthetic people with ground truth):
      linkage synth -o synth --people 10000 --parties 2
      linkage evaluate links.parquet --truth synth/truth.csv
    Each command has --help. Docs: README.md, docs/schema.md, docs/evaluate.md.
    """


@main.command()
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--force", is_flag=True, help="Replace an existing file (its secret is lost).")
@handle_errors
def keygen(output: str, force: bool) -> None:
    """Write a new project secret: 256 random bits as one line of text (file mode 0600).

    The line (linkage-secret-v1:XXXX-XXXX-...) carries a checksum, so it can be pasted, sent
    on paper and typed back, or put unchanged in the LINKAGE_SECRET environment variable
    (LINKAGE_SECRET="$(cat secret.key)"); a mistyped secret is refused at once. Share it only
    among the partners, out of band; never with the linkage unit. Every partner must encode
    with the same secret and schema.
    """
    from linkage.secret import write_new_secret

    write_new_secret(output, force=force)
    click.echo(f"wrote a new secret to {output} (mode 0600)", err=True)


@main.group()
def schema() -> None:
    """Create and check linkage schemas (shared by all partners of a project)."""


@schema.command("init")
@click.option(
    "--template",
    default="uk-person",
    show_default=True,
    type=click.Choice(["uk-person"]),
    help="Starting point.",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write (.json)."
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
@handle_errors
def schema_init(template: str, output: str, force: bool) -> None:
    """Write a commented starting schema: the template's fields (for uk-person: given_name,
    surname, date_of_birth, sex, postcode, address, nhs_number) with their weights, and its
    keyed block keys. Check it with `linkage schema check`."""
    from linkage._files import JSON, Output, atomic_outputs, check_outputs
    from linkage.schema import template_json

    (p,) = check_outputs([Output(Path(output), "schema", JSON)], force=force)
    text = template_json(template)
    with atomic_outputs(p, mode=0o644) as (tmp,):
        tmp.write_text(text, encoding="utf-8")
    click.echo(f"wrote schema template {template!r} to {output}", err=True)


@schema.command("check")
@click.argument("schema_file", type=click.Path(dir_okay=False))
@handle_errors
def schema_check(schema_file: str) -> None:
    """Validate a schema and summarise it (errors name the JSON path)."""
    from linkage.schema import Schema

    s = Schema.load(schema_file)
    click.echo(s.summary())


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
    "postcode on 2%...) is a suspected placeholder: report it in the summary and --rejects, "
    "or also encode it as missing.",
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
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
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


@main.command("match")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The linkage map to write (.parquet).",
)
@click.option(
    "--pairs",
    "pairs_out",
    type=click.Path(dir_okay=False),
    help="Also write matched pairs with their scores (.parquet). Scores are sensitive (they "
    "help re-identify people): write them only when you must, and protect the file.",
)
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option(
    "--threshold",
    default=0.7,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Minimum Dice similarity of a linked pair (0.7 suits the uk-person template). To "
    "tune it, match synthetic data (`linkage synth`) at a low threshold, e.g. 0.5, with "
    "--pairs, then run `linkage evaluate --pairs --sweep 0.5:0.95:0.01`: a sweep cannot look "
    "below the threshold the pairs were matched at.",
)
@click.option(
    "--blocking",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "none", "lsh", "keys"]),
    help="none: exhaustive (exact); keys: shared keyed block keys (fast, default for large "
    "inputs); lsh: bit-sampling LSH (for files without block keys; selective only at high "
    "thresholds).",
)
@click.option("--dedupe", is_flag=True, help="Records of the same party may join one entity.")
@click.option(
    "--dedupe-threshold",
    type=click.FloatRange(0, 1),
    help="Minimum score of a within-party pair under --dedupe [default: max(threshold, 0.8)].",
)
@click.option(
    "--solver",
    default="greedy",
    show_default=True,
    type=click.Choice(["greedy", "optimal"]),
    help="optimal: maximum-weight one-to-one matching (two parties).",
)
@click.option("--threads", type=click.IntRange(1), help="Threads (default: all cores).")
@click.option("--seed", type=int, help="Make entity ids and LSH sampling reproducible.")
@click.option(
    "--max-block",
    default=5000,
    show_default=True,
    type=click.IntRange(2),
    help="Blocks larger than this are scored by the all-pairs kernel (never dropped).",
)
@click.option(
    "--scheduler",
    metavar="local[:N]|tls://HOST:PORT",
    help="Run candidate scoring on Dask (pip install 'pprl-linkage[dask]'); the files must be "
    "readable by every worker. See docs/scale.md.",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
@report_options
@handle_errors
def match_cmd(
    inputs: tuple[str, ...],
    output: str,
    pairs_out: str | None,
    force: bool,
    threshold: float,
    blocking: str,
    dedupe: bool,
    dedupe_threshold: float | None,
    solver: str,
    threads: int | None,
    seed: int | None,
    max_block: int,
    scheduler: str | None,
    quiet: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Link encoded files from two or more partners (or one, with --dedupe).

    Writes links.parquet with entity_id, party, record_id for every record (singletons too).
    Entity ids are opaque and random per run unless --seed is given. All files must share
    schema, secret (key-check value) and filter length.
    """
    from linkage.report.text import match_summary_lines
    from linkage.tlu.linker import check_output_paths, match

    check_output_paths([output, *([pairs_out] if pairs_out else [])], inputs, force=force)
    _check_report(report_path, inputs, force)
    _say_if_compiling(quiet, "dice", "blocking", "cluster")

    def progress(msg: str) -> None:
        if _show_progress(quiet):
            click.echo(msg, err=True)

    result = match(
        list(inputs),
        threshold=threshold,
        blocking=blocking,
        dedupe=dedupe,
        dedupe_threshold=dedupe_threshold,
        solver=solver,
        threads=threads,
        seed=seed,
        max_block=max_block,
        warn=_warn,
        progress=progress,
        scheduler=scheduler,
    )
    result.write(output, pairs_out, force=force)
    if not quiet:
        click.echo("linked:", err=True)
        for line in match_summary_lines(result.stats):
            click.echo(line, err=True)
        click.echo(f"wrote {output}" + (f" and {pairs_out}" if pairs_out else ""), err=True)

    def match_report(path: str) -> None:
        from linkage.report import Disclosure, write_match_report

        write_match_report(path, result, disclosure=Disclosure(min_count=report_min_count))

    _write_report(quiet, report_path, match_report)


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
    "below the threshold the pairs were matched at: match at LO or lower.",
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
    _check_report(report_path, [links, truth], force=True)
    steps = parse_sweep(sweep) if sweep is not None else None
    if steps is not None and pairs is not None:
        _check_sweep_floor(pairs, steps[0])
    report = evaluate(
        links,
        truth,
        pairs=pairs,
        sweep=steps,
        within_party=within_party,
    )
    click.echo(report.to_json() if as_json else _cli_words(evaluation_text(report)))

    def evaluation_report(path: str) -> None:
        from linkage.report import Disclosure, write_evaluation_report

        write_evaluation_report(
            path, report, threshold=threshold, links=links, truth=truth,
            disclosure=Disclosure(min_count=report_min_count),
        )  # fmt: skip

    _write_report(True, report_path, evaluation_report)


def _check_sweep_floor(pairs: str, lo: float) -> None:
    """Refuse a sweep that starts below the threshold the pairs file was matched at (its
    metadata says): pairs under it were never written, so the sweep would be silently wrong."""
    import pyarrow.parquet as pq

    from linkage.errors import InputError

    try:
        meta = pq.read_metadata(pairs).metadata or {}
    except (OSError, ValueError):
        return  # evaluate() reports an unreadable file
    raw = meta.get(b"linkage.threshold")
    if raw is None:
        return
    used = float(raw.decode())
    if lo < used - 1e-9:
        raise InputError(
            f"{pairs}: the pairs were matched at threshold {used:g}, so a sweep from {lo:g} "
            f"cannot see pairs below {used:g}; run `linkage match --threshold {lo:g} --pairs "
            "...` for the sweep"
        )


# --- linkage map (the persistent map at the TLU; linkage/tlu/linkage_map/) ---------------


@main.group("map")
def map_group() -> None:
    """A persistent linkage map at the TLU (one DuckDB file): link once, then apply each
    partner's monthly extract as a new version with stable entity ids.

    \b
      linkage map create map.duckdb a.parquet b.parquet --dedupe --seed 7
      linkage map update map.duckdb a_2025_02.parquet        # a full extract of party a
      linkage map update map.duckdb a_new.parquet --delta --deletions gone.csv
      linkage map links map.duckdb -o links.parquet [--version N]
      linkage map changes map.duckdb --since 1 -o changes.parquet
      linkage map history map.duckdb --entity 0123456789abcdef
      linkage map keygen -o tlu.key
      linkage map export map.duckdb --project study42 --key-file tlu.key -o ids.parquet
    Details: docs/linkage-map.md.
    """


@map_group.command("create")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--threshold",
    default=0.7,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Minimum Dice similarity of a linked pair (as in `linkage match`).",
)
@click.option(
    "--blocking",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "none", "lsh", "keys"]),
    help="As in `linkage match`.",
)
@click.option("--dedupe", is_flag=True, help="Records of the same party may join one entity.")
@click.option(
    "--dedupe-threshold",
    type=click.FloatRange(0, 1),
    help="Minimum within-party score under --dedupe [default: max(threshold, 0.8)].",
)
@click.option(
    "--solver",
    default="greedy",
    show_default=True,
    type=click.Choice(["greedy", "optimal"]),
    help="As in `linkage match`.",
)
@click.option("--threads", type=click.IntRange(1), help="Threads (default: all cores).")
@click.option("--seed", type=int, help="Make entity ids (now and in every update) reproducible.")
@click.option(
    "--max-block",
    default=5000,
    show_default=True,
    type=click.IntRange(2),
    help="Blocks larger than this are scored by the all-pairs kernel.",
)
@click.option("--force", is_flag=True, help="Replace an existing map file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@handle_errors
def map_create_cmd(
    map_path: str,
    inputs: tuple[str, ...],
    threshold: float,
    blocking: str,
    dedupe: bool,
    dedupe_threshold: float | None,
    solver: str,
    threads: int | None,
    seed: int | None,
    max_block: int,
    force: bool,
    quiet: bool,
) -> None:
    """Link encoded files (as `linkage match` does) and store the result as version 1 of a
    new map. The options are kept in the map and re-used by every update."""
    from linkage.tlu.linkage_map import map_create

    bar = _Bar(_show_progress(quiet), "map create")
    try:
        s = map_create(
            map_path,
            list(inputs),
            threshold=threshold,
            blocking=blocking,
            dedupe=dedupe,
            dedupe_threshold=dedupe_threshold,
            solver=solver,
            threads=threads,
            seed=seed,
            max_block=max_block,
            force=force,
            warn=lambda m: click.echo(f"Warning: {m}", err=True),
            progress=bar.update,
        )
    finally:
        bar.close()
    if not quiet:
        click.echo(
            f"wrote {map_path}: version 1, {s['records']} records, {s['entities']} "
            f"entities, {s['pairs']} scored pairs",
            err=True,
        )


@map_group.command("update")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1)
@click.option(
    "--delta",
    is_flag=True,
    help="The files carry only additions and changes (nothing is retired unless "
    "listed in --deletions). Default: each file is its party's full extract, and "
    "records missing from it are retired.",
)
@click.option(
    "--deletions",
    type=click.Path(dir_okay=False),
    help="With --delta: CSV or Parquet (party, record_id) of records to retire.",
)
@click.option("--threads", type=click.IntRange(1), help="Threads (default: all cores).")
@click.option(
    "--wait",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for another update holding the map.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@handle_errors
def map_update_cmd(
    map_path: str,
    inputs: tuple[str, ...],
    delta: bool,
    deletions: str | None,
    threads: int | None,
    wait: float,
    quiet: bool,
) -> None:
    """Apply partners' new extracts as the next version: new and changed records are linked
    against the map, missing ones retired; only affected entities are re-clustered. One
    transaction: on any error or crash the map stays at its previous version."""
    from linkage.tlu.linkage_map import map_update

    bar = _Bar(_show_progress(quiet), "map update")
    try:
        s = map_update(
            map_path,
            list(inputs),
            delta=delta,
            deletions=deletions,
            threads=threads,
            wait=wait,
            warn=lambda m: click.echo(f"Warning: {m}", err=True),
            progress=bar.update,
        )
    finally:
        bar.close()
    if not quiet:
        click.echo(
            f"version {s['version']}: +{s['added']} added, {s['changed']} changed, "
            f"-{s['retired']} retired, {s['unchanged']} unchanged; {s['records']} "
            f"records, {s['entities']} entities ({s['events']} id events)",
            err=True,
        )


@map_group.command("links")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="links.parquet (entity_id, party, record_id), as `linkage match` writes.",
)
@click.option("--version", "version", type=click.IntRange(1), help="Map version [current].")
@handle_errors
def map_links_cmd(map_path: str, output: str, version: int | None) -> None:
    """Write the links of the current (or an earlier) version."""
    from linkage.tlu.linkage_map import map_links

    t = map_links(map_path, output, version=version)
    click.echo(f"wrote {output} ({t.num_rows} records)", err=True)


@map_group.command("changes")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option("--since", required=True, type=click.IntRange(0), help="Changes after version N.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="changes.parquet (version, change, entity_id, related_entity_id, records).",
)
@handle_errors
def map_changes_cmd(map_path: str, since: int, output: str) -> None:
    """Entities created, merged, split or retired after version N."""
    from linkage.tlu.linkage_map import map_changes

    t = map_changes(map_path, output, since=since)
    click.echo(f"wrote {output} ({t.num_rows} changes)", err=True)


@map_group.command("history")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option("--entity", required=True, help="Entity id (16 hex digits).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def map_history_cmd(map_path: str, entity: str, as_json: bool) -> None:
    """An entity's story: issue, fate, events and every record it ever held."""
    import json

    from linkage.tlu.linkage_map import map_history

    h = map_history(map_path, entity)
    if as_json:
        click.echo(json.dumps(h, indent=2))
        return
    click.echo(
        f"entity {h['entity_id']}: since version {h['first_version']}"
        + (f", {h['fate']} at version {h['ended']}" if h["ended"] else "")
        + (f" into {h['successor']}" if h["successor"] else "")
    )
    for e in h["events"]:
        click.echo(
            f"  v{e['version']} {e['change']} {e['entity_id']} -> "
            f"{e['related_entity_id'] or '-'} ({e['records']} records)"
        )
    for r in h["records"]:
        click.echo(
            f"  {r['party']} {r['record_id']}: versions {r['valid_from']}.."
            f"{'' if r['valid_to'] is None else r['valid_to'] - 1}"
        )


@map_group.command("info")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def map_info_cmd(map_path: str, as_json: bool) -> None:
    """Metadata, counts and the version log (who sent what, when)."""
    import json

    from linkage.tlu.linkage_map import map_info
    from linkage.tlu.linkage_map.views import info_lines

    info = map_info(map_path)
    click.echo(json.dumps(info, indent=2) if as_json else "\n".join(info_lines(info)))


@map_group.command("keygen")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def map_keygen_cmd(output: str, force: bool) -> None:
    """Write a new 32-byte TLU key (mode 0600) for `map export`. It is the TLU's own key,
    never the partners' secret; keep it at the TLU."""
    from linkage.tlu.linkage_map import map_keygen

    map_keygen(output, force=force)
    click.echo(f"wrote a new 32-byte TLU key to {output} (mode 0600)", err=True)


@map_group.command("export")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option("--project", required=True, help="Project name (each gets its own pseudonyms).")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The TLU key (from `linkage map keygen`).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="ids.parquet (party, record_id, pseudonym).",
)
@click.option("--version", "version", type=click.IntRange(1), help="Map version [current].")
@handle_errors
def map_export_cmd(
    map_path: str, project: str, key_file: str, output: str, version: int | None
) -> None:
    """Per-project pseudonyms of the entity ids (keyed hash under the TLU key and the
    project name): two projects' outputs cannot be joined without the TLU."""
    from linkage.tlu.linkage_map import map_export

    t = map_export(map_path, project=project, key_file=key_file, output=output, version=version)
    click.echo(f"wrote {output} ({t.num_rows} records, project {project!r})", err=True)


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
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--attacks",
    default="leaks,frequency,patterns,graph",
    show_default=True,
    help="Comma-separated attacks to run.",
)
@click.option(
    "--graph-sample",
    type=int,
    default=2000,
    show_default=True,
    help="Encoded records per graph-matching run (a sample; the list is sample / overlap).",
)
@click.option(
    "--overlaps",
    default="1,0.5,0.25",
    show_default=True,
    help="Graph matching: encoded sample as a share of the attacker's list.",
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
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    help="Also write the full result as JSON (atomically).",
)
@click.option("--force", is_flag=True, help="Replace an existing --json file.")
@handle_errors
def audit_cmd(
    encoded: str | None, schema_file: str, plaintext: str | None, reference: str | None,
    people: int, seed: int, attacks: str, graph_sample: int, overlaps: str,
    pattern_sample: int, id_column: str, json_out: str | None, force: bool,
) -> None:  # fmt: skip
    """Play the attacker against an encoding and report the worst case of each attack.

    \b
    Mode (b), before touching real data:  linkage audit -s schema.json --people 5000
    Mode (a), an encoded file:            linkage audit enc.parquet -s schema.json \\
                                              --plaintext extract.csv [--reference roll.csv]

    Attacks: leak statistics (Vidanage et al. 2023), frequency alignment of filters and block
    keys, pattern mining (Christen et al. 2018) and graph matching (Vidanage et al. 2020,
    Schafer et al. 2024) at several overlaps. No attack uses the secret. See docs/privacy.md.
    """
    from linkage.errors import InputError
    from linkage.lab.audit.runner import audit

    try:
        ovs = tuple(float(v) for v in overlaps.split(",") if v.strip())
    except ValueError:
        msg = f"--overlaps: expected numbers like 1,0.5,0.25, got {overlaps!r}"
        raise InputError(msg) from None
    if json_out is not None:
        from linkage._files import JSON, Output, check_outputs

        check_outputs([Output(Path(json_out), "audit", JSON)], force=force)
    result = audit(
        schema_file, encoded=encoded, plaintext=plaintext, reference=reference, people=people,
        seed=seed, attacks=tuple(a.strip() for a in attacks.split(",") if a.strip()),
        graph_sample=graph_sample, overlaps=ovs, pattern_sample=pattern_sample,
        id_column=id_column, progress=lambda msg: click.echo(f"audit: {msg}", err=True),
    )  # fmt: skip
    if json_out is not None:
        from linkage._files import atomic_outputs

        with atomic_outputs(Path(json_out), mode=0o644) as (tmp,):
            tmp.write_text(result.to_json(), encoding="utf-8")
    click.echo(result.to_text(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
