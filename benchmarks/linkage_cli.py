"""Running linkage's own command line in benchmarks: the ``linkage`` console script of this
venv, the 10-field person schema, ``linkage synth`` as a measured subprocess, and the
``linkage encode`` command for one party of a synth output (column map from
:func:`linkage.lab.synthetic.encode_options`). ``linkage`` is imported lazily, so the harness
imports without it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness.measure import ChildRun, run_measured

__all__ = [
    "linkage_exe",
    "linkage_person_schema",
    "run_synth",
    "synth_encode_cmd",
    "write_secret_file",
]


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
    from linkage.schema import Schema
    from linkage.schema_template import uk_person_template

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
) -> list[str]:
    """The ``linkage encode`` command for one party of a ``linkage synth`` manifest, encoded
    with the uk-person template: columns, the date of birth's format and absent fields from
    :func:`linkage.lab.synthetic.encode_options` (the one synth -> template field map)."""
    from linkage.lab.synthetic import encode_options

    return [
        os.fspath(linkage_exe()),
        "encode",
        os.fspath(Path(synth_dir) / party["file"]),
        "-s",
        os.fspath(schema_path),
        "--secret-file",
        os.fspath(secret_path),
        "-o",
        os.fspath(out_path),
        "--force",
        "--quiet",
        *encode_options(party),
    ]


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
