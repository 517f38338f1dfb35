"""linkage.tlu.dask_match: matching on a Dask LocalCluster gives exactly the in-process output.

A LocalCluster of 2 single-threaded worker processes links small synthetic encoded files with
blocking none, keys and lsh (with and without dedupe) and the links and pairs tables must equal
those of :func:`linkage.tlu.linker.match` for the same seed. A worker killed mid-run must not change
the output. Scheduler parsing and the missing-Dask message are checked without a cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("dask.distributed")

from linkage.dask_session import DASK_MISSING, SchedulerSpec, open_scheduler, parse_scheduler
from linkage.encoded import EncodedTable, make_meta, read_encoded, write_encoded
from linkage.errors import CompatibilityError, InputError, LinkageError
from linkage.lab.synthetic import encode_arguments, synth
from linkage.partner.pipeline import encode
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import Secret, secret_text
from linkage.tlu.dask_match import DaskEngine, warm_worker
from linkage.tlu.linker import match
from linkage.tlu.result import LinkageResult

pytestmark = pytest.mark.dask

SECRET_BYTES = hashlib.sha256(b"dask-test-secret").digest()
SECRET = Secret(SECRET_BYTES)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three encoded parties of a 600-person synthetic population (medium corruption)."""
    out = tmp_path_factory.mktemp("dask") / "pop"
    synth(out, people=600, parties=3, corruption="medium", seed=11)
    manifest = json.loads((out / "manifest.json").read_text())
    schema = Schema.from_dict(uk_person_unhardened())
    paths = []
    for p in manifest["parties"]:
        enc = encode(out / p["file"], schema, SECRET, rejects=[], **encode_arguments(p))
        path = out / f"{p['name']}.enc.parquet"
        enc.write(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def session() -> Iterator:
    with open_scheduler("local:2", warm=warm_worker) as s:
        assert len(s.client.nthreads()) == 2
        assert all(n == 1 for n in s.client.nthreads().values())
        yield s


def same(a: LinkageResult, b: LinkageResult) -> None:
    assert a.links.equals(b.links)
    assert a.pairs.equals(b.pairs)
    for k in ("blocking", "candidates", "possible_pairs", "pairs_above_threshold", "entities"):
        assert a.stats[k] == b.stats[k], k


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("local", SchedulerSpec("local")),
        ("local:3", SchedulerSpec("local", n_workers=3)),
        ("tcp://10.0.0.5:8786", SchedulerSpec("remote", address="tcp://10.0.0.5:8786")),
        ("tls://sched.example:8786", SchedulerSpec("remote", address="tls://sched.example:8786")),
    ],
)
def test_parse_scheduler(spec: str, want: SchedulerSpec) -> None:
    assert parse_scheduler(spec) == want


@pytest.mark.parametrize(
    "spec", ["", "local:", "local:0", "local:x", "tcp://host", "tls://:8786", "http://h:1", "ray"]
)
def test_parse_scheduler_rejects(spec: str) -> None:
    with pytest.raises(LinkageError, match="--scheduler"):
        parse_scheduler(spec)


def test_without_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(LinkageError) as err:
        parse_scheduler("local:2")
    assert str(err.value) == DASK_MISSING
    assert "pip install 'pprl-linkage[dask]'" in str(err.value)


def test_tables_are_refused(files: list[Path], session) -> None:
    encs = [read_encoded(p) for p in files]
    with pytest.raises(InputError, match="paths every worker can read"):
        match(encs, scheduler=session)  # type: ignore[arg-type]


