"""Shared pieces of the command line: the ``main`` group, error handling, progress bars,
option parsing and report options. Command modules register on :data:`main`."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from linkage import __version__
from linkage.errors import LinkageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHECK_FAILED = 1
"""A check the user asked for failed (``audit --fail-above``): outputs are written."""
EXIT_INPUT = 2
"""Bad input or usage (:class:`~linkage.errors.LinkageError`, OS errors): no output."""
EXIT_OUT_OF_MEMORY = 3
"""Out of memory: no output; the message names the option that needs less."""
EXIT_INTERNAL = 70
"""A bug (EX_SOFTWARE in BSD's sysexits.h): no output; LINKAGE_DEBUG=1 shows the traceback.
Distinct from :data:`EXIT_CHECK_FAILED`, so a script that gates on ``--fail-above`` never
takes a crash for a measured result."""
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141
"""The reader of the command's output went away (``linkage map history ... | head -1``):
no message, as a shell's command killed by SIGPIPE (128 + 13)."""


def _fail(msg: str, code: int = EXIT_INPUT) -> None:
    from linkage.secret_text import hide_secrets

    click.echo(f"Error: {hide_secrets(msg)}", err=True)
    sys.exit(code)


_MEMORY_HINTS = {
    "encode": "try a smaller --batch-size",
    "match": "try a smaller --max-candidates, --blocking keys or a higher --threshold",
}


def _out_of_memory_hint() -> str:
    """'out of memory' with the options of the command that ran (never an option it lacks)."""
    ctx = click.get_current_context(silent=True)
    name = ctx.info_name if ctx is not None else None
    hint = _MEMORY_HINTS.get(name or "")
    return f"out of memory; {hint}" if hint else "out of memory"


def handle_errors(fn: F) -> F:
    """Turn LinkageError and OS errors into one line (``Error: ...``) and exit status 2;
    running out of memory exits 3, an interrupt 130, a bug 70 (the ``EXIT_*`` constants)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from linkage.interrupts import Interrupts

        with Interrupts() as interrupts:
            try:
                _refuse_secret_values(kwargs)
                return fn(*args, **kwargs)
            except click.ClickException:
                raise  # a usage error raised in a command body: click shows it (exit 2)
            except (Exception, KeyboardInterrupt) as exc:
                # Ctrl-C, whatever a library turned it into (DuckDB: "Query interrupted")
                if interrupts.seen or isinstance(exc, KeyboardInterrupt):
                    _fail("interrupted; no output written", EXIT_INTERRUPTED)
                _handle(exc)

    return wrapper  # type: ignore[return-value]


def _handle(exc: BaseException) -> None:
    """The one line (and exit status) of an exception a command raised."""
    if isinstance(exc, BrokenPipeError):
        _pipe_closed()
    if isinstance(exc, LinkageError):
        _fail(_cli_words(str(exc)), exc.exit_code)
    if isinstance(exc, OSError):
        from linkage._files import os_error_message

        _fail(os_error_message(exc))
    if isinstance(exc, MemoryError):
        _fail(_out_of_memory_hint(), EXIT_OUT_OF_MEMORY)
    if os.environ.get("LINKAGE_DEBUG"):  # a bug: one line (no values), the traceback on request
        raise exc
    _fail(
        f"internal error ({type(exc).__name__}); no output written. Please report it "
        "with the command you ran (LINKAGE_DEBUG=1 shows the traceback)",
        EXIT_INTERNAL,
    )


def _pipe_closed() -> None:
    """Exit quietly with :data:`EXIT_PIPE_CLOSED`: the output's reader closed the pipe, so
    there is no one to tell; stdout and stderr go to /dev/null so the interpreter's own
    flush at exit does not fail on the same pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    sys.exit(EXIT_PIPE_CLOSED)


def _refuse_secret_values(values: dict[str, Any]) -> None:
    """Refuse a command whose option or argument value looks like the project secret
    (README, "Security notes": whatever option it was given to, e.g. ``--project "$(cat
    secret.key)"``, which would otherwise end up in an output's metadata). Names the
    option, never the value. Raises :class:`~linkage.errors.InputError`."""
    from linkage.errors import InputError
    from linkage.secret_text import looks_like_secret, secret_itself

    ctx = click.get_current_context(silent=True)
    params = {p.name: p for p in ctx.command.params} if ctx is not None else {}

    def flat(v: Any) -> Iterator[Any]:
        if isinstance(v, (tuple, list)):
            for item in v:
                yield from flat(item)
        else:
            yield v

    for key, value in values.items():
        if any(isinstance(v, (str, Path)) and looks_like_secret(v) for v in flat(value)):
            p = params.get(key)
            where = (max(p.opts, key=len) if isinstance(p, click.Option) else
                     p.human_readable_name if p is not None else key)  # fmt: skip
            raise InputError(secret_itself(where))


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


def _not_both(first: str, second: str) -> None:
    """A usage error when both options were given on the command line (e.g. ``--max-candidates
    10 --no-max-candidates``: one would silently win). Names are parameter names."""
    ctx = click.get_current_context()
    given = [
        n for n in (first, second)
        if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE
    ]  # fmt: skip
    if len(given) == 2:
        opts = {p.name: max(p.opts, key=len) for p in ctx.command.params if p.opts}
        raise click.UsageError(f"give {opts[first]} or {opts[second]}, not both")


def _warn(msg: str) -> None:
    from linkage.secret_text import hide_secrets

    click.echo(f"Warning: {hide_secrets(msg)}", err=True)


class _Group(click.Group):
    """The command group: click's own usage errors (an unexpected argument, a bad option
    value) never repeat a value that looks like the project secret."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _secrets_hidden():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _secrets_hidden():
            return super().invoke(ctx)


@contextlib.contextmanager
def _secrets_hidden() -> Iterator[None]:
    try:
        yield
    except click.ClickException as exc:
        from linkage.secret_text import hide_secrets

        exc.message = hide_secrets(exc.message)  # type: ignore[misc]
        raise


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
    try:
        write(path)
    except KeyboardInterrupt:  # the command's own outputs are written by now: say so
        _fail(
            f"interrupted while writing the report {path}: the report was not written; "
            "everything else the command writes was written before it",
            EXIT_INTERRUPTED,
        )
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


@click.group(
    cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
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
