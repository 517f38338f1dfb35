"""Writing outputs: checked before any work, private, atomic, all or nothing.

Every file that linkage writes goes through this module:

- :func:`check_outputs` runs before any work. It refuses an output that is a directory, whose
  folder is missing or not writable, that is named twice, that would overwrite an input, whose
  name says another format than the one written (``links.csv`` for Parquet), or that already
  exists (unless ``force``).
- :func:`atomic_outputs` gives the writer one temporary file per output, created beside it
  (same file system) with mode 0600 whatever the umask. When the block ends without error the
  temporary files are fsync'd and renamed over their targets; on any error they are removed
  and the targets are untouched.

Guarantee. One output: the rename is atomic (POSIX ``rename``), so a reader, or a crash at
any moment, sees the old file or the complete new one. Several outputs (links + pairs,
encoded file + rejects): an error raised anywhere, the commit included, leaves every target
as it was (renamed-away old files are renamed back). A crash of the process (power loss,
SIGKILL) inside the commit itself, a few renames long, can leave some targets missing, their
old versions kept as hidden ``.NAME.*.old`` files beside them, but never an old file beside a
new one: existing targets are moved aside before any new file is moved in. Outputs written
together also carry the same ``run_id`` in their metadata where the format has metadata.

OS errors (disk full, read-only folder, permission denied) become :class:`OutputError`,
naming the target path (never a temporary name), with nothing left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from linkage.errors import LinkageError

PARQUET = (".parquet", ".pq", ".parq")
CSV = (".csv",)
JSON = (".json",)
_FORMAT_NAMES = {PARQUET: "Parquet", CSV: "CSV", JSON: "JSON"}
PRIVATE = 0o600

__all__ = [
    "CSV",
    "JSON",
    "PARQUET",
    "Output",
    "OutputError",
    "atomic_outputs",
    "check_outputs",
    "loose_permissions",
    "os_error_message",
    "spreadsheet_safe",
]


class OutputError(LinkageError):
    """An output cannot be written (exists, wrong name, no space, no permission...)."""


@dataclass(frozen=True)
class Output:
    """One file to write: its path, words for messages and the name endings its format takes
    (empty: any name)."""

    path: Path
    what: str = "output"
    suffixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, item: Output | str | Path) -> Output:
        return item if isinstance(item, Output) else cls(Path(item))


def check_outputs(
    outputs: Sequence[Output | str | Path],
    inputs: Sequence[str | Path] = (),
    *,
    force: bool = False,
) -> list[Path]:
    """Refuse outputs that cannot or should not be written; return their paths.

    Raises :class:`OutputError` naming the path: a name that holds the project secret's
    text (the message does not repeat it); a directory; a missing or unwritable folder;
    the same path twice; an input path; a name whose ending is not one of the output's
    ``suffixes``; an existing file unless ``force`` (the CLI's ``--force``)."""
    from linkage.secret_text import looks_like_secret, secret_itself

    seen: dict[Path, Path] = {}
    ins = {Path(i).resolve(): Path(i) for i in inputs if not _is_url(str(i))}
    out: list[Path] = []
    for item in outputs:
        if not isinstance(item, Output) and _is_url(str(item)):
            raise OutputError(f"{item}: outputs must be local files")
        o = Output.of(item)
        p = o.path
        if looks_like_secret(p):  # `-o "$(cat secret.key)"`: never write a file named so
            raise OutputError(secret_itself(f"the {o.what} name"))
        r = p.resolve()
        if r in ins:
            raise OutputError(f"{p}: the {o.what} would overwrite the input {ins[r]}")
        if o.suffixes and p.suffix.lower() not in o.suffixes:
            fmt = _FORMAT_NAMES.get(o.suffixes, "/".join(o.suffixes))
            raise OutputError(
                f"{p}: the {o.what} is written as {fmt}; give a name ending in {o.suffixes[0]}"
            )
        if p.is_dir():
            raise OutputError(f"{p}: the {o.what} is a directory")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError(f"{parent}: folder for the {o.what} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{parent}: cannot write the {o.what} here (permission denied)")
        if r in seen:
            raise OutputError(f"{p}: given as two outputs")
        if (p.exists() or p.is_symlink()) and not force:
            raise OutputError(f"{p} already exists (force=True replaces it)")
        seen[r] = p
        out.append(p)
    return out


def _is_url(path: str) -> bool:
    return "://" in path


def _hidden(target: Path, tag: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{tag}")


def _new_private_file(path: Path, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsync'd
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path, mode: int = PRIVATE) -> Iterator[list[Path]]:
    """Temporary files (mode ``mode``) for ``paths``, renamed over them, all or nothing, when
    the block succeeds; removed when it fails. See the module docstring for the guarantee.

    ``with atomic_outputs(links, pairs) as (tmp_links, tmp_pairs): write(tmp_links) ...``"""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for t in targets:
            tmp = _hidden(t, "partial")
            _new_private_file(tmp, mode)
            temps.append(tmp)
    except OSError as exc:
        _remove(temps)
        raise _cannot_write(exc, targets[len(temps)]) from None
    try:
        yield list(temps)
    except OSError as exc:
        _remove(temps)
        mapped = _output_error(exc, targets, temps)
        if mapped is None:
            raise
        raise mapped from None
    except BaseException:
        _remove(temps)
        raise
    try:
        for tmp in temps:
            os.chmod(tmp, mode)  # a writer may have replaced the file
            _fsync(tmp)
        _commit(temps, targets)
    except OSError as exc:
        _remove(temps)
        raise _cannot_write(exc, ", ".join(str(t) for t in targets)) from None
    except BaseException:
        _remove(temps)
        raise


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)


def _commit(temps: Sequence[Path], targets: Sequence[Path]) -> None:
    if len(targets) == 1:
        os.replace(temps[0], targets[0])
        _fsync_dir(targets[0].parent if str(targets[0].parent) else Path("."))
        return
    aside: list[tuple[Path, Path]] = []
    moved_in: list[Path] = []
    try:
        for t in targets:  # old files out of the way first: never old beside new
            if t.exists() or t.is_symlink():
                old = _hidden(t, "old")
                os.rename(t, old)
                aside.append((t, old))
        for tmp, t in zip(temps, targets, strict=True):
            os.rename(tmp, t)
            moved_in.append(t)
    except BaseException:
        _remove(moved_in)
        for t, old in reversed(aside):
            with contextlib.suppress(OSError):
                os.rename(old, t)
        raise
    for parent in {t.parent if str(t.parent) else Path(".") for t in targets}:
        _fsync_dir(parent)
    _remove([old for _, old in aside])


_ERRNO_RE = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}


