"""The weekly report as e-mail HTML, plain text and PNG charts, from a :class:`~pipelines.report.weekly.WeeklyReport`.

Mail clients are not browsers: the HTML is a 640-pixel table layout with inline styles only (no ``<style>``
block that Gmail or Outlook might drop, no web fonts, no script), and images are referenced through
``image_src`` — ``cid:`` references for an e-mail (``service.mailer`` attaches the PNGs), ``data:`` URIs for the
standalone download. Wording shared by both parts (the verdict on a change, the subject) is written here once.

Charts reuse ``pipelines.report.charts`` (Japanese font, figure style, interval drawing); the one chart the full
report does not have — theme share changes with their intervals — is drawn here with the same helpers.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import jinja2
import matplotlib
from matplotlib.lines import Line2D

from pipelines.report.charts import (
    DPI,
    NEUTRAL,
    POINT,
    Chart,
    build_charts,
    chart_rc,
    figure_png,
    interval_point,
    legend_above,
    mpl_text,
    new_figure,
)
from pipelines.report.labels import (
    GROUP_COLORS,
    NO_DATA,
    SENTIMENT_LABELS,
    fmt_count,
    fmt_interval,
    fmt_p,
    fmt_range,
    fmt_ratio,
    fmt_score,
    fmt_share,
    fmt_value,
    group_labels,
)
from pipelines.report.weekly import WeeklyReport

__all__ = [
    "date_range_label",
    "render_weekly_html",
    "render_weekly_standalone",
    "render_weekly_text",
    "weekly_charts",
    "weekly_subject",
]

MAX_CHANGE_THEMES = 10
EMAIL_CHART_PX = (
    660  # the e-mail shows charts 592 px wide; the reused report charts are 900 px and scale down
)
_WEEKDAYS = "月火水木金土日"
_RISE, _FALL = "#c0622b", POINT
_REUSED_CHARTS = ("trend_week", "signals")  # drawn by pipelines.report.charts from the report's excerpt


# --- wording ----------------------------------------------------------------------------------------------------


def date_range_label(start: date, end: date) -> str:
    """``2026年11月16日（月）〜22日（日）``; the month and year are repeated only when they change."""
    head = f"{start.year}年{start.month}月{start.day}日（{_WEEKDAYS[start.weekday()]}）"
    if end.year != start.year:
        tail = f"{end.year}年{end.month}月{end.day}日"
    elif end.month != start.month:
        tail = f"{end.month}月{end.day}日"
    else:
        tail = f"{end.day}日"
    return f"{head}〜{tail}（{_WEEKDAYS[end.weekday()]}）"


def weekly_subject(report: WeeklyReport) -> str:
    """``【週次レポート】お客様の声 2026年11月16日（月）〜22日（日） 2026-W47 ・ survey.csv``."""
    subject = f"【週次レポート】お客様の声 {date_range_label(report.start, report.end)} {report.week}"
    if report.source:
        subject += f" ・ {report.source}"
    return subject


def _metric(report: WeeklyReport) -> str:
    return {"nps": "NPS", "csat": "CSAT", "ces": "CES"}.get(report.metric or "", "スコア")


def _kind(report: WeeklyReport) -> str:
    return "percent" if report.metric == "csat" else "score"


def _verdict(report: WeeklyReport) -> str | None:
    """One sentence on the week-over-week change of the score: is it larger than its uncertainty?"""
    change = report.change
    if change is None or change.get("delta") is None:
        return None
    unit = "ポイント"
    prev = "前週" if change.get("previous_is_last_week") else f"{change.get('previous')}（前週は回答なし）"
    delta = fmt_score(change["delta"])
    ci = fmt_interval(change.get("ci95"))
    if change.get("significant"):
        direction = "上昇" if change["delta"] > 0 else "低下"
        return f"{prev}から{delta}{unit}（95%区間 {ci}）。区間が0を含まないため、偶然のばらつきを超えた{direction}です。"
    return f"{prev}から{delta}{unit}（95%区間 {ci}）。区間が0をまたぐため、誤差の範囲内の変化です。"


def _preheader(report: WeeklyReport) -> str:
    parts = []
    if report.headline and report.headline.get("score") is not None:
        parts.append(f"{_metric(report)} {fmt_value(report.headline['score'], _kind(report))}")
    if report.change and report.change.get("delta") is not None:
        sig = "有意な変化" if report.change.get("significant") else "誤差の範囲内"
        parts.append(f"前週比 {fmt_score(report.change['delta'])}（{sig}）")
    rose = [t["label"] for t in report.theme_changes.get("rose") or []]
    if rose:
        parts.append("増えたテーマ: " + "・".join(rose))
    parts.append(f"回答 {fmt_count(report.volume.get('responses'), '件')}")
    return "、".join(parts)


# --- charts -----------------------------------------------------------------------------------------------------


def _theme_change_chart(report: WeeklyReport) -> Chart | None:
    """Each theme's share this week minus last week, in points, with its 95% (Newcombe) interval."""
    items = [t for t in report.theme_changes.get("all") or [] if t.get("delta") is not None and t.get("ci95")]
    items = items[:MAX_CHANGE_THEMES]
    if not items:
        return None
    items.sort(key=lambda t: t["delta"])
    fig, ax = new_figure(110 + 30 * len(items))
    fig.set_size_inches(EMAIL_CHART_PX / DPI, fig.get_size_inches()[1])  # drawn at the size mail shows it
    top = len(items) - 1
    for i, t in enumerate(items):
        lo, hi = (100 * x for x in t["ci95"])
        delta = 100 * t["delta"]
        # rose / fell, not good / bad: a rise of 感謝 and of 対応が遅い look alike; the label says which
        color = (_RISE if delta > 0 else _FALL) if t["significant"] else NEUTRAL
        interval_point(ax, delta, top - i, lo, hi, color, hollow=not t["significant"])
    labels = [
        f"{mpl_text(t['label'], 16)}（{fmt_count(t['previous'].get('mentions'))}→{fmt_count(t['current'].get('mentions'))}件）"
        for t in items
    ]
    ax.set_yticks(range(top, -1, -1), labels)
    ax.axvline(0, color="#444444", linewidth=1)
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.6, top + 0.6)
    ax.set_xlabel("言及率の変化（ポイント、95%区間）　← 減った ｜ 増えた →")
    styles = {
        "rose": Line2D([], [], color=_RISE, marker="o", label="増えた（区間が0を含まない）"),
        "fell": Line2D([], [], color=_FALL, marker="o", label="減った（区間が0を含まない）"),
        "flat": Line2D([], [], color=NEUTRAL, marker="o", markerfacecolor="white", label="誤差の範囲内"),
    }
    present = {("rose" if t["delta"] > 0 else "fell") if t["significant"] else "flat" for t in items}
    legend_above(ax, [h for k, h in styles.items() if k in present], ncols=3)
    alt = "テーマ別の言及率の前週比（95%区間）: " + "、".join(
        f"{t['label']} {fmt_share(t['previous'].get('share'))}→{fmt_share(t['current'].get('share'))}"
        f"（{fmt_share(t['delta'], signed=True)}、{'区間が0を含まない' if t['significant'] else '誤差の範囲内'}）"
        for t in reversed(items)
    )
    return Chart("theme_change", "テーマの言及率の変化（前週比）", alt, figure_png(fig))


