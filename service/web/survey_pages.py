"""Dashboard pages of one analysed survey: overview, drivers, themes, comments (filtered) and their export.

Every figure shown is read from the job's summary (``pipelines.aggregate``), from ``pipelines.theme_trends``
or from the same functions the API serves; nothing is computed here. Charts are the report's matplotlib
charts (``pipelines.report.charts``: Japanese font, axis labels, 95% intervals), drawn once per job.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pipelines.report.charts import build_charts
from pipelines.report.labels import fmt_interval, fmt_score, fmt_share
from pipelines.theme_trends import theme_trends
from service import survey_queries as queries
from service.api.routes import surveys as survey_api
from service.errors import APIError
from service.storage.tables import Job, Survey
from service.web.deps import analysed_or_error_page, render, runtime_of, signed_in
from service.web.svg import interval_bar, sparkline
from service.web.users import UserInfo

__all__ = ["router"]

router = APIRouter(prefix="/app/surveys", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
PAGE = 50
GROUPS = {"detractors": "批判者", "passives": "中立者", "promoters": "推奨者"}
SENTIMENTS = {"negative": "ネガティブ", "neutral": "ニュートラル", "positive": "ポジティブ"}
_cache: OrderedDict[tuple[str, str], Any] = (
    OrderedDict()
)  # (job id, what) -> charts / trends; jobs are immutable
_lock = threading.Lock()


def _cached(job_id: str, what: str, build: Any) -> Any:
    key = (job_id, what)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = build()
    with _lock:
        _cache[key] = value
        while len(_cache) > 32:
            _cache.popitem(last=False)
    return value


def _charts(job: Job) -> dict[str, Any]:
    return _cached(job.id, "charts", lambda: {c.key: c for c in build_charts(job.summary or {})})


def _base(survey: Survey, job: Job, tab: str) -> dict[str, Any]:
    s = job.summary or {}
    return {
        "survey": survey,
        "job": job,
        "s": s,
        "tab": tab,
        "GROUPS": GROUPS,
        "SENTIMENTS": SENTIMENTS,
        "fmt_score": fmt_score,
        "fmt_share": fmt_share,
        "fmt_interval": fmt_interval,
    }


@router.get("/{survey_id}", response_class=HTMLResponse)
def overview(request: Request, survey_id: str, user: Viewer) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    charts = _charts(job)
    s = job.summary or {}
    segments = [
        {"column": col, "entries": entries, "chart": charts.get(f"segment_{i}")}
        for i, (col, entries) in enumerate((s.get("segments") or {}).items(), start=1)
    ]
    ctx = _base(survey, job, "overview")
    ctx.update(
        charts=charts,
        segments=segments,
        # without a score there is no score trend; the engagement signals by period stand in for it
        trends=[charts[k] for k in ("trend_week", "trend_month") if k in charts]
        or [charts[k] for k in ("signals",) if k in charts and not (s.get("nps") or {}).get("n")],
    )
    return render(request, "overview.html", ctx)


@router.get("/{survey_id}/charts/{key}.png")
def chart_png(request: Request, survey_id: str, key: str, user: Viewer) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    chart = _charts(found[1]).get(key)
    if chart is None:
        return Response(status_code=404)
    return Response(chart.png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{survey_id}/drivers", response_class=HTMLResponse)
def drivers(
    request: Request, survey_id: str, user: Viewer, group: str = "detractors", segment: str = ""
) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    group = group if group in GROUPS else "detractors"
    error = None
    try:
        data = queries.segment_drivers(runtime_of(request), survey, job, segment or None)
    except APIError as exc:
        error, data = exc.detail, queries.segment_drivers(runtime_of(request), survey, job, None)
    rows = list(data.get("drivers") or [])
    if group == "passives":
        rows.sort(key=lambda d: -((d.get("passives_vs_promoters") or {}).get("ratio") or 0))
    elif group == "promoters":
        rows.sort(key=lambda d: (d.get("impact") or {}).get("value") or 0, reverse=True)
    else:
        rows.sort(key=lambda d: -((d.get("lift") or {}).get("ratio") or 0))
    bounds = [v for d in rows for v in ((d.get("impact") or {}).get("ci95") or []) if v is not None]
    axis = max([abs(v) for v in bounds] + [1.0])
    for d in rows:
        imp = d.get("impact") or {}
        lo, hi = imp.get("ci95") or (None, None)
        d["_bar"] = interval_bar(imp.get("value"), lo, hi, lo_axis=-axis, hi_axis=axis)
    themes = {t["id"]: t for t in (job.summary or {}).get("themes") or []}
    ctx = _base(survey, job, "drivers")
    ctx.update(
        rows=rows,
        group=group,
        segment=segment,
        data=data,
        error=error,
        themes=themes,
        chart=_charts(job).get("drivers") if not segment else None,
        segment_options=[
            (col, e["value"]) for col, es in ((job.summary or {}).get("segments") or {}).items() for e in es
        ],
    )
    return render(request, "drivers.html", ctx)


def _trends(request: Request, survey: Survey, job: Job) -> dict[str, Any]:
    repo = runtime_of(request).repo

    def build() -> dict[str, Any]:
        rows = ((r.date, answers) for r, answers in repo.iter_analyzed(survey.id, job.id))
        return theme_trends(rows, "week")

    trends: dict[str, Any] = _cached(job.id, "trends", build)
    return trends


@router.get("/{survey_id}/themes", response_class=HTMLResponse)
def themes(request: Request, survey_id: str, user: Viewer) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    trends = _trends(request, survey, job)
    labels = [p["period"] for p in trends["periods"]]
    rows = []
    for t in (job.summary or {}).get("themes") or []:
        series = trends["themes"].get(t["id"]) or []
        rows.append({**t, "_spark": sparkline([x["share"] for x in series], labels)})
    ctx = _base(survey, job, "themes")
    ctx.update(rows=rows, weeks=len(labels), chart=_charts(job).get("themes"))
    return render(request, "themes.html", ctx)


_FILTER_KEYS = (
    "theme",
    "sentiment",
    "group",
    "segment",
    "score_min",
    "score_max",
    "date_from",
    "date_to",
    "text",
)


def _row_query(params: dict[str, str]) -> tuple[queries.RowQuery, list[str]]:
    """The API's row filter from the page's query string (empty fields are no filter)."""
    kw: dict[str, Any] = {}
    errors = []
    for key in _FILTER_KEYS:
        value = (params.get(key) or "").strip()
        if not value:
            continue
        try:
            if key in ("score_min", "score_max"):
                kw[key] = int(value)
            elif key in ("date_from", "date_to"):
                kw[key] = date.fromisoformat(value)
            elif (key == "sentiment" and value not in SENTIMENTS) or (key == "group" and value not in GROUPS):
                raise ValueError(value)
            else:
                kw[key] = value[:300]
        except ValueError:
            errors.append(key)
    try:
        return queries.RowQuery(**kw), errors
    except APIError as exc:
        kw.pop("segment", None)
        return queries.RowQuery(**kw), [*errors, exc.detail]


def _highlight(answer: dict[str, Any], theme: str | None) -> list[dict[str, Any]]:
    """The answer as sentences, those carrying the theme (any theme if none is chosen) marked."""
    sentences = answer.get("sentences") or []
    if not sentences:
        return [{"text": answer.get("text", ""), "mark": False}]
    return [
        {"text": x["text"], "mark": (theme in x.get("themes", [])) if theme else bool(x.get("themes"))}
        for x in sentences
    ]


@router.get("/{survey_id}/comments", response_class=HTMLResponse)
def comments(request: Request, survey_id: str, user: Viewer, page: int = 1) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    params = {k: v for k, v in request.query_params.items() if k in _FILTER_KEYS}
    q, errors = _row_query(params)
    page = max(1, min(page, 10**6))
    total, items = runtime_of(request).repo.query_rows(
        survey.id, job.id, q.filter, limit=PAGE, offset=(page - 1) * PAGE
    )
    theme = params.get("theme") or None
    labels = {t["id"]: t["label"] for t in (job.summary or {}).get("themes") or []}
    rows = [
        {
            "row": r,
            "group": g,
            "answers": [
                {
                    "question": question,
                    "sentiment": a["sentiment"]["label"],
                    "sentences": _highlight(a, theme),
                    "themes": [labels.get(t["id"], t["label"]) for t in a.get("themes") or []],
                }
                for question, a in res.items()
            ],
        }
        for r, g, res in items
    ]
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in params.items() if v})
    ctx = _base(survey, job, "comments")
    ctx.update(
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        params=params,
        errors=errors,
        query=query,
        labels=labels,
        segment_options=[
            f"{col}:{e['value']}"
            for col, es in ((job.summary or {}).get("segments") or {}).items()
            for e in es
        ],
    )
    return render(request, "comments.html", ctx)


@router.get("/{survey_id}/comments.csv")
def export_comments(request: Request, survey_id: str, user: Viewer) -> Response:
    """The filtered comments as the API's CSV export (UTF-8 with BOM, formula cells neutralised)."""
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    q, _ = _row_query(dict(request.query_params))
    return survey_api.export_csv(survey_id, runtime_of(request), q)
