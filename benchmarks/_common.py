"""Helpers shared by all benchmarks: machine description, timing, child peak RSS,
results files, synthetic data and the clkhash v3 schema used for peer comparisons.

Results: ``write_results(name, figures)`` replaces ``benchmarks/results/<name>.json``
atomically (latest run) and appends one Markdown section to ``benchmarks/results/<name>.md``
(history). Each :class:`Figure` is one measured number for ``linkage`` with, optionally, the
same number for a peer tool measured in the same run on the same data.

This module imports nothing from ``linkage`` (peers and benchmarks must stay comparable even
while the package is broken) and nothing random happens at import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

# ---------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def numba_mode() -> str:
    """``"JIT"``, or ``"NUMBA_DISABLE_JIT"`` when numba runs kernels as plain Python."""
    flag = os.environ.get("NUMBA_DISABLE_JIT", "0").strip()
    return "NUMBA_DISABLE_JIT" if flag not in ("", "0") else "JIT"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """Describe the machine and software a benchmark ran on (JSON-serialisable)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    flags = _cpu_flags()
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_features": sorted(
            f for f in ("avx2", "avx512f", "avx512_vpopcntdq", "popcnt") if f in flags
        ),
        "ram_bytes": _ram_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "pyarrow": _version("pyarrow"),
        "linkage": _version("pprl-linkage"),
        "numba_mode": numba_mode(),
        "git_commit": _git_commit(),
        # Other work on the machine skews timings: record the load when the figures were taken.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------------------------
