"""Measuring commands: wall time of a block, and wall time, CPU seconds and peak RSS of a
child process (measured through a small launcher so that the benchmark's own size does not
leak into the child's peak). Imports nothing from ``linkage``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "ChildRun",
    "Timer",
    "children_cpu_seconds",
    "run_measured",
    "run_measured_cpu",
    "timer",
]


@dataclasses.dataclass
class Timer:
    """Wall-clock seconds of a ``with`` block (``time.perf_counter``)."""

    seconds: float = float("nan")
    _start: float = 0.0


@contextlib.contextmanager
def timer() -> Iterator[Timer]:
    """``with timer() as t: ...`` then read ``t.seconds``."""
    t = Timer()
    t._start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - t._start


@dataclasses.dataclass(frozen=True)
class ChildRun:
    """Outcome of :func:`run_measured`."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_bytes: int  # max RSS of the child or any of its waited-for descendants
    timed_out: bool


# A small launcher measures the command's peak RSS: ru_maxrss survives fork+exec, so a child
# forked straight from a large benchmark process would report the parent's size as its peak.
_LAUNCHER = """
import os, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
proc = subprocess.Popen(cmd)
try:
    _, status, usage = os.wait4(proc.pid, 0)
except KeyboardInterrupt:
    proc.kill()
    raise
with open(out, "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
) -> ChildRun:
    """Run ``cmd`` as a child process; return its exit code, output, wall time and peak RSS.

    Peak RSS comes from ``os.wait4`` on that one child, so it is exact for this run and not
    polluted by earlier children (unlike ``getrusage(RUSAGE_CHILDREN)``). On Linux it is the
    maximum over the child and the descendants it waited for (e.g. multiprocessing workers),
    not their sum. On timeout the child is killed and ``timed_out`` is set.
    """
    with (
        tempfile.TemporaryFile() as out_f,
        tempfile.TemporaryFile() as err_f,
        tempfile.TemporaryDirectory() as tmp,
    ):
        rss_file = os.path.join(tmp, "rss")
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, rss_file, *(os.fspath(c) for c in cmd)],
            start_new_session=True,
            stdout=out_f,
            stderr=err_f,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        killed = threading.Event()
        watchdog: threading.Timer | None = None
        if timeout_s is not None:

            def _kill() -> None:
                killed.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the command

            watchdog = threading.Timer(timeout_s, _kill)
            watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        # ru_maxrss is KiB on Linux, bytes on macOS.
        scale = 1 if sys.platform == "darwin" else 1024
        try:
            with open(rss_file) as fh:
                maxrss = int(fh.read())
        except (OSError, ValueError):  # killed before it could write
            maxrss = int(usage.ru_maxrss)
        return ChildRun(
            returncode=proc.returncode,
            stdout=out_f.read().decode("utf-8", "replace"),
            stderr=err_f.read().decode("utf-8", "replace"),
            wall_s=wall,
            peak_rss_bytes=maxrss * scale,
            timed_out=killed.is_set(),
        )


def children_cpu_seconds() -> float:
    """User + system CPU seconds of all waited-for children of this process so far.

    The difference across one :func:`run_measured` call (which waits for exactly one child)
    is that child's CPU time, including the descendants it waited for (worker processes).
    """
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(ru.ru_utime + ru.ru_stime)


def run_measured_cpu(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
) -> tuple[ChildRun, float]:
    """:func:`run_measured` plus the child's CPU seconds (user + system, with descendants)."""
    c0 = children_cpu_seconds()
    run = run_measured(cmd, env=env, cwd=cwd, timeout_s=timeout_s)
    return run, children_cpu_seconds() - c0
