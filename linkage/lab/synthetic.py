"""Synthetic UK populations with ground truth, for evaluating record linkage: the writer.

``synth(out_dir, people, parties)`` draws a population of ``people`` persons
(:mod:`linkage.lab.population`: frequency-weighted names of diverse origins from the small
tables in ``linkage/data``, households sharing an address and postcode, a UK-like age
structure, valid unique NHS numbers) and writes one extract per partner, each with its own
overlap, column names, date format, sex coding, record ids, within-party duplicates and
corruption (:mod:`linkage.lab.corrupt`), plus ``truth.csv`` (party, record_id, person_id) and
``manifest.json``. Every rate lives in :data:`linkage.lab.rates.RATES`; docs/synth.md
documents them. :func:`encode_arguments` turns a manifest's party entry into the arguments of
``linkage.encode`` for the uk-person template.

Everything is vectorised with numpy / pyarrow: string columns are dictionary-coded (codes into
a table of strings, :mod:`linkage.lab.columns`), and a corruption calls Python only once per
distinct (value, variant) pair among the affected records. Output is byte-identical for
identical arguments.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage._files import (
    _WRITE_ERRNOS,
    OutputError,
    _errno,
    install_dir,
    new_temp_dir,
    os_error_message,
)
from linkage.errors import LinkageError
from linkage.lab.columns import ascii_rows, digit_rows, record_ids, take_index
from linkage.lab.corrupt import CorruptionLog, corrupt_records
from linkage.lab.population import draw_parties, draw_population, reference_tables
from linkage.lab.rates import (
    CORRUPTION_LEVELS,
    FIELDS,
    ID_STYLES,
    PARTY_NAMES,
    RATES,
    REFERENCE_DATE,
    SEX_CODINGS,
)

__all__ = [
    "TEMPLATE_FIELDS",
    "PartySummary",
    "SynthError",
    "SynthSummary",
    "encode_arguments",
    "encode_options",
    "synth",
]


class SynthError(LinkageError, ValueError):
    """Invalid arguments to :func:`synth`, or an output directory that cannot be written."""


ProgressFn = Callable[[str, float], None]


# uk-person template field (``linkage schema init``) <- synth field
TEMPLATE_FIELDS: dict[str, str] = {
    "given_name": "given",
    "surname": "family",
    "date_of_birth": "dob",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs",
}


@dataclass(frozen=True)
class PartySummary:
    name: str
    path: Path
    records: int
    persons: int
    duplicates: int


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    people: int
    households: int
    parties: tuple[PartySummary, ...]
    truth_path: Path
    manifest_path: Path

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parties)


def _nhs_strings(nhs: np.ndarray, null: np.ndarray, fmt: str) -> pa.Array:
    d = digit_rows(nhs, 10)
    if fmt == "spaced":
        sp = np.full((d.shape[0], 1), ord(" "), dtype=np.uint8)
        d = np.hstack([d[:, :3], sp, d[:, 3:6], sp, d[:, 6:]])
    return ascii_rows(d, null)


def _validate(people: object, parties: object, overlap: object, duplicates: object,
              corruption: object, seed: object, fmt: object) -> None:  # fmt: skip
    def is_int(x: object) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    def is_num(x: object) -> bool:
        return (is_int(x) or isinstance(x, float)) and math.isfinite(float(x))  # type: ignore[arg-type]

    if not is_int(people) or int(people) < 1:  # type: ignore[call-overload]
        raise SynthError(f"people must be an integer >= 1, got {people!r}")
    if not is_int(parties) or not 1 <= int(parties) <= len(PARTY_NAMES):  # type: ignore[call-overload]
        raise SynthError(
            f"parties must be an integer from 1 to {len(PARTY_NAMES)}, got {parties!r}"
        )
    if not is_num(overlap) or not 0.0 <= float(overlap) <= 1.0:  # type: ignore[arg-type]
        raise SynthError(f"overlap must be a number from 0 to 1, got {overlap!r}")
    if not is_num(duplicates) or not 0.0 <= float(duplicates) <= 1.0:  # type: ignore[arg-type]
        raise SynthError(f"duplicates must be a number from 0 to 1, got {duplicates!r}")
    if corruption not in CORRUPTION_LEVELS:
        raise SynthError(
            f"corruption must be one of {', '.join(CORRUPTION_LEVELS)}, got {corruption!r}"
        )
    if not is_int(seed) or int(seed) < 0:  # type: ignore[call-overload]
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    if fmt not in ("csv", "parquet"):
        raise SynthError(f"format must be 'csv' or 'parquet', got {fmt!r}")


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SynthError(f"{out_dir} exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise SynthError(f"{out_dir} is not empty (pass overwrite=True to replace earlier output)")
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
        ours = manifest.get("generator") == "linkage.synth"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise SynthError(f"{out_dir} is not empty and holds no linkage synth output; not replacing")


def synth(
    out_dir: str | os.PathLike[str],
    people: int,
    parties: int,
    *,
    overlap: float = 0.7,
    duplicates: float = 0.02,
    corruption: str = "medium",
    seed: int = 0,
    fmt: str = "csv",
    progress: ProgressFn | None = None,
    corruption_log: bool = False,
    overwrite: bool = False,
) -> SynthSummary:
    """Write a synthetic population's partner extracts and ground truth to ``out_dir``.

    Files: ``<party>.csv`` (or ``.parquet``) per party, ``truth.csv`` (party, record_id,
    person_id), ``manifest.json`` and, with ``corruption_log``, ``corruptions.csv`` (party,
    record_id, corruptions as ``kind:field`` joined by ``;``). Output is written to a temporary
    directory beside ``out_dir`` and renamed into place at the end. ``out_dir`` must not exist or
    be empty, unless ``overwrite`` and it holds earlier synth output. ``progress(stage, fraction)``
    is called as work proceeds. Same arguments, same bytes.
    """
    _validate(people, parties, overlap, duplicates, corruption, seed, fmt)
    people, parties, seed = int(people), int(parties), int(seed)
    out = Path(out_dir)
    _prepare_out(out, overwrite)

    def report(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    t = reference_tables()
    ss = np.random.SeedSequence([seed, 0x5E17])
    rng_pop, rng_party, rng_corrupt, rng_ids = (np.random.default_rng(s) for s in ss.spawn(4))
    report("population", 0.0)
    pop = draw_population(rng_pop, people, t)
    report("population", 0.3)

    plist = draw_parties(rng_party, parties, float(overlap))
    persons, party_of, counts = [], [], []
    for j, p in enumerate(plist):
        k = round(p.overlap * people)
        chosen = rng_party.choice(people, size=k, replace=False) if k else np.empty(0, np.int64)
        n_dup = int(rng_party.binomial(k, float(duplicates))) if k else 0
        dups = rng_party.choice(chosen, size=n_dup, replace=False) if n_dup else chosen[:0]
        order = rng_party.permutation(np.concatenate([chosen, dups]))
        persons.append(order.astype(np.int64))
        party_of.append(np.full(order.size, j, dtype=np.int64))
        counts.append((order.size, k, n_dup))
    person = np.concatenate(persons)  # persons behind the records, party by party
    party_idx = np.concatenate(party_of)
    bounds = np.concatenate([[0], np.cumsum([c[0] for c in counts])]).astype(np.int64)
    report("corruption", 0.35)

    log = CorruptionLog(person.size)
    rec = corrupt_records(rng_corrupt, corruption, pop, t, person, party_idx, plist, log)
    nulls = rec.nulls
    report("writing", 0.6)

    tmp = new_temp_dir(out)
    try:
        summaries, manifest_parties, truth_parts = [], [], []
        ext = "csv" if fmt == "csv" else "parquet"
        for j, p in enumerate(plist):
            sl = slice(int(bounds[j]), int(bounds[j + 1]))
            n_rec = sl.stop - sl.start
            ids = record_ids(rng_ids, n_rec, ID_STYLES[j % len(ID_STYLES)])
            cols: dict[str, pa.Array] = {p.record_id: ids}
            for fld, name in p.columns.items():
                if fld == "dob":
                    days = pa.array(rec.dob[sl], type=pa.date32(), mask=nulls["dob"][sl])
                    arr: pa.Array = pc.strftime(days, format=p.date_format)
                elif fld == "sex":
                    coding = pa.array(SEX_CODINGS[p.sex_coding])
                    arr = coding.take(take_index(rec.sex[sl], nulls["sex"][sl]))
                elif fld == "nhs":
                    arr = _nhs_strings(rec.nhs[sl], nulls["nhs"][sl], p.nhs_format)
                else:
                    arr = rec.strings[fld].to_arrow(sl)
                cols[name] = arr
            _write(pa.table(cols), tmp / f"{p.name}.{ext}", fmt)
            truth_parts.append(
                pa.table({
                    "party": pa.array([p.name]).take(take_index(np.zeros(n_rec, np.int64))),
                    "record_id": ids,
                    "person_id": pop.person_id.take(take_index(person[sl])),
                })
            )  # fmt: skip
            if corruption_log:
                pacsv.write_csv(
                    pa.table({"party": truth_parts[-1]["party"], "record_id": ids,
                              "corruptions": log.strings(sl)}),
                    tmp / f".corruptions-{j:02d}.csv",
                )  # fmt: skip
            n_rec, k, n_dup = counts[j]
            summaries.append(PartySummary(p.name, out / f"{p.name}.{ext}", n_rec, k, n_dup))
            manifest_parties.append({
                "name": p.name,
                "file": f"{p.name}.{ext}",
                "records": n_rec,
                "persons": k,
                "duplicates": n_dup,
                "overlap": round(p.overlap, 6),
                "record_id_column": p.record_id,
                "columns": p.columns,
                "date_format": p.date_format,
                "sex_coding": dict(zip(("M", "F", "U"), SEX_CODINGS[p.sex_coding], strict=True)),
                "nhs_format": p.nhs_format if "nhs" in p.columns else None,
            })  # fmt: skip
            report("writing", 0.6 + 0.35 * (j + 1) / len(plist))
        pacsv.write_csv(pa.concat_tables(truth_parts), tmp / "truth.csv")
        if corruption_log:
            parts = sorted(tmp.glob(".corruptions-*.csv"))
            with open(tmp / "corruptions.csv", "wb") as dst:
                for i, part in enumerate(parts):
                    data = part.read_bytes()
                    dst.write(data if i == 0 else data.split(b"\n", 1)[1])
                    part.unlink()
        manifest = {
            "generator": "linkage.synth",
            "version": 1,
            "seed": seed,
            "people": people,
            "households": pop.n_households,
            "overlap": float(overlap),
            "duplicates": float(duplicates),
            "corruption": corruption,
            "rates": {k: v[corruption] for k, v in RATES.items()},
            "reference_date": REFERENCE_DATE,
            "format": fmt,
            "fields": list(FIELDS),
            "parties": manifest_parties,
            "records": int(bounds[-1]),
            "truth": "truth.csv",
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        (tmp / "manifest.json").write_text(text, encoding="utf-8")
        install_dir(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and _errno(exc) in _WRITE_ERRNOS:
            raise OutputError(f"cannot write {os_error_message(exc, out)}") from None
        raise
    report("done", 1.0)
    return SynthSummary(out, people, pop.n_households, tuple(summaries), out / "truth.csv",
                        out / "manifest.json")  # fmt: skip


def encode_arguments(party: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``linkage.encode`` / ``linkage.encode_file`` that encode one party
    of a synth output with the uk-person template (``linkage schema init``).

    ``party``: one entry of ``manifest.json``'s ``"parties"`` (the extract itself is
    ``<synth dir>/<party["file"]>``). Returns ``party`` (its name), ``id_column``,
    ``columns`` (template field -> the party's column name, for the fields it holds),
    ``date_formats`` (the date of birth's format, given rather than detected) and ``absent``
    (template fields the party does not hold, encoded as missing).
    """
    cols = party["columns"]
    return {
        "party": party["name"],
        "id_column": party["record_id_column"],
        "columns": {f: cols[s] for f, s in TEMPLATE_FIELDS.items() if s in cols},
        "date_formats": {
            f: party["date_format"] for f, s in TEMPLATE_FIELDS.items() if s == "dob" and s in cols
        },
        "absent": [f for f, s in TEMPLATE_FIELDS.items() if s not in cols],
    }


def encode_options(party: Mapping[str, Any]) -> list[str]:
    """:func:`encode_arguments` as ``linkage encode`` options (``--party``, ``--id-column``,
    ``--column F=C``, ``--date-format F=FMT``, ``--absent F``)."""
    a = encode_arguments(party)
    opts = ["--party", a["party"], "--id-column", a["id_column"]]
    for f, c in a["columns"].items():
        opts += ["--column", f"{f}={c}"]
    for f, fmt in a["date_formats"].items():
        opts += ["--date-format", f"{f}={fmt}"]
    for f in a["absent"]:
        opts += ["--absent", f]
    return opts
