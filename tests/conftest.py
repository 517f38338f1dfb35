"""Shared test fixtures (small and generic)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret, secret_text

# CI runs the same hypothesis examples every time (a failure there is reproducible, and a
# submission is not refused by a new random draw); locally each run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A fixed "today" so date checks (future dates, two-digit years) do not drift.
TODAY = dt.date(2024, 6, 1)
# 32 random-looking bytes (typed or repetitive secrets are refused), fixed for the tests
SECRET_BYTES = hashlib.sha256(b"linkage test secret").digest()


@pytest.fixture
def today() -> dt.date:
    return TODAY


@pytest.fixture
def secret_bytes() -> bytes:
    return SECRET_BYTES


@pytest.fixture
def secret() -> Secret:
    return Secret(SECRET_BYTES)


@pytest.fixture
def other_secret() -> Secret:
    return Secret(hashlib.sha256(b"a completely different secret").digest())


@pytest.fixture
def uk_schema() -> Schema:
    return Schema.from_dict(uk_person_unhardened())


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    p = tmp_path / "secret.key"
    p.write_text(secret_text(SECRET_BYTES) + "\n", encoding="ascii")
    p.chmod(0o600)
    return p


@pytest.fixture
def uk_schema_file(tmp_path: Path) -> Path:
    p = tmp_path / "schema.json"
    p.write_text(json.dumps(uk_person_unhardened()), encoding="utf-8")
    return p


from engines import dask_session, linker  # noqa: E402, F401  (fixtures of @each_engine)
