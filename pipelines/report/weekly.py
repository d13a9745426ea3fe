"""The weekly theme report's content: summaries + an ISO week -> :class:`WeeklyReport`, a plain data model.

Nothing here computes a statistic. A report rests on two ``summary.json`` documents (docs/summary-schema.md)
built by ``pipelines.aggregate.build_summary``:

* ``current``: the responses of the report week alone (its NPS and interval, themes by group, drivers,
  quotes, promoter quotes, questions);
* ``history``: every dated response up to the end of the report week. Its ``change`` is the report week
  against the week before (NPS difference with its interval, theme share changes with Newcombe intervals),
  its ``periods.week`` the NPS trend and its ``signals.by_period`` the engagement trend.

:func:`weekly_summaries` cuts an analysed export into those two with the pipeline's own functions;
:func:`build_weekly_report` only selects and orders what the summaries hold. The report flags a change
only when its 95% interval excludes 0 (``significant`` in the summary) and always carries the counts behind
it. Quote texts are PII-masked once more here (idempotent), so a report never shows what masking would catch,
whatever produced the summary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pipelines.aggregate import build_summary
from pipelines.errors import ConfigError
from pipelines.nps import Period, period_of
from pipelines.pii import mask_pii
from pipelines.records import AnalyzedRow, IngestInfo

__all__ = [
    "WeekSummaries",
    "WeeklyReport",
    "build_weekly_report",
    "last_complete_week",
    "parse_week",
    "previous_week",
    "weekly_report_from_rows",
    "weekly_summaries",
]

TOP_THEMES = 3  # themes shown per NPS group
MAX_THEMES = 6  # themes shown with quotes
QUOTES_PER_GROUP = 2
TREND_WEEKS = 8  # weeks in the text tables (the charts show up to 26)
_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})")
_GROUP_ORDER = ("detractors", "passives", "promoters")


# --- weeks ------------------------------------------------------------------------------------------------------


def parse_week(value: str) -> Period:
    """``2026-W47`` (ISO 8601 week, Monday to Sunday) as a :class:`~pipelines.nps.Period`."""
    match = _WEEK.fullmatch(str(value).strip().upper())
    if match is None:
        raise ConfigError(
            f"The 'week' parameter must be an ISO week such as 2026-W47; got {value!r}.", value=str(value)
        )
    year, week = int(match[1]), int(match[2])
    try:
        start = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ConfigError(
            f"The 'week' parameter must be a week that exists in {year} (W01 to W52 or W53); got {value!r}.",
            value=str(value),
        ) from None
    return period_of(start, "week")


def previous_week(week: Period) -> Period:
    return period_of(week.start - timedelta(days=7), "week")


def last_complete_week(today: date) -> Period:
    """The last Monday-to-Sunday week that ended before ``today``."""
    return period_of(today - timedelta(days=today.isoweekday()), "week")


# --- the two summaries ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekSummaries:
    current: dict[str, Any]  # the report week's responses
    history: dict[str, Any]  # every dated response up to the end of the report week


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def weekly_summaries(
    rows: Sequence[AnalyzedRow],
    info: IngestInfo,
    taxonomy: list[dict[str, Any]],
    week: Period,
    *,
    model_info: dict[str, Any],
    min_count: int = 5,
    seed: int = 0,
    bootstrap: int = 2000,
    generated_at: datetime | None = None,
) -> WeekSummaries:
    """Re-aggregate an analysed export for one week, with ``build_summary`` (nothing is recomputed here).

    Undated rows cannot be placed in a week and are left out of both summaries. The history summary's
    drivers are not shown, so it skips their bootstrap.
    """
    if info.mapping.date is None:
        raise ConfigError(
            "a weekly report needs a date column; name it with --date-column (or the upload's mapping)",
            file=info.file,
        )
    history_rows = [r for r in rows if r.date is not None and _day(r.date) <= week.end]
    week_rows = [r for r in history_rows if r.date is not None and _day(r.date) >= week.start]
    common: dict[str, Any] = {"model_info": model_info, "min_count": min_count, "seed": seed}
    if generated_at is not None:
        common["generated_at"] = generated_at
    return WeekSummaries(
        current=build_summary(list(week_rows), info, taxonomy, bootstrap=bootstrap, **common),
        history=build_summary(list(history_rows), info, taxonomy, bootstrap=0, **common),
    )


# --- the model --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyReport:
    """Everything a weekly report shows, as plain JSON-ready values; the renderer only formats and lays out.

    Numbers are copied from the summaries unchanged (scores and intervals on the −100…+100 scale, shares as
    fractions). ``charts`` is a summary-shaped excerpt (``metric``, ``periods.week``, ``signals``, ``themes``
    labels) that ``pipelines.report.charts`` can draw from.
    """

    week: str
    start: date
    end: date
    source: str
    kind: str  # survey | support
    metric: str | None  # nps | csat | ces; None for support data
    generated_at: str
    survey_id: str | None = None
    headline: dict[str, Any] | None = None  # the week's nps block (score, ci95, n, group counts and shares)
    volume: dict[str, Any] = field(default_factory=dict)
    change: dict[str, Any] | None = None  # week over week: NPS delta + ci95 + significant, volumes
    theme_changes: dict[str, Any] = field(default_factory=dict)  # rose / fell (significant only) + rest
    groups: dict[str, Any] = field(default_factory=dict)  # detractors / passives / promoters sections
    promoter_quotes: list[dict[str, Any]] = field(default_factory=list)
    themes: list[dict[str, Any]] = field(default_factory=list)
    signals: dict[str, Any] | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)
    support: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    dashboard_url: str | None = None
    charts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return out


def _labels(*summaries: Mapping[str, Any] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for s in summaries:
        for t in (s or {}).get("themes") or []:
            labels.setdefault(str(t["id"]), str(t.get("label") or t["id"]))
    return labels


def _quote(item: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    out = {
        "text": mask_pii(str(item.get("text") or "")),
        "row": item.get("row"),
        "score": item.get("score"),
        "question": item.get("question"),
        "sentiment": item.get("sentiment"),
    }
    if labels is not None and item.get("theme"):
        out["theme"] = labels.get(str(item["theme"]), str(item["theme"]))
    return out


def _quotes(
    summary: Mapping[str, Any], theme: str, group: str, k: int = QUOTES_PER_GROUP
) -> list[dict[str, Any]]:
    items = ((summary.get("quotes") or {}).get(theme) or {}).get(group) or []
    return [_quote(q) for q in items[:k]]


def _theme_change(item: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "theme": item["theme"],
        "label": labels.get(item["theme"], item["theme"]),
        "current": dict(item.get("current") or {}),
        "previous": dict(item.get("previous") or {}),
        "delta": item.get("delta"),
        "ci95": item.get("ci95"),
        "significant": bool(item.get("significant")),
    }


def _week_change(history: Mapping[str, Any], week: Period) -> dict[str, Any] | None:
    """The history's ``change`` when it is the report week against an earlier week, else None."""
    change = history.get("change")
    if not change or change.get("granularity") != "week" or change.get("current") != week.key:
        return None
    return dict(change)


