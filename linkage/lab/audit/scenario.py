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
from collections.abc import Mapping, Sequence
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


def _synth_table(
    people: int,
    seed: int,
    schema: Any,
    absent: Sequence[str] = (),
    *,
    duplicates: float = 0.0,
    corruption: str = "none",
) -> tuple[pa.Table, dict[str, Any]]:
    """A synthetic extract of exactly ``people`` records (one party; clean by default: no
    corruption, no duplicates) with columns renamed to schema field names (``absent`` fields:
    none); returns (table, date formats)."""
    import linkage

    want = int(people / 0.88) + 10  # one party's overlap is jittered down by up to 10%
    with tempfile.TemporaryDirectory(prefix="linkage-audit-") as tmp:
        out = Path(tmp) / "pop"
        linkage.synth(
            out, want, 1, overlap=1.0, duplicates=duplicates, corruption=corruption, seed=seed,
            fmt="parquet",
        )  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        party = manifest["parties"][0]
        raw = pq.read_table(out / party["file"])
    cols: dict[str, pa.Array] = {"record_id": raw.column(party["record_id_column"])}
    for f in schema.fields:
        if f.name in absent:
            continue
        sf = SYNTH_FIELDS.get(f.name)
        if sf is None or sf not in party["columns"]:
            raise InputError(
                f"schema field {f.name!r} has no synthetic counterpart; audit it with a "
                "reference CSV (mode a), or declare it absent (--absent) if the encoded file "
                "has none"
            )
        cols[f.name] = pc.cast(raw.column(party["columns"][sf]), pa.string())
        if f.normaliser == "date":  # ISO dates: the encoder and the attacker read them alike
            when = pc.strptime(cols[f.name], format=party["date_format"], unit="s",
                               error_is_null=True)  # fmt: skip
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


def _align(
    enc: Any,
    table: pa.Table,
    id_column: str,
    path: Any = "the plaintext",
    encoded: Any = "the encoded file",
) -> np.ndarray:
    """Row of ``table`` for each encoded record (records left out by the encoder are absent).
    InputError (naming ``path``, never an id) for a repeated id or ids of ``encoded`` that the
    table lacks."""
    ids = table.column(id_column).combine_chunks().cast(pa.string()).to_pylist()
    where: dict[Any, int] = {}
    for i, v in enumerate(ids):
        if v in where:
            raise InputError(
                f"{path}: record id column {id_column!r} repeats an id (data row {i + 1} has "
                f"the id of row {where[v] + 1}); ids must be unique"
            )
        where[v] = i
    rows = [where.get(r) for r in enc.record_ids.to_pylist()]
    lost = sum(r is None for r in rows)
    if lost:
        raise InputError(
            f"{path}: {lost:,} of the {len(rows):,} record ids of {encoded} are not in its "
            f"id column {id_column!r} (is it the plaintext the file was encoded from?)"
        )
    return np.asarray(rows, np.int64)


def field_columns(
    path: Any,
    names: Sequence[str],
    schema: Any,
    columns: Mapping[str, str] | None = None,
    date_formats: Mapping[str, str] | None = None,
    absent: Sequence[str] = (),
) -> dict[str, str]:
    """Schema field -> column of a plaintext with columns ``names`` (as ``linkage encode``
    maps them: ``columns`` where given, else the field's own name; ``absent`` fields have
    none). InputError for an unknown field, a mapped column not in the file, a date format
    of a non-date field, or a field with no column that is not declared absent."""
    fields = list(schema.field_names)
    columns = dict(columns or {})
    for f in list(columns) + list(date_formats or {}) + list(absent):
        if f not in fields:
            raise InputError(f"unknown schema field {f!r} (the schema has: {', '.join(fields)})")
    both = sorted(set(columns) & set(absent))
    if both:
        raise InputError(f"field(s) {', '.join(both)} both mapped (--column) and --absent")
    for f in date_formats or {}:
        if schema.field(f).normaliser != "date":
            raise InputError(f"--date-format {f}=...: field {f} is not a date field")
    out, unmatched = {}, []
    for f in fields:
        if f in absent:
            continue
        col = columns.get(f, f)
        if col in names:
            out[f] = col
        elif f in columns:
            raise InputError(f"{path}: column {col!r} (mapped to field {f}) not found")
        else:
            unmatched.append(f)
    if unmatched:
        raise InputError(
            f"{path}: no column for schema field(s) {', '.join(unmatched)}; map them with "
            "--column FIELD=COLUMN, or declare them --absent FIELD if the encoded file was "
            "made with --absent"
        )
    return out