# -- identical to in-process ---------------------------------------------------------------------
@pytest.mark.parametrize("blocking", ["none", "keys", "lsh"])
@pytest.mark.parametrize("dedupe", [False, True])
def test_identical_to_in_process(files: list[Path], session, blocking: str, dedupe: bool) -> None:
    ref = match(files, blocking=blocking, dedupe=dedupe, seed=7)
    got = match(files, scheduler=session, blocking=blocking, dedupe=dedupe, seed=7, partitions=3)
    assert len(ref.pairs) > 100  # the files really link
    same(ref, got)
    if blocking != "none":
        d_ref: Any = ref.stats["blocking_detail"]
        d_got: Any = got.stats["blocking_detail"]
        assert d_got["blocks"] == d_ref["blocks"]
        assert d_got["oversize_blocks"] == d_ref["oversize_blocks"]


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_partition_count_does_not_matter(files: list[Path], session, partitions: int) -> None:
    ref = match(files[:2], blocking="keys", seed=3, threshold=0.6)
    got = match(
        files[:2], scheduler=session, blocking="keys", seed=3, threshold=0.6, partitions=partitions
    )
    same(ref, got)


def test_oversize_blocks_and_warnings(files: list[Path], session) -> None:
    w_ref: list[str] = []
    w_got: list[str] = []
    ref = match(files, blocking="lsh", max_block=40, seed=1, warn=w_ref.append)
    got = match(files, scheduler=session, blocking="lsh", max_block=40, seed=1, warn=w_got.append)
    detail: Any = ref.stats["blocking_detail"]
    assert detail["oversize_blocks"] > 0
    same(ref, got)
    assert sorted(w_ref) == sorted(w_got)


def test_file_urls(files: list[Path], session) -> None:
    ref = match(files, blocking="keys", seed=2)
    got = match([p.resolve().as_uri() for p in files], scheduler=session, blocking="keys")
    assert ref.pairs.equals(got.pairs)


