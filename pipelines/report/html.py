"""``report.html``: one self-contained page (inline CSS, charts as data: URIs, no script, no network).

The page only displays ``summary.json``. This module turns the summary into a *view*: plain dicts with every
key present, Japanese labels resolved and numbers formatted, so that the template holds layout only and a
field missing from an older or partial summary reads 「データなし」 instead of failing. Jinja2 runs with
autoescape on: comments, segment values and column names are user text and are always escaped.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import jinja2

from pipelines.report.charts import Chart, build_charts
from pipelines.report.insight_views import discovery_view, summaries_view
from pipelines.report.labels import (
    GROUP_COLORS,
    GROUPS,
    NO_DATA,
    SENTIMENT_COLORS,
    SENTIMENT_LABELS,
    SENTIMENTS,
    fmt_count,
    fmt_interval,
    fmt_p,
    fmt_range,
    fmt_ratio,
    fmt_score,
    fmt_share,
    fmt_value,
    group_labels,
    metric_label,
    metric_name,
    score_kind,
    theme_labels,
)

__all__ = ["render_html", "render_report"]

TOP_THEMES_PER_QUESTION = 5
# charts placed by key in the template (segment charts go with their tables); a chart without data is None
_PAGE_CHARTS = ("score_distribution", "trend_week", "trend_month", "themes", "drivers", "signals")
_SAFE_FILE_NAME = re.compile(r"[\w.-]+\.csv")
_KIND_LABELS = {"survey": "アンケート", "support": "サポート問い合わせ"}
_GRANULARITY_LABELS = {"week": "週", "month": "月", "quarter": "四半期"}
_METHOD_LABELS = {
    "adjusted-wald": "調整Wald法",
    "bootstrap": "ブートストラップ法",
    "fisher-exact": "Fisherの正確検定",
    "benjamini-hochberg": "Benjamini-Hochberg法",
}


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails the tests instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        score=fmt_score,
        share=fmt_share,
        interval=fmt_interval,
        ratio=fmt_ratio,
        p=fmt_p,
        num=fmt_count,
        value=fmt_value,
    )
    return env


# --- the view ---------------------------------------------------------------------------------------------------


def _header(summary: Mapping[str, Any]) -> dict[str, Any]:
    inp = summary.get("input") or {}
    model = summary.get("model") or {}
    taxonomy = model.get("taxonomy") or {}
    mapping = inp.get("mapping") or {}
    issues = summary.get("issues") or {}
    kind = inp.get("kind") or ("support" if summary.get("nps") is None else "survey")
    # Only a plain file name next to report.html is linked: never a URL, a scheme (javascript:) or another folder.
    issues_file = PurePath(str(issues.get("file") or "")).name
    if not _SAFE_FILE_NAME.fullmatch(issues_file):
        issues_file = "errors.csv"
    taxonomy_text = " ".join(
        str(x) for x in (taxonomy.get("name"), taxonomy.get("version") and f"v{taxonomy['version']}") if x
    )
    return {
        "file": inp.get("file") or NO_DATA,
        "format": " / ".join(str(x) for x in (inp.get("format"), inp.get("encoding")) if x) or NO_DATA,
        "kind": _KIND_LABELS.get(kind, kind),
        "rows": inp.get("rows"),
        "rows_with_issues": inp.get("rows_with_issues", issues.get("count")),
        "issues_file": issues_file,
        "metric": metric_label(summary) if summary.get("nps") is not None else "なし（スコア列なし）",
        "score_column": mapping.get("score"),
        "text_columns": list(mapping.get("texts") or []),
        "segment_columns": list(mapping.get("segments") or []),
        "date_column": mapping.get("date"),
        "models": [
            (name, model[key])
            for key, name in (("encoder", "エンコーダー"), ("sentiment", "感情"), ("themes", "テーマ"))
            if model.get(key)
        ],
        "taxonomy": taxonomy_text or NO_DATA,
        "generated_at": str(summary.get("generated_at") or NO_DATA).replace("T", " "),
        "schema_version": summary.get("schema_version") or NO_DATA,
    }


def _groups(summary: Mapping[str, Any], block: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = group_labels(summary)
    bounds = (summary.get("metric") or {}).get("groups") or {}
    shares = block.get("shares") or {}
    return [
        {
            "key": group,
            "label": labels[group],
            "range": fmt_range(bounds.get(group)),
            "count": block.get(group),
            "share": shares.get(group),
            "color": GROUP_COLORS[group],
        }
        for group in GROUPS
    ]


def _headline(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    nps = summary.get("nps")
    if nps is None:
        return None
    return {
        "label": metric_label(summary),
        "score": nps.get("score"),
        "ci": nps.get("ci95"),
        "n": nps.get("n"),
        "method": _method_label(nps["method"]) if nps.get("method") else None,
        "groups": _groups(summary, nps),
    }


def _change(summary: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any] | None:
    change = summary.get("change")
    if not change:
        return None
    rose: list[dict[str, Any]] = []
    fell: list[dict[str, Any]] = []
    for item in change.get("themes") or []:
        if not item.get("significant") or item.get("delta") is None:
            continue
        row = {
            "label": labels.get(item.get("theme"), item.get("theme")),
            "current": item.get("current") or {},
            "previous": item.get("previous") or {},
            "delta": item.get("delta"),
            "ci": item.get("ci95"),
        }
        (rose if item["delta"] > 0 else fell).append(row)
    volume = change.get("volume") or {}
    return {
        "unit": _GRANULARITY_LABELS.get(change.get("granularity"), change.get("granularity") or ""),
        "current": change.get("current") or NO_DATA,
        "previous": change.get("previous") or NO_DATA,
        "delta": change.get("nps_delta"),
        "ci": change.get("ci95"),
        "significant": change.get("significant"),
        "volume_current": volume.get("current"),
        "volume_previous": volume.get("previous"),
        "rose": rose,
        "fell": fell,
        "has_score": summary.get("nps") is not None,
    }


def _segments(summary: Mapping[str, Any], charts: Mapping[str, Chart]) -> list[dict[str, Any]]:
    out = []
    for index, (column, entries) in enumerate((summary.get("segments") or {}).items(), start=1):
        rows = []
        for entry in entries or []:
            nps = entry.get("nps") or {}
            rows.append(
                {
                    "value": entry.get("value"),
                    "n": nps.get("n", entry.get("n")),
                    "score": nps.get("score"),
                    "ci": nps.get("ci95"),
                }
            )
        if not any(r["score"] is not None for r in rows):
            continue  # e.g. support kind: no scores by segment to show
        out.append({"column": column, "rows": rows, "chart": charts.get(f"segment_{index}")})
    return out


def _themes(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = group_labels(summary)
    rows = []
    for theme in summary.get("themes") or []:
        by_group = theme.get("by_group") or {}
        rows.append(
            {
                "label": theme.get("label") or theme.get("id"),
                "mentions": theme.get("mentions"),
                "share": theme.get("share"),
                "sentiment": [
                    (SENTIMENT_LABELS[s], (theme.get("sentiment") or {}).get(s)) for s in SENTIMENTS
                ],
                "groups": [(labels[g], (by_group.get(g) or {}).get("share")) for g in GROUPS]
                if by_group
                else [],
            }
        )
    return rows


def _method_label(name: object) -> str:
    return _METHOD_LABELS.get(str(name), str(name))


def _drivers_method_text(method: Mapping[str, Any]) -> str:
    parts = []
    if method.get("test"):
        parts.append(f"検定は{_method_label(method['test'])}")
    if method.get("correction"):
        parts.append(f"多重比較の補正は{_method_label(method['correction'])}")
    if method.get("impact_ci"):
        samples = method.get("bootstrap_samples")
        parts.append(
            f"影響度の区間は{_method_label(method['impact_ci'])}" + (f"（{samples:,}回）" if samples else "")
        )
    return "、".join(parts)


def _drivers(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    drivers = summary.get("drivers")
    if drivers is None:
        return None
    method = summary.get("drivers_method") or {}
    rows = []
    for d in drivers:
        impact, lift = d.get("impact") or {}, d.get("lift") or {}
        pvp = d.get("passives_vs_promoters") or {}
        rows.append(
            {
                "label": d.get("label") or d.get("theme"),
                "mentions": d.get("mentions"),
                "impact": impact.get("value"),
                "impact_ci": impact.get("ci95"),
                "lift": lift.get("ratio"),
                "lift_ci": lift.get("ci95"),
                "q": lift.get("q_value"),
                "significant": lift.get("significant"),
                "pvp": pvp.get("ratio"),
                "pvp_ci": pvp.get("ci95"),
                "pvp_q": pvp.get("q_value"),
                "pvp_significant": pvp.get("significant"),
                "too_few": d.get("gate") == "too_few",
            }
        )
    return {
        "rows": rows,
        "alpha": method.get("alpha"),
        "min_count": method.get("min_count"),
        "method": _drivers_method_text(method),
    }


def _sentiment_split(counts: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    counts = counts or {}
    return [
        {"key": s, "label": SENTIMENT_LABELS[s], "count": counts.get(s), "color": SENTIMENT_COLORS[s]}
        for s in ("positive", "neutral", "negative")
    ]


def _questions(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, q in (summary.get("questions") or {}).items():
        q = q or {}
        nps = q.get("nps") or {}
        themes = sorted(q.get("themes") or [], key=lambda t: t.get("mentions") or 0, reverse=True)
        out.append(
            {
                "name": name,
                "answered": q.get("answered"),
                "score": nps.get("score"),
                "ci": nps.get("ci95"),
                "n": nps.get("n"),
                "has_score": bool(q.get("nps")),
                "sentiment": _sentiment_split(q.get("sentiment")),
                "themes": [
                    {
                        "label": t.get("label") or t.get("id"),
                        "mentions": t.get("mentions"),
                        "share": t.get("share"),
                    }
                    for t in themes[:TOP_THEMES_PER_QUESTION]
                ],
            }
        )
    return out


def _quote(item: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "text": item.get("text") or "",
        "row": item.get("row"),
        "score": item.get("score"),
        "question": item.get("question"),
        "sentiment": SENTIMENT_LABELS.get(item.get("sentiment") or "", ""),
        "theme": (labels or {}).get(item.get("theme") or "", item.get("theme")),
    }


def _quotes(summary: Mapping[str, Any], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    quotes = summary.get("quotes") or {}
    names = group_labels(summary)
    order = [t.get("id") for t in summary.get("themes") or []]
    order += [t for t in quotes if t not in order]
    out = []
    for theme in order:
        by_group = quotes.get(theme)
        if not by_group:
            continue
        keys = [g for g in (*GROUPS, "all") if g in by_group] + [
            g for g in by_group if g not in (*GROUPS, "all")
        ]
        columns = [
            {
                "key": g,
                "label": names.get(g, g),
                "color": GROUP_COLORS.get(g, GROUP_COLORS["all"]),
                "quotes": [_quote(q) for q in by_group.get(g) or []],
            }
            for g in keys
        ]
        if any(c["quotes"] for c in columns):
            out.append({"label": labels.get(theme, theme), "columns": columns})
    return out


def _signals(summary: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any] | None:
    signals = summary.get("signals")
    if not signals:
        return None
    overall = signals.get("overall") or {}
    return {
        "positive": [labels.get(t, t) for t in signals.get("positive") or []],
        "negative": [labels.get(t, t) for t in signals.get("negative") or []],
        "n": overall.get("n"),
        "positive_count": overall.get("positive"),
        "negative_count": overall.get("negative"),
        "index": overall.get("index"),
    }


def _data_uri(chart: Chart | None) -> dict[str, str] | None:
    if chart is None:
        return None
    return {
        "title": chart.title,
        "alt": chart.alt,
        "src": "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii"),
    }


def _view(summary: Mapping[str, Any], charts: Sequence[Chart]) -> dict[str, Any]:
    by_key = {c.key: c for c in charts}
    labels = theme_labels(summary)
    segments = _segments(summary, by_key)
    for seg in segments:
        seg["chart"] = _data_uri(seg["chart"])
    return {
        "header": _header(summary),
        "headline": _headline(summary),
        "notes": [str(n) for n in summary.get("notes") or []],
        "change": _change(summary, labels),
        "segments": segments,
        "themes": _themes(summary),
        "drivers": _drivers(summary),
        "questions": _questions(summary),
        "quotes": _quotes(summary, labels),
        "promoter_quotes": [_quote(q, labels) for q in summary.get("promoter_quotes") or []],
        "signals": _signals(summary, labels),
        "emerging": discovery_view(summary.get("discovery")),
        "summaries": summaries_view(summary.get("summaries"), group_labels(summary), labels),
        "group_labels": group_labels(summary),
        # short name for running text and headings; the headline card carries the full label
        "metric": metric_name(summary).upper() if summary.get("nps") is not None else "スコア",
        "kind": score_kind(summary),  # CSAT reads as a percentage, NPS and CES as signed points
        "charts": {key: _data_uri(by_key.get(key)) for key in _PAGE_CHARTS},
        "NO_DATA": NO_DATA,
    }


def render_html(summary: Mapping[str, Any], charts: Sequence[Chart] | None = None) -> str:
    """The report page as a string; ``charts`` defaults to :func:`build_charts` of the summary."""
    charts = build_charts(summary) if charts is None else charts
    return _environment().get_template("report.html.j2").render(**_view(summary, charts))


def render_report(summary: Mapping[str, Any], out_path: Path) -> Path:
    """Write the self-contained report page for ``summary`` to ``out_path`` and return the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_html(summary), encoding="utf-8")
    return out_path
