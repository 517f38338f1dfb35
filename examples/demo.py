"""The bundled example, end to end, through the `linkage` command line (run by `make demo`).

Two councils hold extracts about overlapping people (synthetic: `linkage synth --people 500
--parties 2 --corruption medium --seed 7`), with their own column names and date formats,
typos, nicknames, moves and missing values. Each council encodes its own extract with the
shared secret; the linkage unit matches the encodings; the result is scored against the
ground truth that only a synthetic example has.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent / "linkage"


def run(*args: str) -> None:
    shown = " ".join(shlex.quote(a) for a in ["linkage", *args])
    print(f"\n$ {shown}", flush=True)
    proc = subprocess.run([str(BIN), *args], check=False)
    if proc.returncode != 0:
        sys.exit(f"demo step failed with exit status {proc.returncode}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/demo")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    print("== Partners agree a secret and a schema (shared out of band, never with the TLU)")
    run("keygen", "-o", str(out / "secret.key"))
    run("schema", "init", "--template", "uk-person", "-o", str(out / "schema.json"))
    run("schema", "check", str(out / "schema.json"))

    print("\n== Each partner encodes locally (their own column names and date formats)")
    common = ["-s", str(out / "schema.json"), "--secret-file", str(out / "secret.key")]
    run(
        "encode", str(HERE / "council_a.csv"), *common,
        "--party", "council_a", "--id-column", "record_id",
        "--column", "given_name=forename", "--column", "date_of_birth=dob",
        "--column", "sex=gender", "--column", "address=address_line_1",
        "--column", "postcode=post_code", "--column", "nhs_number=nhs_no",
        "--rejects", str(out / "council_a.rejects.csv"),
        "-o", str(out / "council_a.parquet"),
    )  # fmt: skip
    run(
        "encode", str(HERE / "council_b.csv"), *common,
        "--party", "council_b", "--id-column", "id",
        "--column", "given_name=first_name", "--column", "surname=last_name",
        "--column", "date_of_birth=birth_date", "--column", "address=street_address",
        "--rejects", str(out / "council_b.rejects.csv"),
        "-o", str(out / "council_b.parquet"),
    )  # fmt: skip

    print("\n== The trusted linkage unit matches the encodings (it never sees the secret)")
    run(
        "match", str(out / "council_a.parquet"), str(out / "council_b.parquet"),
        "--dedupe", "--seed", "1",
        "-o", str(out / "links.parquet"), "--pairs", str(out / "pairs.parquet"),
    )  # fmt: skip

    if shutil.which(str(BIN)) and _has_evaluate():
        print("\n== Quality against the synthetic ground truth")
        run("evaluate", str(out / "links.parquet"), "--truth", str(HERE / "truth.csv"))

    print(f"\nDone. Outputs in {out}/ (links.parquet maps each record to a pseudonymous entity).")


def _has_evaluate() -> bool:
    proc = subprocess.run([str(BIN), "evaluate", "--help"], capture_output=True, check=False)
    return proc.returncode == 0


if __name__ == "__main__":
    main()