def test_random_filters_without_block_keys(tmp_path: Path, session) -> None:
    """Files without block keys: keys is refused like in-process, auto and none agree."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=(300, 16), dtype=np.uint64)
    paths = []
    for p, name in enumerate(["a", "b"]):
        f = base.copy()
        flips = rng.integers(0, 64, size=(300, 16))
        f ^= np.where(rng.random((300, 16)) < 0.2, np.uint64(1) << flips.astype(np.uint64), 0)
        if p:
            f = f[::-1].copy()
        ids = pa.array([f"{name}{i}" for i in range(len(f))])
        clk = pa.FixedSizeBinaryArray.from_buffers(pa.binary(128), len(f), [None, pa.py_buffer(f)])
        meta = make_meta(
            fingerprint="x", key_check="k", party=name, filter_length=1024, record_count=len(f)
        )
        path = tmp_path / f"{name}.parquet"
        write_encoded(EncodedTable(pa.table({"record_id": ids, "clk": clk}), meta), path)
        paths.append(path)
    with pytest.raises(LinkageError, match="needs block keys"):
        match(paths, scheduler=session, blocking="keys")
    ref = match(paths, blocking="auto", seed=4)
    got = match(paths, scheduler=session, blocking="auto", seed=4)
    assert len(ref.pairs) > 250
    same(ref, got)


# -- a worker dies mid-run -----------------------------------------------------------------------
def test_worker_killed_mid_run(files: list[Path]) -> None:
    ref = match(files, blocking="keys", dedupe=True, seed=9)
    with open_scheduler("local:2") as s:
        client = s.client
        pids = client.run(os.getpid)  # worker address -> process id
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                engine = DaskEngine(s, partitions=4, _task_delay=1.5)
                box["result"] = match(
                    files, engine=engine, blocking="keys", dedupe=True, seed=9
                )  # fmt: skip
            except BaseException as exc:  # pragma: no cover - reported below
                box["error"] = exc

        t = threading.Thread(target=run)
        t.start()
        deadline = time.monotonic() + 20
        victim = None
        while victim is None and time.monotonic() < deadline:
            busy = {w: ts for w, ts in client.processing().items() if ts}
            if busy:
                victim = sorted(busy)[0]
            else:
                time.sleep(0.05)
        assert victim is not None, "no task started"
        time.sleep(0.3)  # the victim is inside its task (sleeping before the work)
        os.kill(pids[victim], signal.SIGKILL)
        t.join(60)
        assert not t.is_alive()
        assert "error" not in box, box.get("error")
        got = box["result"]
        assert isinstance(got, LinkageResult)
        assert pids[victim] not in client.run(os.getpid).values()  # it really died
    same(ref, got)


# -- encoding on Dask -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dask_encode") / "pop"
    synth(out, people=400, parties=1, corruption="high", seed=5)
    party = json.loads((out / "manifest.json").read_text())["parties"][0]
    return out / party["file"], party


def _encode_kwargs(party: dict) -> dict:
    return encode_arguments(party) | {"batch_size": 1000}


def test_encode_on_dask_identical_to_in_process(
    tmp_path: Path, extract: tuple[Path, dict], session
) -> None:
    from linkage.partner.pipeline import encode_file

    src, party = extract
    key = tmp_path / "secret.key"
    key.write_text(secret_text(SECRET_BYTES))
    schema = Schema.from_dict(uk_person_unhardened())
    local = encode_file(src, tmp_path / "local.parquet", schema, SECRET,
                        rejects_path=tmp_path / "local.csv", **_encode_kwargs(party))  # fmt: skip
    remote = encode_file(src, tmp_path / "dask.parquet", schema, SECRET, scheduler=session,
                         secret_file=key, rejects_path=tmp_path / "dask.csv",
                         **_encode_kwargs(party))  # fmt: skip
    assert local.rows_encoded == remote.rows_encoded > 0
    assert local.problems == remote.problems
    a, b = read_encoded(tmp_path / "local.parquet"), read_encoded(tmp_path / "dask.parquet")
    assert a.table.equals(b.table)
    assert a.meta["key_check"] == b.meta["key_check"]
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()


def test_encode_on_dask_needs_a_secret_file(tmp_path: Path, extract: tuple[Path, dict]) -> None:
    from linkage.partner.pipeline import encode_file

    src, party = extract
    schema = Schema.from_dict(uk_person_unhardened())
    with pytest.raises(InputError, match="--secret-file"):
        encode_file(src, tmp_path / "x.parquet", schema, SECRET, scheduler="local:1",
                    **_encode_kwargs(party))  # fmt: skip
    assert not (tmp_path / "x.parquet").exists()


def test_encode_on_dask_refuses_a_worker_with_another_secret(
    tmp_path: Path, extract: tuple[Path, dict], session
) -> None:
    from linkage.partner.pipeline import encode_file

    src, party = extract
    key = tmp_path / "other.key"
    key.write_text(secret_text(hashlib.sha256(b"another").digest()))
    schema = Schema.from_dict(uk_person_unhardened())
    with pytest.raises(CompatibilityError, match="different secret"):
        encode_file(src, tmp_path / "x.parquet", schema, SECRET, scheduler=session,
                    secret_file=key, **_encode_kwargs(party))  # fmt: skip
    assert list(tmp_path.glob("*.parquet")) == []
    assert list(tmp_path.glob(".*partial")) == []


def test_worker_keeps_one_encoder_per_thread(tmp_path: Path) -> None:
    """An Encoder's token table is not thread-safe: a Dask worker with several threads must
    not share one (it gave wrong filters without an error)."""
    from linkage.partner import dask_encode

    key = tmp_path / "secret.key"
    key.write_text(secret_text(SECRET_BYTES))
    key.chmod(0o600)  # a shared secret file is private, as a partner keeps it
    schema_json = json.dumps(uk_person_unhardened())
    batch = {"rid": pa.array(["a", "b"]), "surname": pa.array(["SMITH", "JONES"])}
    seen: list[object] = []

    def run() -> None:
        for _ in range(2):  # the second call reuses the thread's encoder
            dask_encode._encode_task(
                schema_json, str(key), {}, None, "rid", {"surname": "surname"}, batch
            )
        seen.extend(dask_encode._WORKER_ENCODERS.by_key.values())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 2 and seen[0] is not seen[1]
