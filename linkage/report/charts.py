"""Charts for reports: Vega-Lite specs built with Vega-Altair and rendered to SVG with
vl-convert when the report is written, so the page needs no script and no network.

Every chart function takes already-aggregated data (bins, categories, curves), applies
:class:`~linkage.report.disclosure.Disclosure` to counts itself (a suppressed bar is not
drawn) and returns an SVG string ready to inline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from linkage.report.disclosure import Disclosure

Numbers = Any  # a list or a 1-d numpy array of numbers

WIDTH = 860
HEIGHT = 240
ACCENT = "#2f5d8a"
RULE = "#c0392b"
PALETTE = ["#2f5d8a", "#e08a2e", "#3f9b5a", "#b54a4a", "#7d5ba6", "#8c6d3f", "#d46fb0"]

_CONFIG: dict[str, Any] = {
    "font": "Helvetica, Arial, sans-serif",
    "view": {"stroke": None},
    "mark": {"aria": False},  # no per-mark data labels inside the SVG
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
    "title": {"fontSize": 14, "anchor": "start", "fontWeight": "bold"},
    "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "top"},
}


def render_svg(chart: Any) -> str:
    """An Altair chart (or a Vega-Lite dict) -> SVG text for inlining in HTML."""
    import vl_convert as vlc

    spec = chart if isinstance(chart, dict) else chart.to_dict(validate=False)
    spec.setdefault("config", {})
    for k, v in _CONFIG.items():
        spec["config"].setdefault(k, v)
    svg = vlc.vegalite_to_svg(spec)
    # inline SVG in HTML needs no namespace declarations; dropping them leaves the page
    # without a single http(s):// string
    svg = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", svg, count=4)
    return svg


def _alt() -> Any:
    import altair as alt

    return alt


def _title(title: str, subtitle: str = "") -> Any:
    alt = _alt()
    return alt.TitleParams(title, subtitle=subtitle or alt.Undefined, subtitleColor="#5b6472")


def histogram(
    edges: Numbers,
    counts: Numbers,
    *,
    title: str,
    x_title: str,
    y_title: str,
    disclosure: Disclosure,
    log_y: bool = False,
    rule_at: float | None = None,
    rule_label: str = "",
    x_domain: tuple[float, float] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    color: str = ACCENT,
    subtitle: str = "",
) -> str:
    """Bars over bins ``[edges[i], edges[i+1])``; counts go through disclosure control
    (suppressed bins are not drawn); ``log_y``: logarithmic count axis; ``rule_at``: a
    vertical line (e.g. the threshold) labelled ``rule_label``."""
    alt = _alt()
    vals = disclosure.counts(list(counts))
    rows: list[dict[str, Any]] = [
        {"lo": float(edges[i]), "hi": float(edges[i + 1]), "n": v}
        for i, v in enumerate(vals)
        if v is not None and v > 0
    ]
    lo = float(edges[0]) if x_domain is None else x_domain[0]
    hi = float(edges[-1]) if x_domain is None else x_domain[1]
    scale_x = alt.Scale(domain=[lo, hi], nice=False, zero=False)
    scale_y = alt.Scale(type="log") if log_y else alt.Scale()
    bars = (
        alt.Chart(alt.Data(values=rows or [{"lo": lo, "hi": lo, "n": None}]))
        .mark_rect(color=color, stroke="white", strokeWidth=0.3)
        .encode(
            x=alt.X("lo:Q", title=x_title, scale=scale_x),
            x2="hi:Q",
            y=alt.Y("n:Q", title=y_title, scale=scale_y),
            y2=alt.Y2(datum=1) if log_y else alt.Y2(datum=0),
        )
    )
    layers = [bars]
    if rule_at is not None:
        layers += _rule(rule_at, rule_label, height, scale_x)
    chart = alt.layer(*layers).properties(width=width, height=height, title=_title(title, subtitle))
    return render_svg(chart)


def _rule(x: float, label: str, height: int = HEIGHT, scale: Any = None) -> list[Any]:
    alt = _alt()
    data = alt.Data(values=[{"x": float(x), "label": label}])
    enc_x = alt.X("x:Q", scale=scale) if scale is not None else alt.X("x:Q")
    rule = alt.Chart(data).mark_rule(color=RULE, strokeWidth=2, strokeDash=[6, 3]).encode(x=enc_x)
    out = [rule]
    if label:
        out.append(
            alt.Chart(data)
            .mark_text(color=RULE, align="left", dx=5, dy=-4, baseline="bottom", fontWeight="bold")
            .encode(x=enc_x, y=alt.value(height), text="label:N")
        )
    return out


def bars(
    labels: Sequence[str],
    counts: Sequence[Any],
    *,
    title: str,
    x_title: str,
    y_title: str = "",
    disclosure: Disclosure | None,
    horizontal: bool = True,
    width: int = WIDTH,
    bar_size: int = 18,
    color: str = ACCENT,
    log: bool = False,
    subtitle: str = "",
    percent: bool = False,
    domain_max: float | None = None,
    rule_at: float | None = None,
    rule_label: str = "",
    symlog_constant: float | None = None,
) -> str:
    """One bar per label. With ``disclosure`` the values are counts (suppressed ones are not
    drawn); without it they are figures such as rates (``percent``: 0..1 shown as %).
    ``rule_at``: a line across the bars at that value (e.g. a target), labelled
    ``rule_label``. ``symlog_constant``: a value axis linear below that value and
    logarithmic above it (rates from 0.1% to 100% in one chart)."""
    alt = _alt()
    vals = disclosure.counts([int(c or 0) for c in counts]) if disclosure else list(counts)
    rows = [
        {"label": str(lab), "v": v, "order": i}
        for i, (lab, v) in enumerate(zip(labels, vals, strict=True))
    ]
    fmt = ".0%" if percent else ("~s" if disclosure else "~g")
    kw: dict[str, Any] = {}
    if symlog_constant is not None:
        dom = [0, domain_max] if domain_max is not None else alt.Undefined
        kw["scale"] = alt.Scale(type="symlog", constant=symlog_constant, domain=dom, nice=False)
    elif log:  # symlog: bars start at zero, which a log scale cannot draw
        kw["scale"] = alt.Scale(type="symlog")
    elif domain_max is not None:
        kw["scale"] = alt.Scale(domain=[0, domain_max])
    value_axis = alt.X if horizontal else alt.Y
    cat_axis = alt.Y if horizontal else alt.X
    axis = alt.Axis(format=fmt, tickMinStep=1) if disclosure else alt.Axis(format=fmt)
    if symlog_constant is not None:
        top = domain_max if domain_max is not None else 1.0
        ticks = [0.0] + [v for v in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0) if v <= top]
        axis = alt.Axis(format=fmt, values=ticks)
    enc_v = value_axis("v:Q", title=x_title if horizontal else y_title, axis=axis, **kw)
    enc_c = cat_axis(
        "label:N",
        title=y_title if horizontal else x_title,
        sort=alt.SortField("order"),
        axis=alt.Axis(labelLimit=260),
    )
    chart = alt.Chart(alt.Data(values=rows)).mark_bar(color=color)
    h = max(bar_size * len(rows), 40) if horizontal else HEIGHT
    w = width - 280 if horizontal else width
    chart = chart.encode(x=enc_v, y=enc_c) if horizontal else chart.encode(x=enc_c, y=enc_v)
    if rule_at is not None:
        d = alt.Data(values=[{"v": float(rule_at), "label": rule_label}])
        enc = value_axis("v:Q", **kw)
        rule = alt.Chart(d).mark_rule(color=RULE, strokeWidth=2, strokeDash=[6, 3])
        layers = [chart, rule.encode(**{"x" if horizontal else "y": enc})]
        if rule_label:
            text = alt.Chart(d).mark_text(
                color=RULE, fontWeight="bold", align="left", dx=4, dy=-4, baseline="bottom"
            )
            if horizontal:
                text = text.encode(x=enc, y=alt.value(0), text="label:N")
            else:
                text = text.encode(y=enc, x=alt.value(0), text="label:N")
            layers.append(text)
        chart = alt.layer(*layers)
    return render_svg(chart.properties(width=w, height=h, title=_title(title, subtitle)))


def grouped_bars(
    rows: Sequence[tuple[str, str, float]],
    *,
    title: str,
    x_title: str,
    y_title: str = "",
    disclosure: Disclosure | None,
    width: int = WIDTH,
    colors: Mapping[str, str] | None = None,
    subtitle: str = "",
    percent: bool = False,
    domain_max: float | None = None,
) -> str:
    """Horizontal bars for (category, series, value) rows, series side by side. With
    ``disclosure`` the values are counts (suppressed ones are not drawn); without it figures
    such as rates (``percent``: 0..1 shown as %, ``domain_max``: the axis end)."""
    alt = _alt()
    series = list(dict.fromkeys(s for _, s, _ in rows))
    cats = list(dict.fromkeys(c for c, _, _ in rows))
    data = []
    for c, s, n in rows:
        v = disclosure.value(int(n)) if disclosure is not None else n
        data.append({"c": c, "s": s, "v": v})
    if disclosure is not None:
        axis = alt.Axis(format="~s", tickMinStep=1)
    else:
        axis = alt.Axis(format=".0%" if percent else "~g")
    x_scale = alt.Scale(domain=[0, domain_max]) if domain_max is not None else alt.Scale()
    domain = series
    rng = [(colors or {}).get(s, PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]
    chart = (
        alt.Chart(alt.Data(values=data))
        .mark_bar()
        .encode(
            x=alt.X("v:Q", title=x_title, axis=axis, scale=x_scale),
            y=alt.Y("c:N", title=y_title, sort=cats, axis=alt.Axis(labelLimit=260)),
            yOffset=alt.YOffset("s:N", sort=series),
            color=alt.Color("s:N", title=None, scale=alt.Scale(domain=domain, range=rng)),
        )
        .properties(
            width=width - 300,
            height=max(14 * len(series) * len(cats) + 6 * len(cats), 50),
            title=_title(title, subtitle),
        )
    )
    return render_svg(chart)


def curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    x_title: str,
    y_title: str,
    rule_at: float | None = None,
    rule_label: str = "",
    percent: bool = True,
    width: int = WIDTH,
    height: int = HEIGHT,
    dashed: Sequence[str] = (),
    subtitle: str = "",
    y_domain: tuple[float, float] | None = (0.0, 1.0),
) -> str:
    """Lines of figures (rates, not counts) against ``x``, one per series."""
    alt = _alt()
    names = list(series)
    data = [
        {"x": float(xv), "y": (None if y is None else float(y)), "s": name}
        for name in names
        for xv, y in zip(x, series[name], strict=True)
    ]
    rng = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    dash = alt.StrokeDash(
        "s:N",
        title=None,
        scale=alt.Scale(domain=names, range=[[6, 3] if n in dashed else [1, 0] for n in names]),
    )
    y_scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale()
    line = (
        alt.Chart(alt.Data(values=data))
        .mark_line(strokeWidth=2.2)
        .encode(
            x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False, nice=False)),
            y=alt.Y(
                "y:Q",
                title=y_title,
                scale=y_scale,
                axis=alt.Axis(format=".0%" if percent else "~g"),
            ),
            color=alt.Color("s:N", title=None, scale=alt.Scale(domain=names, range=rng)),
            strokeDash=dash,
        )
    )
    layers = [line]
    if rule_at is not None:
        layers += _rule(rule_at, rule_label, height)
    chart = alt.layer(*layers).properties(width=width, height=height, title=_title(title, subtitle))
    return render_svg(chart)


def profile(
    positions: Sequence[int],
    rates: Sequence[float | None],
    *,
    title: str,
    x_title: str,
    y_title: str,
    reference: float | None = None,
    reference_label: str = "",
    width: int = WIDTH,
    height: int = 200,
    subtitle: str = "",
) -> str:
    """A rate per position (e.g. how often each filter bit is set), as thin bars, with an
    optional horizontal reference line (e.g. the mean)."""
    alt = _alt()
    data = [
        {"p": int(p), "r": float(r)} for p, r in zip(positions, rates, strict=True) if r is not None
    ]
    chart = (
        alt.Chart(alt.Data(values=data))
        .mark_bar(color=ACCENT, width=max(1.0, width / max(len(positions), 1) * 0.9))
        .encode(
            x=alt.X("p:Q", title=x_title, scale=alt.Scale(domain=[0, len(positions)], nice=False)),
            y=alt.Y("r:Q", title=y_title, axis=alt.Axis(format=".0%")),
        )
    )
    layers = [chart]
    if reference is not None:
        d = alt.Data(values=[{"y": float(reference), "label": reference_label}])
        layers.append(alt.Chart(d).mark_rule(color=RULE, strokeDash=[6, 3]).encode(y="y:Q"))
        if reference_label:
            layers.append(
                alt.Chart(d)
                .mark_text(color=RULE, align="right", dy=-6, fontWeight="bold")
                .encode(y="y:Q", x=alt.value(width), text="label:N")
            )
    out = alt.layer(*layers).properties(width=width, height=height, title=_title(title, subtitle))
    return render_svg(out)


FOR_MATCH = "#2f5d8a"  # evidence for a match (blue)
AGAINST = "#c0392b"  # evidence against (red)
TOTAL = "#5b6472"


def _sign_color() -> Any:
    alt = _alt()
    return alt.Color(
        "sign:N",
        title=None,
        scale=alt.Scale(
            domain=["evidence for a match", "evidence against", "match weight"],
            range=[FOR_MATCH, AGAINST, TOTAL],
        ),
    )


def _sign(bits: float) -> str:
    return "evidence for a match" if bits >= 0 else "evidence against"


def match_weights(
    rows: Sequence[tuple[str, str, float]],
    *,
    title: str,
    x_title: str = "match weight (bits): log2(m / u)",
    subtitle: str = "",
    width: int = WIDTH,
    bar_size: int = 16,
) -> str:
    """Splink-style match weights: (comparison, level, bits) rows as horizontal bars from
    zero, one panel per comparison (in the order given), blue for evidence for a match and
    red for evidence against. Figures, not counts (no disclosure control)."""
    alt = _alt()
    groups = list(dict.fromkeys(g for g, _, _ in rows))
    data: list[dict[str, Any]] = [
        {"g": g, "label": lab, "v": float(v), "order": i, "sign": _sign(float(v))}
        for i, (g, lab, v) in enumerate(rows)
    ]
    lo = min([0.0] + [float(v) for _, _, v in rows])
    hi = max([0.0] + [float(v) for _, _, v in rows])
    scale = alt.Scale(domain=[lo - 0.5, hi + 0.5], nice=False)
    panels = []
    for g in groups:
        sub = [d for d in data if d["g"] == g]
        order = [d["label"] for d in sub]  # a list: a sort field is dropped in layers
        base = alt.Chart(alt.Data(values=sub))
        bars = base.mark_bar(height=bar_size - 4).encode(
            x=alt.X("v:Q", title=x_title if g == groups[-1] else None, scale=scale,
                    axis=alt.Axis(labels=g == groups[-1], ticks=g == groups[-1])),
            y=alt.Y("label:N", title=None, sort=order, axis=alt.Axis(labelLimit=200)),
            color=_sign_color(),
        )  # fmt: skip
        text = base.mark_text(align="left", dx=3, fontSize=10, color="#1d2430").encode(
            x=alt.X("pos:Q", scale=scale),
            y=alt.Y("label:N", sort=order),
            text=alt.Text("v:Q", format="+.1f"),
        ).transform_calculate(pos="max(datum.v, 0)")  # fmt: skip
        zero = (
            alt.Chart(alt.Data(values=[{"x": 0.0}]))
            .mark_rule(color="#1d2430")
            .encode(x=alt.X("x:Q", scale=scale))
        )
        panels.append(
            alt.layer(bars, zero, text).properties(
                width=width - 330,
                height=bar_size * len(sub),
                title=alt.TitleParams(g, fontSize=12, anchor="start", fontWeight="bold"),
            )
        )
    chart = alt.vconcat(*panels, spacing=8).properties(title=_title(title, subtitle))
    return render_svg(chart.resolve_scale(x="shared"))


def waterfall(
    steps: Sequence[tuple[str, float]],
    *,
    title: str,
    total_label: str = "match weight",
    x_title: str = "log2 odds of a match (bits)",
    subtitle: str = "",
    width: int = WIDTH,
    bar_size: int = 22,
) -> str:
    """A waterfall of a match weight: each (label, bits) step a bar from the running total
    before it to the one after it (blue adds evidence for a match, red takes it away), then
    a grey bar from zero to the total, ``total_label``. As Splink's waterfall chart,
    horizontal. Figures, not counts."""
    alt = _alt()
    data: list[dict[str, Any]] = []
    run = 0.0
    for i, (lab, bits) in enumerate(steps):
        b = float(bits)
        data.append({"label": lab, "a": run, "b": run + b, "v": b, "order": i,
                     "sign": _sign(b), "text": f"{b:+.1f}"})  # fmt: skip
        run += b
    data.append({"label": total_label, "a": 0.0, "b": run, "v": run, "order": len(steps),
                 "sign": "match weight", "text": f"{run:+.1f}"})  # fmt: skip
    lo = min([0.0] + [min(d["a"], d["b"]) for d in data])
    hi = max([0.0] + [max(d["a"], d["b"]) for d in data])
    pad = max((hi - lo) * 0.06, 0.5)
    scale = alt.Scale(domain=[lo - pad, hi + pad], nice=False)
    base = alt.Chart(alt.Data(values=data))
    y = alt.Y("label:N", title=None, sort=[d["label"] for d in data], axis=alt.Axis(labelLimit=260))
    bars = base.mark_bar(height=bar_size - 6).encode(
        x=alt.X("a:Q", title=x_title, scale=scale), x2="b:Q", y=y, color=_sign_color()
    )
    text = (
        base.transform_calculate(pos="max(datum.a, datum.b)")
        .mark_text(align="left", dx=4, fontSize=11, color="#1d2430")
        .encode(x=alt.X("pos:Q", scale=scale), y=y, text="text:N")
    )
    zero = (
        alt.Chart(alt.Data(values=[{"x": 0.0}]))
        .mark_rule(color="#1d2430")
        .encode(x=alt.X("x:Q", scale=scale))
    )
    chart = alt.layer(bars, zero, text).properties(
        width=width - 300, height=bar_size * len(data), title=_title(title, subtitle)
    )
    return render_svg(chart)
