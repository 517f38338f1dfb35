"""Schema templates: sensible starting points for a project (``linkage schema init``).

The uk-person template's missing-value spellings (:data:`NULL_SPELLINGS`) and its
minimum-evidence rule are explained in docs/schema.md.
"""

from __future__ import annotations

import json
from typing import Any

from linkage.errors import SchemaError

NULL_SPELLINGS = [
    "NULL",
    "N/A",
    "NONE",
    "-",
    "?",
    "UNKNOWN",
    "NOT KNOWN",
    "NK",
    "NOT APPLICABLE",
    "NOT STATED",
    "NOT RECORDED",
    "NOT GIVEN",
]
"""How extracts commonly spell "no value" (compared trimmed and upper-case, again with case,
spaces and punctuation ignored, so ``n/a``, ``N.A.``, ``N/K`` and ``Not-Known`` match too,
and again after the field's normaliser). Blanks and whitespace are always missing."""

DATE_PLACEHOLDERS = ["01/01/1900", "30/12/1899", "31/12/1899"]
"""Dates of birth that are defaults, not birthdays (also missing, compared after parsing, so
``1899-12-30`` matches): 01/01/1900, the commonest default of source systems, and the
spreadsheet day zero: a blank or 0 in a date cell is 30/12/1899 in the OLE Automation date
that Excel, Access and pandas' Excel reader use, and Excel's own serial 0 (shown
``00/01/1900``, unparseable, so a row problem) becomes 31/12/1899 when exported."""

ADDRESS_PLACEHOLDERS = [
    "NO FIXED ABODE",
    "NFA",
    "NO FIXED ADDRESS",
    "NO ABODE",
    "NO ADDRESS",
    "ADDRESS UNKNOWN",
    "UNKNOWN ADDRESS",
    "ADDRESS NOT KNOWN",
    "NOT KNOWN ADDRESS",
    "HOMELESS",
]
"""What extracts write in an address field for "no address" (also missing, matched like
:data:`NULL_SPELLINGS`, so ``N.F.A.`` and ``No Fixed Abode`` match): the NHS Data Dictionary's
pseudo-postcode meanings "no fixed abode" (ZZ99 3VZ) and "address not known" (ZZ99 3WZ) as
clerks type them. They describe a situation shared by many people, not where one lives, so
they are no evidence of identity (two homeless people are not one person)."""


UNHARDENED_WARNING = (
    "this schema has no hardening. Measured by `linkage audit` on the uk-person template "
    "without hardening (50,000 synthetic records; docs/privacy.md): graph matching "
    "re-identified 100% of records when the attacker's list held all of them (and at 50% "
    "overlap with an electoral-roll-like list), and pattern mining 97-99% of given names and "
    "surnames. The linkage unit, or "
    "anyone the encoded files leak to, can do the same with an electoral roll. Use "
    "`linkage schema init --template uk-person` (hardened) unless you have measured why not."
)
"""Printed by ``linkage schema init --template uk-person-unhardened`` and by ``linkage
encode`` with a schema without hardening (figures from benchmarks/bench_hardening.py)."""


