"""One self-contained HTML page: a header with the disclosure-control statement, sections of
tables, figures and notes, inline CSS for screen and print, and nothing fetched from
anywhere when the file is opened (no scripts, fonts, style sheets or images from outside;
charts are inline SVG).

Table cells: an ``int`` is a count and goes through :class:`Disclosure` (suppressed when
small, rounded otherwise); a ``float`` is printed to four significant digits; a ``str`` is
printed as given (use it for numbers that are not counts, such as a threshold or a size).
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkage.report.disclosure import Disclosure

Cell = int | float | str | None

_CSS = """
:root { --ink: #1d2430; --muted: #5b6472; --line: #d5dae1; --accent: #2f5d8a;
        --warn-bg: #fff6e0; --warn-line: #e0b040; --note-bg: #eef3f8; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0 auto; max-width: 1120px; padding: 24px 32px 48px; color: var(--ink);
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; line-height: 1.45; background: #fff; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 16px; padding-bottom: 8px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 28px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 18px 0 6px; }
.subtitle { color: var(--muted); margin: 0; }
.meta { color: var(--muted); font-size: 0.87rem; margin: 6px 0 0; }
.sdc { background: var(--note-bg); border-left: 5px solid var(--accent); padding: 10px 14px;
       margin: 14px 0; font-size: 0.93rem; }
.sdc strong { display: block; margin-bottom: 2px; }
.callout { background: var(--warn-bg); border-left: 5px solid var(--warn-line);
           padding: 8px 14px; margin: 10px 0; }
.note { color: var(--muted); font-size: 0.9rem; }
nav ol { columns: 2; margin: 6px 0 0; padding-left: 22px; font-size: 0.93rem; }
nav a { color: var(--accent); text-decoration: none; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr));
         gap: 10px; margin: 10px 0 6px; }
.fact { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.fact .v { font-size: 1.35rem; font-weight: 600; }
.fact .k { color: var(--muted); font-size: 0.85rem; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 0.92rem; min-width: 40%; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: #f4f6f9; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 0.87rem;
          padding-top: 4px; }
figure { margin: 14px 0 18px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; max-width: 860px; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
              font-size: 0.88em; overflow-wrap: anywhere; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.85rem; }
footer { margin-top: 36px; color: var(--muted); font-size: 0.82rem;
         border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  html { font-size: 11pt; }
  body { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, table, .fact, .sdc, .callout { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Section:
    title: str
    anchor: str
    disclosure: Disclosure
    parts: list[str] = field(default_factory=list)

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{esc(text)}</p>")

    def note(self, text: str) -> None:
        self.paragraph(text, "note")

    def callout(self, text: str) -> None:
        self.parts.append(f'<div class="callout">{esc(text)}</div>')

    def heading(self, text: str) -> None:
        self.parts.append(f"<h3>{esc(text)}</h3>")

    def facts(self, items: Sequence[tuple[str, Cell]]) -> None:
        """Headline figures as tiles: (label, value)."""
        tiles = []
        for label, value in items:
            v, cls = self._cell(value)
            tiles.append(
                f'<div class="fact"><div class="v{cls}">{v}</div><div class="k">{esc(label)}'
                "</div></div>"
            )
        self.parts.append('<div class="facts">' + "".join(tiles) + "</div>")

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str = "",
        numeric: Sequence[int] = (),
    ) -> None:
        """A table; columns holding numbers are right-aligned (ints are counts: see the
        module docstring). ``numeric``: further right-aligned column indices."""
        num_cols = set(numeric)
        for row in rows:
            for i, v in enumerate(row):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    num_cols.add(i)
        num_attr = ' class="num"'
        head = "".join(
            f'<th{num_attr if i in num_cols else ""} scope="col">{esc(h)}</th>'
            for i, h in enumerate(headers)
        )
        body = []
        for row in rows:
            cells = []
            for i, v in enumerate(row):
                text, cls = self._cell(v)
                classes = " ".join(c for c in ("num" if i in num_cols else "", cls.strip()) if c)
                attr = f' class="{classes}"' if classes else ""
                cells.append(f"<td{attr}>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{esc(caption)}</caption>" if caption else ""
        self.parts.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def figure(self, svg: str, caption: str) -> None:
        """A chart (inline SVG from :mod:`linkage.report.charts`) with a one-sentence caption
        saying what to look for."""
        self.parts.append(
            f'<figure class="chart">{svg}<figcaption>{esc(caption)}</figcaption></figure>'
        )

    def preformatted(self, text: str) -> None:
        self.parts.append(f"<pre>{esc(text)}</pre>")

    def _cell(self, v: Any) -> tuple[str, str]:
        if v is None:
            return "-", ""
        if isinstance(v, bool):
            return ("yes" if v else "no"), ""
        if isinstance(v, int):
            return esc(self.disclosure.count(v)), " count"
        if isinstance(v, float):
            return esc(f"{v:.4g}"), ""
        return esc(v), ""

    def render(self) -> str:
        return (
            f'<section id="{self.anchor}"><h2>{esc(self.title)}</h2>'
            + "\n".join(self.parts)
            + "</section>"
        )


class Page:
    """A report page. ``sdc_extra``: report-specific sentences added to the disclosure
    statement."""

    def __init__(
        self,
        title: str,
        *,
        subtitle: str = "",
        disclosure: Disclosure | None = None,
        meta: Sequence[tuple[str, str]] = (),
        sdc_extra: str = "",
    ) -> None:
        self.title = title
        self.subtitle = subtitle
        self.disclosure = disclosure or Disclosure()
        self.meta = list(meta)
        self.sdc_extra = sdc_extra
        self.sections: list[Section] = []

    def section(self, title: str) -> Section:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        anchor, k = base, 2
        while any(s.anchor == anchor for s in self.sections):
            anchor, k = f"{base}-{k}", k + 1
        s = Section(title, anchor, self.disclosure)
        self.sections.append(s)
        return s

    def render(self) -> str:
        from linkage import __version__

        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        meta = [("made", now), ("linkage", __version__), *self.meta]
        meta_html = " &middot; ".join(f"{esc(k)}: {esc(v)}" for k, v in meta)
        sdc = self.disclosure.statement() + (" " + self.sdc_extra if self.sdc_extra else "")
        nav = ""
        if len(self.sections) > 2:
            items = "".join(
                f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in self.sections
            )
            nav = f"<nav><strong>Contents</strong><ol>{items}</ol></nav>"
        sub = f'<p class="subtitle">{esc(self.subtitle)}</p>' if self.subtitle else ""
        body = "\n".join(s.render() for s in self.sections)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            # forbid every fetch: the page is complete as written
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1>{sub}"
            f'<p class="meta">{meta_html}</p></header>'
            f'<div class="sdc" role="note"><strong>Disclosure control</strong>{esc(sdc)}</div>'
            f"{nav}\n{body}\n"
            "<footer>Written by linkage. Self-contained: this file loads nothing from the "
            "network. Figures are rounded and small counts suppressed as stated at the top."
            "</footer></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        return write_html(path, self.render())


def write_html(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`linkage._files.atomic_outputs` (a temporary
    file beside it, fsync, rename; nothing left behind on error), readable by the owner only
    (mode 0600). Raises :class:`~linkage._files.OutputError` naming ``path`` when it is a
    folder or cannot be written."""
    from linkage._files import OutputError, atomic_outputs

    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, not a file")
    with atomic_outputs(p) as (tmp,):
        tmp.write_bytes(text.encode("utf-8"))
    return p
