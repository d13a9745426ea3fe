"""The report's charts as PNG bytes, drawn with matplotlib from ``summary.json`` alone.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never through ``pyplot``: no global
figure registry fills up in a long-running service, and nothing needs closing. Style and the Japanese font are
applied per chart through ``rc_context`` so that drawing a report does not change matplotlib for its caller.

Each chart is a :class:`Chart` with an ASCII ``key`` (usable as a file name or an e-mail Content-ID), a
Japanese title and an alt text that states the chart's main numbers for readers who cannot see it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from pipelines.report.labels import (
    GROUP_COLORS,
    GROUPS,
    NO_DATA,
    fmt_count,
    fmt_interval,
    fmt_range,
    fmt_score,
    fmt_share,
    fmt_value,
    group_labels,
    metric_label,
    score_kind,
    theme_labels,
)

__all__ = ["Chart", "build_charts", "japanese_font_family", "render_chart_pngs"]

DPI = 110
WIDTH_IN = 900 / DPI  # the report's content column is 900 px wide
MAX_WEEKS = 26  # a longer weekly series is unreadable; the monthly chart covers it
MAX_THEMES = 20
MAX_LABELLED_PERIODS = 13  # beyond this, every point's value and tick label would overlap

_INK = "#333333"
_GRID = "#e3e3e3"
POINT = "#34568b"
NEUTRAL = "#8c8c8c"
_FAINT = "#c8c8c8"

# Installed CJK fonts worth falling back to when japanize-matplotlib cannot be imported (it needs distutils).
_CJK_FALLBACKS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "VL Gothic")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    alt: str
    png: bytes


@functools.cache
def japanese_font_family() -> str:
    """Name of a font with Japanese glyphs, registered with matplotlib's font manager.

    Prefers the IPAexGothic font shipped by japanize-matplotlib, then any installed Noto CJK / IPA font.
    """
    # rc_context: importing japanize-matplotlib also sets the global font family, which is not ours to change.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # japanize-matplotlib uses distutils' LooseVersion
        try:
            import japanize_matplotlib

            font_manager.fontManager.addfont(japanize_matplotlib.get_font_ttf_path())
            return str(japanize_matplotlib.japanize_matplotlib.FONT_NAME)
        except ImportError:
            pass
    # The package may be installed yet fail to import (no distutils on Python 3.12): use its font file directly.
    spec = importlib.util.find_spec("japanize_matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            ttf = Path(location) / "fonts" / "ipaexg.ttf"
            if ttf.is_file():
                font_manager.fontManager.addfont(str(ttf))
                return "IPAexGothic"
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for name in _CJK_FALLBACKS:
        if name in installed:
            return name
    raise ImportError(
        "The report's charts need a Japanese font: pip install japanize-matplotlib "
        "(or install Noto CJK, e.g. apt-get install fonts-noto-cjk)."
    )


def chart_rc() -> dict[Any, Any]:  # matplotlib types rc keys as a Literal of every name
    return {
        "font.family": [japanese_font_family(), "DejaVu Sans"],
        "font.size": 10,
        "axes.edgecolor": "#9a9a9a",
        "axes.labelcolor": _INK,
        "axes.titlesize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": _GRID,
        "grid.linewidth": 0.8,
        "axes.axisbelow": True,
        "xtick.color": _INK,
        "ytick.color": _INK,
        "legend.frameon": False,
        "legend.fontsize": 9,
        "svg.fonttype": "none",
    }


def mpl_text(text: object, limit: int = 24) -> str:
    """User text (theme labels, segment values) for matplotlib: '$' would start mathtext, long values overflow."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def new_figure(height_px: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, max(height_px, 220) / DPI), dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def legend_above(ax: Axes, handles: Sequence[Any] | None = None, ncols: int = 4) -> None:
    """Legend in a row above the plot, where it can never hide a point or an interval."""
    kwargs: dict[str, Any] = {"handles": handles} if handles is not None else {}
    ax.legend(
        **kwargs, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=ncols, borderaxespad=0, fontsize=8.5
    )


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _nps_point(
    block: Mapping[str, Any] | None,
) -> tuple[float | None, float | None, float | None, int | None]:
    """(score, lo, hi, n) of an nps-shaped block; Nones where the summary has no value."""
    if not block:
        return None, None, None, None
    ci = block.get("ci95") or [None, None]
    return block.get("score"), ci[0], ci[1], block.get("n")


