"""The encode report (partner side): what went into the encoded file, as one HTML page.

Takes the encode summary, the encoded filters and optionally the schema and a field profile
of the extract (:func:`linkage.report.profile.profile_extract`). Never sees the secret.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linkage.report import charts
from linkage.report.disclosure import Disclosure
from linkage.report.page import Page, Section
from linkage.report.profile import FieldProfile, from_summary

if TYPE_CHECKING:  # pragma: no cover
    from linkage.encoded import EncodedTable
    from linkage.partner.pipeline import EncodeSummary
    from linkage.schema import Schema

NO_USABLE_FIELD = "no usable field"


def write_encode_report(
    path: str | Path,
    summary: EncodeSummary,
    *,
    encoded: EncodedTable | np.ndarray | None = None,
    schema: Schema | None = None,
    profile: FieldProfile | None = None,
    disclosure: Disclosure | None = None,
    title: str = "Encoding report",
) -> Path:
    """Write the encode report of one partner extract to ``path`` (HTML, atomically, 0600).

    ``summary``: from ``encode_file``. ``encoded``: the encoded table (or its ``(n, L/64)``
    uint64 filters) for the bit profile. ``schema``: for the schema section. ``profile``:
    fill rates and suspected placeholders (``profile_extract(extract, schema, ...)``).
    """
    d = disclosure or Disclosure()
    filters, meta = _filters(encoded)
    profile = profile or from_summary(summary)
    fingerprint = schema.fingerprint if schema is not None else meta.get("schema_fingerprint", "")
    page = Page(
        title,
        subtitle=f"Partner {summary.party}: the extract, what was rejected, and the encoded "
        "Bloom filters.",
        disclosure=d,
        meta=[("party", summary.party)] + ([("schema", fingerprint[:16])] if fingerprint else []),
        sdc_extra="Suspected placeholder values are shown only when they match a known "
        "placeholder pattern (such as UNKNOWN or 01/01/1900).",
    )
    if schema is not None:
        _risks(page, schema)
    _summary(page.section("Summary"), summary, d, filters)
    _rejects(page.section("Rejected and flagged values"), summary, d)
    _fields(page.section("Field completeness"), summary, profile, schema, d)
    _placeholders(page.section("Suspected placeholder values"), summary, profile, d)
    # the wire length (after hardening, e.g. diffusion to 2048 bits): what the filters hold
    length = int(meta.get("filter_length", 0) or 0) or (
        schema.output_length if schema is not None else 0
    )
    _filters_section(page.section("Bloom filters (a privacy signal)"), filters, length, d)
    _schema(page.section("Schema"), schema, fingerprint, meta)
    return page.write(path)


def _risks(page: Page, schema: Schema) -> None:
    """The schema's measured privacy risks (:func:`linkage.schema_template.risk_warnings`:
    unhardened, segmented, too few diffusion taps...), first on the page: the same warnings
    ``encode`` prints, kept with the file's record of how it was made."""
    from linkage.schema_template import risk_warnings

    warnings = risk_warnings(schema)
    if warnings:
        s = page.section("Privacy risk of this schema")
        for msg in warnings:
            s.callout(msg)
        s.note("Measured with `linkage audit` (docs/privacy.md); the project's target is at "
               "most 1% of records re-identified by any attack.")  # fmt: skip


def _filters(encoded: Any) -> tuple[np.ndarray | None, dict[str, str]]:
    if encoded is None:
        return None, {}
    if isinstance(encoded, np.ndarray):
        return encoded, {}
    return encoded.filters, dict(getattr(encoded, "meta", {}))


def _kept_reason() -> str:
    from linkage.partner.values import REASONS, SUSPECTED_KEPT

    return REASONS[SUSPECTED_KEPT]


def _outcome(f: str, why: str) -> str:
    """What happened to a row problem's value: kept (a suspected placeholder under
    ``--suspected-placeholders report``), treated as missing, or (``*``) the row left out."""
    if f == "*":
        return "row left out"
    return "kept" if why == _kept_reason() else "treated as missing"