def _normalise_checked(
    path: Any, table: pa.Table, schema: Any, cols: dict[str, str],
    date_formats: Mapping[str, str] | None,
) -> Plain:  # fmt: skip
    """:func:`normalise_table` of the mapped columns; InputError when most of a date column
    cannot be read (a wrong or missing --date-format would silently blank the field)."""
    plain = normalise_table(table, schema, cols, date_formats, only_mapped=True)
    for f in schema.fields:
        if f.normaliser != "date" or f.name not in cols:
            continue
        col = table.column(cols[f.name]).combine_chunks()
        if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
            continue
        raw = col.cast(pa.string()).to_pylist()
        given = sum(1 for v in raw if v is not None and v.strip() and v not in f.missing)
        bad = given - sum(v is not None for v in plain.values[f.name])
        if given and bad > given / 2:
            raise InputError(
                f"{path}: column {cols[f.name]!r} (field {f.name}): {bad:,} of {given:,} dates "
                f"could not be read; give their format with --date-format {f.name}=FORMAT "
                "(e.g. %d/%m/%Y)"
            )
    return plain


def synthetic_scenario(
    schema: Any,
    people: int,
    *,
    seed: int = 0,
    reference_people: int | None = None,
    duplicates: float = 0.0,
    corruption: str = "none",
) -> Scenario:
    """Mode (b): encode ``people`` synthetic records (a clean population by default; with
    ``duplicates``/``corruption``, an extract as ``linkage synth`` writes one) under a
    throwaway secret; the attacker's reference is an independent clean draw of
    ``reference_people`` (default ``people``)."""
    import linkage

    table, fmts = _synth_table(people, seed, schema, duplicates=duplicates, corruption=corruption)
    # a throwaway secret drawn from the seed (reproducible audits); it is not kept
    key = hashlib.sha256(b"linkage audit throwaway secret" + seed.to_bytes(8, "little")).digest()
    enc = linkage.encode(table, schema, linkage.Secret(key), party="audit", date_formats=fmts)
    rows = _align(enc, table, "record_id", "the synthetic population")
    truth = normalise_table(table.take(pa.array(rows)), schema, date_formats=fmts)
    ref_table, ref_fmts = _synth_table(reference_people or people, seed + 7919, schema)
    reference = normalise_table(ref_table, schema, date_formats=ref_fmts)
    return Scenario(
        schema, np.array(enc.filters), _block_key_lists(enc), truth, reference, "schema"
    )


MIN_REFERENCE = 50
"""The fewest records an attacker's --reference may have (the audit refuses fewer)."""


