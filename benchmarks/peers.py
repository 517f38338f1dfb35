"""Run peer tools (clkhash, anonlink, blocklib) in their own virtualenv, on files we pass.
Splink (plaintext Fellegi-Sunter) has a venv of its own, ``.peers-splink/`` (``make
peers-splink``): :func:`splink_link`.

The peers pin numpy<2 and old libraries, so they live in ``.peers/`` (``make peers``) and
run as subprocesses of that venv's python on the scripts in ``benchmarks/peer_scripts/``.
Timings are measured INSIDE the peer process around the library call only; interpreter
start-up and imports are reported separately (``interpreter_startup_s``, ``import_s``),
and ``wall_s`` / ``peak_rss_bytes`` are measured from outside.

Run ``python benchmarks/peers.py`` to measure the peer baselines on synthetic data and
write ``benchmarks/results/peers_baseline.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import flip_bits, random_filters, write_person_csv
from benchmarks.harness.machine import REPO_ROOT, machine_info
from benchmarks.harness.measure import run_measured
from benchmarks.harness.results import Figure, write_json, write_results
from benchmarks.peer_configs import blocklib_psig_schema, clkhash_schema_v3

PEERS_DIR = REPO_ROOT / ".peers"
SPLINK_DIR = REPO_ROOT / ".peers-splink"  # Splink 4 + DuckDB (``make peers-splink``)
SCRIPTS_DIR = Path(__file__).resolve().parent / "peer_scripts"
PEER_MISSING_MSG = (
    "peer missing: run `make peers` (creates .peers/ with clkhash, anonlink, blocklib)"
)


class PeerMissingError(RuntimeError):
    """The peers virtualenv is absent or unusable."""


class PeerFailedError(RuntimeError):
    """A peer script exited non-zero or produced no result."""


def peer_python(
    peers_dir: str | os.PathLike[str] | None = None, *, quiet: bool = False
) -> Path | None:
    """The peers venv's python, or ``None`` (printing a "run `make peers`" hint to stderr)."""
    base = Path(peers_dir) if peers_dir is not None else PEERS_DIR
    return _venv_python(base, PEER_MISSING_MSG, quiet)


def _venv_python(base: Path, missing: str, quiet: bool) -> Path | None:
    """``base``/bin/python when it is an executable file; else None (printing ``missing``
    and where it looked, unless ``quiet``)."""
    py = base / "bin" / "python"
    if py.is_file() and os.access(py, os.X_OK):
        return py
    if not quiet:
        print(f"{missing} [looked for {py}]", file=sys.stderr)
    return None


def _require_python() -> Path:
    py = peer_python(quiet=True)
    if py is None:
        raise PeerMissingError(PEER_MISSING_MSG)
    return py


def _peer_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run_script(
    script: str,
    positional: list[str],
    flags: list[str],
    timeout_s: float | None,
    python: Path | None = None,
) -> dict[str, Any]:
    """Run ``peer_scripts/<script> *positional RESULT_JSON *flags`` with the peers python
    (or ``python``); RESULT_JSON is supplied here and parsed."""
    py = python if python is not None else _require_python()
    with tempfile.TemporaryDirectory(prefix="peer-res-") as tmp:
        result_path = Path(tmp) / "result.json"
        run = run_measured(
            [py, SCRIPTS_DIR / script, *positional, result_path, *flags],
            env=_peer_env(),
            cwd=REPO_ROOT,
            timeout_s=timeout_s,
        )
        if run.timed_out:
            raise PeerFailedError(f"{script} timed out after {timeout_s} s")
        if run.returncode != 0 or not result_path.exists():
            tail = run.stderr.strip().splitlines()[-15:]
            raise PeerFailedError(f"{script} failed (exit {run.returncode}):\n" + "\n".join(tail))
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result["wall_s"] = run.wall_s
    result["peak_rss_bytes"] = run.peak_rss_bytes
    result["interpreter_startup_s"] = max(0.0, run.wall_s - float(result.get("script_s", 0.0)))
    return result