def interval_point(
    ax: Any, x: float, y: float, lo: float | None, hi: float | None, color: str, *, hollow: bool = False
) -> None:
    """A point estimate with its 95% interval as a horizontal error bar (hollow: not tested, too few)."""
    ax.errorbar(
        x,
        y,
        xerr=_xerr(x, lo, hi),
        fmt="o",
        color=color,
        ecolor=color,
        elinewidth=1.6,
        capsize=3,
        markersize=6,
        markerfacecolor="white" if hollow else color,
    )


def _xerr(value: float, lo: float | None, hi: float | None) -> list[list[float]]:
    return [[value - lo if lo is not None else 0.0], [hi - value if hi is not None else 0.0]]


def _score_limits(ax: Axes, values: Sequence[float | None], lo: float, hi: float, axis: str = "x") -> None:
    """Fit the axis to the data and intervals with some room for labels, within the metric's range."""
    present = [v for v in values if v is not None and v == v]  # NaN (a gap in a series) is not data
    low = min([*present, 0.0])
    high = max([*present, 0.0])
    pad = max((high - low) * 0.12, 4.0)
    limits = (max(low - pad, lo), min(high + pad, hi))
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)


def _score_range(summary: Mapping[str, Any]) -> tuple[float, float]:
    return (0.0, 100.0) if score_kind(summary) == "percent" else (-100.0, 100.0)


def _unit(summary: Mapping[str, Any]) -> str:
    return "%" if score_kind(summary) == "percent" else "点"


# --- charts ---------------------------------------------------------------------------------------------------


def _score_distribution(summary: Mapping[str, Any]) -> Chart | None:
    dist = summary.get("score_distribution")
    groups = (summary.get("metric") or {}).get("groups") or {}
    if not dist:
        return None
    labels = group_labels(summary)
    nps = summary.get("nps") or {}
    items = sorted((int(k), int(v or 0)) for k, v in dist.items() if str(k).lstrip("-").isdigit())

    def group_of(score: int) -> str | None:
        for group, bounds in groups.items():
            if bounds and bounds[0] <= score <= bounds[1]:
                return str(group)
        return None

    fig, ax = new_figure(330)
    colors = [GROUP_COLORS.get(group_of(s) or "", NEUTRAL) for s, _ in items]
    bars = ax.bar([s for s, _ in items], [c for _, c in items], color=colors, width=0.75)
    ax.bar_label(bars, labels=[f"{c:,}" for _, c in items], padding=2, fontsize=9, color=_INK)
    ax.set_xticks([s for s, _ in items])
    ax.set_xlabel("スコア")
    ax.set_ylabel("回答数（人）")
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.12)
    handles = []
    alt_parts = []
    for group in GROUPS:
        if group not in groups:
            continue
        count = nps.get(group)
        share = (nps.get("shares") or {}).get(group)
        text = f"{labels[group]}（{fmt_range(groups[group])}）: {fmt_count(count)}人・{fmt_share(share)}"
        handles.append(Patch(color=GROUP_COLORS[group], label=text))
        alt_parts.append(text)
    if handles:
        ax.legend(handles=handles, loc="upper left", ncols=1)
    scale = f"{items[0][0]}〜{items[-1][0]}点" if items else ""
    alt = f"{scale}の回答数の分布。" + "、".join(alt_parts)
    return Chart("score_distribution", "スコアの分布", alt, figure_png(fig))


