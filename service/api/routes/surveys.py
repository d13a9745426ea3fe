"""Survey uploads and their results: /v1/surveys/…"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from pipelines.errors import EncodingError
from pipelines.exports import RowsTable, write_rows_xlsx
from pipelines.ingest import read_survey, sniff
from pipelines.ingest.encoding import resolve_encoding
from pipelines.records import MetricName, SurveyKind, TextResult
from service import survey_queries as queries
from service.api.views import job_out, survey_out
from service.deps import MetricsDep, RunnerDep, RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.jobs.work import ingest_info
from service.runtime import Runtime
from service.schemas import JobOut, ReclassifyRequest, RowsPage, SurveyList, SurveyOut, UploadAccepted
from service.storage.repository import RowFilter
from service.storage.tables import Job, Survey
from service.uploads import accept_upload, parse_mapping, store_upload

router = APIRouter(
    prefix="/v1/surveys", tags=["surveys"], dependencies=[Depends(require("upload"))], responses=AUTH_PROBLEMS
)

_EXPORT_PAGE = 2000
_UNKNOWN = problem_responses({404: "unknown survey"})
_RESULTS = problem_responses({404: "unknown survey", 409: "not analysed yet (the problem names the job)"})


def _check_encoding(name: str | None) -> None:
    """422 for an ``encoding`` that reads no text (base64, rot13, idna, a NUL in the name …), before storing."""
    if name:
        resolve_encoding(name)


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    responses={
        200: {
            "description": "dry run (what was detected, the first rows, the problems) or a duplicate upload",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(
            {
                400: "the multipart body is malformed (no boundary, broken framing)",
                413: "file larger than KOE_MAX_UPLOAD_BYTES",
                422: "the file cannot be read (encoding, no header, unknown mapping column …)",
            }
        ),
    },
)
def upload(
    runtime: RuntimeDep,
    runner: RunnerDep,
    metrics: MetricsDep,
    file: Annotated[UploadFile, File(description="CSV, TSV or XLSX export (UTF-8, UTF-8 with BOM, CP932 …)")],
    mapping: Annotated[
        str | None,
        Form(description='JSON, e.g. {"score": "推奨度", "texts": ["理由"], "segments": ["プラン"]}'),
    ] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
    kind: Annotated[SurveyKind, Form()] = "survey",
    metric: Annotated[MetricName, Form()] = "nps",
    dry_run: Annotated[bool, Form(description="only detect columns and problems; store nothing")] = False,
) -> Any:
    """Upload a survey export. A dry run answers what koe detected before anything is processed; a real
    upload answers 202 with the job to poll. The same bytes with the same options are recognised."""
    s = runtime.settings
    _check_encoding(encoding)
    stored = store_upload(file.file, file.filename, s.uploads_dir, s.max_upload_bytes)
    options: dict[str, Any] = {"encoding": encoding or None, "kind": kind, "metric": metric, "mapping": None}
    try:
        options["mapping"] = parse_mapping(mapping, filename=stored.filename)
        ingest_kwargs: dict[str, Any] = {
            "encoding": options["encoding"],
            "kind": kind,
            "metric": metric,
            "mapping": options["mapping"],
            "max_bytes": s.max_upload_bytes,
            "display_name": stored.filename,
        }
        if dry_run:
            return JSONResponse(sniff(stored.path, **ingest_kwargs), status_code=200)
        found = runtime.repo.find_duplicate(stored.sha256, options)
        if found is not None and found[1] is not None and found[1].state == "failed":
            # the same file failed before (a row limit since raised, a server error): analyse it again
            retry = runtime.repo.create_job(
                found[0].id, "analyze", runtime.taxonomy().version, s.job_chunk_rows
            )
            runner.submit(retry.id)
            body = {"survey": survey_out(found[0]), "job": job_out(runtime.repo, retry), "duplicate": True}
            return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{retry.id}"})
        if found is not None:
            survey, latest = found
            metrics.uploads.labels(duplicate="true").inc()
            body = {
                "survey": survey_out(survey),
                "job": job_out(runtime.repo, latest) if latest else None,
                "duplicate": True,
            }
            return JSONResponse(body, status_code=200, headers={"Location": f"/v1/surveys/{survey.id}"})
        read_survey(stored.path, **ingest_kwargs)  # file-level problems answer now, not later in the job
    except BaseException as exc:
        if runtime.repo.raw_path_users(str(stored.path)) == 0:
            stored.path.unlink(missing_ok=True)
        if isinstance(exc, UnicodeError):  # a codec that fails on these bytes (utf-16 without a BOM …)
            raise EncodingError(
                f"the file cannot be decoded with this encoding ({exc})",
                file=stored.filename,
                column="encoding",
                value=encoding,
            ) from exc
        raise
    finally:
        if dry_run and runtime.repo.raw_path_users(str(stored.path)) == 0:
            stored.path.unlink(missing_ok=True)
    survey, job = accept_upload(runtime, stored, options)
    runner.submit(job.id)
    metrics.uploads.labels(duplicate="false").inc()
    body = {"survey": survey_out(survey), "job": job_out(runtime.repo, job), "duplicate": False}
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("", response_model=SurveyList)
def list_surveys(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    total, items = runtime.repo.list_surveys(limit, offset)
    return {"total": total, "items": [survey_out(x) for x in items]}


@router.get("/{survey_id}", response_model=SurveyOut, responses=_UNKNOWN)
def get_survey(survey_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return survey_out(queries.get_survey(runtime, survey_id))


@router.delete("/{survey_id}", status_code=204, responses=_UNKNOWN)
def delete_survey(survey_id: str, runtime: RuntimeDep) -> Response:
    """Purge the survey: its rows, results, jobs and (unless another survey shares it) the raw file."""
    survey = runtime.repo.delete_survey(survey_id)
    if survey is None:
        raise APIError(404, f"no survey with id '{survey_id}'")
    if runtime.repo.raw_path_users(survey.raw_path) == 0:
        Path(survey.raw_path).unlink(missing_ok=True)
    return Response(status_code=204)


@router.post(
    "/{survey_id}/reclassify",
    status_code=202,
    response_model=JobOut,
    responses={
        **_RESULTS,
        **problem_responses(
            {413: "request body too large", 422: "an unknown taxonomy_version, or invalid body"}
        ),
    },
)
def reclassify(
    survey_id: str, body: ReclassifyRequest, runtime: RuntimeDep, runner: RunnerDep
) -> JSONResponse:
    """Classify the stored rows again under a taxonomy version (default: the current one)."""
    survey, _ = queries.analysed_survey(runtime, survey_id)
    version = runtime.taxonomy(body.taxonomy_version).version
    job = runtime.repo.create_job(survey.id, "reclassify", version, runtime.settings.job_chunk_rows)
    runner.submit(job.id)
    return JSONResponse(
        job_out(runtime.repo, job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


@router.get("/{survey_id}/summary", responses=_RESULTS)
def summary(survey_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """The whole summary (docs/summary-schema.md): NPS with its interval, themes, drivers, quotes, signals."""
    _, job = queries.analysed_survey(runtime, survey_id)
    return dict(job.summary or {})


@router.get("/{survey_id}/themes", responses=_RESULTS)
def themes(survey_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    _, job = queries.analysed_survey(runtime, survey_id)
    s = job.summary or {}
    return {"n": s["input"]["rows_with_text"], "themes": s["themes"], "change": s.get("change")}


@router.get("/{survey_id}/quotes", responses=_RESULTS)
def quotes(
    survey_id: str,
    runtime: RuntimeDep,
    theme: Annotated[str | None, Query(max_length=48)] = None,
) -> dict[str, Any]:
    _, job = queries.analysed_survey(runtime, survey_id)
    s = job.summary or {}
    by_theme = s.get("quotes") or {}
    if theme is not None:
        if theme not in by_theme:
            raise APIError(
                422, f"theme: unknown theme id '{theme}'; known: {', '.join(by_theme)}", field="theme"
            )
        by_theme = {theme: by_theme[theme]}
    return {"quotes": by_theme, "promoter_quotes": s.get("promoter_quotes")}


@router.get("/{survey_id}/drivers", responses=_RESULTS)
def drivers(
    survey_id: str,
    runtime: RuntimeDep,
    segment: Annotated[
        str | None, Query(max_length=300, description="COLUMN:VALUE, e.g. プラン:ベーシック")
    ] = None,
) -> dict[str, Any]:
    """Impact on NPS and lift per theme, for all responses or for one segment value (recomputed on it)."""
    survey, job = queries.analysed_survey(runtime, survey_id)
    return queries.segment_drivers(runtime, survey, job, segment)


@router.get("/{survey_id}/rows", response_model=RowsPage, responses=_RESULTS)
def rows(
    survey_id: str,
    runtime: RuntimeDep,
    q: Annotated[queries.RowQuery, Depends()],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Every row with its classification, in file order, filtered and paginated."""
    survey, job = queries.analysed_survey(runtime, survey_id)
    total, page = runtime.repo.query_rows(survey.id, job.id, q.filter, limit=limit, offset=offset)
    items = [
        {
            "row": r.row,
            "score": r.score,
            "group": g,
            "date": r.date.isoformat() if r.date else None,
            "respondent_id": r.respondent_id,
            "segments": r.segments,
            "answers": res,
            "issues": [i.to_dict() for i in r.issues],
        }
        for r, g, res in page
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _export_rows(
    runtime: Runtime, survey: Survey, job: Job, f: RowFilter
) -> Iterator[tuple[Any, dict[str, TextResult], str | None]]:
    offset = 0
    while True:
        _, page = runtime.repo.query_rows(survey.id, job.id, f, limit=_EXPORT_PAGE, offset=offset)
        if not page:
            return
        for r, g, res in page:
            yield r, {q: TextResult.from_dict(v) for q, v in res.items()}, g
        offset += len(page)


def _table(survey: Survey) -> RowsTable:
    info = ingest_info(survey.info or {})
    return RowsTable(info.columns, info.mapping.texts, group_column=info.kind == "survey")


def _export_name(survey: Survey, ext: str) -> str:
    from urllib.parse import quote

    stem = Path(survey.filename).stem or "survey"
    return f"attachment; filename=\"koe-{survey.id[:8]}.{ext}\"; filename*=UTF-8''{quote(stem)}-koe.{ext}"


@router.get(
    "/{survey_id}/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **_RESULTS},
)
def export_csv(
    survey_id: str, runtime: RuntimeDep, q: Annotated[queries.RowQuery, Depends()]
) -> StreamingResponse:
    """The rows (filtered like /rows) as CSV, UTF-8 with BOM for Excel; formula cells neutralised."""
    survey, job = queries.analysed_survey(runtime, survey_id)
    table = _table(survey)

    def lines() -> Iterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # BOM: Excel on Japanese Windows reads UTF-8 only with it
        writer.writerow(table.header)
        for n, (r, answers, g) in enumerate(_export_rows(runtime, survey, job, q.filter), start=1):
            writer.writerow(table.cells(r, answers, g))
            if n % 500 == 0:
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode("utf-8")

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _export_name(survey, "csv")},
    )


@router.get(
    "/{survey_id}/export.xlsx",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **_RESULTS,
    },
)
def export_xlsx(
    survey_id: str, runtime: RuntimeDep, q: Annotated[queries.RowQuery, Depends()]
) -> FileResponse:
    """The rows (filtered like /rows) as an XLSX sheet; formula cells neutralised."""
    survey, job = queries.analysed_survey(runtime, survey_id)
    fd, name = tempfile.mkstemp(suffix=".xlsx")
    import os

    os.close(fd)
    path = Path(name)
    write_rows_xlsx(path, _table(survey), _export_rows(runtime, survey, job, q.filter))
    return FileResponse(
        path,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": _export_name(survey, "xlsx")},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
