"""Dashboard upload: choose a file, check what koe found (columns, roles, problems), fix roles, start.

Plain HTML forms first: choosing a file and pressing 確認 posts it to ``/app/upload/preview``, which keeps
it (``pending_uploads``) and answers the mapping form; that form posts to ``/app/upload``, which starts the
analysis and redirects to the job's progress page. With JavaScript (``koe.js``) the file can be dropped
and the same preview arrives as a fragment (``X-Fragment: 1``) without a page load; the file is sent once
either way. Both steps go through the same function as ``POST /v1/surveys`` (called in-process), so the
dashboard and the API accept, reject and de-duplicate files identically.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypedDict

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipelines.errors import KoeError
from pipelines.records import MetricName, SurveyKind
from service.api.routes import surveys as survey_api
from service.errors import APIError
from service.web import pending_uploads
from service.web.deps import check_csrf, render, runtime_of, signed_in
from service.web.pending_uploads import PendingUpload
from service.web.users import UserInfo

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)
Analyst = Annotated[UserInfo, Depends(signed_in("analyst"))]
CSRF = [Depends(check_csrf())]

ROLES = [  # mapping roles offered per column, in dropdown order
    ("ignore", "使わない"),
    ("score", "スコア（推奨度・満足度など）"),
    ("texts", "自由記述"),
    ("respondent_id", "回答ID"),
    ("date", "回答日時"),
    ("segments", "セグメント"),
]
ENCODINGS = [
    ("", "自動判定"),
    ("cp932", "CP932 (Shift_JIS)"),
    ("utf-8", "UTF-8"),
    ("utf-8-sig", "UTF-8 (BOM付き)"),
    ("euc-jp", "EUC-JP"),
]
KINDS = [  # what the file is: POST /v1/surveys' ``kind``
    ("survey", "アンケート（スコアと自由記述）"),
    ("support", "問い合わせ・チャット（スコアなし）"),
]
METRICS = [  # which score: POST /v1/surveys' ``metric``; the score's range is checked row by row
    ("nps", "NPS（推奨度 0〜10）"),
    ("csat", "CSAT（満足度 1〜5）"),
    ("ces", "CES（努力度 1〜7）"),
]


class UploadOptions(TypedDict):
    """What the upload form chose besides the file and the roles."""

    encoding: str
    kind: SurveyKind
    metric: MetricName


_LIST_ROLES = ("texts", "segments")
_EXPIRED = (
    "確認中のファイルが見つかりません（24時間を過ぎたか、分析を開始済みです）。もう一度選んでください。"
)


def mapping_of(columns: list[str], roles: list[str]) -> dict[str, Any] | None:
    """The ``mapping`` of ``POST /v1/surveys`` from the form's column/role pairs (None without any)."""
    if not columns:
        return None
    mapping: dict[str, Any] = {key: [] for key in _LIST_ROLES}
    for col, role in zip(columns, roles, strict=False):
        if role in _LIST_ROLES:
            mapping[role].append(col)
        elif role != "ignore" and role in dict(ROLES):
            mapping[role] = col
    return mapping


def _roles_of(found: dict[str, Any]) -> dict[str, str]:
    """The role each column has in the detected (or given) mapping."""
    m = found.get("mapping") or {}
    roles: dict[str, str] = {}
    for col in found.get("columns") or []:
        role = "ignore"
        for key in ("score", "respondent_id", "date"):
            if m.get(key) == col:
                role = key
        for key in _LIST_ROLES:
            if col in (m.get(key) or []):
                role = key
        roles[col] = role
    return roles


def _call_upload(
    request: Request,
    pending: PendingUpload,
    mapping: dict[str, Any] | None,
    options: UploadOptions,
    dry_run: bool,
) -> Any:
    """``POST /v1/surveys`` in-process; ``options``: the form's encoding, kind and metric."""
    with pending.path.open("rb") as fh:
        response = survey_api.upload(
            runtime_of(request),
            request.app.state.runner,
            request.app.state.metrics,
            UploadFile(fh, filename=pending.filename),
            mapping=json.dumps(mapping, ensure_ascii=False) if mapping is not None else None,
            encoding=options["encoding"] or None,
            kind=options["kind"],
            metric=options["metric"],
            dry_run=dry_run,
        )
    return json.loads(bytes(response.body))


def _problem(exc: Exception) -> str:
    return str(exc) if isinstance(exc, KoeError) else getattr(exc, "detail", str(exc))