def _segment(
    summary: Mapping[str, Any], index: int, column: str, entries: Sequence[Mapping[str, Any]]
) -> Chart | None:
    rows = [(str(e.get("value")), *_nps_point(e.get("nps"))) for e in entries]
    if not any(score is not None for _, score, *_ in rows):
        return None
    kind = score_kind(summary)
    scored = sorted((r for r in rows if r[1] is not None), key=lambda r: r[1] or 0.0, reverse=True)
    unscored = [r for r in rows if r[1] is None]
    ordered = scored + unscored
    fig, ax = new_figure(90 + 34 * len(ordered))
    top = len(ordered) - 1
    for i, (_, score, lo, hi, _) in enumerate(ordered):
        y = top - i
        if score is None:
            ax.text(
                0.01,
                y,
                NO_DATA,
                va="center",
                ha="left",
                fontsize=9,
                color=NEUTRAL,
                transform=ax.get_yaxis_transform(),
            )
            continue
        interval_point(ax, score, y, lo, hi, POINT)
        ax.annotate(
            fmt_value(score, kind),
            (hi if hi is not None else score, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=_INK,
        )
    ax.set_yticks(range(top, -1, -1), [f"{mpl_text(v)}（n={fmt_count(n)}）" for v, _, _, _, n in ordered])
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.6, top + 0.6)
    overall = (summary.get("nps") or {}).get("score")
    ax.axvline(0, color="#666666", linewidth=0.8)
    handles = [Line2D([], [], color=POINT, marker="o", label=f"{metric_label(summary)}と95%区間")]
    if overall is not None:
        ax.axvline(overall, color="#e08a2c", linestyle="--", linewidth=1.2)
        handles.append(
            Line2D([], [], color="#e08a2c", linestyle="--", label=f"全体 {fmt_value(overall, kind)}")
        )
    lo_all, hi_all = _score_range(summary)
    _score_limits(ax, [v for r in ordered for v in r[1:4]], lo_all, hi_all)
    ax.set_xlabel(f"{metric_label(summary)}（{_unit(summary)}、95%区間）")
    legend_above(ax, handles)
    alt = f"{column}別の{metric_label(summary)}（95%区間）: " + "、".join(
        f"{v} {fmt_value(s, kind)}（{fmt_interval([lo, hi], kind)}、n={fmt_count(n)}）"
        for v, s, lo, hi, n in ordered
    )
    return Chart(f"segment_{index}", f"{column}別の{metric_label(summary)}", alt, figure_png(fig))


def _period_tick(granularity: str, item: Mapping[str, Any], n: int | None) -> str:
    """Tick label of a period: 'W47' and its first day for weeks, '2026年 11月' for months, then n."""
    period = str(item.get("period", ""))
    head = period
    if granularity == "week":
        head = period.split("-")[-1] if "-W" in period else period
        with contextlib.suppress(ValueError):
            start = date.fromisoformat(str(item.get("start")))
            head += f"\n{start.month}/{start.day}〜"
    elif granularity == "month":
        with contextlib.suppress(ValueError):
            first = date.fromisoformat(f"{period}-01")
            head = f"{first.year}年\n{first.month}月"
    return head if n is None else f"{head}\nn={fmt_count(n)}"


