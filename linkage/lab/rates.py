"""Every rate and vocabulary of the synthetic population (``linkage synth``): corruption
rates per level, party names, column vocabularies, date formats, sex codings, record-id
styles and the population shares. docs/synth.md documents these tables and
``tests/test_synth.py`` checks the document against them; change both together.
"""

from __future__ import annotations

__all__ = [
    "AGE_BANDS",
    "CASINGS",
    "CORRUPTION_LEVELS",
    "DATE_FORMATS",
    "FIELDS",
    "GIVEN_ORIGINS",
    "HEALTH_PARTIES",
    "HOUSEHOLDS_PER_STREET",
    "HOUSEHOLD_SIZES",
    "HOUSES_PER_UNIT",
    "ID_STYLES",
    "INWARD_LETTERS",
    "MATCH_NAME_ORIGIN",
    "OVERLAP_JITTER",
    "PARTY_NAMES",
    "POSTCODE_REGEX",
    "RATES",
    "REFERENCE_DATE",
    "SEX_CODINGS",
    "SEX_SHARES",
    "SHARE_HOUSEHOLD_SURNAME",
    "VOCABULARIES",
]

CORRUPTION_LEVELS = ("none", "low", "medium", "high")

# Corruption rates: kind -> level -> probability. The unit (per record, per field, per eligible
# record) is given in docs/synth.md; this dict is the single source of truth.
RATES: dict[str, dict[str, float]] = {
    # value changes (applied first)
    "surname_change": {"none": 0.0, "low": 0.02, "medium": 0.05, "high": 0.10},
    "nickname": {"none": 0.0, "low": 0.03, "medium": 0.08, "high": 0.15},
    "moved": {"none": 0.0, "low": 0.03, "medium": 0.08, "high": 0.15},
    "dob_swap": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "dob_typo": {"none": 0.0, "low": 0.005, "medium": 0.01, "high": 0.03},
    "sex_error": {"none": 0.0, "low": 0.002, "medium": 0.005, "high": 0.01},
    # spelling errors
    "phonetic": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "keyboard_typo": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.08},
    "ocr_typo": {"none": 0.0, "low": 0.003, "medium": 0.01, "high": 0.03},
    "postcode_typo": {"none": 0.0, "low": 0.005, "medium": 0.015, "high": 0.04},
    "nhs_typo": {"none": 0.0, "low": 0.002, "medium": 0.005, "high": 0.01},
    # presentation noise
    "title_prefix": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "format_noise": {"none": 0.0, "low": 0.05, "medium": 0.10, "high": 0.20},
    # missing values (applied last)
    "missing": {"none": 0.0, "low": 0.01, "medium": 0.03, "high": 0.06},
    "nhs_missing": {"none": 0.0, "low": 0.30, "medium": 0.50, "high": 0.70},
}

PARTY_NAMES = (
    "council_a", "council_b", "nhs", "housing", "charity_x", "council_c", "police", "schools",
    "dwp", "charity_y", "council_d", "gp_north", "council_e", "hmrc", "charity_z", "council_f",
    "ambulance", "council_g", "probation", "council_h", "hospice", "council_i", "college",
    "council_j", "food_bank", "council_k",
)  # fmt: skip
# Health parties record NHS numbers routinely: they get the generic "missing" rate, not
# "nhs_missing".
HEALTH_PARTIES = frozenset({"nhs", "gp_north", "ambulance", "hospice"})

FIELDS = ("given", "family", "dob", "sex", "address", "town", "postcode", "nhs")
# One vocabulary per party (cycled), then a casing style per block of 8 parties, so that all
# 26 parties have distinct column names. None: the party does not hold that field.
VOCABULARIES: tuple[tuple[str | None, ...], ...] = (
    ("forename", "surname", "dob", "gender", "address_line_1", "town", "post_code", "nhs_no"),
    ("first_name", "last_name", "birth_date", "sex", "street_address", "city", "postcode",
     "nhs_number"),
    ("given_name", "family_name", "date_of_birth", "sex", "address", "post_town", "postcode",
     "nhs_number"),
    ("fname", "lname", "birthdate", "gender", "addr1", "addr2", "pcode", "nhsno"),
    ("name_first", "name_last", "born", "sex_code", "address_1", "locality", "zip", None),
    ("christian_name", "surname", "d_o_b", "gender", "house_and_street", "town_city",
     "postal_code", "nhs"),
    ("first", "last", "dob", "sex", "line1", "line2", "postcode", "nhs_num"),
    ("forenames", "family_name", "birth_dt", "gender_code", "address_line1", "address_town",
     "post_code", "nhsnumber"),
)  # fmt: skip
CASINGS = ("snake", "upper", "camel", "title")
DATE_FORMATS = (
    "%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%Y/%m/%d", "%d%m%Y",
)  # fmt: skip
SEX_CODINGS: dict[str, tuple[str, str, str]] = {  # values for (male, female, unknown)
    "MFU": ("M", "F", "U"),
    "words": ("Male", "Female", "Unknown"),
    "iso5218": ("1", "2", "0"),
}
ID_STYLES = ("hex12", "digits9", "hex16", "alnum10")

REFERENCE_DATE = "2024-01-01"  # ages are counted back from this fixed date
# Share of the population in 5-year age bands 0-4 ... 95-99 (roughly ONS 2021, England & Wales).
AGE_BANDS = (5.4, 5.9, 6.0, 5.7, 6.0, 6.6, 6.9, 6.7, 6.3, 6.5, 6.9, 6.8, 5.9, 5.1, 5.0, 3.7, 2.5,
             1.5, 0.7, 0.2)  # fmt: skip
HOUSEHOLD_SIZES = (0.30, 0.34, 0.15, 0.13, 0.05, 0.03)  # 1..6 people
SEX_SHARES = (0.492, 0.503, 0.005)  # M, F, U
SHARE_HOUSEHOLD_SURNAME = 0.8
MATCH_NAME_ORIGIN = 0.8  # chance that the given name comes from the surname's culture
HOUSEHOLDS_PER_STREET = 40
HOUSES_PER_UNIT = 15  # consecutive houses in a street share a postcode unit
OVERLAP_JITTER = 0.1
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in inward codes (no C I K M O V)
POSTCODE_REGEX = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][ABD-HJLNP-UW-Z]{2}$"
GIVEN_ORIGINS: dict[str, tuple[str, ...]] = {  # surname origin -> given-name origins
    "english": ("english",),
    "welsh": ("welsh", "english"),
    "scottish": ("scottish", "english"),
    "irish": ("irish", "english"),
    "caribbean": ("caribbean", "english"),
}