def _placeholder_outcomes(sm: EncodeSummary) -> dict[str, str]:
    """Field -> what became of its suspected placeholders (``kept`` or ``treated as
    missing``), from the row problems the encoder recorded for them."""
    from linkage.partner.values import REASONS, SUSPECTED_MISSING

    missing = REASONS[SUSPECTED_MISSING]
    done = {f for (f, why), n in sm.problems.items() if why == missing and n}
    return {
        f: "treated as missing" if f in done else "kept" for f, _, _ in sm.suspected_placeholders
    }


def _summary(s: Section, sm: EncodeSummary, d: Disclosure, filters: np.ndarray | None) -> None:
    kept = sum(n for (f, why), n in sm.problems.items() if _outcome(f, why) == "kept")
    rejected = sum(
        n for (f, why), n in sm.problems.items() if _outcome(f, why) == "treated as missing"
    )
    facts: list[tuple[str, Any]] = [
        ("rows read", sm.rows_read),
        ("rows encoded", sm.rows_encoded),
        ("rows left out (no usable field)", sm.rows_left_out),
    ]
    if sm.rows_unlinkable:
        facts.append(("rows left out (too little identifying information)", sm.rows_unlinkable))
    facts.append(("values rejected (treated as missing)", rejected))
    if kept:
        facts.append(("values kept, flagged as suspected placeholders", kept))
    facts.append(("mean bits set per filter", f"{sm.mean_bits_set:.1f}"))
    s.facts(facts)
    s.paragraph(
        "Rows with an invalid value are still encoded from their valid fields; the invalid "
        "value is treated as missing. A row with no usable field is left out. The rejects "
        "file (--rejects) lists each case by record id for the partner's own checks; this "
        "report lists none."
    )
    outcomes = set(_placeholder_outcomes(sm).values())
    if "kept" in outcomes:
        s.paragraph(
            "Suspected placeholder values were kept: encoded as they are, not counted as "
            "rejected (see Suspected placeholder values)."
        )
    if "treated as missing" in outcomes:
        s.paragraph(
            "Suspected placeholder values were treated as missing "
            "(--suspected-placeholders missing) and are counted among the rejected values."
        )
    for f, fmt in sorted(sm.date_formats.items()):
        s.paragraph(f"Date format of {f}: {fmt}")
    if sm.absent_fields:
        s.callout(
            "Fields declared absent (encoded as missing for every row): "
            + ", ".join(sm.absent_fields)
            + ". Matching cannot use them."
        )


def _rejects(s: Section, sm: EncodeSummary, d: Disclosure) -> None:
    if not sm.problems:
        s.paragraph("No value was rejected or flagged.")
        return
    rows = []
    by_field: dict[str, int] = defaultdict(int)
    for (f, why), n in sorted(sm.problems.items(), key=lambda kv: (-kv[1], kv[0])):
        label = "(whole row)" if f == "*" else f
        outcome = _outcome(f, why)
        rows.append([label, why, outcome, n, d.share(n, sm.rows_read)])
        if outcome != "kept":
            by_field[label] += n
    s.table(
        ["field", "reason", "outcome", "rows", "share of rows read"],
        rows,
        caption="Each row problem and what became of the value: treated as missing "
        "(rejected), kept (a suspected placeholder, flagged only), or the whole row left out.",
    )
    fields = sorted(by_field, key=lambda k: -by_field[k])
    if not fields:
        s.note("No value was rejected: every row problem is a flagged value that was kept.")
        return
    if not d.any_shown(list(by_field.values())):
        s.note(f"No chart: every field has fewer than {d.min_count} rejected values.")
        return
    s.figure(
        charts.bars(
            fields,
            [by_field[f] for f in fields],
            title="Rejected values by field",
            x_title="rows with the field's value rejected",
            disclosure=d,
            color="#b54a4a",
        ),
        "A field with many rejections usually has a format problem in the extract (e.g. dates "
        "in another order, or NHS numbers with a wrong check digit); fix it at source.",
    )