def uk_person_unhardened() -> dict[str, Any]:
    """The uk-person template without hardening (``--template uk-person-unhardened``; its
    measured re-identification risk is in docs/privacy.md).

    Weights were tuned on ``linkage synth --corruption medium`` populations (see
    benchmarks/bench_quality.py): names and date of birth weigh most, location and NHS
    number (often missing outside health data) less; a typical record sets about 35% of
    1024 bits, which gave a better F1 than the textbook 50% (denser filters make unrelated
    household members look alike). Pair it with ``linkage match --threshold 0.7``.
    Without hardening, graph matching re-identifies its records (:data:`UNHARDENED_WARNING`).
    """
    from linkage.schema import SCHEMA_VERSION

    return {
        "linkage_schema": SCHEMA_VERSION,
        "description": (
            "UK person linkage schema (linkage template uk-person). Every partner of the project "
            "must use this same file and the same secret. Keys starting with '_' and "
            "'description' are comments and do not change the fingerprint."
        ),
        "filter": {
            "length": 1024,
            "hashing": "keyed-random",
            "description": (
                "1024-bit record-level Bloom filter; keyed random hashing (HMAC-SHA256)."
            ),
        },
        "fields": [
            {
                "name": "given_name",
                "description": "First given name; titles, accents, case, punctuation removed.",
                "normaliser": "name",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "bits_per_token": 14,
                "missing": NULL_SPELLINGS,
            },
            {
                "name": "surname",
                "description": "Family name; O'Brien, O Brien and OBrien encode alike.",
                "normaliser": "name",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "bits_per_token": 14,
                "missing": NULL_SPELLINGS,
            },
            {
                "name": "date_of_birth",
                "description": (
                    "Day, month, year, the unordered day/month pair (survives day/month swaps) "
                    "and the full date: the most discriminating and reliable field."
                ),
                "normaliser": "date",
                "tokeniser": {
                    "type": "date",
                    "parts": ["day", "month", "year", "day_month", "full"],
                },
                "bits_per_token": 34,
                "missing": [*NULL_SPELLINGS, *DATE_PLACEHOLDERS],
            },
            {
                "name": "sex",
                "description": "Mapped to M, F or I; unknown codings count as missing.",
                "normaliser": "sex",
                "tokeniser": {"type": "exact"},
                "bits_per_token": 4,
                "missing": NULL_SPELLINGS,
            },
            {
                "name": "postcode",
                "description": (
                    "UK postcode in canonical form, e.g. L1 8JQ; NHS pseudo-postcodes (ZZ99: "
                    "no fixed abode, not known, abroad) are missing. Light weight: people "
                    "move, and household members share it."
                ),
                "normaliser": "postcode",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "bits_per_token": 4,
                "missing": NULL_SPELLINGS,
            },
            {
                "name": "address",
                "description": (
                    "Address lines; a small bit budget so moves and long addresses do not dominate."
                ),
                "normaliser": "text",
                "tokeniser": {"type": "qgram", "q": 2, "padding": True},
                "bit_budget": 40,
                "missing": [*NULL_SPELLINGS, *ADDRESS_PLACEHOLDERS],
            },
            {
                "name": "nhs_number",
                "description": (
                    "10-digit NHS number, mod-11 checked; invalid numbers, placeholders and "
                    "the 999 test range are missing. "
                    "Moderate weight: often missing outside health data."
                ),
                "normaliser": "nhs_number",
                "tokeniser": {"type": "exact"},
                "bits_per_token": 25,
                "missing": NULL_SPELLINGS,
            },
        ],
        "block_keys": [
            {
                "name": "surname_soundex_yob",
                "description": "Soundex of surname + year of birth.",
                "parts": [
                    {"field": "surname", "transform": "soundex"},
                    {"field": "date_of_birth", "transform": "year"},
                ],
            },
            {
                "name": "district_initial",
                "description": "Postcode district + first initial.",
                "parts": [
                    {"field": "postcode", "transform": "outward"},
                    {"field": "given_name", "transform": "initial"},
                ],
            },
            {
                "name": "dob_initial",
                "description": "Full date of birth + first initial of the given name.",
                "parts": [
                    {"field": "date_of_birth", "transform": "value"},
                    {"field": "given_name", "transform": "initial"},
                ],
            },
            {
                "name": "nhs_number",
                "description": "The NHS number itself (keyed), where valid.",
                "parts": [{"field": "nhs_number", "transform": "value"}],
            },
            {
                "name": "names_soundex",
                "description": "Soundex of given name + Soundex of surname (survives moves).",
                "parts": [
                    {"field": "given_name", "transform": "soundex"},
                    {"field": "surname", "transform": "soundex"},
                ],
            },
            {
                "name": "surname_initial_dob",
                "description": "Surname initial + full date of birth (survives nicknames).",
                "parts": [
                    {"field": "surname", "transform": "initial"},
                    {"field": "date_of_birth", "transform": "value"},
                ],
            },
        ],
        "min_evidence": {
            "description": (
                "A record is encoded only when it carries at least 2 of: the full name (given "
                "name and surname), the date of birth, where the person lives (postcode or "
                "address); a valid NHS number counts 2 on its own. Records with less (a sex "
                "code, a surname alone) would match each other at Dice 1.0: they are left out "
                "and listed in the rejects as 'too little identifying information'."
            ),
            "at_least": 2,
            "groups": [
                {"name": "full_name", "fields": ["given_name", "surname"], "need": "all"},
                {"name": "date_of_birth", "fields": ["date_of_birth"]},
                {"name": "location", "fields": ["postcode", "address"], "need": "any"},
                {"name": "nhs_number", "fields": ["nhs_number"], "weight": 2},
            ],
        },
    }


HARDENED_TAPS = 8
HARDENED_OUTPUT_BITS = 2048
HARDENED_THRESHOLD = 0.55
HARDENED_BITS = {"given_name": 5, "surname": 5, "date_of_birth": 12, "sex": 1, "postcode": 1,
                 "address": 14, "nhs_number": 9}  # fmt: skip
"""Bits per token (address: bit budget) of the hardened template: about 0.35 of the
unhardened weights, so a filter is about 15% full before diffusion: true pairs' filters
then differ in few bits, which diffusion multiplies by its taps, while unrelated filters
end near 1/2 either way (docs/privacy.md)."""


