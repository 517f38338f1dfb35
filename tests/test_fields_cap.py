"""The per-record candidate cap under field-aware scoring (``max_candidates``).

``auto`` (the default) is the flow's own cap: 100 with Dice scoring, ``FIELD_MAX_CANDIDATES``
with field-aware scoring; any int is honoured as given in either flow (never quietly
lowered), None keeps every pair. Under field-aware scoring the cap biting is the design
(candidates at Dice >= 0.5): it is counted in the statistics and the progress line, not
warned about as "near-identical records".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.encoded import EncodedTable
from linkage.errors import InputError
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import ENV_VAR, Secret
from linkage.segments import with_segments
from linkage.tlu.blocking import DEFAULT_MAX_CANDIDATES
from linkage.tlu.linker import match
from linkage.tlu.scoring.rescore import FIELD_MAX_CANDIDATES


def _crowd(n: int, seed: int) -> dict[str, list[str | None]]:
    """n records of a few look-alike people (one surname, postcode and address; a few given
    names and dates): every record has more than FIELD_MAX_CANDIDATES partners at Dice 0.5."""
    rng = np.random.default_rng(seed)
    given = ["JOHN", "JON", "JOHNNY", "JOAN"]
    return {
        "record_id": [f"r{i}" for i in range(n)],
        "given_name": [str(rng.choice(given)) for _ in range(n)],
        "surname": ["SMITHSON"] * n,
        "date_of_birth": [_date(rng) for _ in range(n)],
        "sex": ["M"] * n,
        "postcode": ["L1 8JQ"] * n,
        "address": ["12 HIGH STREET"] * n,
        "nhs_number": [None] * n,
    }


def _date(rng: np.random.Generator) -> str:
    return f"19{rng.integers(60, 64)}-0{rng.integers(1, 3)}-1{rng.integers(1, 3)}"


@pytest.fixture(scope="module")
def crowd() -> list[EncodedTable]:
    schema = Schema.from_dict(with_segments(uk_person_unhardened()))
    secret = Secret(hashlib.sha256(b"fields-cap test").digest())
    parties = ((1, "a"), (2, "b"))
    return [encode(pa.table(_crowd(60, s)), schema, secret, party=p) for s, p in parties]


def _run(encs: list[EncodedTable], **kw):  # type: ignore[no-untyped-def]
    warnings: list[str] = []
    said: list[str] = []
    res = match(encs, seed=1, warn=warnings.append, progress=said.append, **kw)
    return res, warnings, said


def test_field_default_cap_is_reported_not_warned(crowd: list[EncodedTable]) -> None:
    res, warnings, said = _run(crowd)
    detail = res.stats.blocking_detail
    assert res.field_scores is not None
    assert detail["max_candidates"] == FIELD_MAX_CANDIDATES
    assert detail["capped_records"] == 120  # every record had more
    assert not any("candidate pairs" in w for w in warnings), warnings
    line = [s for s in said if s.startswith("blocking")]
    assert line and f"120 records had more than {FIELD_MAX_CANDIDATES}" in line[0]
    assert "near-identical" not in line[0]


def test_field_cap_above_the_default_is_honoured(crowd: list[EncodedTable]) -> None:
    base, _, _ = _run(crowd)
    k = FIELD_MAX_CANDIDATES + 20
    res, warnings, _ = _run(crowd, max_candidates=k)
    assert res.stats.blocking_detail["max_candidates"] == k  # not quietly FIELD_MAX_CANDIDATES
    assert res.stats.pairs_above_threshold > base.stats.pairs_above_threshold
    assert not warnings
    big, _, _ = _run(crowd, max_candidates=DEFAULT_MAX_CANDIDATES)  # the pair pool's path
    free, _, _ = _run(crowd, max_candidates=None)
    assert "capped_records" not in free.stats.blocking_detail
    kept = [r.stats.pairs_above_threshold for r in (base, res, big, free)]
    assert kept == sorted(set(kept)) and kept[-1] == 120 * 119 // 2  # every pair, uncapped


def test_field_cap_below_the_default_is_honoured(crowd: list[EncodedTable]) -> None:
    res, warnings, _ = _run(crowd, max_candidates=3)
    assert res.stats.blocking_detail["max_candidates"] == 3
    assert not warnings
    cand = res.field_scores
    assert cand is not None and len(cand.weight) == res.stats.pairs_above_threshold
    # each record keeps its 3 best; a pair stays when either record keeps it
    assert res.stats.pairs_above_threshold <= 120 * 3


def test_dice_flow_still_warns(crowd: list[EncodedTable]) -> None:
    res, warnings, _ = _run(crowd, scoring="dice", threshold=0.5, max_candidates=3, dedupe=True)
    assert res.stats.blocking_detail["max_candidates"] == 3
    assert any("near-identical" in w for w in warnings)
    auto, _, _ = _run(crowd, scoring="dice", threshold=0.5, dedupe=True)
    assert auto.stats.blocking_detail.get("max_candidates") in (None, DEFAULT_MAX_CANDIDATES)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "16", True])
def test_bad_caps_are_refused(crowd: list[EncodedTable], bad: object) -> None:
    with pytest.raises(InputError, match="--max-candidates"):
        match(crowd, max_candidates=bad)  # type: ignore[arg-type]


def test_cli_cap_reaches_field_scoring(crowd: list[EncodedTable], tmp_path: Path) -> None:
    paths = []
    for e in crowd:
        paths.append(tmp_path / f"{e.party}.parquet")
        e.write(paths[-1])
    env = {ENV_VAR: None}
    r = CliRunner().invoke(main, ["match", *map(str, paths), "-o", str(tmp_path / "l.parquet"),
                                  "--max-candidates", "40", "--seed", "1"], env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Warning" not in r.output and "near-identical" not in r.output
    assert "had more than 40" in r.output  # the summary counts the records the cap trimmed
    lib = match(crowd, seed=1, max_candidates=40)
    assert pq.read_table(tmp_path / "l.parquet").equals(lib.links)
    r = CliRunner().invoke(main, ["match", *map(str, paths), "-o", str(tmp_path / "m.parquet"),
                                  "--seed", "1"], env=env)  # fmt: skip
    assert r.exit_code == 0 and f"had more than {FIELD_MAX_CANDIDATES}" in r.output
    assert "Warning" not in r.output
    text = " ".join(CliRunner().invoke(main, ["match", "--help"]).output.split())
    assert "used as given with either scoring" in text
    assert f"{FIELD_MAX_CANDIDATES} with field" in text  # (click may break "field-aware")
