"""Encoding benchmark: linkage vs clkhash 0.18.3 on the same 100k-record, 10-field table.

Data: :func:`benchmarks.data.person_columns` (given_name, surname, date_of_birth, sex,
postcode, address, nhs_number, town, phone, email), written once as CSV.

- clkhash: ``generate_clk_from_csv`` with a v3 schema over the 10 fields (bigrams, blakeHash,
  70 bits per feature, 1024 bits), 2 worker processes; timed inside the peer process around
  the library call (start-up and imports excluded, which favours clkhash).
- linkage, CLI: ``linkage encode`` as a subprocess with the ``uk-person`` template plus town,
  phone and email (1024 bits, keyed random hashing, block keys); the whole process is timed, so
  interpreter start-up, imports and numba's cache load count against linkage. A tiny warm-up
  run first fills numba's on-disk cache, as any second use of an installation would.
- linkage, in process: ``linkage.partner.encode_file`` called four times in one child process;
  the best of the last three is the steady-state rate (the first pays numba's cache loads).

Both sides read the same CSV and write their output file. Figures: records/s (ratio target
>= 20x), CPU seconds, peak RSS; and, unless ``--quick``, 1.6M rows through the CLI with peak RSS
(target <= 2 GiB).

Run: ``.venv/bin/python benchmarks/bench_encode.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.data import write_person_csv
from benchmarks.harness.machine import machine_info
from benchmarks.harness.measure import children_cpu_seconds, run_measured_cpu
from benchmarks.harness.results import Figure, report, write_json
from benchmarks.linkage_cli import linkage_exe, linkage_person_schema
from benchmarks.peer_configs import clkhash_schema_v3
from benchmarks.peers import PeerFailedError, PeerMissingError, clkhash_encode, peer_python

GiB = 2**30
SECRET = b"benchmark-secret-not-real-0123456789"  # >= 16 bytes; benchmark only


STEADY_CALLS = 3


def _inproc(csv_path: str, schema_path: str, secret_path: str, out_path: str) -> None:
    """Child-process body: encode once cold, then ``STEADY_CALLS`` times; print JSON timings
    of each call. Each call writes a new file (clkhash's timed call writes none, so neither
    side pays for replacing an earlier output)."""
    from linkage.partner.pipeline import encode_file
    from linkage.schema import Schema
    from linkage.secret import Secret

    schema = Schema.load(schema_path)
    secret = Secret.from_file(secret_path)
    runs = []
    for i in range(1 + STEADY_CALLS):
        out = f"{out_path}.{i}.parquet"
        w0, c0 = time.perf_counter(), time.process_time()
        summ = encode_file(csv_path, out, schema, secret, party="bench")
        runs.append(
            {
                "seconds": time.perf_counter() - w0,
                "cpu_s": time.process_time() - c0,
                "rows": summ.rows_encoded,
            }
        )
        os.unlink(out)  # untimed
    print(json.dumps(runs))


def _write_secret(path: Path) -> Path:
    from benchmarks.linkage_cli import write_secret_file

    return write_secret_file(path, SECRET)


def _linkage_cli(
    csv_path: Path, schema_path: Path, secret_path: Path, out: Path, timeout_s: float
) -> dict[str, Any]:
    cmd: list[str | os.PathLike[str]] = [
        linkage_exe(),
        "encode",
        csv_path,
        "-s",
        schema_path,
        "--secret-file",
        secret_path,
        "--party",
        "bench",
        "--id-column",
        "record_id",
        "-o",
        out,
        "--force",
        "--quiet",
    ]
    run, cpu = run_measured_cpu(cmd, timeout_s=timeout_s)
    if run.returncode != 0:
        raise RuntimeError(f"linkage encode failed ({run.returncode}): {run.stderr.strip()}")
    return {"seconds": run.wall_s, "cpu_s": cpu, "peak_rss_bytes": run.peak_rss_bytes}


def measure(
    work: Path, *, n: int, repeat: int, big_n: int, peer: bool
) -> tuple[list[Figure], dict[str, Any]]:
    csv_path = write_person_csv(work / "people.csv", n, seed=0)
    lschema = write_json(work / "linkage_schema.json", linkage_person_schema())
    cschema = write_json(work / "clkhash_schema.json", clkhash_schema_v3())
    secret_path = _write_secret(work / "secret.key")
    extra: dict[str, Any] = {"n": n, "repeat": repeat}

    # warm-up: fill numba's on-disk cache (not timed)
    small = write_person_csv(work / "small.csv", 2000, seed=1)
    _linkage_cli(small, lschema, secret_path, work / "small.parquet", 600)

    cli_runs = [
        _linkage_cli(csv_path, lschema, secret_path, work / "l.parquet", 1800)
        for _ in range(repeat)
    ]
    cli = min(cli_runs, key=lambda r: r["seconds"])
    extra["linkage_cli_runs"] = cli_runs

    inproc_cmd: list[str | os.PathLike[str]] = [
        sys.executable,
        __file__,
        "--_inproc",
        csv_path,
        lschema,
        secret_path,
    ]
    ip_run, _ = run_measured_cpu([*inproc_cmd, work / "l2.parquet"], timeout_s=1800)
    if ip_run.returncode != 0:
        raise RuntimeError(f"in-process encode failed: {ip_run.stderr.strip()[-2000:]}")
    ip = json.loads(ip_run.stdout.strip().splitlines()[-1])
    steady = min(ip[1:], key=lambda r: r["seconds"])
    steady_median = sorted(r["seconds"] for r in ip[1:])[len(ip[1:]) // 2]
    extra["linkage_inproc_runs"] = ip
    extra["linkage_inproc_peak_rss_bytes"] = ip_run.peak_rss_bytes

    ck: dict[str, Any] | None = None
    peer_name = "clkhash 0.18.3"
    if peer and peer_python() is not None:
        ck_runs = []
        try:
            for _ in range(repeat):
                c0 = children_cpu_seconds()
                r = clkhash_encode(csv_path, cschema, SECRET, work / "c.npy", workers=2)
                r["cpu_s"] = children_cpu_seconds() - c0
                r.pop("clks", None)
                ck_runs.append(r)
            ck = max(ck_runs, key=lambda r: r["records_per_s"])
            extra["clkhash_runs"] = ck_runs
        except (PeerMissingError, PeerFailedError) as exc:
            print(f"peer failed: {exc}", file=sys.stderr)
            extra["peer_error"] = str(exc)
    else:
        extra["peer_error"] = "peer missing (make peers)"

    ck_rate = ck["records_per_s"] if ck else None
    ck_note = (
        f"clkhash: workers={ck['workers']}, {ck['seconds']:.2f} s in-process (start-up "
        f"{ck['interpreter_startup_s']:.2f} s excluded)"
        if ck
        else "peer missing"
    )
    figs = [
        Figure(
            f"encode {n:,} x 10 fields, CLI incl. start-up",
            n / cli["seconds"],
            "records/s",
            peer=peer_name if ck else None,
            peer_value=ck_rate,
            note=f"linkage CLI {cli['seconds']:.2f} s wall, {cli['cpu_s']:.2f} CPU-s, "
            f"2 threads; {ck_note}; best of {repeat}",
        ),
        Figure(
            f"encode {n:,} x 10 fields, in-process steady state",
            n / steady["seconds"],
            "records/s",
            peer=peer_name if ck else None,
            peer_value=ck_rate,
            note=f"best of {STEADY_CALLS} encode_file calls after a first (cold) one: "
            f"{steady['seconds']:.3f} s, {steady['cpu_s']:.2f} CPU-s (median "
            f"{steady_median:.3f} s, cold {ip[0]['seconds']:.2f} s), 2 threads",
        ),
        Figure(
            f"encode {n:,}: CPU time",
            cli["cpu_s"],
            "CPU-s",
            peer=peer_name if ck else None,
            peer_value=ck["cpu_s"] if ck else None,
            higher_is_better=False,
            note="whole process tree (clkhash incl. its start-up and workers)",
        ),
        Figure(
            f"encode {n:,}: peak RSS",
            cli["peak_rss_bytes"] / GiB,
            "GiB",
            peer=peer_name if ck else None,
            peer_value=ck["peak_rss_bytes"] / GiB if ck else None,
            higher_is_better=False,
            note="max RSS of one process (clkhash: main or a worker)",
        ),
    ]

    if big_n > 0:
        big_csv = write_person_csv(work / "big.csv", big_n, seed=2)
        (work / "people.csv").unlink(missing_ok=True)
        big = _linkage_cli(big_csv, lschema, secret_path, work / "big.parquet", 3600)
        extra["big"] = big
        figs += [
            Figure(
                f"encode {big_n:,} rows, CLI",
                big_n / big["seconds"],
                "records/s",
                note=f"{big['seconds']:.1f} s wall, {big['cpu_s']:.1f} CPU-s",
            ),
            Figure(
                f"encode {big_n:,} rows: peak RSS (target <= 2 GiB)",
                big["peak_rss_bytes"] / GiB,
                "GiB",
                higher_is_better=False,
                note="PASS" if big["peak_rss_bytes"] <= 2 * GiB else "FAIL",
            ),
        ]
    return figs, extra


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_inproc"]:
        _inproc(*argv[1:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20k records, 1 run, no 1.6M run")
    ap.add_argument("--n", type=int, help="records (default 100,000; 20,000 with --quick)")
    ap.add_argument("--repeat", type=int, help="runs per side, best kept (default 3; 1 quick)")
    ap.add_argument("--big", type=int, help="rows for the memory run (default 1.6M; 0 skips)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--name", default="encode", help="results file stem")
    args = ap.parse_args(argv)
    n = args.n or (20_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    big_n = args.big if args.big is not None else (0 if args.quick else 1_600_000)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        figs, extra = measure(Path(tmp), n=n, repeat=repeat, big_n=big_n, peer=not args.no_peer)
    extra["quick"] = args.quick
    return report(args.name, "encode", figs, extra, machine)


if __name__ == "__main__":
    sys.exit(main())