def uk_person_template() -> dict[str, Any]:
    """The default uk-person template (``linkage schema init``): the unhardened template's
    fields and block keys with about a third of the bits per token (a filter about 15% full) and a
    diffusion layer (Armknecht, Heng & Schnell, PoPETs 2023): every one of the 2048 output
    bits is the XOR of 8 keyed-random bits of the 1024-bit filter. Diffusion lifts the Dice
    of unrelated records towards 1/2, so the schema recommends match threshold 0.55
    (``match.threshold``, used by ``linkage match`` when given none). Chosen from the
    measured table in docs/privacy.md (benchmarks/bench_hardening.py): the audit's attacks
    re-identify at most 1% of records, at an F1 cost under 0.01.
    """
    doc = uk_person_unhardened()
    doc["description"] = (
        "UK person linkage schema (linkage template uk-person, hardened). Every partner of the "
        "project must use this same file and the same secret. Keys starting with '_' and "
        "'description' are comments and do not change the fingerprint."
    )
    doc["filter"]["description"] = (
        "1024-bit record-level Bloom filter, about 15% full; keyed random hashing "
        "(HMAC-SHA256); diffused to 2048 bits before it is written (see hardening)."
    )
    for f in doc["fields"]:
        key = "bit_budget" if "bit_budget" in f else "bits_per_token"
        f[key] = HARDENED_BITS[f["name"]]
    doc["hardening"] = [
        {
            "type": "diffusion",
            "taps": HARDENED_TAPS,
            "output_bits": HARDENED_OUTPUT_BITS,
            "description": (
                f"Each of the {HARDENED_OUTPUT_BITS} output bits is the XOR of {HARDENED_TAPS} "
                "keyed-random filter bits (Armknecht, Heng & Schnell, PoPETs 2023): defeats "
                "graph matching and pattern mining on the filters (docs/privacy.md)."
            ),
        }
    ]
    doc["match"] = {
        "threshold": HARDENED_THRESHOLD,
        "description": (
            "Recommended Dice threshold for these hardened filters (unrelated records score "
            "near 0.5 after diffusion); linkage match uses it when given no --threshold."
        ),
    }
    return doc


FIELDS_TOKEN_SCALE = 0.1
FIELDS_EXPANSION = 2
FIELDS_DICE_THRESHOLD = 0.65
"""The segmented hardened template: a tenth of the unhardened bits per token (1-3 bits; each
segment 2-14% full), diffused per segment to twice its length with 8 taps; whole-filter Dice
0.65 for the flows that link by Dice alone (the linkage map, Dask), the best on 20k synth
(docs/quality.md)."""


def uk_person_fields_template() -> dict[str, Any]:
    """The uk-person template with the segmented layout and per-segment diffusion: each field
    in its own run of bits (:func:`linkage.segments.with_segments`, a tenth of the unhardened
    bits per token), every segment diffused to twice its length (each output bit the XOR of 8
    keyed-random bits of its own segment; Armknecht, Heng & Schnell, PoPETs 2023, per field).
    ``linkage match`` scores these files field by field (Fellegi-Sunter weights fitted without
    labels, coherent clusters; docs/quality.md). An opt-in that is **not** safe against the
    audit's attacks (:data:`SEGMENTED_WARNING`, docs/privacy.md): per-field similarities
    survive diffusion, so graph matching still re-identifies nearly every record at full
    overlap, and the linkage unit sees which records agree exactly on a field.
    """
    from linkage.segments import with_segments

    doc = with_segments(uk_person_unhardened(), token_scale=FIELDS_TOKEN_SCALE)
    doc["description"] = (
        "UK person linkage schema (linkage template uk-person-fields: segmented, diffused per "
        "field; not safe against graph matching, see docs/privacy.md). Every "
        "partner of the project must use this same file and the same secret. Keys starting "
        "with '_' and 'description' are comments and do not change the fingerprint."
    )
    length = doc["filter"]["length"]
    doc["filter"]["description"] = (
        f"{length}-bit Bloom filter, one segment per field (given name and surname share a key "
        "so swapped names compare); keyed random hashing (HMAC-SHA256); each segment diffused "
        f"to {FIELDS_EXPANSION} times its length before it is written (see hardening)."
    )
    doc["hardening"] = [
        {
            "type": "diffusion",
            "taps": HARDENED_TAPS,
            "output_bits": length * FIELDS_EXPANSION,
            "description": (
                f"Per segment: each output bit is the XOR of {HARDENED_TAPS} keyed-random bits "
                "of its own field's segment (Armknecht, Heng & Schnell, PoPETs 2023): defeats "
                "pattern mining while fields stay comparable one by one, but not graph "
                "matching (docs/privacy.md)."
            ),
        }
    ]
    doc["match"] = {
        "threshold": FIELDS_DICE_THRESHOLD,
        "description": (
            "Whole-filter Dice threshold for links by Dice alone (linkage map, --scoring dice, "
            "Dask); linkage match scores these files field by field by default."
        ),
    }
    return doc


