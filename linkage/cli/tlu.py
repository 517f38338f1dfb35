"""The linkage unit's commands: ``match`` and the ``map`` group (the persistent DuckDB
linkage map)."""

from __future__ import annotations

import atexit
import gc
from collections.abc import Callable

import click

from linkage.cli.common import (
    F,
    _Bar,
    _check_report,
    _not_both,
    _say_if_compiling,
    _show_progress,
    _warn,
    _write_report,
    handle_errors,
    main,
    report_options,
)


def _no_collections_at_exit() -> None:
    """Let the interpreter's exit skip its garbage collections over every object still alive
    (numba's compiler state, ~1M objects: about 0.2 s of a short command such as ``map
    update``): ``gc.freeze()`` from an atexit handler, so a process that runs commands
    in-process (the tests) keeps collecting until it ends. Nothing is left to clean up by
    then: the commands close their files and the map before they return."""
    atexit.register(gc.freeze)


def linking_options(fn: F) -> F:
    """The options ``match`` and ``map create`` share (threshold, blocking, dedupe, solver,
    threads, block size): one definition, so the two commands cannot drift apart."""
    fn = click.option(
        "--max-block",
        default=5000,
        show_default=True,
        type=click.IntRange(2),
        help="Blocks larger than this are scored by the all-pairs kernel (never dropped).",
    )(fn)
    fn = click.option("--threads", type=click.IntRange(1), help="Threads (default: all cores).")(fn)
    fn = click.option(
        "--solver",
        default="greedy",
        show_default=True,
        type=click.Choice(["greedy", "optimal"]),
        help="optimal: maximum-weight one-to-one matching of exactly two parties (a linkage "
        "map made with it never takes a third party: `map update` refuses one).",
    )(fn)
    fn = click.option(
        "--dedupe-threshold",
        type=click.FloatRange(0, 1),
        help="Minimum score of a within-party pair under --dedupe [default: max(threshold, 0.8)].",
    )(fn)
    fn = click.option(
        "--dedupe", is_flag=True, help="Records of the same party may join one entity."
    )(fn)
    fn = click.option(
        "--blocking",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "none", "lsh", "keys"]),
        help="none: exhaustive (exact); keys: shared keyed block keys (fast, default for large "
        "inputs); lsh: bit-sampling LSH (for files without block keys; selective only at high "
        "thresholds).",
    )(fn)
    fn = click.option(
        "--threshold",
        type=click.FloatRange(0, 1),
        help="Minimum Dice similarity of a linked pair [default: the threshold the schema "
        "recommends (match.threshold, carried in the encoded files; hardening raises Dice), else "
        "0.7]. To tune it on synthetic data, see docs/evaluate.md (a sweep of `linkage "
        "evaluate` cannot look below the threshold the pairs were matched at).",
    )(fn)
    return fn


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
    help="Also write matched pairs with their scores (.parquet); off unless asked for. "
    "Scores are sensitive (released scores let an attacker fingerprint people: Culnane, "
    "Rubinstein & Teague 2017): write them only to tune or evaluate on test data, protect the "
    "file and never pass it on. Reports never show raw scores, only binned, "
    "disclosure-controlled counts.",
)
@click.option("--force", is_flag=True, help="Replace existing output files.")
@linking_options
@click.option("--seed", type=int, help="Make entity ids and LSH sampling reproducible.")
@click.option(
    "--max-candidates",
    type=click.IntRange(1),
    help="Candidate pairs kept per record, its best by score (used as given with either "
    "scoring). [default: 100 with Dice scoring, where it bounds memory when many records look "
    "alike and is warned about when it bites; 16 with field-aware scoring, where candidates "
    "are taken at Dice >= 0.5 and most records of a large job have more: their count is in "
    "the summary, without a warning. Above 32 field-aware candidates are slower to gather.]",
)
@click.option(
    "--scheduler",
    metavar="local[:N]|tls://HOST:PORT",
    help="Run candidate scoring on Dask (pip install 'pprl-linkage[dask]'); the files must be "
    "readable by every worker. See docs/scale.md.",
)
@click.option(
    "--scoring",
    type=click.Choice(["auto", "fields", "dice"]),
    default="auto",
    show_default=True,
    help="fields: per-field match weights estimated by EM, coherent clusters (segmented "
    "encodings; docs/quality.md); dice: one record-level Dice threshold; auto: fields when "
    "the encodings are segmented.",
)
@click.option(
    "--one-to-one",
    is_flag=True,
    help="With field-aware scoring: at most one record per party per entity (no duplicates "
    "within a party).",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
@report_options
@handle_errors
def match_cmd(
    inputs: tuple[str, ...],
    output: str,
    pairs_out: str | None,
    force: bool,
    threshold: float | None,
    blocking: str,
    dedupe: bool,
    dedupe_threshold: float | None,
    solver: str,
    threads: int | None,
    seed: int | None,
    max_block: int,
    max_candidates: int | None,
    scheduler: str | None,
    scoring: str,
    one_to_one: bool,
    quiet: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Link encoded files from two or more partners (or one, with --dedupe).

    Writes links.parquet with entity_id, party, record_id for every record (singletons too).
    Entity ids are opaque and random per run unless --seed is given. All files must share
    schema, secret (key-check value) and filter length.

    To choose a threshold: match synthetic data (`linkage synth`) at a low threshold, e.g.
    0.5, with --pairs, then run `linkage evaluate --pairs pairs.parquet --sweep
    0.5:0.95:0.01`.
    """
    from linkage.report.text import match_summary_lines
    from linkage.tlu.linker import check_output_paths, match

    _no_collections_at_exit()
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
        max_candidates="auto" if max_candidates is None else max_candidates,
        warn=_warn,
        progress=progress,
        scheduler=scheduler,
        scoring=scoring,
        one_to_one=one_to_one,
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


# --- linkage map (the persistent map at the TLU; linkage/tlu/linkage_map/) ---------------
_WAIT_HELP = "Seconds to wait for an update holding the map (readers wait as updates do)."
_wait_option = click.option(
    "--wait", default=0.0, show_default=True, type=click.FloatRange(0), help=_WAIT_HELP
)
_force_option = click.option("--force", is_flag=True, help="Replace an existing output file.")
_quiet_option = click.option("-q", "--quiet", is_flag=True, help="No summary line.")


def _interrupted(map_path: str, before: int | None) -> None:
    """After an interrupt of ``map update``: say the map's version and whether this update
    was applied, exit 130."""
    from linkage.cli.common import EXIT_INTERRUPTED, _fail
    from linkage.tlu.linkage_map.interrupts import state_after_interrupt

    _fail(state_after_interrupt(map_path, before), EXIT_INTERRUPTED)


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
@linking_options
@click.option("--seed", type=int, help="Make entity ids (now and in every update) reproducible.")
@click.option(
    "--max-candidates",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="As in `linkage match`; a cap that bites (now or in a later update) is refused: "
    "the map keeps only links the cap does not change.",
)
@click.option(
    "--no-max-candidates",
    is_flag=True,
    help="No per-record cap (every pair at or above the threshold is kept).",
)
@click.option(
    "--scoring",
    type=click.Choice(["auto", "dice", "fields"]),
    default="auto",
    show_default=True,
    help="The map links by whole-filter Dice (field-aware scoring is not supported by the "
    "map yet, so fields is refused): auto links segmented encodings that way too and prints "
    "a note saying so; dice does so without the note.",
)
@click.option("--force", is_flag=True, help="Replace an existing map file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@report_options
@handle_errors
def map_create_cmd(
    map_path: str,
    inputs: tuple[str, ...],
    threshold: float | None,
    blocking: str,
    dedupe: bool,
    dedupe_threshold: float | None,
    solver: str,
    threads: int | None,
    seed: int | None,
    max_block: int,
    max_candidates: int,
    no_max_candidates: bool,
    scoring: str,
    force: bool,
    quiet: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Link encoded files (as `linkage match` does) and store the result as version 1 of a
    new map. The options are kept in the map and re-used by every update."""
    _not_both("max_candidates", "no_max_candidates")
    from linkage.tlu.linkage_map import map_create

    _no_collections_at_exit()
    _check_report(report_path, [*inputs, map_path], force)
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
            max_candidates=None if no_max_candidates else max_candidates,
            scoring=scoring,
            force=force,
            warn=_map_warn(quiet),
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
    _write_report(quiet, report_path, lambda p: _map_report(p, map_path, report_min_count))


def _map_warn(quiet: bool) -> Callable[[str], None]:
    """Warnings of map create / update: with -q, those about --max-block are left out (the
    work is the same, nothing is dropped); the others (the map links segmented files by
    Dice) are said."""

    def warn(msg: str) -> None:
        if not (quiet and "--max-block" in msg):
            click.echo(f"Warning: {msg}", err=True)

    return warn


def _map_report(path: str, map_path: str, min_count: int) -> None:
    from linkage.report import Disclosure, write_map_report

    write_map_report(path, map_path, disclosure=Disclosure(min_count=min_count))


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
@click.option(
    "--replace-all",
    is_flag=True,
    help="Accept a full extract that shares (almost) none of its party's current record "
    "ids (a renumbering): refused without it, as it retires the party's whole population.",
)
@click.option(
    "--allow-mass-change",
    is_flag=True,
    help="Accept an update that retires or changes over 25% of a party's current records "
    "(refused without it: a truncated extract, or a column mapped to the wrong field?).",
)
@click.option(
    "--max-candidates",
    type=click.IntRange(1),
    help="Raise the map's per-record candidate cap for this update and the later ones "
    "(stored; never lowered) [default: the map's]: when an update is refused because the cap "
    "bites.",
)
@click.option(
    "--no-max-candidates",
    is_flag=True,
    help="Remove the map's per-record candidate cap (stored).",
)
@click.option(
    "--reapply",
    is_flag=True,
    help="Apply a file already applied to its party (the same SHA-256), or one encoded before "
    "the last file applied to it (refused without it).",
)
@click.option(
    "--new-party",
    is_flag=True,
    help="Accept a party not yet in the map that is named like an existing one (case, "
    "spaces, punctuation aside) or holds most of its current record ids (refused without "
    "it: a party name mistyped when the file was encoded?).",
)
@click.option("--force", is_flag=True, help="Replace an existing --report file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@report_options
@handle_errors
def map_update_cmd(
    map_path: str,
    inputs: tuple[str, ...],
    delta: bool,
    deletions: str | None,
    threads: int | None,
    wait: float,
    replace_all: bool,
    allow_mass_change: bool,
    max_candidates: int | None,
    no_max_candidates: bool,
    reapply: bool,
    new_party: bool,
    force: bool,
    quiet: bool,
    report_path: str | None,
    report_min_count: int,
) -> None:
    """Apply partners' new extracts as the next version: new and changed records are linked
    against the map, missing ones retired; only affected entities are re-clustered. One
    transaction: on any error or crash the map stays at its previous version."""
    from linkage.interrupts import Interrupts

    _no_collections_at_exit()
    _not_both("max_candidates", "no_max_candidates")
    _check_report(report_path, [*inputs, map_path], force)
    opened: list[int] = []  # the version the update opened, once it has
    interrupts = Interrupts()  # Ctrl-C noted, whatever DuckDB turns it into
    try:
        with interrupts:
            from linkage.tlu.linkage_map import map_update  # an interrupt here is one too

            bar = _Bar(_show_progress(quiet), "map update")
            try:
                s = map_update(
                    map_path, list(inputs), delta=delta, deletions=deletions, threads=threads,
                    wait=wait, replace_all=replace_all, allow_mass_change=allow_mass_change,
                    reapply=reapply, new_party=new_party,
                    max_candidates=None if no_max_candidates else (max_candidates or "stored"),
                    warn=_map_warn(quiet), progress=bar.update, opened=opened.append,
                )  # fmt: skip
            finally:
                bar.close()
            if not quiet:
                click.echo(
                    f"version {s['version']}: +{s['added']} added, {s['changed']} changed, "
                    f"-{s['retired']} retired, {s['unchanged']} unchanged; {s['records']} "
                    f"records, {s['entities']} entities ({s['events']} id events)",
                    err=True,
                )
    except BaseException as exc:
        if interrupts.seen or isinstance(exc, KeyboardInterrupt):
            _interrupted(map_path, opened[0] if opened else None)
        raise
    _write_report(quiet, report_path, lambda p: _map_report(p, map_path, report_min_count))


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
@_force_option
@_wait_option
@_quiet_option
@handle_errors
def map_links_cmd(
    map_path: str, output: str, version: int | None, force: bool, wait: float, quiet: bool
) -> None:
    """Write the links of the current (or an earlier) version."""
    from linkage.tlu.linkage_map import map_links

    t = map_links(map_path, output, version=version, force=force, wait=wait)
    if not quiet:
        click.echo(f"wrote {output} ({t.num_rows} records)", err=True)


@map_group.command("changes")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option(
    "--since",
    required=True,
    type=click.IntRange(0),
    help="Changes after version N (0: everything from the start, version 1's created ids too).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="changes.parquet (version, change, entity_id, related_entity_id, records).",
)
@_force_option
@_wait_option
@_quiet_option
@handle_errors
def map_changes_cmd(
    map_path: str, since: int, output: str, force: bool, wait: float, quiet: bool
) -> None:
    """Entities created, merged, split or retired after version N."""
    from linkage.tlu.linkage_map import map_changes

    t = map_changes(map_path, output, since=since, force=force, wait=wait)
    if not quiet:
        click.echo(f"wrote {output} ({t.num_rows} changes)", err=True)


@map_group.command("history")
@click.argument("map_path", metavar="MAP.duckdb", type=click.Path(dir_okay=False))
@click.option("--entity", required=True, help="Entity id (16 hex digits).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_wait_option
@handle_errors
def map_history_cmd(map_path: str, entity: str, as_json: bool, wait: float) -> None:
    """An entity's story: issue, fate, events and every record it ever held."""
    import json

    from linkage.tlu.linkage_map import map_history

    h = map_history(map_path, entity, wait=wait)
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
@_wait_option
@handle_errors
def map_info_cmd(map_path: str, as_json: bool, wait: float) -> None:
    """Metadata, counts and the version log (who sent what, when)."""
    import json

    from linkage.tlu.linkage_map import map_info
    from linkage.tlu.linkage_map.views import info_lines

    info = map_info(map_path, wait=wait)
    click.echo(json.dumps(info, indent=2) if as_json else "\n".join(info_lines(info)))


@map_group.command("keygen")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@_quiet_option
@handle_errors
def map_keygen_cmd(output: str, force: bool, quiet: bool) -> None:
    """Write a new 32-byte TLU key (mode 0600) for `map export`. It is the TLU's own key,
    never the partners' secret; keep it at the TLU."""
    from linkage.tlu.linkage_map import map_keygen

    map_keygen(output, force=force)
    if not quiet:
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
@_force_option
@_wait_option
@_quiet_option
@handle_errors
def map_export_cmd(
    map_path: str,
    project: str,
    key_file: str,
    output: str,
    version: int | None,
    force: bool,
    wait: float,
    quiet: bool,
) -> None:
    """Per-project pseudonyms of the entity ids (keyed hash under the TLU key and the
    project name): two projects' outputs cannot be joined without the TLU."""
    from linkage.tlu.linkage_map import map_export

    t = map_export(
        map_path,
        project=project,
        key_file=key_file,
        output=output,
        version=version,
        force=force,
        wait=wait,
    )
    if not quiet:
        click.echo(f"wrote {output} ({t.num_rows} records, project {project!r})", err=True)