def clkhash_encode(
    csv_path: str | os.PathLike[str],
    schema_json_path: str | os.PathLike[str],
    secret: bytes,
    out_path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    timeout_s: float | None = 3600,
) -> dict[str, Any]:
    """Encode ``csv_path`` with clkhash 0.18 ``generate_clk_from_csv`` and a v3 schema.

    The secret travels through a 0600 file in a private temporary directory (never argv or
    the environment). ``workers=None`` lets clkhash use all CPUs (it drops to one process
    below 10,000 records); the count used is returned as ``workers``. Writes ``out_path``
    (.npy, uint8 ``(n, l/8)``, LSB-first bit order as in linkage's Parquet ``clk`` column).

    Returns: ``n, seconds, records_per_s, workers, n_bits, mean_popcount, import_s,
    interpreter_startup_s, wall_s, peak_rss_bytes, clks`` (the loaded array) and more.
    """
    if not isinstance(secret, bytes | bytearray) or len(secret) == 0:
        raise ValueError("secret must be non-empty bytes")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    for p in (csv_path, schema_json_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"no such file: {p}")
    _require_python()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peer-secret-") as tmp:  # mode 0700
        secret_file = Path(tmp) / "secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(secret))
        args = [os.fspath(csv_path), os.fspath(schema_json_path), os.fspath(secret_file)]
        args.append(os.fspath(out))
        result = _run_script("clkhash_encode.py", args, [f"--workers={workers or 0}"], timeout_s)
    result["out_path"] = str(out)
    result["clks"] = np.load(out)
    return result


def splink_python(quiet: bool = True) -> Path | None:
    """The Splink venv's python (``make peers-splink``), or ``None``."""
    return _venv_python(SPLINK_DIR, "Splink peer missing: run `make peers-splink`", quiet)


def splink_link(
    synth_dir: str | os.PathLike[str],
    pairs_out: str | os.PathLike[str],
    *,
    threads: int = 2,
    seed: int = 1,
    min_weight: float = -6.0,
    timeout_s: float | None = 3600,
) -> dict[str, Any]:
    """Splink 4 (DuckDB) on the plaintext extracts of a ``linkage synth`` output
    (``peer_scripts/splink_link.py``, whose docstring is the model): every cross-party pair
    scored >= ``min_weight`` goes to ``pairs_out`` (Parquet: party_a, record_id_a, party_b,
    record_id_b, match_weight, match_probability); returns versions, model and timings."""
    py = splink_python()
    if py is None:
        raise PeerMissingError("Splink peer missing: run `make peers-splink`")
    flags = [
        f"--pairs={os.fspath(pairs_out)}",
        f"--threads={threads}",
        f"--seed={seed}",
        f"--min-weight={min_weight}",
    ]
    return _run_script("splink_link.py", [os.fspath(synth_dir)], flags, timeout_s, python=py)


