"""linkage._files: outputs checked before work, private (0600), atomic, all or nothing; OS
errors as one line naming the target; the CLI's handling of OS errors."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from linkage import _files
from linkage._files import (
    CSV,
    PARQUET,
    Output,
    OutputError,
    atomic_outputs,
    check_outputs,
    install_dir,
    new_temp_dir,
)
from linkage.cli import handle_errors


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _names(d: Path) -> list[str]:
    return sorted(os.listdir(d))


# -- check_outputs ---------------------------------------------------------------------------------
def test_existing_output_is_refused_unless_force(tmp_path: Path) -> None:
    p = tmp_path / "secret.key"
    p.write_text("project secret")
    with pytest.raises(OutputError, match="already exists") as exc:
        check_outputs([Output(p, "secret file")])
    assert str(p) in str(exc.value)
    with pytest.raises(OutputError, match="already exists"):
        check_outputs([tmp_path / "secret.key"])
    assert check_outputs([tmp_path / "secret.key"], force=True) == [p]
    assert p.read_text() == "project secret"


@pytest.mark.parametrize(
    ("name", "suffixes", "ok"),
    [
        ("links.csv", PARQUET, False),
        ("links.txt", PARQUET, False),
        ("links", PARQUET, False),
        ("links.parquet", PARQUET, True),
        ("links.PARQUET", PARQUET, True),
        ("links.pq", PARQUET, True),
        ("rejects.parquet", CSV, False),
        ("rejects.csv", CSV, True),
        ("anything.bin", (), True),
    ],
)
def test_output_name_must_say_its_format(
    tmp_path: Path, name: str, suffixes: tuple, ok: bool
) -> None:
    item = Output(tmp_path / name, "links file", suffixes)
    if ok:
        check_outputs([item])
    else:
        with pytest.raises(OutputError, match=f"ending in {suffixes[0]}"):
            check_outputs([item])


def test_other_refusals(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "in.csv").write_text("x")
    cases = [
        ([tmp_path / "d"], "directory"),
        ([tmp_path / "nodir" / "x.parquet"], "does not exist"),
        ([tmp_path / "a.parquet", tmp_path / "." / "a.parquet"], "two outputs"),
        ([tmp_path / "in.csv"], "overwrite the input"),
        (["s3://bucket/x.parquet"], "local files"),
    ]
    for outs, needle in cases:
        with pytest.raises(OutputError, match=needle):
            check_outputs(outs, [tmp_path / "in.csv"], force=True)


def test_unwritable_folder_is_refused_before_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_files.os, "access", lambda *a, **k: False)  # as a read-only folder
    with pytest.raises(OutputError, match="permission denied") as exc:
        check_outputs([tmp_path / "x.parquet"])
    assert str(tmp_path) in str(exc.value)


# -- atomic_outputs --------------------------------------------------------------------------------
def test_outputs_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with atomic_outputs(tmp_path / "a.parquet", tmp_path / "b.csv") as temps:
            for t in temps:
                assert _mode(t) == 0o600  # the temporary files too
                t.write_text("data")
    finally:
        os.umask(old)
    assert _names(tmp_path) == ["a.parquet", "b.csv"]
    assert _mode(tmp_path / "a.parquet") == _mode(tmp_path / "b.csv") == 0o600


def test_a_writer_replacing_the_temp_file_still_gives_0600(tmp_path: Path) -> None:
    with atomic_outputs(tmp_path / "a.txt") as (tmp,):
        tmp.unlink()
        tmp.write_text("x")
        tmp.chmod(0o644)
    assert _mode(tmp_path / "a.txt") == 0o600


def test_failure_leaves_nothing_and_keeps_old_files(tmp_path: Path) -> None:
    (tmp_path / "links.parquet").write_text("old links")
    outs = (tmp_path / "links.parquet", tmp_path / "pairs.parquet")
    with pytest.raises(ValueError), atomic_outputs(*outs) as temps:
        temps[0].write_text("new")
        raise ValueError("boom")
    assert _names(tmp_path) == ["links.parquet"]
    assert (tmp_path / "links.parquet").read_text() == "old links"


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError("IOError: [errno 28] No space left on device"),  # as pyarrow raises it
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        PermissionError(errno.EACCES, "Permission denied"),
    ],
)
def test_os_error_while_writing_names_the_target(tmp_path: Path, exc: OSError) -> None:
    target = tmp_path / "links.parquet"
    with pytest.raises(OutputError) as err, atomic_outputs(target) as (tmp,):
        tmp.write_text("partial")
        raise exc
    msg = str(err.value)
    assert str(target) in msg and ".partial" not in msg and "None" not in msg
    assert "No space" in msg or "quota" in msg or "Permission denied" in msg
    assert _names(tmp_path) == []


def test_os_error_naming_the_temp_file_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    with pytest.raises(OutputError) as err, atomic_outputs(target) as (tmp,):
        raise OSError(f"Failed to open local file '{tmp}'. Detail: [errno 13] Permission denied")
    assert str(target) in str(err.value) and ".partial" not in str(err.value)
    assert _names(tmp_path) == []


def test_os_error_about_an_input_is_not_blamed_on_the_output(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_outputs(tmp_path / "x.parquet"):
        open(tmp_path / "missing-input.csv")  # noqa: SIM115
    assert _names(tmp_path) == []


def test_cannot_create_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*a: object, **k: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(a[0]))

    monkeypatch.setattr(_files.os, "open", denied)
    with (
        pytest.raises(OutputError, match="Permission denied") as err,
        atomic_outputs(tmp_path / "x.parquet"),
    ):
        pass
    assert str(tmp_path / "x.parquet") in str(err.value)


# -- two outputs: all or nothing -------------------------------------------------------------------
def _old_pair(tmp_path: Path) -> tuple[Path, Path]:
    links, pairs = tmp_path / "links.parquet", tmp_path / "pairs.parquet"
    links.write_text("old links")
    pairs.write_text("old pairs")
    return links, pairs


def test_failed_commit_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    links, pairs = _old_pair(tmp_path)
    real = os.rename
    calls = []

    def rename(src: object, dst: object) -> None:
        calls.append((Path(str(src)).name, Path(str(dst)).name))
        if Path(str(dst)) == pairs and str(src).endswith(".partial"):
            raise OSError(errno.EIO, "I/O error")  # the second move-in fails
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(_files.os, "rename", rename)
    with pytest.raises(OutputError), atomic_outputs(links, pairs) as temps:
        temps[0].write_text("new links")
        temps[1].write_text("new pairs")
    assert _names(tmp_path) == ["links.parquet", "pairs.parquet"]
    assert links.read_text() == "old links" and pairs.read_text() == "old pairs"


def test_never_new_links_beside_old_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At every rename of the commit (where a crash could stop it) no new file stands beside
    an old one under the target names."""
    links, pairs = _old_pair(tmp_path)
    real = os.rename
    states = []

    def rename(src: object, dst: object) -> None:
        real(src, dst)  # type: ignore[arg-type]
        states.append({p.name: p.read_text() for p in (links, pairs) if p.exists()})

    monkeypatch.setattr(_files.os, "rename", rename)
    with atomic_outputs(links, pairs) as temps:
        temps[0].write_text("new links")
        temps[1].write_text("new pairs")
    assert states[-1] == {"links.parquet": "new links", "pairs.parquet": "new pairs"}
    for s in states:
        ages = {v.split()[0] for v in s.values()}
        assert len(ages) <= 1, s
    assert _names(tmp_path) == ["links.parquet", "pairs.parquet"]