def _set_period_ticks(
    ax: Axes, granularity: str, items: Sequence[Mapping[str, Any]], ns: Sequence[int | None]
) -> None:
    """One labelled tick per period, or every k-th one when the series is long enough for labels to collide."""
    step = -(-len(items) // MAX_LABELLED_PERIODS)  # ceil
    xs = list(range(len(items)))[::-1][::step][::-1]  # keep the latest period labelled
    ax.set_xticks(xs, [_period_tick(granularity, items[x], ns[x]) for x in xs], fontsize=8.5)
    ax.grid(axis="x", visible=False)


def _trend(summary: Mapping[str, Any], granularity: str, items: Sequence[Mapping[str, Any]]) -> Chart | None:
    points = [_nps_point(item.get("nps")) for item in items]
    if sum(score is not None for score, *_ in points) < 2:
        return None
    kind = score_kind(summary)
    nan = float("nan")
    xs = list(range(len(items)))
    scores = [nan if s is None else s for s, *_ in points]
    los = [nan if lo is None else lo for _, lo, _, _ in points]
    his = [nan if hi is None else hi for _, _, hi, _ in points]
    fig, ax = new_figure(360)
    ax.fill_between(xs, los, his, color=POINT, alpha=0.15, linewidth=0, label="95%区間")
    ax.plot(xs, scores, color=POINT, marker="o", linewidth=2, label=metric_label(summary))
    lo_all, hi_all = _score_range(summary)
    _score_limits(ax, [*scores, *los, *his], lo_all, hi_all, axis="y")
    # A long series gets only its latest value written out; a short one gets every value, and its gaps named.
    labelled = xs if len(xs) <= MAX_LABELLED_PERIODS else [x for x in xs if points[x][0] is not None][-1:]
    for x in labelled:
        score = points[x][0]
        if score is None:
            ax.annotate(
                NO_DATA,
                (x, ax.get_ylim()[0]),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color=NEUTRAL,
            )
            continue
        ax.annotate(
            fmt_value(score, kind),
            (x, score),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=9,
            color=_INK,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        )
    if lo_all < 0:
        ax.axhline(0, color="#666666", linewidth=0.8)
    _set_period_ticks(ax, granularity, items, [n for *_s, n in points])
    ax.set_ylabel(f"{metric_label(summary)}（{_unit(summary)}）")
    legend_above(ax)
    unit = {"week": "週", "month": "月"}[granularity]
    alt = f"{unit}ごとの{metric_label(summary)}の推移（95%区間の帯つき）: " + "、".join(
        f"{item.get('period')} {fmt_value(s, kind)}（n={fmt_count(n)}）"
        for item, (s, *_r, n) in zip(items, points, strict=True)
    )
    return Chart(f"trend_{granularity}", f"{unit}ごとの{metric_label(summary)}の推移", alt, figure_png(fig))


def _trends(summary: Mapping[str, Any]) -> list[Chart | None]:
    periods = summary.get("periods") or {}
    weeks = list(periods.get("week") or [])[-MAX_WEEKS:]
    months = list(periods.get("month") or [])
    charts = [_trend(summary, "week", weeks)] if len(weeks) >= 2 else []
    # Two or three monthly points say less than the weekly series; from three months on they add a longer view.
    if len(months) >= 3:
        charts.append(_trend(summary, "month", months))
    return charts


def _themes_by_group(summary: Mapping[str, Any]) -> Chart | None:
    themes = [t for t in (summary.get("themes") or []) if t.get("mentions")][:MAX_THEMES]
    if not themes:
        return None
    labels = group_labels(summary)
    by_group = all(t.get("by_group") for t in themes)
    groups = [g for g in GROUPS if by_group and any((t["by_group"].get(g) or {}).get("n") for t in themes)]
    rows = len(themes)
    fig, ax = new_figure(110 + rows * (16 * max(len(groups), 1) + 14))
    top = rows - 1
    ys = [top - i for i in range(rows)]
    alt_parts = []
    if groups:
        height = 0.8 / len(groups)
        for k, group in enumerate(groups):
            shares = [(t["by_group"].get(group) or {}).get("share") for t in themes]
            offset = (k - (len(groups) - 1) / 2) * height
            n = next((t["by_group"][group].get("n") for t in themes if t["by_group"].get(group)), None)
            bars = ax.barh(
                [y - offset for y in ys],
                [s or 0 for s in shares],
                height=height * 0.92,
                color=GROUP_COLORS[group],
                label=f"{labels[group]}（n={fmt_count(n)}）",
            )
            ax.bar_label(
                bars,
                labels=[fmt_share(s, 0) if s is not None else "" for s in shares],
                padding=2,
                fontsize=7,
                color="#555555",
            )
        ax.set_xlabel("グループ内の言及率（そのグループの回答のうち、テーマに触れた割合）")
        legend_above(ax)
        for t in themes:
            shares_text = "・".join(
                f"{labels[g]}{fmt_share((t['by_group'].get(g) or {}).get('share'), 0)}" for g in groups
            )
            alt_parts.append(f"{t.get('label', t.get('id'))}（{shares_text}）")
        title = "テーマ別の言及率（グループ別）"
    else:
        bars = ax.barh(ys, [t.get("share") or 0 for t in themes], height=0.65, color=GROUP_COLORS["all"])
        ax.bar_label(bars, labels=[fmt_share(t.get("share"), 1) for t in themes], padding=2, fontsize=8)
        n = themes[0].get("n")
        ax.set_xlabel(f"言及率（テキストのある回答 n={fmt_count(n)} のうち、テーマに触れた割合）")
        alt_parts = [f"{t.get('label', t.get('id'))} {fmt_share(t.get('share'))}" for t in themes]
        title = "テーマ別の言及率"
    ax.set_yticks(
        ys,
        [f"{mpl_text(t.get('label') or t.get('id'))}（{fmt_count(t.get('mentions'))}件）" for t in themes],
    )
    ax.set_ylim(-0.6, top + 0.6)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.margins(x=0.08)
    return Chart("themes", title, f"{title}: " + "、".join(alt_parts), figure_png(fig))


_SIG_DOWN, _SIG_UP, _NOT_SIG, _TOO_FEW = (
    "有意・押し下げる",
    "有意・押し上げる",
    "有意でない",
    "件数不足（検定なし）",
)


def _driver_style(driver: Mapping[str, Any]) -> tuple[str, str]:
    """(colour, legend label) from the summary's significance flag (the lift test after FDR correction)."""
    if driver.get("gate") == "too_few":
        return _FAINT, _TOO_FEW
    value = (driver.get("impact") or {}).get("value")
    if (driver.get("lift") or {}).get("significant") and value is not None:
        return (GROUP_COLORS["detractors"], _SIG_DOWN) if value < 0 else (GROUP_COLORS["promoters"], _SIG_UP)
    return NEUTRAL, _NOT_SIG


def _drivers(summary: Mapping[str, Any]) -> Chart | None:
    drivers = [d for d in (summary.get("drivers") or []) if (d.get("impact") or {}).get("value") is not None]
    if not drivers:
        return None
    drivers.sort(key=lambda d: d["impact"]["value"])
    fig, ax = new_figure(100 + 30 * len(drivers))
    top = len(drivers) - 1
    seen: dict[str, str] = {}
    for i, d in enumerate(drivers):
        impact = d["impact"]
        value = impact["value"]
        lo, hi = impact.get("ci95") or [None, None]
        color, label = _driver_style(d)
        seen.setdefault(label, color)
        too_few = d.get("gate") == "too_few"
        interval_point(ax, value, top - i, lo, hi, color, hollow=too_few)
    labels = [
        f"{mpl_text(d.get('label') or d.get('theme'))}（n={fmt_count(d.get('mentions'))}）" for d in drivers
    ]
    ax.set_yticks(range(top, -1, -1), labels)
    for tick, d in zip(ax.get_yticklabels(), drivers, strict=True):
        if d.get("gate") == "too_few":
            tick.set_color("#9a9a9a")
    ax.axvline(0, color="#444444", linewidth=1)
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.6, top + 0.6)
    ax.set_xlabel(f"{metric_label(summary)}への影響度（ポイント、95%区間）　← 押し下げる ｜ 押し上げる →")
    alpha = (summary.get("drivers_method") or {}).get("alpha")
    suffix = f"（リフトの q<{alpha}）" if alpha is not None else ""
    handles = [
        Line2D(
            [],
            [],
            color=seen[k],
            marker="o",
            label=k + suffix if k in (_SIG_DOWN, _SIG_UP) else k,
            markerfacecolor="white" if k == _TOO_FEW else seen[k],
        )
        for k in (_SIG_DOWN, _SIG_UP, _NOT_SIG, _TOO_FEW)
        if k in seen
    ]
    legend_above(ax, handles, ncols=2)
    alt = f"テーマごとの{metric_label(summary)}への影響度（95%区間）: " + "、".join(
        f"{d.get('label')} {fmt_score(d['impact']['value'])}（{fmt_interval(d['impact'].get('ci95'))}、{_driver_style(d)[1]}）"
        for d in drivers
    )
    return Chart("drivers", f"テーマが{metric_label(summary)}に与える影響", alt, figure_png(fig))