# Timing and child processes
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Results files
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured number, optionally with a peer's number for the same task.

    ``value`` is linkage's number (``None`` for a peer-only figure). ``ratio`` is how many
    times better linkage is: ``value / peer_value`` when higher is better (throughput),
    ``peer_value / value`` when lower is better (seconds, bytes); so a ratio above 1 always
    means linkage wins.
    """

    metric: str
    value: float | None
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_value is None or self.value is None:
            return None
        num, den = (
            (self.value, self.peer_value)
            if self.higher_is_better
            else (self.peer_value, self.value)
        )
        if den == 0:
            return float("inf") if num > 0 else None
        return num / den

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ratio"] = self.ratio
        return d


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if x != x:  # NaN
        return "nan"
    ax = abs(x)
    if ax != 0 and (ax >= 1e6 or ax < 1e-3):
        return f"{x:.3g}"
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _human_bytes(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 2**30:.1f} GiB"


def markdown_section(
    name: str,
    figures: Sequence[Figure],
    machine: Mapping[str, Any],
    date: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The Markdown block that :func:`write_results` appends (pure; used by tests)."""
    m = machine
    lines = [
        f"## {name} — {date}",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('usable_cpus')} usable CPUs "
        f"({m.get('logical_cpus')} logical), {_human_bytes(m.get('ram_bytes'))} RAM, "
        f"features {', '.join(m.get('cpu_features') or []) or 'n/a'}.",
        f"Software: Python {m.get('python')}, numpy {m.get('numpy')}, numba {m.get('numba')} "
        f"({m.get('numba_mode')}), pyarrow {m.get('pyarrow')}, linkage {m.get('linkage')} "
        f"@ {m.get('git_commit')}; load average (1 min) {m.get('load_avg_1m')}.",
        "",
        "| metric | linkage | unit | peer | peer value | ratio (>1: linkage better) | note |",
        "|---|---:|---|---|---:|---:|---|",
    ]
    for f in figures:
        ratio = f.ratio
        lines.append(
            f"| {f.metric} | {_fmt(f.value)} | {f.unit} | {f.peer or '—'} | "
            f"{_fmt(f.peer_value)} | {'—' if ratio is None else f'{ratio:.2f}×'} | "
            f"{f.note.replace('|', '/')} |"
        )
    if extra:
        lines += ["", "Details: `" + json.dumps(extra, sort_keys=True, default=str) + "`"]
    return "\n".join(lines) + "\n\n"


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_results(
    name: str,
    figures: Sequence[Figure],
    *,
    extra: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    machine: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` atomically (replacing it) and append a section to ``<name>.md``.

    ``name`` must be a plain file stem (letters, digits, ``-``, ``_``, ``.``).
    Returns the two paths.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"results name must be a plain file stem, got {name!r}")
    out_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    machine = dict(machine) if machine is not None else machine_info()
    date = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    doc = {
        "name": name,
        "date": date,
        "machine": machine,
        "figures": [f.to_dict() for f in figures],
        "extra": dict(extra or {}),
    }
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    _atomic_write_text(json_path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    section = markdown_section(name, figures, machine, date, extra)
    with open(md_path, "a", encoding="utf-8") as fh:
        fh.write(section)
    return json_path, md_path


# ---------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------

PERSON_FIELDS: tuple[str, ...] = (
    "given_name",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
    "town",
    "phone",
    "email",
)

_SYLLABLES = np.array(
    [
        "an",
        "ar",
        "be",
        "bo",
        "ca",
        "da",
        "el",
        "em",
        "fa",
        "ga",
        "ha",
        "is",
        "ja",
        "ka",
        "la",
        "le",
        "li",
        "lo",
        "ma",
        "mi",
        "mo",
        "na",
        "ne",
        "ni",
        "no",
        "ol",
        "or",
        "pa",
        "ra",
        "re",
        "ri",
        "ro",
        "sa",
        "se",
        "si",
        "so",
        "ta",
        "te",
        "ti",
        "to",
        "ul",
        "va",
        "vi",
        "wa",
        "ya",
        "ze",
    ]
)
_STREET_KIND = np.array(["Road", "Street", "Lane", "Avenue", "Close", "Way", "Drive", "Court"])
_DOMAINS = np.array(["example.com", "mail.test", "post.example", "inbox.test"])
_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUWXYZ"))


def _words(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n capitalised pseudo-words of lo..hi syllables (vectorised)."""
    k = rng.integers(lo, hi + 1, size=n)
    parts = rng.choice(_SYLLABLES, size=(n, hi))
    out = parts[:, 0].astype(object)
    for j in range(1, hi):
        out = np.where(k > j, out + parts[:, j].astype(object), out)
    return np.strings.capitalize(out.astype(str))


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    d = rng.integers(0, 10, size=(n, width)).astype("U1")
    out = d[:, 0]
    for j in range(1, width):
        out = np.strings.add(out, d[:, j])
    return out


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid 10-digit NHS numbers (mod-11 check digit; check 10 is redrawn)."""
    body = rng.integers(0, 10, size=(n, 9))
    weights = np.arange(10, 1, -1)
    check = 11 - (body @ weights) % 11
    check[check == 11] = 0
    bad = check == 10
    while bad.any():
        body[bad] = rng.integers(0, 10, size=(int(bad.sum()), 9))
        check = 11 - (body @ weights) % 11
        check[check == 11] = 0
        bad = check == 10
    digits = np.concatenate([body, check[:, None]], axis=1).astype("U1")
    out = digits[:, 0]
    for j in range(1, 10):
        out = np.strings.add(out, digits[:, j])
    return out


def person_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """A random UK-style person table: ``record_id`` plus :data:`PERSON_FIELDS`, as numpy
    string arrays of length ``n``. Deterministic in ``seed``; no missing values."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    given = _words(rng, n, 2, 3)
    surname = _words(rng, n, 2, 4)
    days = rng.integers(0, 365 * 90, size=n)
    dob = (np.datetime64("1930-01-01") + days.astype("timedelta64[D]")).astype(str)
    sex = rng.choice(np.array(["F", "M"]), size=n)
    pc_out = np.strings.add(
        np.strings.add(rng.choice(_LETTERS, n), rng.choice(_LETTERS, n)),
        rng.integers(1, 30, n).astype(str),
    )
    pc_in = np.strings.add(
        rng.integers(0, 10, n).astype(str),
        np.strings.add(rng.choice(_LETTERS, n), rng.choice(_LETTERS, n)),
    )
    postcode = np.strings.add(np.strings.add(pc_out, " "), pc_in)
    address = np.strings.add(
        np.strings.add(rng.integers(1, 300, n).astype(str), " "),
        np.strings.add(np.strings.add(_words(rng, n, 2, 3), " "), rng.choice(_STREET_KIND, n)),
    )
    town = _words(rng, n, 2, 4)
    phone = np.strings.add("07", _digits(rng, n, 9))
    email = np.strings.add(
        np.strings.add(np.strings.lower(given), "."),
        np.strings.add(np.strings.add(np.strings.lower(surname), "@"), rng.choice(_DOMAINS, n)),
    )
    record_id = np.strings.add("r", np.arange(n).astype(str))
    return {
        "record_id": record_id,
        "given_name": given,
        "surname": surname,
        "date_of_birth": dob,
        "sex": sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": _nhs_numbers(rng, n),
        "town": town,
        "phone": phone,
        "email": email,
    }


def write_person_csv(path: str | os.PathLike[str], n: int, seed: int) -> Path:
    """Write :func:`person_columns` as a CSV with a header (``record_id`` first).

    Uses pyarrow's CSV writer (values are quoted; any RFC 4180 reader, clkhash's included,
    reads them back unchanged).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = person_columns(n, seed)
    table = pa.table({k: pa.array(v.astype(object), type=pa.string()) for k, v in cols.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    return path


def random_filters(n: int, n_bits: int, density: float, seed: int) -> np.ndarray:
    """``(n, n_bits // 8)`` uint8 filters with each bit set independently with ``density``."""
    if n_bits <= 0 or n_bits % 8:
        raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    rng = np.random.default_rng(seed)
    bits = rng.random((n, n_bits), dtype=np.float32) < density
    return np.packbits(bits, axis=1, bitorder="little")


def flip_bits(filters: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """A copy of ``filters`` (uint8, LSB-first) with each bit flipped with probability ``rate``."""
    rng = np.random.default_rng(seed)
    n, nbytes = filters.shape
    mask = rng.random((n, nbytes * 8), dtype=np.float32) < rate
    return filters ^ np.packbits(mask, axis=1, bitorder="little")


def dice_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense Dice matrix between uint8 filter arrays (numpy reference, small inputs only)."""
    ua = np.unpackbits(a, axis=1).astype(np.int32)
    ub = np.unpackbits(b, axis=1).astype(np.int32)
    inter = ua @ ub.T
    tot = ua.sum(1)[:, None] + ub.sum(1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(tot > 0, 2.0 * inter / np.maximum(tot, 1), 0.0)
    return d


# ---------------------------------------------------------------------------------------------
# clkhash v3 schema
# ---------------------------------------------------------------------------------------------


def clkhash_schema_v3(
    fields: Sequence[str] = PERSON_FIELDS,
    *,
    n_bits: int = 1024,
    ngram: int = 2,
    bits_per_feature: int | None = 70,
    bits_per_token: int | None = None,
    hash_type: str = "blakeHash",
    id_column: str | None = "record_id",
    kdf_salt: bytes | None = None,
    kdf_info: bytes | None = None,
    missing_sentinel: str | None = None,
) -> dict[str, Any]:
    """A clkhash v3 linkage schema (as a JSON-able dict) hashing every field as a string.

    Each field: utf-8 string, n-gram comparison (``ngram``, default bigrams), and either
    ``bitsPerFeature`` (default 70 per field: ~700 insertions into 1024 bits, about half set)
    or ``bitsPerToken`` (give exactly one of the two). ``id_column`` is prepended as an
    ignored feature so that the CSV's first column can carry the record id. KDF: HKDF-SHA256
    with optional salt/info (base64 in the schema).
    """
    import base64

    if (bits_per_feature is None) == (bits_per_token is None):
        raise ValueError("give exactly one of bits_per_feature or bits_per_token")
    strategy = (
        {"bitsPerFeature": int(bits_per_feature)}
        if bits_per_feature is not None
        else {"bitsPerToken": int(bits_per_token)}  # type: ignore[arg-type]
    )
    if next(iter(strategy.values())) < 1:
        raise ValueError(f"bits per feature/token must be >= 1, got {strategy}")
    if n_bits < 8:
        raise ValueError(f"n_bits must be >= 8, got {n_bits}")
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    if hash_type not in ("blakeHash", "doubleHash"):
        raise ValueError(f"hash_type must be 'blakeHash' or 'doubleHash', got {hash_type!r}")
    names = list(fields) if id_column is None else [id_column, *fields]
    if not fields:
        raise ValueError("need at least one field")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate column names in {names}")

    kdf: dict[str, Any] = {"type": "HKDF", "hash": "SHA256", "keySize": 64}
    if kdf_salt is not None:
        kdf["salt"] = base64.b64encode(kdf_salt).decode("ascii")
    if kdf_info is not None:
        kdf["info"] = base64.b64encode(kdf_info).decode("ascii")

    features: list[dict[str, Any]] = []
    if id_column is not None:
        features.append({"identifier": id_column, "ignored": True})
    for name in fields:
        hashing: dict[str, Any] = {
            "comparison": {"type": "ngram", "n": int(ngram)},
            "strategy": dict(strategy),
            "hash": {"type": hash_type},
        }
        if missing_sentinel is not None:
            hashing["missingValue"] = {"sentinel": missing_sentinel}
        features.append(
            {
                "identifier": name,
                "format": {"type": "string", "encoding": "utf-8", "case": "mixed"},
                "hashing": hashing,
            }
        )
    return {"version": 3, "clkConfig": {"l": int(n_bits), "kdf": kdf}, "features": features}


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    p = Path(path)
    _atomic_write_text(p, json.dumps(obj, indent=2) + "\n")
    return p


def blocklib_psig_schema(
    name_fields: Sequence[str] = ("given_name", "surname"),
    exact_fields: Sequence[str] = ("date_of_birth",),
    *,
    max_ratio: float = 0.02,
    bf_len: int = 2048,
    n_hash: int = 4,
) -> dict[str, Any]:
    """A blocklib 0.1 P-Sig blocking schema (JSON-able dict) over named CSV columns.

    Signatures: first two characters of every name field together, metaphone of every name
    field together, and each exact field's value on its own; blocks larger than
    ``max_ratio`` of a party's records are dropped (blocklib's ratio filter).
    """
    if not name_fields and not exact_fields:
        raise ValueError("need at least one blocking field")
    if not 0.0 < max_ratio <= 1.0:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio}")
    if bf_len < 8 or n_hash < 1:
        raise ValueError(f"need bf_len >= 8 and n_hash >= 1, got {bf_len}, {n_hash}")
    specs: list[list[dict[str, Any]]] = []
    if name_fields:
        specs.append(
            [
                {"type": "characters-at", "config": {"pos": ["0:2"]}, "feature": f}
                for f in name_fields
            ]
        )
        specs.append([{"type": "metaphone", "feature": f} for f in name_fields])
    specs += [[{"type": "feature-value", "feature": f}] for f in exact_fields]
    return {
        "type": "p-sig",
        "version": 1,
        "config": {
            "blocking-features": [*name_fields, *exact_fields],
            "filter": {"type": "ratio", "max": float(max_ratio), "min": 0.0},
            "blocking-filter": {
                "type": "bloom filter",
                "number-hash-functions": int(n_hash),
                "bf-len": int(bf_len),
            },
            "signatureSpecs": specs,
        },
    }


# ---------------------------------------------------------------------------------------------
# Helpers for the linkage-vs-peer benchmarks (bench_encode, bench_match, bench_quality)
# ---------------------------------------------------------------------------------------------


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


def linkage_exe() -> Path:
    """The ``linkage`` console script next to the running interpreter (the project venv)."""
    exe = Path(sys.executable).with_name("linkage")
    if not exe.is_file():
        raise FileNotFoundError(
            f"{exe} not found: install the package into this interpreter's venv (make install)"
        )
    return exe


def linkage_person_schema(
    extra_fields: Sequence[str] = ("town", "phone", "email"),
) -> dict[str, Any]:
    """linkage's ``uk-person`` template plus ``extra_fields`` as bigram text fields: with the
    defaults, the same 10 fields as :data:`PERSON_FIELDS` (and :func:`clkhash_schema_v3`).

    Imports ``linkage`` lazily (this module must import without it)."""
    from linkage.schema import Schema, uk_person_template

    doc = uk_person_template()
    for name in extra_fields:
        doc["fields"].append(
            {
                "name": name,
                "normaliser": "text",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "bit_budget": 60,
            }
        )
    Schema.from_dict(doc)  # validate
    return doc


def format_table(
    rows: Sequence[Sequence[Any]], header: Sequence[str], *, floatfmt: str = ".4g"
) -> str:
    """A plain fixed-width text table (for printing results to a terminal)."""

    def cell(x: Any) -> str:
        if isinstance(x, float):
            return "—" if x != x else format(x, floatfmt)
        return "—" if x is None else str(x)

    body = [[cell(x) for x in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for r in body:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def report(
    name: str,
    label: str,
    figures: Sequence[Figure],
    extra: dict[str, Any],
    machine: Mapping[str, Any],
) -> int:
    """Record the load average after the run, write the results files, print the table."""
    extra["load_avg_1m_after"] = os.getloadavg()[0]
    json_path, _ = write_results(name, figures, extra=extra, machine=machine)
    print_figures(
        f"{label} benchmark (load avg {machine['load_avg_1m']:.2f} -> "
        f"{extra['load_avg_1m_after']:.2f}, {machine['usable_cpus']} CPUs)",
        figures,
    )
    print(f"wrote {json_path}")
    return 0


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """Print figures as a table with the ratio to the peer (>1: linkage better)."""
    rows = [
        (
            f.metric,
            _fmt(f.value),
            f.unit,
            f.peer or "—",
            _fmt(f.peer_value),
            "—" if f.ratio is None else f"{f.ratio:.2f}x",
            f.note,
        )
        for f in figures
    ]
    print(f"\n{title}")
    print(format_table(rows, ["metric", "linkage", "unit", "peer", "peer value", "ratio", "note"]))


# linkage uk-person template field <- linkage synth manifest field
SYNTH_TO_TEMPLATE: dict[str, str] = {
    "given_name": "given",
    "surname": "family",
    "date_of_birth": "dob",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs",
}


def run_synth(
    out_dir: str | os.PathLike[str],
    people: int,
    parties: int,
    *,
    corruption: str = "medium",
    overlap: float = 0.7,
    seed: int = 0,
    timeout_s: float = 3600,
) -> tuple[dict[str, Any], ChildRun]:
    """``linkage synth`` as a subprocess (CSV); returns (manifest, run)."""
    cmd: list[str | os.PathLike[str]] = [
        linkage_exe(),
        "synth",
        "-o",
        os.fspath(out_dir),
        "--people",
        str(people),
        "--parties",
        str(parties),
        "--corruption",
        corruption,
        "--overlap",
        str(overlap),
        "--seed",
        str(seed),
        "--force",
        "--quiet",
    ]
    run = run_measured(cmd, timeout_s=timeout_s)
    if run.returncode != 0:
        raise RuntimeError(f"linkage synth failed ({run.returncode}): {run.stderr.strip()}")
    manifest = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
    return manifest, run


def synth_encode_cmd(
    synth_dir: str | os.PathLike[str],
    party: Mapping[str, Any],
    schema_path: str | os.PathLike[str],
    secret_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fields: Mapping[str, str] = SYNTH_TO_TEMPLATE,
) -> list[str]:
    """The ``linkage encode`` command for one party of a ``linkage synth`` manifest: column
    names mapped from the manifest (``fields``: schema field -> synth field), date format
    given explicitly."""
    cmd = [
        os.fspath(linkage_exe()),
        "encode",
        os.fspath(Path(synth_dir) / party["file"]),
        "-s",
        os.fspath(schema_path),
        "--secret-file",
        os.fspath(secret_path),
        "--party",
        str(party["name"]),
        "--id-column",
        str(party["record_id_column"]),
        "-o",
        os.fspath(out_path),
        "--force",
        "--quiet",
    ]
    cols = party["columns"]
    for field_name, synth_field in fields.items():
        cmd += ["--column", f"{field_name}={cols[synth_field]}"]
        if synth_field == "dob":
            cmd += ["--date-format", f"{field_name}={party['date_format']}"]
    return cmd


def write_secret_file(path: str | os.PathLike[str], secret: bytes) -> Path:
    """Write a project secret derived from ``secret`` to ``path``, in the text form that
    ``linkage keygen`` writes, with mode 0600 (benchmark secrets only)."""
    import hashlib

    from linkage.secret import secret_text

    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret_text(hashlib.sha256(secret).digest()) + "\n")
    return p