def _read_plain_csv(path: str | Path) -> pa.Table:
    """A plaintext extract (CSV, or Parquet by its suffix); InputError naming the file for
    one that cannot be read (never quoting its content)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (no header, no records)")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    parquet = p.suffix.lower() in (".parquet", ".pq") or magic == b"PAR1"
    try:
        if parquet:
            return pq.read_table(p)
        with open(p, encoding="utf-8-sig") as fh:
            header = fh.readline().strip().split(",")
            if not fh.read(4096).strip():
                raise InputError(f"{p}: no records (only a header)")
        return pacsv.read_csv(
            p,
            convert_options=pacsv.ConvertOptions(
                column_types={h.strip('"'): pa.string() for h in header},
                strings_can_be_null=True,
            ),
        )
    except UnicodeDecodeError:
        raise InputError(f"{p}: not valid UTF-8 text (is it a CSV file?)") from None
    except (pa.ArrowInvalid, OSError) as exc:
        what = "not a Parquet file" if parquet else csv_problem(exc, p)
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
    absent: Sequence[str] = (),
    seed: int = 0,
    reference_people: int | None = None,
) -> Scenario:
    """Mode (a): an encoded file, the partner's plaintext of it (scoring only) and the
    attacker's reference (a CSV/Parquet with the same columns, or a synthetic draw of
    ``reference_people``, default the file's size). ``columns`` (field -> column),
    ``date_formats`` and ``absent`` (fields the encoded file was made without) as for
    ``linkage encode``; they apply to the plaintext and the reference alike. Every other
    schema field needs a column in both (InputError otherwise)."""
    import linkage

    enc = linkage.read_encoded(encoded)
    if enc.meta.get("schema_fingerprint") != schema.fingerprint:
        raise InputError(f"{encoded}: encoded under another schema (fingerprint differs)")
    table = _read_plain_csv(plaintext)
    if table.num_rows == 0:
        raise InputError(f"{plaintext}: no records")
    if id_column not in table.column_names:
        raise InputError(f"{plaintext}: no id column {id_column!r} (set it with --id-column)")
    cols = field_columns(plaintext, table.column_names, schema, columns, date_formats, absent)
    ref_table = None if reference is None else _read_plain_csv(reference)
    ref_cols = None
    if ref_table is not None:
        ref_cols = field_columns(
            reference, ref_table.column_names, schema, columns, date_formats, absent
        )
    rows = _align(enc, table, id_column, plaintext, encoded)
    truth = _normalise_checked(plaintext, table.take(pa.array(rows)), schema, cols, date_formats)
    if ref_table is None or ref_cols is None:
        synth_table, fmts = _synth_table(
            max(reference_people or 0, len(enc)), seed + 7919, schema, absent
        )
        ref = normalise_table(synth_table, schema, date_formats=fmts)
    else:
        if ref_table.num_rows < MIN_REFERENCE:
            raise InputError(
                f"{reference}: the reference has {ref_table.num_rows:,} records; the attacker's "
                f"population needs at least {MIN_REFERENCE} (thousands to be realistic: the "
                "frequency and pattern attacks align against it, and graph matching draws its "
                "list of other people from it)"
            )
        ref = _normalise_checked(reference, ref_table, schema, ref_cols, date_formats)
    return Scenario(schema, np.array(enc.filters), _block_key_lists(enc), truth, ref, "file")


def clkhash_like_schema() -> dict[str, Any]:
    """The published attacks' target as a schema document: a clkhash-style record-level CLK
    (1024 bits, padded bigrams, 10 bits per token, no salt, no block keys, no minimum
    evidence), built on the unhardened uk-person template (Schäfer et al., ACSAC 2024)."""
    import copy

    from linkage.schema_template import uk_person_unhardened

    doc = copy.deepcopy(uk_person_unhardened())
    doc["block_keys"] = []
    doc.pop("min_evidence", None)
    for f in doc["fields"]:
        f.pop("bit_budget", None)
        f["bits_per_token"] = 10
    return doc


def diffusion_paper_schema(taps: int = 4, length: int = 512, bits: int = 15) -> dict[str, Any]:
    """The diffusion paper's own target as a schema document (Armknecht, Heng & Schnell, PoPETs
    2023; artifact youzheheng/2022_PoPETS: 2,000 euro-census records, first name, surname, sex,
    day and month of birth as unpadded bigrams, random hashing, a CLK of 500 bits with 15 hash
    functions (its example calls) or 1,000 bits with 5 or 10 (its committed results), diffused
    to its own length with ``taps`` taps). Here ``length`` bits (a multiple of 64) in and out,
    ``bits`` bits per token, no block keys, built on the unhardened uk-person template."""
    import copy

    from linkage.schema_template import uk_person_unhardened

    doc = copy.deepcopy(uk_person_unhardened())
    doc["filter"]["length"] = length
    doc["filter"].pop("description", None)
    doc["block_keys"] = []
    doc.pop("min_evidence", None)
    keep = []
    for f in doc["fields"]:
        if f["name"] not in ("given_name", "surname", "sex", "date_of_birth"):
            continue
        f.pop("bit_budget", None)
        f["bits_per_token"] = bits
        if f["tokeniser"]["type"] == "qgram":
            f["tokeniser"] = {"type": "qgram", "q": 2, "padding": False}
        elif f["tokeniser"]["type"] == "date":
            f["tokeniser"] = {"type": "date", "parts": ["day", "month"]}
        keep.append(f)
    doc["fields"] = keep
    doc["hardening"] = [{"type": "diffusion", "taps": taps, "output_bits": length}]
    return doc


def with_diffusion_taps(doc: dict[str, Any], taps: int) -> dict[str, Any]:
    """A copy of schema document ``doc`` whose diffusion steps use ``taps`` taps (e.g. the
    default with fewer taps, to measure what its 8 buy)."""
    import copy

    out = copy.deepcopy(doc)
    for step in out.get("hardening", []):
        if step["type"] == "diffusion":
            step["taps"] = taps
            step.pop("description", None)
    return out
