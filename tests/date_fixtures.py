"""Shared by the date tests: encode a table whose only field present is the date of birth
(the uk-person schema, every other field declared absent) and return its date rejects."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow as pa

from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret


def date_rejects(table: pa.Table, today: dt.date) -> list[tuple[str, str, str]]:
    """The ``(record_id, "date_of_birth", reason)`` rejects of encoding ``table`` (columns
    ``record_id`` and ``date_of_birth``) as of ``today``, sorted."""
    schema = Schema.from_dict(uk_person_unhardened())
    absent = [f for f in schema.field_names if f not in table.column_names]
    rejects: list[tuple[str, str, str]] = []
    encode(table, schema, Secret(hashlib.sha256(b"dates-test").digest()), party="p",
           absent=absent, rejects=rejects, today=today)  # fmt: skip
    return sorted(r for r in rejects if r[1] == "date_of_birth")
