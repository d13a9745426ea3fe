"""Dashboard pages: sign in/out (with the sign-in lock), the survey list and job progress."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from service.api.views import job_out
from service.errors import APIError
from service.web import session
from service.web.deps import check_csrf, current_user, render, runtime_of, signed_in
from service.web.sign_in_throttle import clear_failures, client_of, locked_for, locked_page, record_failure
from service.web.users import UserInfo, authenticate_user

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
CSRF = [Depends(check_csrf())]

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
    db, settings, client = runtime.db, runtime.settings, client_of(request)
    ctx = {"next": _safe_next(next), "email": email}
    if wait := locked_for(db, settings, email, client):
        return locked_page(request, "login.html", ctx, wait)
    user = authenticate_user(db, email, password)
    if user is None:
        record_failure(db, settings, email, client)
        if wait := locked_for(db, settings, email, client):
            return locked_page(request, "login.html", ctx, wait)
        return render(request, "login.html", {**ctx, "error": "メールアドレスかパスワードが違います。"}, 401)
    clear_failures(db, email, client)
    response = RedirectResponse(_safe_next(next), status_code=303)
    session.start_session(settings, request, response, user.id, user.password_stamp)
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