def test_interrupt_during_commit_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links, pairs = _old_pair(tmp_path)
    real = os.rename
    n = [0]

    def rename(src: object, dst: object) -> None:
        n[0] += 1
        if n[0] == 4:  # old links aside, old pairs aside, new links in, then Ctrl-C
            raise KeyboardInterrupt
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(_files.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt), atomic_outputs(links, pairs) as temps:
        temps[0].write_text("new links")
        temps[1].write_text("new pairs")
    monkeypatch.setattr(_files.os, "rename", real)
    assert _names(tmp_path) == ["links.parquet", "pairs.parquet"]
    assert links.read_text() == "old links" and pairs.read_text() == "old pairs"


# -- folders ---------------------------------------------------------------------------------------
def test_install_dir_replaces_whole(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    out.mkdir()
    (out / "old.csv").write_text("old")
    tmp = new_temp_dir(out)
    (tmp / "new.csv").write_text("new")
    install_dir(tmp, out)
    assert _names(out) == ["new.csv"]
    assert _names(tmp_path) == ["synth"]


# -- CLI -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(errno.EACCES, "Permission denied"),  # no file name: was "None"
        PermissionError(errno.EACCES, "Permission denied", "/data/out.parquet"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"),
        IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp"),
        OSError("IOError: [errno 28] No space left on device"),
    ],
)
def test_cli_os_errors_are_one_line(exc: OSError) -> None:
    @click.command()
    @handle_errors
    def cmd() -> None:
        raise exc

    r = CliRunner().invoke(cmd, [])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "None" not in lines[0] and "Traceback" not in r.output
    if exc.filename:
        assert exc.filename in lines[0]


def test_cli_says_options_not_python_keywords() -> None:
    from linkage.errors import LinkageError

    @click.command()
    @click.option("--force", is_flag=True)
    @click.option("--within-party/--no-within-party", default=None)
    @handle_errors
    def cmd(force: bool, within_party: bool | None) -> None:
        raise LinkageError(
            "x exists (force=True replaces it; overwrite=True too); use within_party=True or "
            "within_party=False; n=3 stays"
        )

    out = CliRunner().invoke(cmd, []).output
    assert "--force replaces it; --force too" in out
    assert "use --within-party or --no-within-party" in out
    assert "=True" not in out and "n=3 stays" in out


def test_cli_unexpected_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command()
    @handle_errors
    def cmd() -> None:
        raise ValueError("a record value that must not be shown")

    monkeypatch.delenv("LINKAGE_DEBUG", raising=False)
    r = CliRunner().invoke(cmd, [])
    assert r.exit_code == 70 and r.output.startswith("Error: internal error (ValueError)")
    assert "record value" not in r.output and len(r.output.strip().splitlines()) == 1
    monkeypatch.setenv("LINKAGE_DEBUG", "1")
    assert isinstance(CliRunner().invoke(cmd, []).exception, ValueError)


def test_cli_an_interrupt_a_library_turned_into_an_error_exits_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tester's Ctrl-C in `map links` / `map create` while DuckDB ran a query came back as
    DuckDB's RuntimeError ("Query interrupted") and read "internal error", exit 70."""
    import os
    import signal

    @click.command()
    @handle_errors
    def cmd() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler notes it and raises
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None  # what DuckDB raises

    monkeypatch.delenv("LINKAGE_DEBUG", raising=False)
    r = CliRunner().invoke(cmd, [])
    assert r.exit_code == 130 and r.output.startswith("Error: interrupted"), r.output
    assert "internal error" not in r.output
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_cli_interrupt_while_the_report_is_written_says_what_was_written(tmp_path: Path) -> None:
    """Ctrl-C during --report (after the map's new version was committed) said "no output
    written"."""
    from linkage.cli.common import _write_report

    def slow(path: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        _write_report(True, str(tmp_path / "r.html"), slow)
    assert exc.value.code == 130
