"""Tests of the benchmark harness (benchmarks/harness/, data.py, peer_configs.py, peers.py).

Pure helpers run everywhere; tests that need the peers venv (``make peers``) skip cleanly
when ``.peers/`` is absent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import peers  # noqa: E402
from benchmarks.data import (  # noqa: E402
    PERSON_FIELDS,
    dice_reference,
    flip_bits,
    person_columns,
    random_filters,
    write_person_csv,
)
from benchmarks.harness.machine import machine_info, numba_mode  # noqa: E402
from benchmarks.harness.measure import run_measured, timer  # noqa: E402
from benchmarks.harness.results import (  # noqa: E402
    Figure,
    markdown_section,
    write_json,
    write_results,
)
from benchmarks.peer_configs import blocklib_psig_schema, clkhash_schema_v3  # noqa: E402

MACHINE = {
    "cpu_model": "Test CPU",
    "logical_cpus": 2,
    "usable_cpus": 2,
    "cpu_features": ["popcnt"],
    "ram_bytes": 2**30,
    "python": "3.11",
    "numpy": "2",
    "numba": "0.6",
    "numba_mode": "JIT",
    "pyarrow": "26",
    "linkage": "0.1.0",
    "git_commit": "abc",
}


# --- Figures and results files ----------------------------------------------------------------


def test_ratio_means_linkage_better_in_both_directions() -> None:
    assert Figure("x", 200.0, "rec/s", "p", 100.0).ratio == pytest.approx(2.0)
    assert Figure("t", 1.0, "s", "p", 4.0, higher_is_better=False).ratio == pytest.approx(4.0)
    assert Figure("t", 4.0, "s", "p", 1.0, higher_is_better=False).ratio == pytest.approx(0.25)
    assert Figure("x", 1.0, "u").ratio is None
    assert Figure("x", 1.0, "u", "p", 0.0).ratio == float("inf")
    assert Figure("peer only", None, "u", "p", 3.0).ratio is None


def test_write_results_json_and_markdown(tmp_path: Path) -> None:
    figs = [
        Figure("encode", 50_000.0, "records/s", "clkhash", 20_000.0, note="n=100000"),
        Figure("solve", 0.5, "s", "anonlink", 1.0, higher_is_better=False),
        Figure("alone", 3.0, "GiB"),
        Figure("peer only", None, "pairs/s", "anonlink", 7.4e7),
    ]
    jp, mp = write_results("bench_x", figs, extra={"k": 1}, results_dir=tmp_path, machine=MACHINE)
    doc = json.loads(jp.read_text())
    assert doc["name"] == "bench_x"
    assert doc["machine"] == MACHINE
    assert doc["extra"] == {"k": 1}
    assert [f["metric"] for f in doc["figures"]] == ["encode", "solve", "alone", "peer only"]
    assert doc["figures"][0]["ratio"] == pytest.approx(2.5)
    assert doc["figures"][1]["ratio"] == pytest.approx(2.0)
    assert doc["figures"][2]["ratio"] is None
    md = mp.read_text()
    assert "Test CPU" in md and "numba 0.6 (JIT)" in md
    assert "| encode | 50,000 | records/s | clkhash | 20,000 | 2.50× | n=100000 |" in md
    assert "| alone | 3 | GiB | — | — | — |" in md
    assert "| peer only | — | pairs/s | anonlink | 7.4e+07 | — |" in md
    # No temporary files left behind by the atomic write.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench_x.json", "bench_x.md"]


def test_write_results_replaces_json_and_appends_markdown(tmp_path: Path) -> None:
    write_results("r", [Figure("a", 1.0, "u")], results_dir=tmp_path, machine=MACHINE)
    write_results("r", [Figure("b", 2.0, "u")], results_dir=tmp_path, machine=MACHINE)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [f["metric"] for f in doc["figures"]] == ["b"]
    md = (tmp_path / "r.md").read_text()
    assert md.count("## r — ") == 2
    assert md.index("| a |") < md.index("| b |")


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x y"])
def test_write_results_rejects_path_like_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="plain file stem"):
        write_results(bad, [], results_dir=tmp_path, machine=MACHINE)


def test_markdown_escapes_pipes_in_notes() -> None:
    md = markdown_section("n", [Figure("m", 1.0, "u", note="a|b")], MACHINE, "d")
    assert "a/b" in md and "a|b" not in md


# --- Machine, timer, child processes -----------------------------------------------------------


def test_machine_info_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    info = machine_info()
    for key in ("cpu_model", "usable_cpus", "ram_bytes", "python", "numpy", "numba", "pyarrow"):
        assert key in info
    assert info["numba_mode"] == "NUMBA_DISABLE_JIT"
    assert info["numpy"] == np.__version__
    json.dumps(info)  # serialisable
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "0")
    assert numba_mode() == "JIT"


def test_timer_measures_elapsed() -> None:
    with timer() as t:
        sum(range(10_000))
    assert 0.0 <= t.seconds < 5.0


def test_run_measured_reports_child_peak_rss_and_exit_code() -> None:
    code = "import sys; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); sys.exit(3)"
    run = run_measured([sys.executable, "-c", code], timeout_s=60)
    assert run.returncode == 3
    assert not run.timed_out
    assert run.peak_rss_bytes >= 200 * 2**20
    # a large parent must not leak into the child's peak (ru_maxrss survives fork + exec)
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    small = run_measured([sys.executable, "-c", "print('hi')"])
    del ballast
    assert small.stdout.strip() == "hi"
    assert small.peak_rss_bytes < 150 * 2**20 < run.peak_rss_bytes


def test_run_measured_timeout_kills_child() -> None:
    run = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5)
    assert run.timed_out
    assert run.returncode != 0
    assert run.wall_s < 20


# --- Synthetic data ----------------------------------------------------------------------------


def test_person_columns_deterministic_and_shaped() -> None:
    a = person_columns(300, seed=7)
    b = person_columns(300, seed=7)
    c = person_columns(300, seed=8)
    assert list(a) == ["record_id", *PERSON_FIELDS]
    assert len(PERSON_FIELDS) == 10
    for k in a:
        assert a[k].shape == (300,)
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["surname"], c["surname"])
    assert len(set(a["record_id"].tolist())) == 300
    assert person_columns(0, seed=1)["given_name"].shape == (0,)


def test_person_nhs_numbers_have_valid_check_digit() -> None:
    nhs = person_columns(500, seed=1)["nhs_number"]
    d = np.array([[int(ch) for ch in s] for s in nhs.tolist()])
    assert d.shape == (500, 10)
    check = 11 - (d[:, :9] @ np.arange(10, 1, -1)) % 11
    check[check == 11] = 0
    np.testing.assert_array_equal(check, d[:, 9])


def test_write_person_csv_round_trips(tmp_path: Path) -> None:
    import csv

    p = write_person_csv(tmp_path / "p.csv", 50, seed=2)
    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["record_id", *PERSON_FIELDS]
    assert len(rows) == 51
    cols = person_columns(50, seed=2)
    assert [r[2] for r in rows[1:]] == cols["surname"].tolist()


def test_random_filters_density_and_layout() -> None:
    f = random_filters(400, 1024, 0.3, seed=1)
    assert f.shape == (400, 128) and f.dtype == np.uint8
    frac = np.unpackbits(f).mean()
    assert 0.28 < frac < 0.32
    assert not random_filters(3, 64, 0.0, seed=1).any()
    assert (random_filters(3, 64, 1.0, seed=1) == 255).all()
    g = flip_bits(f, 0.0, seed=2)
    np.testing.assert_array_equal(f, g)
    with pytest.raises(ValueError):
        random_filters(3, 12, 0.5, seed=1)


def test_dice_reference_known_values() -> None:
    a = np.packbits(np.array([[1, 1, 0, 0, 0, 0, 0, 0], [0] * 8], bool), axis=1)
    b = np.packbits(np.array([[1, 0, 1, 0, 0, 0, 0, 0], [0] * 8], bool), axis=1)
    d = dice_reference(a, b)
    assert d[0, 0] == pytest.approx(0.5)
    assert d[1, 1] == 0.0  # both empty: defined as 0


# --- clkhash schema generator ------------------------------------------------------------------


def test_clkhash_schema_default_shape() -> None:
    s = clkhash_schema_v3()
    assert s["version"] == 3
    assert s["clkConfig"]["l"] == 1024
    assert s["clkConfig"]["kdf"]["type"] == "HKDF"
    feats = s["features"]
    assert feats[0] == {"identifier": "record_id", "ignored": True}
    assert [f["identifier"] for f in feats[1:]] == list(PERSON_FIELDS)
    for f in feats[1:]:
        h = f["hashing"]
        assert h["comparison"] == {"type": "ngram", "n": 2}
        assert h["hash"] == {"type": "blakeHash"}
        assert h["strategy"] == {"bitsPerFeature": 70}
        assert f["format"]["type"] == "string"
    json.dumps(s)


def test_clkhash_schema_options() -> None:
    s = clkhash_schema_v3(
        ["a", "b"],
        n_bits=512,
        bits_per_feature=None,
        bits_per_token=9,
        hash_type="doubleHash",
        id_column=None,
        kdf_salt=b"\x00\x01",
        missing_sentinel="",
    )
    assert [f["identifier"] for f in s["features"]] == ["a", "b"]
    assert s["features"][0]["hashing"]["strategy"] == {"bitsPerToken": 9}
    assert s["features"][0]["hashing"]["missingValue"] == {"sentinel": ""}
    assert s["clkConfig"]["kdf"]["salt"] == "AAE="
    assert s["clkConfig"]["l"] == 512


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bits_per_feature": None},
        {"bits_per_token": 5},
        {"bits_per_feature": 0},
        {"hash_type": "md5"},
        {"ngram": 0},
        {"fields": []},
        {"fields": ["a", "a"]},
        {"fields": ["record_id"]},
    ],
)
def test_clkhash_schema_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        clkhash_schema_v3(**kwargs)


def test_blocklib_psig_schema_shape() -> None:
    s = blocklib_psig_schema()
    assert s["type"] == "p-sig" and s["version"] == 1
    cfg = s["config"]
    assert cfg["blocking-features"] == ["given_name", "surname", "date_of_birth"]
    assert cfg["filter"] == {"type": "ratio", "max": 0.02, "min": 0.0}
    assert [len(x) for x in cfg["signatureSpecs"]] == [2, 2, 1]
    assert cfg["signatureSpecs"][2][0] == {"type": "feature-value", "feature": "date_of_birth"}
    only_exact = blocklib_psig_schema((), ("postcode",))
    assert len(only_exact["config"]["signatureSpecs"]) == 1
    with pytest.raises(ValueError):
        blocklib_psig_schema((), ())
    with pytest.raises(ValueError):
        blocklib_psig_schema(max_ratio=0.0)


# --- peers module without the venv --------------------------------------------------------------


def test_peer_python_missing_prints_hint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert peers.peer_python(tmp_path / "nope") is None
    assert "make peers" in capsys.readouterr().err


def test_peer_runners_raise_clearly_when_venv_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "PEERS_DIR", tmp_path / "absent")
    a = tmp_path / "a.npy"
    np.save(a, np.zeros((1, 8), np.uint8))
    with pytest.raises(peers.PeerMissingError, match="make peers"):
        peers.anonlink_all_pairs(a, a, 0.8, tmp_path / "o.npz")


def test_peer_runners_validate_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret"):
        peers.clkhash_encode(tmp_path / "x.csv", tmp_path / "s.json", b"", tmp_path / "o.npy")
    with pytest.raises(FileNotFoundError):
        peers.clkhash_encode(tmp_path / "x.csv", tmp_path / "s.json", b"k", tmp_path / "o.npy")
    with pytest.raises(ValueError, match="threshold"):
        peers.anonlink_all_pairs(tmp_path / "a", tmp_path / "b", 1.5, tmp_path / "o")


def test_as_uint8_filters_matches_linkage_layout() -> None:
    words = np.array([[1 | (1 << 63), 2]], dtype=np.uint64)  # bits 0, 63, 65
    b = peers.as_uint8_filters(words)
    assert b.shape == (1, 16) and b.dtype == np.uint8
    bits = np.unpackbits(b, axis=1, bitorder="little")[0]
    assert np.flatnonzero(bits).tolist() == [0, 63, 65]
    with pytest.raises(ValueError):
        peers.as_uint8_filters(np.zeros((2, 2), np.int32))


# --- with the peers venv --------------------------------------------------------------------------

needs_peers = pytest.mark.skipif(
    peers.peer_python(quiet=True) is None, reason="peers venv absent (run `make peers`)"
)


@needs_peers
def test_clkhash_encode_small(tmp_path: Path) -> None:
    csv_path = write_person_csv(tmp_path / "p.csv", 200, seed=4)
    schema = write_json(tmp_path / "s.json", clkhash_schema_v3())
    r1 = peers.clkhash_encode(csv_path, schema, b"secret-one", tmp_path / "c1.npy")
    r2 = peers.clkhash_encode(csv_path, schema, b"secret-one", tmp_path / "c2.npy", workers=1)
    r3 = peers.clkhash_encode(csv_path, schema, b"secret-two", tmp_path / "c3.npy")
    assert r1["n"] == 200 and r1["clks"].shape == (200, 128) and r1["clks"].dtype == np.uint8
    assert r1["records_per_s"] > 0 and r1["seconds"] > 0
    assert r1["wall_s"] > r1["seconds"]
    assert r1["peak_rss_bytes"] > 0
    np.testing.assert_array_equal(r1["clks"], r2["clks"])  # deterministic in the secret
    assert not np.array_equal(r1["clks"], r3["clks"])
    fill = np.unpackbits(r1["clks"]).mean()
    assert 0.3 < fill < 0.7  # ~half the bits set with 70 bits per feature
    # The popcount clkhash reports is the popcount of what we wrote (bit order only changes).
    assert r1["mean_popcount"] == pytest.approx(np.unpackbits(r1["clks"], axis=1).sum(1).mean())


@needs_peers
def test_anonlink_all_pairs_matches_numpy_reference(tmp_path: Path) -> None:
    a = random_filters(120, 1024, 0.3, seed=1)
    b = random_filters(90, 1024, 0.3, seed=2)
    b[:40] = flip_bits(a[:40], 0.05, seed=3)
    b[40] = 0  # an all-zero filter
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    r = peers.anonlink_all_pairs(tmp_path / "a.npy", tmp_path / "b.npy", 0.8, tmp_path / "m.npz")
    dice = dice_reference(a, b)
    ia, ib = np.nonzero(dice >= 0.8)
    assert r["candidates"] == ia.size
    assert set(zip(r["a"].tolist(), r["b"].tolist(), strict=True)) == set(
        zip(ia.tolist(), ib.tolist(), strict=True)
    )
    np.testing.assert_allclose(np.sort(r["similarity"]), np.sort(dice[ia, ib]))
    assert sorted(zip(r["match_a"].tolist(), r["match_b"].tolist(), strict=True)) == [
        (i, i) for i in range(40)
    ]
    assert r["pairs_per_s"] > 0 and r["n_a"] == 120 and r["n_b"] == 90


@needs_peers
def test_blocklib_block_identical_parties_cover_every_true_pair(tmp_path: Path) -> None:
    a = write_person_csv(tmp_path / "a.csv", 300, seed=6)
    schema = write_json(tmp_path / "s.json", blocklib_psig_schema(max_ratio=0.5))
    r = peers.blocklib_block(a, a, schema, tmp_path / "o.npz")
    assert r["n_a"] == r["n_b"] == 300
    assert r["seconds"] > 0 and r["blocks"] > 0
    sizes_a = np.bincount(r["a_block"], minlength=r["blocks"])
    sizes_b = np.bincount(r["b_block"], minlength=r["blocks"])
    assert r["comparisons"] == int((sizes_a * sizes_b).sum())
    in_a = set(zip(r["a_block"].tolist(), r["a_row"].tolist(), strict=True))
    covered = {
        row
        for blk, row in zip(r["b_block"].tolist(), r["b_row"].tolist(), strict=True)
        if (blk, row) in in_a
    }
    assert covered == set(range(300))  # same records on both sides share at least one block