def _fields(
    s: Section,
    sm: EncodeSummary,
    prof: FieldProfile | None,
    schema: Schema | None,
    d: Disclosure,
) -> None:
    if prof is None:
        s.note(
            "No field profile: pass profile=profile_extract(extract, schema, ...) (the "
            "`linkage encode --report` option does) to see how often each field is filled."
        )
        return
    names = [f.name for f in schema.fields] if schema is not None else list(prof.filled)
    rows = []
    rates: list[float | None] = []
    for name in names:
        filled = prof.filled.get(name, 0)
        note = "declared absent" if name in sm.absent_fields else ""
        rows.append([name, filled, d.share(filled, prof.rows), note])
        rates.append(d.approx(filled) / prof.rows if prof.rows else None)
    s.table(
        ["field", "rows filled", "fill rate", ""],
        rows,
        caption="Filled: a value that is not empty and not a missing-value word (such as "
        "NULL or N/A, or the schema's own missing values).",
    )
    s.figure(
        charts.bars(
            names,
            rates,
            title="Fill rate by field",
            x_title="share of rows with a value",
            disclosure=None,
            percent=True,
            domain_max=1.0,
        ),
        "Fields filled for few rows add little to matching; a field far below the other "
        "partners' fill rate for it is worth checking before sending the file.",
    )


def _placeholders(s: Section, sm: EncodeSummary, prof: FieldProfile | None, d: Disclosure) -> None:
    """The encoder's suspected placeholders (what it found and did; values never shown),
    then the profile's (values shown only for a known placeholder pattern)."""
    found: dict[str, list[int]] = defaultdict(list)
    for f, n, _ in sm.suspected_placeholders:
        found[f].append(int(n))
    outcomes = _placeholder_outcomes(sm)
    if found:
        s.paragraph(
            "The encoder found values each on far more rows than the field's other values: "
            "suspected placeholders (a default such as a practice's own postcode), or values "
            "that are genuinely shared (a care home's postcode). The values are not shown; "
            "the rejects file (--rejects) lists their rows."
        )
        s.table(
            ["field", "suspected values", "rows", "share of rows read", "outcome"],
            [
                [f, str(len(ns)), sum(ns), d.share(sum(ns), sm.rows_read), outcomes[f]]
                for f, ns in found.items()
            ],
        )
        if "kept" in outcomes.values():
            s.note(
                "Kept values are encoded as they are: if they are fillers, blank them in the "
                "extract or encode again with --suspected-placeholders missing."
            )
    else:
        s.paragraph("The encoder found no value on far more rows than its field's other values.")
    if prof is None:
        s.note("The extract's values were not profiled (see Field completeness).")
        return
    if not prof.suspects:
        s.paragraph(
            "No value of the extract matches a known placeholder pattern (such as UNKNOWN or "
            "01/01/1900)."
        )
        return
    rows = []
    for sp in prof.suspects:
        filled = prof.filled.get(sp.field, 0)
        rows.append([sp.field, sp.label, sp.rows, d.share(sp.rows, filled)])
    s.table(
        ["field", "value", "rows", "share of filled rows"],
        rows,
        caption="Values of the extract that match a known placeholder pattern. Placeholders "
        "(e.g. a default date of birth) make unrelated people look alike: the encoder treats "
        "the known ones as missing (see Rejected and flagged values).",
    )


