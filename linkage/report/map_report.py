"""The linkage map report: a persistent map's versions over time, as one HTML page.

Reads the map (:func:`linkage.tlu.linkage_map.map_info` for the version log and current
counts, :func:`~linkage.tlu.linkage_map.map_changes` for entity events) and shows, per
version, the records and entities held and what the update did: records added, changed and
retired, entity ids created, merged, split and retired. Aggregates only: no entity or record
id, no score.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from linkage.report import charts
from linkage.report.disclosure import Disclosure
from linkage.report.page import Page, Section

EVENT_KINDS = ("created", "merged", "split", "retired")


def write_map_report(
    path: str | Path,
    map_path: str | Path,
    *,
    disclosure: Disclosure | None = None,
    title: str = "Linkage map report",
) -> Path:
    """Write the report of the linkage map at ``map_path`` (a DuckDB map file) to ``path``
    (HTML, atomically, mode 0600). Raises :class:`~linkage.errors.InputError` when the map
    cannot be read and :class:`~linkage._files.OutputError` when ``path`` cannot be written.
    """
    from linkage.tlu.linkage_map import map_changes, map_info

    d = disclosure or Disclosure()
    info = map_info(map_path)
    events = map_changes(map_path, since=0)
    per_version: dict[int, Counter[str]] = {}
    for v, kind in zip(
        events.column("version").to_pylist(), events.column("change").to_pylist(), strict=True
    ):
        per_version.setdefault(int(v), Counter())[str(kind)] += 1
    m = info["meta"]
    page = Page(
        title,
        subtitle="A persistent linkage map: its versions, and how each update changed the "
        "records and entities it holds.",
        disclosure=d,
        meta=[
            ("map", Path(str(info["path"])).name),
            ("version", str(info["current_version"])),
            ("schema", str(m.get("schema_fingerprint", ""))[:16]),
        ],
    )
    _summary(page.section("Summary"), info)
    _versions(page.section("Versions"), info["versions"], per_version, d)
    return page.write(path)


def _summary(s: Section, info: dict[str, Any]) -> None:
    m = info["meta"]
    s.facts(
        [
            ("current version", str(info["current_version"])),
            ("records", sum(int(n) for n in info["records_per_party"].values())),
            ("entities", int(info["entities"])),
            ("parties", str(len(info["records_per_party"]))),
        ]
    )
    s.table(
        ["party", "current records"], [[p, int(n)] for p, n in info["records_per_party"].items()]
    )
    s.paragraph(
        f"Matched at threshold {m.get('threshold', '?')}, blocking {m.get('blocking', '?')}, "
        f"solver {m.get('solver', '?')}, dedupe {m.get('dedupe', '?')}; every update re-uses "
        "these settings."
    )


def _versions(
    s: Section,
    log: list[dict[str, Any]],
    per_version: dict[int, Counter[str]],
    d: Disclosure,
) -> None:
    rows = []
    for r in log:
        ev = per_version.get(int(r["version"]), Counter())
        rows.append(
            [
                str(r["version"]),
                str(r.get("created") or "")[:16].replace("T", " "),
                str(r.get("verb", "")) + (" (delta)" if r.get("delta") else ""),
                int(r.get("records") or 0),
                int(r.get("entities") or 0),
                int(r.get("added") or 0),
                int(r.get("changed") or 0),
                int(r.get("retired") or 0),
                *[ev.get(k, 0) for k in EVENT_KINDS],
            ]
        )
    s.table(
        ["version", "made (UTC)", "command", "records", "entities", "records added",
         "changed", "retired", "ids created", "merged", "split", "ids retired"],
        rows,
        caption="Records: current records after the version. Ids created / merged / split / "
        "retired: entity-id events of the version (docs/linkage-map.md explains each).",
    )  # fmt: skip
    labels = [f"v{r['version']}" for r in log]
    held = [
        (lab, "records", int(r.get("records") or 0)) for lab, r in zip(labels, log, strict=True)
    ]
    held += [
        (lab, "entities", int(r.get("entities") or 0)) for lab, r in zip(labels, log, strict=True)
    ]
    if d.any_shown([n for _, _, n in held]):
        s.figure(
            charts.grouped_bars(
                sorted(held, key=lambda t: (labels.index(t[0]), t[1] != "records")),
                title="Records and entities held at each version",
                x_title="count",
                disclosure=d,
            ),
            "Entities should track records: a version where entities jump while records "
            "barely move is worth a look (a changed extract format, a new data problem).",
        )
    change_rows: list[tuple[str, str, float]] = []
    for lab, r in zip(labels, log, strict=True):
        ev = per_version.get(int(r["version"]), Counter())
        for k in ("added", "changed", "retired"):
            change_rows.append((lab, f"records {k}", int(r.get(k) or 0)))
        for k in ("merged", "split"):
            change_rows.append((lab, f"ids {k}", ev.get(k, 0)))
    if d.any_shown([int(n) for _, _, n in change_rows]):
        s.figure(
            charts.grouped_bars(
                change_rows,
                title="What each version changed",
                x_title="count",
                disclosure=d,
            ),
            "Merges and splits change entity ids that analysts may hold: many of them in one "
            "version mean downstream tables need the changes file (linkage map changes).",
        )