def _page(
    request: Request, *, fragment: bool = False, status: int = 200, error: str | None = None, **ctx: Any
) -> Response:
    ctx = {
        "ROLES": ROLES,
        "ENCODINGS": ENCODINGS,
        "KINDS": KINDS,
        "METRICS": METRICS,
        "KIND_LABELS": dict(KINDS),
        "METRIC_LABELS": dict(METRICS),
        "options": UploadOptions(encoding="", kind="survey", metric="nps"),
        "error": error,
        **ctx,
    }
    if fragment:
        if "found" not in ctx:
            return render(request, "_upload_error.html", {"message": error}, status)
        return render(request, "_upload_preview.html", ctx, status)
    return render(request, "upload.html", ctx, status)


def _preview(
    request: Request,
    pending: PendingUpload,
    options: UploadOptions,
    *,
    mapping: dict[str, Any] | None = None,
    fragment: bool = False,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """The dry run of a pending upload as the mapping form (a whole page, or the fragment for koe.js)."""
    try:
        try:
            found = _call_upload(request, pending, mapping, options, dry_run=True)
        except (KoeError, APIError):
            if mapping is None:
                raise
            found = _call_upload(request, pending, None, options, dry_run=True)  # the detected roles
    except (KoeError, APIError) as exc:  # the file itself cannot be read: nothing to keep it for
        pending_uploads.discard(runtime_of(request).settings.uploads_dir, pending.token)
        return _page(request, fragment=fragment, status=422, error=_problem(exc), options=options)
    return _page(
        request,
        fragment=fragment,
        status=status,
        error=error,
        found=found,
        roles=_roles_of(found),
        pending=pending.token,
        options=options,
    )


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: Analyst) -> Response:
    return _page(request)


@router.post("/upload/preview", response_class=HTMLResponse, dependencies=CSRF)
def upload_preview(
    request: Request,
    user: Analyst,
    file: Annotated[UploadFile | None, File()] = None,
    encoding: Annotated[str, Form(max_length=40)] = "",
    kind: Annotated[SurveyKind, Form()] = "survey",
    metric: Annotated[MetricName, Form()] = "nps",
) -> Response:
    """Keep the file and answer what koe detected: columns with role dropdowns, the first rows, problems."""
    fragment = request.headers.get("x-fragment") == "1"
    options = UploadOptions(encoding=encoding, kind=kind, metric=metric)
    if file is None or not file.filename:
        return _page(
            request, fragment=fragment, status=422, error="ファイルを選んでください。", options=options
        )
    s = runtime_of(request).settings
    try:
        pending = pending_uploads.keep(file.file, file.filename, s.uploads_dir, s.max_upload_bytes)
    except KoeError as exc:  # larger than KOE_MAX_UPLOAD_BYTES
        return _page(request, fragment=fragment, status=413, error=_problem(exc), options=options)
    return _preview(request, pending, options, fragment=fragment)


@router.post("/upload", dependencies=CSRF)
def upload(
    request: Request,
    user: Analyst,
    pending: Annotated[str, Form(max_length=64)] = "",
    encoding: Annotated[str, Form(max_length=40)] = "",
    kind: Annotated[SurveyKind, Form()] = "survey",
    metric: Annotated[MetricName, Form()] = "nps",
    column: Annotated[list[str] | None, Form(max_length=1000)] = None,
    role: Annotated[list[str] | None, Form(max_length=1000)] = None,
) -> Response:
    """Start the analysis of a previewed file with the roles chosen; on to the job's progress page."""
    uploads_dir = runtime_of(request).settings.uploads_dir
    found = pending_uploads.find(uploads_dir, pending)
    if found is None:
        return _page(request, status=410, error=_EXPIRED)
    mapping = mapping_of(column or [], role or [])
    options = UploadOptions(encoding=encoding, kind=kind, metric=metric)
    try:
        body = _call_upload(request, found, mapping, options, dry_run=False)
    except (KoeError, APIError) as exc:  # e.g. no score column chosen: the same form again, with the reason
        return _preview(request, found, options, mapping=mapping, status=422, error=_problem(exc))
    pending_uploads.discard(uploads_dir, found.token)
    job = body.get("job") or {}
    url = f"/app/jobs/{job['id']}" if job else f"/app/surveys/{body['survey']['id']}"
    return RedirectResponse(url, status_code=303)