SEGMENTED_WARNING = (
    "this schema has the segmented layout: the linkage unit compares it field by field, and "
    "so can anyone holding the encoded files. Measured by `linkage audit` (mode b, 2,000 and "
    "5,000 synthetic people; docs/privacy.md) on the uk-person-fields template, diffused per "
    "field: graph matching re-identified 99-100% of records when the attacker's list held "
    "all of them, and 3-99% at 50% overlap and 1-74% at 25% (more on smaller files); "
    "frequency alignment of the field segments named the surname of 6-9% of records (and "
    "the sex of up to 99.5%); "
    "without diffusion, graph matching read 100%. The record-level default (`linkage schema "
    "init --template uk-person`) keeps the audit's attacks at or below 1% on a 50,000-record "
    "file; choose the segmented layout only where the encoded files never leave a linkage "
    "unit trusted with the data."
)
"""Printed by ``linkage schema init --template uk-person-fields`` and by ``linkage encode``
with any segmented schema (figures from the audit's per-segment frequency attack)."""


SAFE_DIFFUSION_TAPS = HARDENED_TAPS
"""The default's taps, the fewest without a warning: fewer are broken by the audit (2 and 4) or
by the published attacks (up to 3.5% at 5 taps; Armknecht, Heng & Schnell, PoPETs 2023)."""

FEW_TAPS_WARNING = (
    "this schema has a diffusion step with {taps} (the default: one step of {safe} taps). "
    "Measured by `linkage "
    "audit` (mode b, 2,000 of 5,000 synthetic people; docs/privacy.md): graph matching "
    "re-identified 100% of records with 2 taps and with 4 taps when the attacker's list held "
    "all of them; the published attacks reach up to 99% at 2-3 taps, 87% at 4 and 3.5% at "
    "5. Fewer taps keep a little more linkage quality, not enough to be worth it: keep "
    "{safe} or more unless you have measured your configuration with `linkage audit`."
)
"""Printed for a schema whose diffusion has fewer than :data:`SAFE_DIFFUSION_TAPS` taps."""

NO_DIFFUSION_WARNING = (
    "this schema is hardened without diffusion. Measured by `linkage audit` (docs/privacy.md, "
    "the hardening table): graph matching re-identifies 100% of records under balancing or "
    "BLIP; XOR-folding and Rule 90 read 0.1-0.25% (2,000 of 5,000 people) but are fixed, "
    "unkeyed linear maps (each bit the XOR of 2 filter bits), the structure the 2026 "
    "homomorphism attack exploits, and no published evaluation of graph matching covers "
    "them. Diffusion (the `uk-person` template: 8 "
    "keyed taps) is the step that keeps the audit's attacks at or below 1%; measure any other "
    "configuration with `linkage audit` before use."
)
"""Printed for a schema with hardening steps but none of them ``diffusion``."""


def risk_warnings(schema: Any) -> list[str]:
    """The measured-risk warnings a schema earns (``schema init``, ``schema check`` and
    ``encode`` print them): :data:`UNHARDENED_WARNING` without hardening,
    :data:`NO_DIFFUSION_WARNING` with hardening but no diffusion, :data:`FEW_TAPS_WARNING`
    with fewer than :data:`SAFE_DIFFUSION_TAPS` taps, :data:`SEGMENTED_WARNING` with the
    segmented layout."""
    steps = schema.hardening.steps if schema.hardening else ()
    taps = [st.taps for st in steps if st.type == "diffusion"]
    if not steps:
        out = [UNHARDENED_WARNING]
    elif not taps:
        out = [NO_DIFFUSION_WARNING]
    elif min(taps) < SAFE_DIFFUSION_TAPS:
        few = min(taps)
        out = [FEW_TAPS_WARNING.format(taps=f"{few} tap" + "s" * (few != 1),
                                       safe=SAFE_DIFFUSION_TAPS)]  # fmt: skip
    else:
        out = []
    return out + ([SEGMENTED_WARNING] if schema.segments else [])


TEMPLATES = {
    "uk-person": uk_person_template,
    "uk-person-fields": uk_person_fields_template,
    "uk-person-unhardened": uk_person_unhardened,
}


def template_json(name: str) -> str:
    if name not in TEMPLATES:
        raise SchemaError(f"unknown template {name!r} (expected one of: {', '.join(TEMPLATES)})")
    doc = TEMPLATES[name]()
    from linkage.schema import Schema

    Schema.from_dict(doc)  # the template must always validate
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
