"""Results files: ``write_results(name, figures)`` replaces ``benchmarks/results/<name>.json``
atomically (latest run) and appends one Markdown section to ``benchmarks/results/<name>.md``
(history). Each :class:`Figure` is one measured number for ``linkage`` with, optionally, the
same number for a peer tool measured in the same run on the same data. Also the terminal
table that every benchmark prints. Imports nothing from ``linkage``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness.machine import REPO_ROOT, machine_info

__all__ = [
    "RESULTS_DIR",
    "Figure",
    "atomic_write_text",
    "fmt_number",
    "format_table",
    "markdown_section",
    "print_figures",
    "report",
    "write_json",
    "write_results",
]

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


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


def fmt_number(x: float | None) -> str:
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
            f"| {f.metric} | {fmt_number(f.value)} | {f.unit} | {f.peer or '—'} | "
            f"{fmt_number(f.peer_value)} | {'—' if ratio is None else f'{ratio:.2f}×'} | "
            f"{f.note.replace('|', '/')} |"
        )
    if extra:
        lines += ["", "Details: `" + json.dumps(extra, sort_keys=True, default=str) + "`"]
    return "\n".join(lines) + "\n\n"


def atomic_write_text(path: Path, text: str) -> None:
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
    atomic_write_text(json_path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    section = markdown_section(name, figures, machine, date, extra)
    with open(md_path, "a", encoding="utf-8") as fh:
        fh.write(section)
    return json_path, md_path


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    p = Path(path)
    atomic_write_text(p, json.dumps(obj, indent=2) + "\n")
    return p


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
            fmt_number(f.value),
            f.unit,
            f.peer or "—",
            fmt_number(f.peer_value),
            "—" if f.ratio is None else f"{f.ratio:.2f}x",
            f.note,
        )
        for f in figures
    ]
    print(f"\n{title}")
    print(format_table(rows, ["metric", "linkage", "unit", "peer", "peer value", "ratio", "note"]))