def bit_counts(filters: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """How many filters set each bit position (bit p: byte p // 8, bit p % 8)."""
    u8 = np.ascontiguousarray(filters).view(np.uint8)
    out = np.zeros(u8.shape[1] * 8, np.int64)
    for start in range(0, u8.shape[0], chunk):
        out += np.unpackbits(u8[start : start + chunk], axis=1, bitorder="little").sum(
            axis=0, dtype=np.int64
        )
    return out


def _filters_section(s: Section, filters: np.ndarray | None, length: int, d: Disclosure) -> None:
    if filters is None or len(filters) == 0:
        s.note("No encoded filters given: pass encoded= to see the bit profile.")
        return
    n = len(filters)
    length = length or filters.shape[1] * 64
    pop = np.bitwise_count(filters).sum(axis=1, dtype=np.int64)
    hist = np.bincount(pop, minlength=length + 1)
    lo, hi = int(pop.min()), int(pop.max())
    # bins of several popcounts when the range is wide (keeps bars from being tiny counts)
    width = max(1, int(np.ceil((hi - lo + 1) / 80)))
    edges = np.arange(lo, hi + width + 1, width)
    counts = np.add.reduceat(hist[lo : edges[-1]], edges[:-1] - lo)
    mean = float(pop.mean())
    s.figure(
        charts.histogram(
            edges - 0.5,
            counts,
            title="Bits set per filter",
            x_title=f"bits set (of {length})",
            y_title="records",
            disclosure=d,
            rule_at=mean,
            rule_label=f"mean {mean:.0f}",
        ),
        "Records with few bits set carry little to match on (mostly missing fields); a long "
        "tail to the right means long values or many tokens. Expect one smooth hump.",
    )
    bc = bit_counts(filters)[:length]
    rates = bc / n
    shown: list[float | None] = [
        None if d.is_small(int(c)) else float(r) for c, r in zip(bc, rates, strict=True)
    ]
    s.figure(
        charts.profile(
            list(range(length)),
            shown,
            title="How often each bit position is set",
            x_title="bit position in the filter",
            y_title="share of filters",
            reference=float(rates.mean()),
            reference_label=f"mean {100 * rates.mean():.1f}%",
        ),
        "With keyed random hashing every position should be set about equally often; "
        "positions far above the rest stand for frequent tokens and help a frequency attack.",
    )
    m = float(rates.mean())
    cv = float(rates.std() / m) if m else 0.0
    top = float(rates.max())
    s.table(
        ["figure", "value"],
        [
            ["filter length", f"{length} bits"],
            ["mean bits set per filter", f"{mean:.1f} ({100 * mean / length:.1f}% of the bits)"],
            ["spread of bits set (middle 90% of filters)",
             f"{int(np.percentile(pop, 5))} to {int(np.percentile(pop, 95))}"],
            ["most often set position", f"{100 * top:.1f}% of filters ({top / m:.2f}x the mean)"
             if m else "-"],
            ["least often set position", f"{100 * float(rates.min()):.1f}% of filters"],
            ["variation across positions (coefficient of variation)", f"{cv:.3f}"],
        ],
        caption="A coefficient of variation near 0 means a flat profile; above about 0.5, a "
        "few positions stand out and the schema's bits per token or salting deserve a look.",
    )  # fmt: skip


def _schema(s: Section, schema: Schema | None, fingerprint: str, meta: dict[str, str]) -> None:
    if fingerprint:
        s.paragraph(
            "Fingerprint (SHA-256 of the canonical schema; every partner's must be equal): "
            + fingerprint
        )
    if schema is None:
        if meta.get("filter_length"):
            s.paragraph(f"Filter length: {meta['filter_length']} bits.")
        return
    wire = schema.output_length
    steps = ", ".join(st.type for st in schema.hardening.steps)
    hardened = (
        f" before hardening, {wire} bits as written (after {steps})"
        if wire != schema.filter_length
        else ""
    )
    s.paragraph(f"Filter length {schema.filter_length} bits{hardened}, hashing {schema.hashing}.")
    rows = []
    for f in schema.fields:
        tok = f.tokeniser.describe()
        bits = (
            f"{f.bits_per_token} per token"
            if f.bits_per_token is not None
            else f"budget {f.bit_budget}"
        )
        salt = f.salt.label if f.salt else ""
        rows.append([f.name, f.normaliser, tok, bits, salt])
    s.table(["field", "normaliser", "tokens", "bits", "salted by"], rows)
    if schema.block_keys:
        s.table(
            ["block key", "made of"],
            [
                [b.name, " + ".join(f"{p.transform}({p.field})" for p in b.parts)]
                for b in schema.block_keys
            ],
        )