def _errno(exc: OSError) -> int | None:
    if exc.errno is not None:
        return exc.errno
    m = _ERRNO_RE.search(str(exc))  # pyarrow's IO errors carry it in the message only
    return int(m.group(1)) if m else None


def os_error_message(exc: OSError, path: object = None) -> str:
    """One line for an OS error: the path (``path`` or the error's own) and the reason."""
    code = _errno(exc)
    reason = os.strerror(code) if code is not None else (exc.strerror or str(exc) or "OS error")
    where = path if path is not None else exc.filename
    return f"{where}: {reason}" if where is not None else reason


def _cannot_write(exc: OSError, target: object) -> OutputError:
    return OutputError(f"cannot write {os_error_message(exc, target)}")


def _output_error(exc: OSError, targets: Sequence[Path], temps: Sequence[Path]) -> Exception | None:
    """The error naming the target when ``exc`` is about writing one; None when it is not
    ours (an input that cannot be read, say)."""
    text = f"{exc.filename} {exc.filename2} {exc}"
    for tmp, t in zip(temps, targets, strict=False):
        if str(tmp) in text or tmp.name in text:
            return _cannot_write(exc, t)
    for t in targets:
        if str(t) in text:
            return _cannot_write(exc, t)
    if exc.filename is None and _errno(exc) in _WRITE_ERRNOS:
        return _cannot_write(exc, ", ".join(str(t) for t in targets))
    return None


def loose_permissions(mode: int) -> list[str]:
    """What other users may do with a file of ``mode``: read or write bits for its group or
    for everyone (group members are other users too). Empty for a private file (0600, 0400).
    The secret file is warned about (:mod:`linkage.secret`); the TLU key file
    is refused (``linkage map export``)."""
    loose = []
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        who = "every user" if mode & stat.S_IROTH else "its group"
        loose.append(f"readable by {who}")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "every user" if mode & stat.S_IWOTH else "its group"
        loose.append(f"writable by {who}")
    return loose


# Cells a spreadsheet reads as a formula (OWASP, "CSV Injection": =, +, -, @, tab, CR), and
# the quote that marks a neutralised cell (prefixed too, so the rule can be undone exactly).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` for a CSV that people open in a spreadsheet: a cell starting with ``=``, ``+``,
    ``-``, ``@``, tab or carriage return gets a leading single quote, so Excel, LibreOffice and
    Google Sheets show it as text instead of running it as a formula (OWASP "CSV Injection").
    A cell that starts with a quote gets one more, so the rule is undone exactly by removing
    one leading quote from every cell that starts with one. Machine outputs (Parquet) keep
    values exact."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


# -- directories (synthetic data sets) -------------------------------------------------------
def new_temp_dir(out: Path) -> Path:
    """A hidden temporary folder beside ``out`` (created with its parents' folder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))


def install_dir(tmp: Path, out: Path, mode: int = 0o755) -> None:
    """Move a finished temporary folder to ``out``, replacing an empty or earlier ``out``
    (moved aside first, removed after): ``out`` is the old folder or the new one, whole."""
    os.chmod(tmp, mode)
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(tmp, out)
        return
    old = _hidden(out, "old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
