"""Dashboard pages: sign in/out, the survey list, upload (preview + mapping) and job progress.

Uploads go through the same function as ``POST /v1/surveys`` (called in-process, not over HTTP), so the
dashboard and the API accept, reject and de-duplicate files identically.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pipelines.errors import KoeError
from service.api.routes import surveys as survey_api
from service.api.views import job_out
from service.errors import APIError
from service.web import session
from service.web.deps import check_csrf, current_user, render, runtime_of, signed_in
from service.web.users import UserInfo, authenticate_user

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
Analyst = Annotated[UserInfo, Depends(signed_in("analyst"))]
CSRF = [Depends(check_csrf())]

ROLES = [  # mapping roles offered per column, in dropdown order
    ("ignore", "使わない"),
    ("score", "スコア（推奨度）"),
    ("texts", "自由記述"),
    ("respondent_id", "回答ID"),
    ("date", "回答日時"),
    ("segments", "セグメント"),
]
STATES = {
    "queued": "待機中",
    "planning": "準備中",
    "running": "分析中",
    "succeeded": "完了",
    "failed": "失敗",
}


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example) is followed after sign-in."""
    if not value:
        return "/app"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/app"
    return value


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if current_user(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login", dependencies=CSRF)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/app",
) -> Response:
    runtime = runtime_of(request)
    user = authenticate_user(runtime.db, email, password)
    if user is None:
        ctx = {"next": _safe_next(next), "email": email, "error": "メールアドレスかパスワードが違います。"}
        return render(request, "login.html", ctx, 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    session.start_session(runtime.settings, request, response, user.id, user.password_stamp)
    return response


@router.post("/logout", dependencies=CSRF)
def logout() -> Response:
    response = RedirectResponse("/app/login", status_code=303)
    session.clear_session(response)
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: Viewer) -> Response:
    runtime = runtime_of(request)
    _, surveys = runtime.repo.list_surveys(100, 0)
    items = []
    for s in surveys:
        job = runtime.repo.latest_job(s.id)
        items.append({"survey": s, "job": job, "state": STATES.get(job.state, job.state) if job else "—"})
    return render(request, "home.html", {"items": items})


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: Analyst) -> Response:
    return render(request, "upload.html", {})


def _call_upload(
    request: Request, file: UploadFile, mapping: str | None, encoding: str | None, dry_run: bool
) -> Any:
    response = survey_api.upload(
        runtime_of(request),
        request.app.state.runner,
        request.app.state.metrics,
        file,
        mapping=mapping or None,
        encoding=encoding or None,
        kind="survey",
        metric="nps",
        dry_run=dry_run,
    )
    return json.loads(bytes(response.body))


def _problem(exc: Exception) -> str:
    return str(exc) if isinstance(exc, KoeError) else getattr(exc, "detail", str(exc))


@router.post("/upload/preview", response_class=HTMLResponse, dependencies=CSRF)
def upload_preview(
    request: Request,
    user: Analyst,
    file: Annotated[UploadFile, File()],
    mapping: Annotated[str | None, Form(max_length=20000)] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    """The dry run as an HTML fragment: columns with role dropdowns, the first rows, the problems found."""
    try:
        found = _call_upload(request, file, mapping, encoding, dry_run=True)
    except (KoeError, APIError) as exc:
        return render(request, "_upload_error.html", {"message": _problem(exc)}, 422)
    m = found.get("mapping") or {}
    roles: dict[str, str] = {}
    for col in found.get("columns") or []:
        role = "ignore"
        for key in ("score", "respondent_id", "date"):
            if m.get(key) == col:
                role = key
        for key in ("texts", "segments"):
            if col in (m.get(key) or []):
                role = key
        roles[col] = role
    return render(request, "_upload_preview.html", {"found": found, "roles": roles, "ROLES": ROLES})


@router.post("/upload", dependencies=CSRF)
def upload(
    request: Request,
    user: Analyst,
    file: Annotated[UploadFile, File()],
    mapping: Annotated[str | None, Form(max_length=20000)] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    try:
        body = _call_upload(request, file, mapping, encoding, dry_run=False)
    except (KoeError, APIError) as exc:
        return JSONResponse({"error": _problem(exc)}, status_code=422)
    job = body.get("job") or {}
    survey = body["survey"]
    url = f"/app/jobs/{job['id']}" if job else f"/app/surveys/{survey['id']}"
    return JSONResponse(
        {"survey_id": survey["id"], "job_id": job.get("id"), "url": url, "duplicate": body["duplicate"]}
    )


def _job(request: Request, job_id: str) -> dict[str, Any]:
    runtime = runtime_of(request)
    job = runtime.repo.get_job(job_id)
    if job is None:
        raise APIError(404, "no such job")
    out = job_out(runtime.repo, job)
    out["state_label"] = STATES.get(out["state"], out["state"])
    out["percent"] = round(100 * (out["progress"] or 0))
    return out


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, user: Viewer) -> Response:
    try:
        job = _job(request, job_id)
    except APIError:
        return render(request, "error.html", {"title": "ジョブが見つかりません", "message": job_id}, 404)
    survey = runtime_of(request).repo.get_survey(job["survey_id"])
    return render(request, "job.html", {"job": job, "survey": survey})


@router.get("/jobs/{job_id}/status")
def job_status(request: Request, job_id: str, user: Viewer) -> Response:
    try:
        return JSONResponse(_job(request, job_id))
    except APIError:
        return JSONResponse({"error": "no such job"}, status_code=404)
