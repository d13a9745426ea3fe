"""Reading stored surveys and their results: find one, the analysis it serves, the row filter of /rows and
the comments page, drivers recomputed on one segment.

One module for the API routes (``/v1/surveys``, ``/v1/surveys/{id}/discovery`` …) and the dashboard, so
both answer the same 404 / 409 / 422 problems with the same words. Nothing here computes a figure: the
numbers come from ``pipelines``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BeforeValidator

from pipelines.aggregate import split_segment, subset_drivers
from pipelines.records import AnalyzedRow, TextResult
from service.errors import APIError
from service.jobs.work import ingest_info
from service.runtime import Runtime
from service.storage.repository import RowFilter
from service.storage.tables import Job, Survey

__all__ = [
    "RowQuery",
    "analysed_survey",
    "analysed_surveys",
    "get_survey",
    "parse_segment",
    "segment_drivers",
]


def get_survey(runtime: Runtime, survey_id: str) -> Survey:
    """The survey, or 404."""
    survey = runtime.repo.get_survey(survey_id)
    if survey is None:
        raise APIError(404, f"no survey with id '{survey_id}' (deleted, or never uploaded)")
    return survey


def analysed_survey(runtime: Runtime, survey_id: str) -> tuple[Survey, Job]:
    """The survey and the job whose results it serves; 409 while the first analysis is still running."""
    survey = get_survey(runtime, survey_id)
    job = runtime.repo.get_job(survey.current_job_id) if survey.current_job_id else None
    if job is None or job.summary is None:
        latest = runtime.repo.latest_job(survey.id)
        state = latest.state if latest else "unknown"
        raise APIError(
            409,
            f"survey '{survey_id}' has no finished analysis yet (job state: {state}); poll GET /v1/jobs/{{id}}",
            job_id=latest.id if latest else None,
            job_state=state,
        )
    return survey, job


def analysed_surveys(runtime: Runtime, limit: int = 20) -> list[tuple[Survey, Job]]:
    """The newest surveys that have a finished analysis (newest first), with the job each one serves."""
    out = []
    for survey in runtime.repo.list_surveys(limit, 0)[1]:
        job = runtime.repo.get_job(survey.current_job_id) if survey.current_job_id else None
        if job is not None and job.summary:
            out.append((survey, job))
    return out


def parse_segment(value: str | None) -> tuple[str, str] | None:
    """``COLUMN:VALUE`` as (column, value); 422 without a column."""
    if value is None:
        return None
    try:
        return split_segment(value)
    except ValueError as exc:
        raise APIError(422, f"segment: {exc}", field="segment") from exc


def segment_drivers(runtime: Runtime, survey: Survey, job: Job, segment: str | None) -> dict[str, Any]:
    """Impact on NPS and lift per theme, for all responses (from the summary) or recomputed on one segment."""
    s = job.summary or {}
    if segment is None:
        return {
            "segment": None,
            "n": (s.get("nps") or {}).get("n"),
            "nps": s.get("nps"),
            "drivers": s.get("drivers"),
            "method": s.get("drivers_method"),
        }
    col, val = parse_segment(segment) or ("", "")
    info = ingest_info(survey.info or {})
    if col not in info.mapping.segments:
        raise APIError(
            422,
            f"segment: '{col}' is not a segment column; segment columns: {', '.join(info.mapping.segments) or '(none)'}",
            field="segment",
        )
    _, page = runtime.repo.query_rows(survey.id, job.id, RowFilter(segment=(col, val)), limit=None)
    rows = [
        AnalyzedRow(
            r.row,
            r.score,
            r.date,
            r.segments,
            {q: TextResult.from_dict(v) for q, v in res.items()},
            bool(r.issues),
        )
        for r, _, res in page
    ]
    st = runtime.settings
    sub = subset_drivers(
        rows,
        info,
        [t.to_dict() for t in runtime.taxonomy(job.taxonomy_version).themes],
        min_count=st.min_count,
        seed=st.seed,
        bootstrap=st.bootstrap_samples,
    )
    return {"segment": {"column": col, "value": val}, **sub, "method": s.get("drivers_method")}


def _day(value: date | None, *, end: bool = False) -> datetime | None:
    if value is None:
        return None
    return datetime.combine(value + timedelta(days=1) if end else value, time.min)


def _iso_date(value: Any) -> Any:
    """Dates as documented (YYYY-MM-DD): pydantic alone would also take 0 or 1700000000 as Unix time."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        raise ValueError("use a date as YYYY-MM-DD, e.g. 2026-10-12")
    return value


_Date = Annotated[date | None, BeforeValidator(_iso_date)]


class RowQuery:
    """The row filter of ``/rows``, the exports and the comments page; a FastAPI dependency (query string)
    that can also be built directly (``RowQuery(theme="price").filter``)."""

    def __init__(
        self,
        theme: Annotated[str | None, Query(max_length=48)] = None,
        sentiment: Annotated[Literal["negative", "neutral", "positive"] | None, Query()] = None,
        group: Annotated[Literal["promoters", "passives", "detractors"] | None, Query()] = None,
        segment: Annotated[str | None, Query(max_length=300, description="COLUMN:VALUE")] = None,
        score_min: Annotated[int | None, Query(ge=-1000, le=1000)] = None,
        score_max: Annotated[int | None, Query(ge=-1000, le=1000)] = None,
        date_from: Annotated[_Date, Query()] = None,
        date_to: Annotated[_Date, Query(description="inclusive")] = None,
        text: Annotated[
            str | None, Query(max_length=200, description="substring of the (normalised) answer")
        ] = None,
        needs_review: Annotated[bool | None, Query()] = None,
        has_issues: Annotated[bool | None, Query()] = None,
    ) -> None:
        self.filter = RowFilter(
            theme=theme,
            sentiment=sentiment,
            group=group,
            segment=parse_segment(segment),
            score_min=score_min,
            score_max=score_max,
            date_from=_day(date_from),
            date_to=_day(date_to, end=True),
            text=unicodedata.normalize("NFKC", text) if text else None,
            needs_review=needs_review,
            has_issues=has_issues,
        )