def _signals(summary: Mapping[str, Any]) -> Chart | None:
    signals = summary.get("signals") or {}
    periods = list(signals.get("by_period") or [])[-MAX_WEEKS:]
    if len(periods) < 2:
        return None
    names = theme_labels(summary)
    pos_names = "・".join(names.get(t, t) for t in signals.get("positive") or [])
    neg_names = "・".join(names.get(t, t) for t in signals.get("negative") or [])
    xs = list(range(len(periods)))
    fig, ax = new_figure(330)
    pos = [p.get("positive") for p in periods]
    neg = [p.get("negative") for p in periods]
    nan = float("nan")
    ax.plot(
        xs,
        [nan if v is None else v for v in pos],
        marker="o",
        linewidth=2,
        color=GROUP_COLORS["promoters"],
        label=f"ポジティブ（{mpl_text(pos_names, 40)}）",
    )
    ax.plot(
        xs,
        [nan if v is None else v for v in neg],
        marker="s",
        linewidth=2,
        color=GROUP_COLORS["detractors"],
        label=f"ネガティブ（{mpl_text(neg_names, 40)}）",
    )
    for x, p, q in zip(xs, pos, neg, strict=True) if len(xs) <= MAX_LABELLED_PERIODS else ():
        # the larger count is labelled above its point, the smaller below, so crossing lines never collide
        p_above = p is not None and (q is None or p >= q)
        for value, above in ((p, p_above), (q, not p_above)):
            if value is not None:
                dy = 7 if above else -13
                ax.annotate(
                    f"{value}",
                    (x, value),
                    xytext=(0, dy),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                    color=_INK,
                )
    # by_period has no dates; the weekly NPS series of the same summary does
    weeks = {w.get("period"): w for w in (summary.get("periods") or {}).get("week") or []}
    dated = [{**weeks.get(p.get("period"), {}), **p} for p in periods]
    _set_period_ticks(ax, "week", dated, [p.get("n") for p in periods])
    counts = [v for v in (*pos, *neg) if v is not None]
    ax.set_ylim(0, max([*counts, 1]) * 1.15 + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("シグナルを含む回答数（件）")
    legend_above(ax, ncols=2)
    alt = "エンゲージメントシグナルの推移（ポジティブ／ネガティブの件数）: " + "、".join(
        f"{p.get('period')} ポジティブ{fmt_count(p.get('positive'))}件・ネガティブ{fmt_count(p.get('negative'))}件"
        f"（n={fmt_count(p.get('n'))}）"
        for p in periods
    )
    return Chart("signals", "エンゲージメントシグナルの推移", alt, figure_png(fig))


def build_charts(summary: Mapping[str, Any]) -> list[Chart]:
    """Every chart the summary has data for, in report order; a chart without data is left out."""
    builders: list[Callable[[], Chart | None]] = [functools.partial(_score_distribution, summary)]
    for index, (column, entries) in enumerate((summary.get("segments") or {}).items(), start=1):
        builders.append(functools.partial(_segment, summary, index, str(column), entries or []))
    charts: list[Chart | None] = []
    with matplotlib.rc_context():
        matplotlib.rcParams.update(chart_rc())
        charts.extend(build() for build in builders)
        charts.extend(_trends(summary))
        charts.extend(build(summary) for build in (_themes_by_group, _drivers, _signals))
    return [c for c in charts if c is not None]


def render_chart_pngs(summary: Mapping[str, Any]) -> dict[str, bytes]:
    """Chart key -> PNG bytes, e.g. for attaching the report's charts to an e-mail by Content-ID."""
    return {chart.key: chart.png for chart in build_charts(summary)}
