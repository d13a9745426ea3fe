"""Japanese wording and number formats shared by the charts and the HTML report.

Everything here only *formats* numbers that ``summary.json`` already holds; nothing is computed.
A missing value (``None``: not computable, or a field an older summary lacks) always reads 「データなし」.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GROUPS",
    "GROUP_COLORS",
    "NO_DATA",
    "SENTIMENTS",
    "SENTIMENT_COLORS",
    "SENTIMENT_LABELS",
    "fmt_count",
    "fmt_interval",
    "fmt_p",
    "fmt_range",
    "fmt_ratio",
    "fmt_score",
    "fmt_share",
    "fmt_value",
    "group_labels",
    "metric_label",
    "metric_name",
    "score_kind",
    "theme_labels",
]

NO_DATA = "データなし"

# Display order everywhere: the group that needs attention first.
GROUPS = ("detractors", "passives", "promoters")
GROUP_COLORS = {"detractors": "#d1495b", "passives": "#a3a8ae", "promoters": "#2e9e5b", "all": "#4c72b0"}

_GROUP_LABELS = {
    "nps": {"promoters": "推奨者", "passives": "中立者", "detractors": "批判者"},
    "csat": {"promoters": "満足", "passives": "どちらでもない", "detractors": "不満"},
    "ces": {"promoters": "容易", "passives": "どちらでもない", "detractors": "困難"},
}
_METRIC_LABELS = {"nps": "NPS", "csat": "CSAT（満足率）", "ces": "CES（顧客努力指標）"}

SENTIMENTS = ("negative", "neutral", "positive")
SENTIMENT_LABELS = {"positive": "ポジティブ", "neutral": "中立", "negative": "ネガティブ"}
SENTIMENT_COLORS = {"positive": "#2e9e5b", "neutral": "#a3a8ae", "negative": "#d1495b"}

_MINUS = "\u2212"  # a real minus sign: a hyphen is easy to miss next to Japanese text


def metric_name(summary: Mapping[str, Any]) -> str:
    metric = summary.get("metric") or {}
    return str(metric.get("name") or (summary.get("input") or {}).get("metric") or "nps")


def metric_label(summary: Mapping[str, Any]) -> str:
    name = metric_name(summary)
    return _METRIC_LABELS.get(name, name.upper())


def score_kind(summary: Mapping[str, Any]) -> str:
    """How the headline metric reads: 'percent' for CSAT (% satisfied, 0–100), else 'score' (signed, −100…+100)."""
    return "percent" if metric_name(summary) == "csat" else "score"


def group_labels(summary: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(_GROUP_LABELS.get(metric_name(summary), _GROUP_LABELS["nps"]))
    labels["all"] = "全件"
    labels["no_score"] = "スコアなし"
    return labels


def theme_labels(summary: Mapping[str, Any]) -> dict[str, str]:
    """Theme id -> Japanese label, from every place of the summary that carries one."""
    labels: dict[str, str] = {}
    sources: list[Sequence[Mapping[str, Any]]] = [summary.get("drivers") or [], summary.get("themes") or []]
    for question in (summary.get("questions") or {}).values():
        sources.append((question or {}).get("themes") or [])
    for source in sources:
        for item in source:
            theme_id = item.get("id") or item.get("theme")
            if theme_id and item.get("label"):
                labels[str(theme_id)] = str(item["label"])
    return labels


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}"
    return text.replace("-", _MINUS) if value < 0 else text


def fmt_score(value: float | None, digits: int = 1) -> str:
    """An NPS-like score or a difference of scores, always signed: ``+6.0``, ``−3.2``."""
    return NO_DATA if value is None else _signed(float(value), digits)


def fmt_value(value: float | None, kind: str = "score") -> str:
    """A metric value as its kind reads: signed score (NPS, CES) or percentage (CSAT)."""
    if kind == "percent":
        return NO_DATA if value is None else f"{float(value):.1f}%"
    return fmt_score(value)


def fmt_range(bounds: Sequence[int] | None) -> str:
    """A group's score range: ``0〜6点``, or ``3点`` for a one-value group."""
    if not bounds or len(bounds) != 2:
        return ""
    lo, hi = bounds
    return f"{lo}点" if lo == hi else f"{lo}〜{hi}点"


def fmt_share(value: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction in [0, 1] as a percentage; ``signed`` for a difference of shares (in points)."""
    if value is None:
        return NO_DATA
    pct = float(value) * 100
    return f"{_signed(pct, digits)}pt" if signed else f"{pct:.{digits}f}%"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return NO_DATA
    value = float(value)
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def fmt_p(value: float | None) -> str:
    """A p- or q-value; tiny values are shown as a bound rather than in scientific notation."""
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_count(value: int | None, unit: str = "") -> str:
    """A count with thousands separators and its unit (``1,234件``); no unit after 「データなし」."""
    return NO_DATA if value is None else f"{int(value):,}{unit}"


def fmt_interval(ci: Sequence[float | None] | None, kind: str = "score") -> str:
    """A 95% interval ``[lo, hi]`` as ``lo〜hi`` in the unit of ``kind``.

    kind: score (signed points) | percent (a CSAT value) | share | share_delta | ratio.
    """
    if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return NO_DATA
    lo, hi = ci
    if kind == "percent":
        return f"{fmt_value(lo, kind)}〜{fmt_value(hi, kind)}"
    if kind == "share":
        return f"{fmt_share(lo)}〜{fmt_share(hi)}"
    if kind == "share_delta":
        return f"{fmt_share(lo, signed=True)}〜{fmt_share(hi, signed=True)}"
    if kind == "ratio":
        return f"{fmt_ratio(lo)}〜{fmt_ratio(hi)}"
    return f"{fmt_score(lo)}〜{fmt_score(hi)}"