def _changes(change: Mapping[str, Any] | None, labels: Mapping[str, str]) -> dict[str, Any]:
    items = [_theme_change(t, labels) for t in (change or {}).get("themes") or []]
    flagged = [t for t in items if t["significant"] and t["delta"] is not None]
    return {
        "rose": [t for t in flagged if t["delta"] > 0],
        "fell": [t for t in flagged if t["delta"] < 0],
        "within_interval": len(items) - len(flagged),
        "all": items,  # for the chart: every theme mentioned in either week, significant first
    }


def _driver_index(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(d["theme"]): d for d in summary.get("drivers") or []}


def _group_share(theme: Mapping[str, Any], group: str) -> dict[str, Any]:
    cell = (theme.get("by_group") or {}).get(group) or {}
    return {"mentions": cell.get("mentions"), "n": cell.get("n"), "share": cell.get("share")}


def _groups(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Per NPS group: the themes that matter to it, with the counts behind them and the group's own quotes."""
    themes = [t for t in summary.get("themes") or [] if t.get("by_group")]
    if not themes:
        return {}
    drivers = _driver_index(summary)
    out: dict[str, Any] = {}

    def top(group: str, keep: Any = lambda t: True) -> list[Mapping[str, Any]]:
        mentioned = [t for t in themes if (_group_share(t, group)["mentions"] or 0) > 0 and keep(t)]
        return sorted(mentioned, key=lambda t: -(_group_share(t, group)["mentions"] or 0))[:TOP_THEMES]

    def entry(theme: Mapping[str, Any], group: str) -> dict[str, Any]:
        driver = drivers.get(str(theme["id"])) or {}
        return {
            "theme": theme["id"],
            "label": theme.get("label") or theme["id"],
            **_group_share(theme, group),
            "promoters": _group_share(theme, "promoters"),
            "lift": driver.get("lift"),
            "passives_vs_promoters": driver.get("passives_vs_promoters"),
            "impact": driver.get("impact"),
            "gate": driver.get("gate"),
            "quotes": _quotes(summary, str(theme["id"]), group),
        }

    n = {g: _group_share(themes[0], g)["n"] for g in _GROUP_ORDER}
    # Detractors: what they complain about most (themes carried with a negative sentiment count the same;
    # the quotes show the tone).
    out["detractors"] = {"n": n["detractors"], "themes": [entry(t, "detractors") for t in top("detractors")]}

    # Passives: what holds them back from promoting: themes passives mention more often than promoters
    # (the drivers' passives_vs_promoters ratio above 1), positive signals (感謝・信頼 …) left out.
    def holds_back(theme: Mapping[str, Any]) -> bool:
        ratio = ((drivers.get(str(theme["id"])) or {}).get("passives_vs_promoters") or {}).get("ratio")
        return theme.get("polarity") != "positive_signal" and ratio is not None and ratio > 1

    held = [t for t in themes if (_group_share(t, "passives")["mentions"] or 0) > 0 and holds_back(t)]
    held.sort(
        key=lambda t: (
            not (drivers[str(t["id"])].get("passives_vs_promoters") or {}).get("significant"),
            -(_group_share(t, "passives")["mentions"] or 0),
        )
    )
    out["passives"] = {"n": n["passives"], "themes": [entry(t, "passives") for t in held[:TOP_THEMES]]}
    out["promoters"] = {"n": n["promoters"], "themes": [entry(t, "promoters") for t in top("promoters")]}
    return out


def _themes(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The week's most mentioned themes, each with a few quotes from every group (or ``all`` for support)."""
    out = []
    for theme in summary.get("themes") or []:
        if not theme.get("mentions"):
            continue
        by_group = (summary.get("quotes") or {}).get(theme["id"]) or {}
        groups = [g for g in (*_GROUP_ORDER, "all") if by_group.get(g)]
        out.append(
            {
                "theme": theme["id"],
                "label": theme.get("label") or theme["id"],
                "polarity": theme.get("polarity"),
                "mentions": theme.get("mentions"),
                "n": theme.get("n"),
                "share": theme.get("share"),
                "sentiment": dict(theme.get("sentiment") or {}),
                "quotes": [{**q, "group": g} for g in groups for q in _quotes(summary, theme["id"], g, 1)],
            }
        )
        if len(out) >= MAX_THEMES:
            break
    return out


def _signals(
    current: Mapping[str, Any], history: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, Any] | None:
    signals = current.get("signals") or history.get("signals")
    if not signals:
        return None
    weeks = {w.get("period"): w for w in (history.get("periods") or {}).get("week") or []}
    trend = [
        {**p, "start": (weeks.get(p.get("period")) or {}).get("start")}
        for p in ((history.get("signals") or {}).get("by_period") or [])
    ]
    return {
        "positive": [labels.get(t, t) for t in signals.get("positive") or []],
        "negative": [labels.get(t, t) for t in signals.get("negative") or []],
        "week": dict(signals.get("overall") or {}),
        "trend": trend[-TREND_WEEKS:],
    }


def _trend(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in ((history.get("periods") or {}).get("week") or [])[-TREND_WEEKS:]:
        nps = item.get("nps") or {}
        out.append(
            {
                "period": item.get("period"),
                "start": item.get("start"),
                "end": item.get("end"),
                "n": nps.get("n", item.get("n")),
                "score": nps.get("score"),
                "ci95": nps.get("ci95"),
            }
        )
    return out


def _questions(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    questions = summary.get("questions") or {}
    if len(questions) < 2:
        return []  # one question: the whole report is about it
    all_quotes = [
        q
        for by_group in (summary.get("quotes") or {}).values()
        for g in (*_GROUP_ORDER, "all")
        for q in by_group.get(g) or []
    ]
    out = []
    for name, q in questions.items():
        q = q or {}
        themes = [t for t in q.get("themes") or [] if t.get("mentions")]
        themes.sort(key=lambda t: -t["mentions"])
        seen: set[str] = set()
        quotes: list[dict[str, Any]] = []
        for item in all_quotes:
            if (
                item.get("question") == name
                and item.get("text") not in seen
                and len(quotes) < QUOTES_PER_GROUP
            ):
                seen.add(item.get("text"))
                quotes.append(_quote(item))
        out.append(
            {
                "name": name,
                "answered": q.get("answered"),
                "nps": q.get("nps"),
                "sentiment": dict(q.get("sentiment") or {}),
                "themes": [
                    {
                        "label": t.get("label") or t.get("id"),
                        "mentions": t["mentions"],
                        "n": t.get("n"),
                        "share": t.get("share"),
                    }
                    for t in themes[:TOP_THEMES]
                ],
                "quotes": quotes,
            }
        )
    return out


def _volume(current: Mapping[str, Any], change: Mapping[str, Any] | None) -> dict[str, Any]:
    inp = current.get("input") or {}
    nps = current.get("nps") or {}
    return {
        "responses": inp.get("rows", 0),
        "with_text": inp.get("rows_with_text", 0),
        "scored": nps.get("n"),
        "previous": ((change or {}).get("volume") or {}).get("previous"),
    }


def _support(summaries: WeekSummaries, week: Period) -> dict[str, Any]:
    current, history = summaries.current, summaries.history
    labels = _labels(current, history)
    change = _week_change(history, week)
    return {
        "source": (current.get("input") or {}).get("file"),
        "volume": _volume(current, change),
        "previous": (change or {}).get("previous"),
        "theme_changes": _changes(change, labels),
        "themes": _themes(current),
        "signals": _signals(current, history, labels),
    }


def _dashboard(url: str | None, survey_id: str | None, week: Period) -> str | None:
    if not url:
        return None
    return url.replace("{survey_id}", survey_id or "").replace("{week}", week.key)


def build_weekly_report(
    summaries: WeekSummaries,
    week: Period | str,
    *,
    support: WeekSummaries | None = None,
    source: str | None = None,
    survey_id: str | None = None,
    dashboard_url: str | None = None,
) -> WeeklyReport:
    """The weekly report of ``week`` from its two summaries (see :func:`weekly_summaries`).

    ``support``: the same two summaries of a support-comment export (``kind="support"``), shown as a section of
    its own. ``dashboard_url`` may hold ``{survey_id}`` and ``{week}``, which are filled in.
    """
    period = parse_week(week) if isinstance(week, str) else week
    current, history = summaries.current, summaries.history
    labels = _labels(current, history)
    change = _week_change(history, period)
    inp = current.get("input") or {}
    kind = str(inp.get("kind") or ("survey" if current.get("nps") else "support"))
    nps = current.get("nps") if kind == "survey" else None
    change_out = None
    if change is not None:
        change_out = {
            "previous": change.get("previous"),
            "previous_is_last_week": change.get("previous") == previous_week(period).key,
            "delta": change.get("nps_delta"),
            "ci95": change.get("ci95"),
            "significant": change.get("significant"),
            "volume": dict(change.get("volume") or {}),
        }
    charts = {
        "metric": history.get("metric") or current.get("metric"),
        "input": {"metric": inp.get("metric"), "kind": kind},
        "periods": {"week": list((history.get("periods") or {}).get("week") or [])},
        "signals": history.get("signals"),
        "themes": [{"id": t["id"], "label": t.get("label")} for t in history.get("themes") or []],
    }
    return WeeklyReport(
        week=period.key,
        start=period.start,
        end=period.end,
        source=source or str(inp.get("file") or ""),
        kind=kind,
        metric=(current.get("metric") or {}).get("name") if nps is not None else None,
        generated_at=str(current.get("generated_at") or ""),
        survey_id=survey_id,
        headline=dict(nps) if nps else None,
        volume=_volume(current, change),
        change=change_out,
        theme_changes=_changes(change, labels),
        groups=_groups(current) if nps else {},
        promoter_quotes=[_quote(q, labels) for q in current.get("promoter_quotes") or []],
        themes=_themes(current),
        signals=_signals(current, history, labels),
        trend=_trend(history),
        questions=_questions(current),
        support=_support(support, period) if support is not None else None,
        notes=[str(n) for n in current.get("notes") or []],
        dashboard_url=_dashboard(dashboard_url, survey_id, period),
        charts=charts,
    )


def weekly_report_from_rows(
    rows: Sequence[AnalyzedRow],
    info: IngestInfo,
    taxonomy: list[dict[str, Any]],
    week: Period | str,
    *,
    model_info: dict[str, Any],
    support: tuple[Sequence[AnalyzedRow], IngestInfo] | None = None,
    min_count: int = 5,
    seed: int = 0,
    bootstrap: int = 2000,
    generated_at: datetime | None = None,
    source: str | None = None,
    survey_id: str | None = None,
    dashboard_url: str | None = None,
) -> WeeklyReport:
    """:func:`weekly_summaries` then :func:`build_weekly_report`, for an analysed export (and support export)."""
    period = parse_week(week) if isinstance(week, str) else week
    options: dict[str, Any] = {
        "model_info": model_info,
        "min_count": min_count,
        "seed": seed,
        "bootstrap": bootstrap,
        "generated_at": generated_at,
    }
    summaries = weekly_summaries(rows, info, taxonomy, period, **options)
    support_summaries = (
        weekly_summaries(support[0], support[1], taxonomy, period, **options) if support is not None else None
    )
    return build_weekly_report(
        summaries,
        period,
        support=support_summaries,
        source=source,
        survey_id=survey_id,
        dashboard_url=dashboard_url,
    )
