"""Splink 4 (DuckDB) on the plaintext extracts of a ``linkage synth`` output: a peer run.

Runs inside ``.peers-splink/`` (``make peers-splink``), never in the project venv.

Usage: ``splink_link.py SYNTH_DIR RESULT_JSON --pairs OUT.parquet [--threads 2] [--seed 1]``

Reads ``SYNTH_DIR/manifest.json`` and every party's CSV (each party's own column names, date
format and sex coding, as the manifest gives them; truth.csv is never opened), links all
parties together (``link_only``: cross-party pairs only) and writes every scored pair with
match weight >= ``--min-weight`` (record ids, party names, match weight, match probability)
to ``--pairs``; RESULT_JSON gets the versions, the model (``MODEL``, the trained m/u
per level) and the timings. The runner scores the pairs against truth.csv.

The model (the same for every data shape; nothing is tuned on truth):

- Standardisation (what a Splink user does first; comparable with linkage's normalisers):
  names NFKD-folded (accents dropped), upper case, leading titles (MR, MRS, MS, MISS, MX, DR,
  ...) dropped, everything but letters and digits removed; address the same without title
  removal, punctuation to spaces, whitespace collapsed; date of birth parsed with the
  party's format to ISO (invalid: null); sex M/F (others null); postcode upper case, spaces
  removed, one space before the inward code; NHS number digits only, 10 digits else null.
- Comparisons: given name and surname ``NameComparison`` (exact, Jaro-Winkler >= 0.92, 0.88,
  0.7, else) with term-frequency adjustments on the exact level; date of birth
  ``DateOfBirthComparison`` (exact, Damerau-Levenshtein <= 1, <= 1 month, <= 1 year, else);
  location: address and postcode as ONE custom comparison (both exact; one exact; address
  Jaro-Winkler >= 0.88 or same postcode sector; same postcode district; else), since they
  are correlated (a household shares both, a move changes both: two comparisons would count
  one fact twice, Splink's conditional-independence assumption); sex exact; NHS number exact.
- Blocking rules for prediction (OR): date of birth; given name + surname; surname + year of
  birth; given name + year and month of birth; postcode; address; NHS number.
- Prior (probability two random records match): ``estimate_probability_two_random_records_match``
  with the deterministic rules given name + surname + date of birth, or NHS number, at an
  assumed recall of 0.8 (a guess, not measured).
- u: ``estimate_u_using_random_sampling`` (max 10M pairs, seeded).
- m: expectation maximisation, two sessions: blocked on date of birth (trains all but the
  date), then on NHS number (trains all but the NHS number). Not on given name + surname for
  the date: namesakes in one household (a son named after his father) share the location
  too, so EM takes them for matches and a differing date of birth loses its weight.
- A first, standard model (EM on date of birth and on full name; postcode and address as two
  comparisons) was run once on seed 1 (20k medium, F1 0.954); the changes above were chosen
  on synth seed 0 (20k people, medium and high corruption); figures are reported on seed 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

T_START = time.perf_counter()

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import splink  # noqa: E402
import splink.comparison_level_library as cll  # noqa: E402
import splink.comparison_library as cl  # noqa: E402
from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402

IMPORT_S = time.perf_counter() - T_START

TITLES = ("MR", "MRS", "MS", "MISS", "MX", "DR", "PROF", "REV", "SIR", "DAME", "LORD", "LADY")
_TITLE_RE = re.compile(r"^(?:(?:" + "|".join(TITLES) + r")\.?\s+)+")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_FOLD = str.maketrans({"ß": "SS", "Ł": "L", "ł": "L", "Ø": "O", "ø": "O", "Æ": "AE", "æ": "AE"})

PREDICTION_RULES = [
    ("dob",),
    ("given_name", "surname"),
    ("surname", "yob"),
    ("given_name", "yob_month"),
    ("postcode",),
    ("address",),
    ("nhs",),
]
MODEL = {
    "standardisation": "names: NFKD, accents dropped, upper, titles dropped, non-alphanumerics "
    "removed; address: same, no title removal, punctuation to space; dob: party format -> ISO; "
    "sex: M/F else null; postcode: upper, one space before inward code; NHS: 10 digits",
    "comparisons": {
        "given_name": "NameComparison (exact, JW 0.92/0.88/0.7), term frequency adjustments",
        "surname": "NameComparison (exact, JW 0.92/0.88/0.7), term frequency adjustments",
        "dob": "DateOfBirthComparison (exact, DL<=1, <= 1 month, <= 1 year, else)",
        "location": "custom, address and postcode as one comparison (both exact, one exact, "
        "address JW >= 0.88 or postcode sector, postcode district, else)",
        "sex": "ExactMatch",
        "nhs": "ExactMatch",
    },
    "blocking_rules_for_prediction": [" + ".join(r) for r in PREDICTION_RULES],
    "prior": "estimate_probability_two_random_records_match([given_name+surname+dob, nhs], "
    "recall=0.8 assumed)",
    "u": "estimate_u_using_random_sampling(max_pairs=1e7, seed)",
    "m": "EM blocked on dob (all but dob), then EM blocked on nhs (all but nhs)",
    "truth_used_in_training": False,
}


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.translate(_FOLD))
    return "".join(c for c in s if not unicodedata.combining(c)).upper().strip()


def clean_name(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    s = _NOT_ALNUM.sub("", _TITLE_RE.sub("", _fold(v)))
    return s or None


def clean_text(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    s = " ".join(_NOT_ALNUM.sub(" ", _fold(v).replace("'", "")).split())
    return s or None


def clean_postcode(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    s = re.sub(r"\s+", "", v.upper())
    return s[:-3] + " " + s[-3:] if len(s) >= 5 else None


def clean_nhs(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    s = re.sub(r"\D", "", v)
    return s if len(s) == 10 else None


def load_party(sdir: Path, party: dict) -> pd.DataFrame:
    raw = pd.read_csv(sdir / party["file"], dtype=str, keep_default_na=False, na_values=[""])
    cols = party["columns"]

    def col(field: str) -> pd.Series:
        return raw[cols[field]] if field in cols else pd.Series([None] * len(raw), dtype=object)

    dob = pd.to_datetime(col("dob"), format=party["date_format"], errors="coerce")
    sex_map = {v.upper(): k for k, v in party.get("sex_coding", {}).items()}
    sex = col("sex").map(lambda v: sex_map.get(v.strip().upper()) if isinstance(v, str) else None)
    out = pd.DataFrame(
        {
            "unique_id": raw[party["record_id_column"]].astype(str),
            "source_dataset": party["name"],
            "given_name": col("given").map(clean_name),
            "surname": col("family").map(clean_name),
            "dob": dob.dt.strftime("%Y-%m-%d"),
            "sex": sex.where(sex.isin(["M", "F"])),
            "postcode": col("postcode").map(clean_postcode),
            "address": col("address").map(clean_text),
            "nhs": col("nhs").map(clean_nhs),
        }
    )
    out["postcode_sector"] = out["postcode"].str.slice(0, -2)
    out["postcode_district"] = out["postcode"].str.split(" ").str[0]
    out["yob"] = out["dob"].str.slice(0, 4)
    out["yob_month"] = out["dob"].str.slice(0, 7)
    return out.astype(object).where(out.notna(), None)


def location_comparison() -> cl.CustomComparison:
    """Address and postcode as one comparison: they are strongly correlated (a household, or
    a move, changes both), so two independent comparisons would count one fact twice."""
    return cl.CustomComparison(
        output_column_name="location",
        comparison_levels=[
            cll.And(cll.NullLevel("address"), cll.NullLevel("postcode")),
            cll.And(cll.ExactMatchLevel("address"), cll.ExactMatchLevel("postcode")).configure(
                label_for_charts="address and postcode exact"
            ),
            cll.Or(cll.ExactMatchLevel("address"), cll.ExactMatchLevel("postcode")).configure(
                label_for_charts="address or postcode exact"
            ),
            cll.Or(
                cll.JaroWinklerLevel("address", 0.88), cll.ExactMatchLevel("postcode_sector")
            ).configure(label_for_charts="address JW >= 0.88 or postcode sector exact"),
            cll.ExactMatchLevel("postcode_district").configure(
                label_for_charts="postcode district exact"
            ),
            cll.ElseLevel(),
        ],
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("synth_dir", type=Path)
    ap.add_argument("result_json", type=Path)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-weight", type=float, default=-6.0)
    args = ap.parse_args()
    t_script = time.perf_counter()
    manifest = json.loads((args.synth_dir / "manifest.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    dfs = [load_party(args.synth_dir, p) for p in manifest["parties"]]
    prep_s = time.perf_counter() - t0

    con = duckdb.connect()
    con.execute(f"SET threads = {int(args.threads)}")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "dob",
                input_is_string=True,
                datetime_format="%Y-%m-%d",
                datetime_metrics=["month", "year"],
                datetime_thresholds=[1, 1],
            ),
            location_comparison(),
            cl.ExactMatch("sex"),
            cl.ExactMatch("nhs"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in PREDICTION_RULES],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(
        dfs, settings, db_api, input_table_aliases=[p["name"] for p in manifest["parties"]]
    )
    times = {}
    t0 = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "dob"), block_on("nhs")], recall=0.8
    )
    times["prior_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=args.seed)
    times["u_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("nhs"))
    times["em_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = linker.inference.predict(threshold_match_weight=args.min_weight)
    args.pairs.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT source_dataset_l AS party_a, unique_id_l AS record_id_a, "
        f"source_dataset_r AS party_b, unique_id_r AS record_id_b, match_weight, "
        f"match_probability FROM {pred.physical_name}) TO '{args.pairs}' (FORMAT parquet)"
    )
    n_pairs = con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchone()[0]
    times["predict_s"] = time.perf_counter() - t0
    model = linker.misc.save_model_to_json()
    prior = model.get("probability_two_random_records_match")
    result = {
        "splink_version": splink.__version__,
        "duckdb_version": duckdb.__version__,
        "pandas_version": pd.__version__,
        "threads": args.threads,
        "seed": args.seed,
        "min_weight": args.min_weight,
        "records": [len(d) for d in dfs],
        "pairs": int(n_pairs),
        "model": MODEL,
        "probability_two_random_records_match": prior,
        "trained": [
            {
                "comparison": c["output_column_name"],
                "levels": [
                    {
                        "label": lv.get("label_for_charts"),
                        "m": lv.get("m_probability"),
                        "u": lv.get("u_probability"),
                    }
                    for lv in c["comparison_levels"]
                    if not lv.get("is_null_level")
                ],
            }
            for c in model["comparisons"]
        ],
        "prep_s": prep_s,
        **times,
        "train_s": times["prior_s"] + times["u_s"] + times["em_s"],
        "import_s": IMPORT_S,
        "script_s": time.perf_counter() - t_script + IMPORT_S,
    }
    args.result_json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
