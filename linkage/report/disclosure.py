"""Statistical disclosure control for reports that may leave the secure setting.

A report holds aggregate figures only: no record id, no value of a record and no score of an
individual pair. Counts from 1 to ``min_count - 1`` are suppressed (shown as ``<10``) and
the other counts are rounded to a multiple of ``round_to``, so that a small count cannot be
recovered by subtracting two published totals. Shares derived from a small count are shown
as a bound (``under 0.1%``) instead of a figure. Zero stays zero and is shown as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_MIN_COUNT = 10
DEFAULT_ROUND_TO = 5


@dataclass(frozen=True)
class Disclosure:
    """How small counts are protected. ``min_count``: counts from 1 to ``min_count - 1`` are
    suppressed (``min_count=1`` turns suppression off). ``round_to``: other counts are
    rounded to the nearest multiple (1 turns rounding off)."""

    min_count: int = DEFAULT_MIN_COUNT
    round_to: int = DEFAULT_ROUND_TO

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")
        if self.round_to < 1:
            raise ValueError(f"round_to must be >= 1, got {self.round_to}")

    # -- numbers ------------------------------------------------------------------------
    def is_small(self, n: int) -> bool:
        """True when ``n`` must not be published (1 <= n < min_count)."""
        return 0 < n < self.min_count

    def value(self, n: int) -> int | None:
        """The publishable value of a count: ``None`` when suppressed, else rounded (never
        rounded below ``min_count`` or to zero)."""
        n = int(n)
        if n <= 0:
            return 0
        if self.is_small(n):
            return None
        r = self.round_to
        out = round(n / r) * r if r > 1 else n
        return max(out, self.min_count)

    def count(self, n: int) -> str:
        """A count as text: ``"<10"`` when suppressed, else rounded with thousands separators."""
        v = self.value(n)
        return f"<{self.min_count:,}" if v is None else f"{v:,}"

    def share(self, part: int, total: int, digits: int = 1) -> str:
        """``part / total`` as a percentage, or a bound when ``part`` or ``total - part`` is a
        small count (so the exact small count cannot be worked out from the share)."""
        part, total = int(part), int(total)
        if total <= 0:
            return "-"
        if part <= 0:
            return "0%"
        if part >= total:
            return "100%"
        bound = 100.0 * self.min_count / total
        if self.is_small(part):
            return f"under {_pct(bound, digits)}"
        if self.is_small(total - part):
            return f"over {_pct(100.0 - bound, digits)}"
        if self.is_small(total):
            return "-"
        return _pct(100.0 * part / total, digits)

    def rate(self, part: int, total: int, digits: int = 3) -> str:
        """``part / total`` as a decimal (precision, recall...), or a bound when ``part`` or
        ``total - part`` is a small count."""
        part, total = int(part), int(total)
        if total <= 0:
            return "-"
        if self.is_small(total):
            return "-"
        bound = self.min_count / total
        if part > 0 and self.is_small(part):
            return f"under {bound:.{digits}f}"
        if part < total and self.is_small(total - part):
            return f"over {1.0 - bound:.{digits}f}"
        return f"{part / total:.{digits}f}"

    def approx(self, n: int) -> float:
        """A publishable stand-in for a count in derived figures (curves): the rounded count,
        or half the limit for a suppressed one."""
        v = self.value(n)
        return self.min_count / 2 if v is None else float(v)

    def any_shown(self, values: Sequence[int]) -> bool:
        """True when at least one count is published as a non-zero figure (a chart of the
        counts would draw something)."""
        return any(int(v) >= self.min_count for v in values)

    def counts(self, values: Sequence[int]) -> list[int | None]:
        """:meth:`value` of each count (for chart data: ``None`` bars are not drawn)."""
        return [self.value(v) for v in values]

    # -- wording -------------------------------------------------------------------------
    def statement(self) -> str:
        """The disclosure-control statement printed at the top of every report."""
        rounding = (
            f" Other counts are rounded to the nearest {self.round_to}, so figures may not add "
            "up exactly."
            if self.round_to > 1
            else ""
        )
        small = (
            f"Counts from 1 to {self.min_count - 1} are suppressed (shown as "
            f"\u201c<{self.min_count}\u201d; bars for them are not drawn).{rounding}"
            if self.min_count > 1
            else "Small counts are NOT suppressed in this report (min_count=1)." + rounding
        )
        return (
            "This report contains aggregate figures only: no record identifiers, no values "
            "from records and no scores of individual record pairs. "
            + small
            + " Percentages that would reveal a small count are shown as a bound."
        )


def _pct(x: float, digits: int) -> str:
    return f"{x:.{digits}f}%"