def as_uint8_filters(filters: np.ndarray) -> np.ndarray:
    """uint8 ``(n, l/8)`` view of filters given as uint8 or linkage's uint64 ``(n, l/64)``."""
    a = np.asarray(filters)
    if a.ndim != 2:
        raise ValueError(f"filters must be 2-d, got shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint64:
        return np.ascontiguousarray(a.astype("<u8", copy=False)).view(np.uint8)
    raise ValueError(f"filters must be uint8 or uint64, got {a.dtype}")


def anonlink_all_pairs(
    filters_a_path: str | os.PathLike[str],
    filters_b_path: str | os.PathLike[str],
    threshold: float,
    out_path: str | os.PathLike[str],
    *,
    k: int | None = None,
    solve: bool = True,
    timeout_s: float | None = 3600,
) -> dict[str, Any]:
    """All-pairs Dice candidates with anonlink 0.15 (``find_candidate_pairs`` with
    ``dice_coefficient_accelerated``), then ``greedy_solve``.

    Inputs: .npy uint8 ``(n, l/8)`` filters (see :func:`as_uint8_filters`); conversion to
    bitarrays is not timed. ``seconds``/``pairs_per_s`` cover candidate generation only
    (``n_a * n_b`` comparisons); ``solve_seconds`` the solver. Writes ``out_path`` (.npz) and
    returns its arrays too: ``similarity``, ``a``, ``b`` (candidates, anonlink's order:
    similarity descending) and ``match_a``, ``match_b`` (one-to-one matches).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    for p in (filters_a_path, filters_b_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"no such file: {p}")
    _require_python()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [os.fspath(filters_a_path), os.fspath(filters_b_path), repr(float(threshold))]
    args.append(os.fspath(out))
    flags = ([f"--k={k}"] if k is not None else []) + ([] if solve else ["--no-solve"])
    result = _run_script("anonlink_match.py", args, flags, timeout_s)
    if not str(out).endswith(".npz"):  # np.savez appends .npz
        out = out.with_name(out.name + ".npz")
    with np.load(out) as z:
        for key in ("similarity", "a", "b", "match_a", "match_b"):
            result[key] = z[key]
    result["out_path"] = str(out)
    return result


def blocklib_block(
    csv_a: str | os.PathLike[str],
    csv_b: str | os.PathLike[str],
    blocking_schema_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    timeout_s: float | None = 3600,
) -> dict[str, Any]:
    """Two-party P-Sig blocking with blocklib 0.1.11 on two CSVs with headers (see
    :func:`benchmarks.peer_configs.blocklib_psig_schema`).

    ``seconds`` covers ``generate_candidate_blocks`` for both parties plus
    ``generate_blocks(K=2)`` (CSV parsing excluded); ``records_per_s`` is
    ``(n_a + n_b) / seconds``; ``comparisons`` is the sum over blocks of ``|A_b| * |B_b|``
    (pairs in several blocks counted once per block). Returns the block membership arrays
    ``a_block, a_row, b_block, b_row`` (rows are 0-based data rows).
    """
    for p in (csv_a, csv_b, blocking_schema_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"no such file: {p}")
    _require_python()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [os.fspath(csv_a), os.fspath(csv_b), os.fspath(blocking_schema_path), os.fspath(out)]
    result = _run_script("blocklib_block.py", args, [], timeout_s)
    if not str(out).endswith(".npz"):
        out = out.with_name(out.name + ".npz")
    with np.load(out) as z:
        for key in ("a_block", "a_row", "b_block", "b_row"):
            result[key] = z[key]
    result["out_path"] = str(out)
    return result


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def measure_baselines(
    work_dir: Path,
    *,
    n_encode: int = 100_000,
    n_match: int = 20_000,
    threshold: float = 0.8,
    density: float = 0.3,
    n_block: int = 20_000,
    repeat: int = 3,
    seed: int = 0,
) -> tuple[list[Figure], dict[str, Any]]:
    """Peer-only figures: clkhash records/s on an ``n_encode`` x 10-field table (1024 bits,
    bigrams, blakeHash, 70 bits per feature), anonlink pairs/s on ``n_match`` x ``n_match``
    1024-bit filters with ``density`` of bits set (10% of B are 5%-noisy copies of A rows).
    blocklib P-Sig records/s on two ``n_block``-record tables (one run; 0 skips it).
    Best of ``repeat`` runs (the machine is shared; every run is kept in ``extra``)."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    work_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_person_csv(work_dir / "people.csv", n_encode, seed)
    schema_path = write_json(work_dir / "schema_v3.json", clkhash_schema_v3())
    secret = b"benchmark-secret-not-real"
    encs = [
        clkhash_encode(csv_path, schema_path, secret, work_dir / "c.npy") for _ in range(repeat)
    ]
    enc = max(encs, key=lambda r: r["records_per_s"])

    a = random_filters(n_match, 1024, density, seed + 1)
    b = random_filters(n_match, 1024, density, seed + 2)
    n_true = n_match // 10
    b[:n_true] = flip_bits(a[:n_true], 0.05, seed + 3)
    np.save(work_dir / "a.npy", a)
    np.save(work_dir / "b.npy", b)
    als = [
        anonlink_all_pairs(work_dir / "a.npy", work_dir / "b.npy", threshold, work_dir / "m.npz")
        for _ in range(repeat)
    ]
    al = max(als, key=lambda r: r["pairs_per_s"])
    correct = int(np.sum((al["match_a"] == al["match_b"]) & (al["match_a"] < n_true)))

    figures = [
        Figure(
            "encode 10 fields x 1024 bits",
            None,
            "records/s",
            peer="clkhash 0.18.3",
            peer_value=enc["records_per_s"],
            note=f"n={enc['n']}, workers={enc['workers']}, {enc['seconds']:.2f} s, "
            f"best of {repeat}",
        ),
        Figure(
            f"all-pairs Dice t={threshold}, 1024 bits, {density:.0%} set",
            None,
            "pairs/s",
            peer="anonlink 0.15.3",
            peer_value=al["pairs_per_s"],
            note=f"{n_match}x{n_match}, {al['seconds']:.2f} s, {al['candidates']} candidates, "
            f"best of {repeat}",
        ),
        Figure(
            "greedy solve",
            None,
            "s",
            peer="anonlink 0.15.3",
            peer_value=al["solve_seconds"],
            higher_is_better=False,
            note=f"{al['matches']} matches, {correct}/{n_true} planted found",
        ),
    ]
    drop = {"clks", "similarity", "a", "b", "match_a", "match_b", "out_path"}
    drop |= {"a_block", "a_row", "b_block", "b_row"}
    bl: dict[str, Any] = {}
    if n_block > 0:
        pa = write_person_csv(work_dir / "block_a.csv", n_block, seed + 4)
        pb = write_person_csv(work_dir / "block_b.csv", n_block, seed + 5)
        bschema = write_json(work_dir / "psig.json", blocklib_psig_schema())
        bl = blocklib_block(pa, pb, bschema, work_dir / "blocks.npz")
        figures.append(
            Figure(
                "P-Sig blocking, 2 parties",
                None,
                "records/s",
                peer="blocklib 0.1.11",
                peer_value=bl["records_per_s"],
                note=f"{n_block}+{n_block} records, {bl['seconds']:.2f} s, {bl['blocks']} blocks",
            )
        )
    extra = {
        "clkhash": {k: v for k, v in enc.items() if k not in drop},
        "clkhash_all_records_per_s": [r["records_per_s"] for r in encs],
        "anonlink": {k: v for k, v in al.items() if k not in drop},
        "anonlink_all_pairs_per_s": [r["pairs_per_s"] for r in als],
        "blocklib": {k: v for k, v in bl.items() if k not in drop},
    }
    return figures, extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-encode", type=int, default=100_000)
    ap.add_argument("--n-match", type=int, default=20_000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--n-block", type=int, default=20_000, help="0 skips blocklib")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="peers_baseline")
    args = ap.parse_args(argv)
    if peer_python() is None:
        return 2
    machine = machine_info()  # load average as the run starts
    with tempfile.TemporaryDirectory(prefix="peers-bench-") as tmp:
        figures, extra = measure_baselines(
            Path(tmp),
            n_encode=args.n_encode,
            n_match=args.n_match,
            threshold=args.threshold,
            n_block=args.n_block,
            repeat=args.repeat,
            seed=args.seed,
        )
    extra["load_avg_1m_after"] = os.getloadavg()[0]
    json_path, md_path = write_results(args.name, figures, extra=extra, machine=machine)
    for f in figures:
        print(f"{f.peer} {f.metric}: {f.peer_value:.4g} {f.unit}  ({f.note})")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
