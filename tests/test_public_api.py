"""The public layer: every submodule imported first, then every exported verb CALLED.

Guards the bug where ``linkage.match`` (a lazy export) became the submodule ``linkage.match``
once that module was imported: after importing everything, each verb must still be the
function, and must run on tiny inputs.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import linkage

SUBMODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(linkage.__path__, "linkage.")
    if not m.name.startswith("linkage.kernels.") or m.name.count(".") == 2
)


def _import_all() -> None:
    for name in SUBMODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an optional extra (dask) may be absent
            if "dask" not in str(exc):
                raise


def test_submodules_found() -> None:
    assert "linkage.tlu.linker" in SUBMODULES and "linkage.partner.pipeline" in SUBMODULES


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _import_all()
    tmp = tmp_path_factory.mktemp("api")
    from linkage.schema_template import uk_person_unhardened

    schema = linkage.Schema.from_dict(uk_person_unhardened())
    secret = linkage.Secret(hashlib.sha256(b"public api").digest())
    people = pa.table(
        {
            "record_id": ["1", "2", "3"],
            "given_name": ["Ann", "Bob", "Cat"],
            "surname": ["Smith", "Jones", "Patel"],
            "date_of_birth": ["1980-01-02", "1975-05-06", "1990-10-11"],
            "sex": ["F", "M", "F"],
            "postcode": ["CF10 1AA", "L1 8JQ", "M1 1AE"],
            "address": ["1 High St", "2 Low Rd", "3 Mid Ln"],
            "nhs_number": [None, None, None],
        }
    )
    csv = tmp / "b.csv"
    pacsv.write_csv(people, csv)
    return {"tmp": tmp, "schema": schema, "secret": secret, "people": people, "csv": csv}


def _calls(w: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    tmp: Path = w["tmp"]

    def enc(party: str) -> Any:
        return linkage.encode(w["people"], w["schema"], w["secret"], party=party)

    def match() -> Any:
        res = linkage.match([enc("a"), enc("b")], seed=1)
        assert res.links.num_rows == 6 and res.pairs.num_rows == 3
        return res

    def encode_file() -> Any:
        out = tmp / "b.parquet"
        out.unlink(missing_ok=True)
        return linkage.encode_file(w["csv"], out, w["schema"], w["secret"], party="b")

    def read_encoded() -> Any:
        encode_file()
        return linkage.read_encoded(tmp / "b.parquet")

    def synth() -> Any:
        return linkage.synth(tmp / "synth", people=20, parties=2, seed=1, overwrite=True)

    def evaluate() -> Any:
        res = match()
        truth = pa.table(
            {
                "party": ["a"] * 3 + ["b"] * 3,
                "record_id": ["1", "2", "3"] * 2,
                "person_id": ["p1", "p2", "p3"] * 2,
            }
        )
        report = linkage.evaluate(res.links, truth)
        assert report is not None
        return report

    def report(name: str) -> Path:
        out = tmp / f"{name}.html"
        out.unlink(missing_ok=True)
        return out

    def write_audit_report() -> Any:
        from linkage.lab.audit.results import AttackResult, AuditResult

        attack = AttackResult("frequency", "Frequency alignment", 0.0, 0.0, 3, 0.1)
        result = AuditResult("f" * 64, "schema", 3, 3, 0, (attack,), 0.1)
        return linkage.write_audit_report(report("audit"), result)

    def write_map_report() -> Any:
        path = tmp / "m.duckdb"
        linkage.map_create(path, [enc("a"), enc("b")], seed=1, force=True)
        return linkage.write_map_report(report("map"), path)

    def map_verbs() -> dict[str, Callable[[], Any]]:
        mp, key = tmp / "map.duckdb", tmp / "tlu.key"

        def create() -> Any:
            return linkage.map_create(mp, [enc("a"), enc("b")], seed=1, force=True) or True

        def ready() -> None:
            if not mp.exists():
                create()

        def entity() -> str:
            ready()
            return str(linkage.map_links(mp)["entity_id"][0])

        def keyed() -> Path:
            if not key.exists():
                linkage.map_keygen(key)
            return key

        return {
            "map_create": create,
            "map_update": lambda: (ready(), linkage.map_update(mp, [enc("b")]))[1],
            "map_links": lambda: (ready(), linkage.map_links(mp))[1],
            "map_changes": lambda: (ready(), linkage.map_changes(mp, since=1))[1],
            "map_history": lambda: linkage.map_history(mp, entity()),
            "map_info": lambda: (ready(), linkage.map_info(mp))[1],
            "map_keygen": keyed,
            "map_export": lambda: linkage.map_export(mp, project="p1", key_file=keyed()),
        }

    def audit() -> Any:
        from linkage.schema_template import uk_person_unhardened

        return linkage.audit(uk_person_unhardened(), people=60, attacks=("leaks",), seed=1)

    return {
        **map_verbs(),
        "audit": audit,
        "write_encode_report": lambda: linkage.write_encode_report(
            report("encode"), encode_file(), schema=w["schema"]
        ),
        "write_match_report": lambda: linkage.write_match_report(report("match"), match()),
        "write_evaluation_report": lambda: linkage.write_evaluation_report(
            report("evaluate"), evaluate()
        ),
        "write_audit_report": write_audit_report,
        "write_map_report": write_map_report,
        "encode": lambda: enc("a"),
        "encode_file": encode_file,
        "read_encoded": read_encoded,
        "match": match,
        "solve": lambda: linkage.solve([0], [1], [0.9], [0, 1]),
        "synth": synth,
        "evaluate": evaluate,
        "normalise": lambda: linkage.normalise("name", ["O'Brien"]),
    }


def test_every_verb_is_called_after_every_module_is_imported(world: dict[str, Any]) -> None:
    calls = _calls(world)
    verbs = [n for n in linkage.__all__ if n[0].islower() and not n.startswith("_")]
    missing = [v for v in verbs if v not in calls]
    assert not missing, f"exported verbs without a call in this test: {missing}"
    for name in verbs:
        fn = getattr(linkage, name)
        assert inspect.isfunction(fn), f"linkage.{name} is {fn!r}, not a function"
        assert calls[name]() is not None, name


def test_exported_classes_are_classes() -> None:
    _import_all()
    for name in linkage.__all__:
        if name[0].isupper():
            assert inspect.isclass(getattr(linkage, name)), name


def test_library_verbs_say_what_they_take(world: dict[str, Any]) -> None:
    """A fresh tester's calls: a schema path works as in linkage.audit; a secret as text, a
    path or None, and match() of one path, are TypeErrors that say what to pass (they were
    AttributeErrors deep inside, and match('a.parquet') read its letters as files)."""
    import json

    from linkage.schema_template import uk_person_unhardened

    tmp: Path = world["tmp"]
    schema_path = tmp / "schema.json"
    schema_path.write_text(json.dumps(uk_person_unhardened()))
    by_path = linkage.encode(world["people"], str(schema_path), world["secret"], party="p")
    by_obj = linkage.encode(world["people"], world["schema"], world["secret"], party="p")
    assert by_path.filters.tolist() == by_obj.filters.tolist()
    for bad in ("0123-secret-as-text", tmp / "secret.key", None):
        with pytest.raises(TypeError, match=r"Secret\.from_text\(text\)"):
            linkage.encode(world["people"], world["schema"], bad, party="p")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="schema is JSON text"):
        linkage.encode(world["people"], schema_path.read_text(), world["secret"], party="p")
    with pytest.raises(TypeError, match=r"schema must be a linkage\.Schema or a path"):
        linkage.encode(world["people"], {"fields": []}, world["secret"], party="p")  # type: ignore[arg-type]
    for one in ("a.parquet", b"a.parquet", tmp / "a.parquet", by_obj):
        with pytest.raises(TypeError, match="inputs must be a list"):
            linkage.match(one)  # type: ignore[arg-type]


def test_encode_reads_a_semicolon_csv_path_with_delimiter(world: dict[str, Any]) -> None:
    """The reader's error says to give the delimiter; the library verb takes it too."""
    tmp: Path = world["tmp"]
    semi = tmp / "semi.csv"
    pacsv.write_csv(world["people"], semi, pacsv.WriteOptions(delimiter=";"))
    with pytest.raises(linkage.InputError, match="delimiter"):
        linkage.encode(semi, world["schema"], world["secret"], party="p")
    got = linkage.encode(semi, world["schema"], world["secret"], party="p", delimiter=";")
    want = linkage.encode(world["csv"], world["schema"], world["secret"], party="p")
    assert got.filters.tolist() == want.filters.tolist()