def weekly_charts(report: WeeklyReport) -> list[Chart]:
    """The report's charts in display order: NPS trend, theme changes, engagement signals (those with data)."""
    reused = {c.key: c for c in build_charts(report.charts) if c.key in _REUSED_CHARTS}
    with matplotlib.rc_context():
        matplotlib.rcParams.update(chart_rc())
        change = _theme_change_chart(report)
    ordered = [reused.get("trend_week"), change, reused.get("signals")]
    return [c for c in ordered if c is not None]


def data_uri(chart: Chart) -> str:
    return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")


# --- templates --------------------------------------------------------------------------------------------------


def _filters() -> dict[str, Any]:
    return {
        "score": fmt_score,
        "share": fmt_share,
        "interval": fmt_interval,
        "ratio": fmt_ratio,
        "p": fmt_p,
        "num": fmt_count,
        "value": fmt_value,
    }


@functools.cache
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_filters())
    return env


def _view(report: WeeklyReport, unsubscribe_url: str | None) -> dict[str, Any]:
    labels = group_labels({"metric": {"name": report.metric or "nps"}})
    bounds = (report.charts.get("metric") or {}).get("groups") or {}
    return {
        "r": report,
        "subject": weekly_subject(report),
        "range": date_range_label(report.start, report.end),
        "metric": _metric(report),
        "kind": _kind(report),
        "verdict": _verdict(report),
        "preheader": _preheader(report),
        "group_labels": labels,
        "ranges": {g: fmt_range(bounds.get(g)) for g in ("detractors", "passives", "promoters")},
        "group_colors": GROUP_COLORS,
        "sentiment_labels": SENTIMENT_LABELS,
        "unsubscribe_url": unsubscribe_url,
        "NO_DATA": NO_DATA,
    }


def render_weekly_html(
    report: WeeklyReport,
    charts: Sequence[Chart],
    image_src: Mapping[str, str],
    *,
    unsubscribe_url: str | None = None,
) -> str:
    """E-mail HTML; each chart's ``<img src>`` is ``image_src[chart.key]`` (``cid:…`` or a ``data:`` URI)."""
    images = {c.key: {"src": image_src[c.key], "title": c.title, "alt": c.alt} for c in charts}
    return (
        _environment(True)
        .get_template("weekly_email.html.j2")
        .render(**_view(report, unsubscribe_url), images=images)
    )


def render_weekly_text(report: WeeklyReport, *, unsubscribe_url: str | None = None) -> str:
    """The plain-text part: the same content, readable in any client (and by screen readers)."""
    return _environment(False).get_template("weekly_email.txt.j2").render(**_view(report, unsubscribe_url))


def render_weekly_standalone(report: WeeklyReport, charts: Sequence[Chart] | None = None) -> str:
    """One self-contained HTML file (charts as ``data:`` URIs) for download."""
    charts = weekly_charts(report) if charts is None else charts
    return render_weekly_html(report, charts, {c.key: data_uri(c) for c in charts})
