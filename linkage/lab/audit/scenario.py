"""Audit scenarios: the encoded file, the partner's plaintext of it (truth, for scoring only)
and the attacker's reference population.

This is the only audit module that encodes: mode (b) (:func:`synthetic_scenario`) draws a
population with ``linkage.synth`` and encodes it under a *throwaway* ``linkage.Secret`` that
is dropped at once (the attacks never see it). Mode (a) (:func:`file_scenario`) reads an
encoded file and its partner plaintext. The attacker's reference is an independent
``linkage.synth`` draw from the same distribution unless a CSV is given.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkage._csv_errors import csv_problem
from linkage.errors import InputError
from linkage.lab.audit.plaintext import Plain, normalise_table

# schema field -> linkage synth manifest field
SYNTH_FIELDS = {
    "given_name": "given",
    "surname": "family",
    "date_of_birth": "dob",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs",
}


@dataclass(frozen=True)
class Scenario:
    """``filters`` (n, L/64) uint64 and ``block_keys`` (list of uint64 arrays per record, or
    None): what the attacker sees. ``truth``: the partner's normalised plaintext of the same
    rows (scoring only). ``reference``: the attacker's plaintext population."""

    schema: Any
    filters: np.ndarray
    block_keys: list[np.ndarray] | None
    truth: Plain
    reference: Plain
    mode: str


def _synth_table(people: int, seed: int, schema: Any) -> tuple[pa.Table, dict[str, Any]]:
    """A clean synthetic population of exactly ``people`` records (one party, no corruption,
    no duplicates) with columns renamed to schema field names; returns (table, date formats)."""
    import linkage

    want = int(people / 0.88) + 10  # one party's overlap is jittered down by up to 10%
    with tempfile.TemporaryDirectory(prefix="linkage-audit-") as tmp:
        out = Path(tmp) / "pop"
        linkage.synth(
            out, want, 1, overlap=1.0, duplicates=0.0, corruption="none", seed=seed,
            fmt="parquet",
        )  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        party = manifest["parties"][0]
        raw = pq.read_table(out / party["file"])
    cols: dict[str, pa.Array] = {"record_id": raw.column(party["record_id_column"])}
    for f in schema.fields:
        sf = SYNTH_FIELDS.get(f.name)
        if sf is None or sf not in party["columns"]:
            raise InputError(
                f"schema field {f.name!r} has no synthetic counterpart; audit it with a "
                "reference CSV (mode a)"
            )
        cols[f.name] = pc.cast(raw.column(party["columns"][sf]), pa.string())
        if f.normaliser == "date":  # ISO dates: the encoder and the attacker read them alike
            when = pc.strptime(cols[f.name], format=party["date_format"], unit="s")
            cols[f.name] = pc.strftime(when, format="%Y-%m-%d")
    table = pa.table(cols).slice(0, min(people, raw.num_rows))
    return table, {}


def _block_key_lists(enc: Any) -> list[np.ndarray] | None:
    if not enc.has_block_keys:
        return None
    col = enc.table.column("block_keys").combine_chunks()
    offs = col.offsets.to_numpy()
    flat = col.values.to_numpy(zero_copy_only=False)
    return [flat[offs[i] : offs[i + 1]] for i in range(len(col))]


def _align(enc: Any, table: pa.Table, id_column: str) -> np.ndarray:
    """Row of ``table`` for each encoded record (records left out by the encoder are absent)."""
    ids = table.column(id_column).combine_chunks().cast(pa.string()).to_pylist()
    where = {v: i for i, v in enumerate(ids)}
    rows = [where.get(r) for r in enc.record_ids.to_pylist()]
    if any(r is None for r in rows):
        raise InputError("the plaintext lacks some record ids of the encoded file")
    return np.asarray(rows, np.int64)


def synthetic_scenario(
    schema: Any, people: int, *, seed: int = 0, reference_people: int | None = None
) -> Scenario:
    """Mode (b): encode ``people`` synthetic records under a throwaway secret; the attacker's
    reference is an independent draw of ``reference_people`` (default ``people``)."""
    import linkage

    table, fmts = _synth_table(people, seed, schema)
    # a throwaway secret drawn from the seed (reproducible audits); it is not kept
    key = hashlib.sha256(b"linkage audit throwaway secret" + seed.to_bytes(8, "little")).digest()
    enc = linkage.encode(table, schema, linkage.Secret(key), party="audit", date_formats=fmts)
    rows = _align(enc, table, "record_id")
    truth = normalise_table(table.take(pa.array(rows)), schema, date_formats=fmts)
    ref_table, ref_fmts = _synth_table(reference_people or people, seed + 7919, schema)
    reference = normalise_table(ref_table, schema, date_formats=ref_fmts)
    return Scenario(
        schema, np.array(enc.filters), _block_key_lists(enc), truth, reference, "schema"
    )


def _read_plain_csv(path: str | Path) -> pa.Table:
    """A plaintext extract (CSV, or Parquet by its suffix); InputError naming the file for
    one that cannot be read (never quoting its content)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    try:
        if p.suffix == ".parquet":
            return pq.read_table(p)
        with open(p, encoding="utf-8-sig") as fh:
            header = fh.readline().strip().split(",")
        return pacsv.read_csv(
            p,
            convert_options=pacsv.ConvertOptions(
                column_types={h.strip('"'): pa.string() for h in header},
                strings_can_be_null=True,
            ),
        )
    except UnicodeDecodeError:
        raise InputError(f"{p}: not valid UTF-8 text (is it a CSV file?)") from None
    except pa.ArrowInvalid as exc:
        what = "not a Parquet file" if p.suffix == ".parquet" else csv_problem(exc, p)
        raise InputError(f"{p}: cannot read the file: {what}") from None


def file_scenario(
    encoded: str | Path,
    plaintext: str | Path,
    schema: Any,
    *,
    reference: str | Path | None = None,
    id_column: str = "record_id",
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    seed: int = 0,
) -> Scenario:
    """Mode (a): an encoded file, the partner's plaintext of it (scoring only) and the
    attacker's reference (a CSV/Parquet with the same columns, or a synthetic draw)."""
    import linkage

    enc = linkage.read_encoded(encoded)
    if enc.meta.get("schema_fingerprint") != schema.fingerprint:
        raise InputError(f"{encoded}: encoded under another schema (fingerprint differs)")
    table = _read_plain_csv(plaintext)
    if id_column not in table.column_names:
        raise InputError(f"{plaintext}: no id column {id_column!r}")
    rows = _align(enc, table, id_column)
    truth = normalise_table(table.take(pa.array(rows)), schema, columns, date_formats)
    if reference is None:
        ref_table, fmts = _synth_table(len(enc), seed + 7919, schema)
        ref = normalise_table(ref_table, schema, date_formats=fmts)
    else:
        ref = normalise_table(_read_plain_csv(reference), schema, columns, date_formats)
    return Scenario(schema, np.array(enc.filters), _block_key_lists(enc), truth, ref, "file")
