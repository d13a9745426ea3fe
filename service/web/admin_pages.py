"""Dashboard pages that change settings: taxonomy (analyst), report subscriptions (analyst), users and API
keys (admin). Each change goes through the same storage functions as the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from models.taxonomy import Taxonomy
from pipelines.errors import KoeError, Refused
from pipelines.report.labels import fmt_share
from pipelines.report.weekly import last_complete_week
from pipelines.report.weekly_render import render_weekly_standalone
from service.api.routes.reports import SubscriptionIn
from service.errors import APIError
from service.scheduler import report_for_survey, zone
from service.storage import reports as store
from service.storage.keys import SCOPES, create_key, list_keys, revoke_key
from service.storage.taxonomies import VersionConflict, save_taxonomy
from service.survey_queries import analysed_surveys
from service.taxonomy_preview import preview_change
from service.web.deps import check_csrf, render, runtime_of, signed_in
from service.web.users import ROLES, UserInfo, UserRejected, create_user, list_users, set_disabled, set_role

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
Analyst = Annotated[UserInfo, Depends(signed_in("analyst"))]
Admin = Annotated[UserInfo, Depends(signed_in("admin"))]
CSRF = [Depends(check_csrf())]
WEEKDAYS = ["月", "火", "水", "木", "金", "土", "日"]


# --- taxonomy ---------------------------------------------------------------------------------------------------


def _latest_mentions(request: Request) -> dict[str, int]:
    """Mentions per theme in the newest analysed survey (the full survey, from its summary)."""
    newest = analysed_surveys(runtime_of(request), limit=20)
    summary = (newest[0][1].summary or {}) if newest else {}
    return {t["id"]: t["mentions"] for t in summary.get("themes") or []}


def _edited(current: Taxonomy, action: str, form: dict[str, str]) -> tuple[Taxonomy, str]:
    examples = [x.strip() for x in form.get("examples", "").splitlines() if x.strip()]
    if action == "add":
        new = current.add_theme(form.get("id", "").strip(), form.get("name", "").strip(), examples=examples)
        return new, f"add {form.get('id')}"
    if action == "rename":
        new = current.edit(
            form.get("theme", ""), name=form.get("name", "").strip() or None, add_examples=examples
        )
        return new, f"edit {form.get('theme')}"
    if action == "merge":
        return current.merge(
            form.get("theme", ""), form.get("into", "")
        ), f"merge {form.get('theme')} into {form.get('into')}"
    raise KoeError(f"unknown taxonomy action '{action}'")


def _diff(before: Taxonomy, after: Taxonomy) -> list[dict[str, Any]]:
    old = {t.id: t for t in before.themes}
    new = {t.id: t for t in after.themes}
    out = []
    for tid in [*old, *(t for t in new if t not in old)]:
        a, b = old.get(tid), new.get(tid)
        if a == b:
            continue
        kind = "追加" if a is None else "削除（統合）" if b is None else "変更"
        out.append({"id": tid, "kind": kind, "before": a, "after": b})
    return out


@router.get("/taxonomy", response_class=HTMLResponse)
def taxonomy_page(request: Request, user: Viewer) -> Response:
    current = runtime_of(request).taxonomy()
    return render(request, "taxonomy.html", {"tax": current, "mentions": _latest_mentions(request)})


@router.post("/taxonomy", response_class=HTMLResponse, dependencies=CSRF)
async def taxonomy_edit(request: Request, user: Analyst) -> Response:
    """``step=preview`` shows the change and its effect on a sample of a survey's comments (re-classified
    under the proposed taxonomy, nothing saved); ``step=apply`` saves it as a new version if nobody saved
    another one since the preview."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    runtime = runtime_of(request)
    current = runtime.taxonomy()
    ctx: dict[str, Any] = {
        "tax": current,
        "mentions": _latest_mentions(request),
        "form": form,
        "fmt_share": fmt_share,
    }
    try:
        if form.get("base_version") and int(form["base_version"]) != current.version:
            raise VersionConflict(
                f"分類は別の人がバージョン {current.version} に更新しました。内容を確認してやり直してください。"
            )
        new, note = _edited(current, form.get("action", ""), form)
        if form.get("step") == "apply":
            save_taxonomy(runtime.db, new, note=note, expected_version=new.version)
            return RedirectResponse(f"/app/taxonomy?saved={new.version}", status_code=303)
        ctx.update(
            preview={"diff": _diff(current, new), "version": new.version},
            effect=preview_change(runtime, new, form.get("survey_id") or None),
            surveys=analysed_surveys(runtime, limit=20),
        )
    except (KoeError, ValueError) as exc:
        ctx["error"] = str(exc)
        return render(request, "taxonomy.html", ctx, 422)
    except APIError as exc:  # the chosen survey is gone or not analysed
        ctx["error"] = exc.detail
        return render(request, "taxonomy.html", ctx, exc.status)
    return render(request, "taxonomy.html", ctx)


# --- subscriptions ----------------------------------------------------------------------------------------------


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, user: Viewer, error: str | None = None) -> Response:
    runtime = runtime_of(request)
    subs = store.list_subscriptions(runtime.db)
    _, surveys = runtime.repo.list_surveys(100, 0)
    ctx = {
        "subs": subs,
        "surveys": surveys,
        "survey_names": {s.id: s.filename for s in surveys},
        "WEEKDAYS": WEEKDAYS,
        "error": error,
        "tz": runtime.settings.report_timezone,
    }
    return render(request, "subscriptions.html", ctx)


@router.post("/subscriptions", dependencies=CSRF)
def subscription_create(
    request: Request,
    user: Analyst,
    recipients: Annotated[str, Form(max_length=10000)],
    survey_id: Annotated[str, Form(max_length=32)],
    weekday: Annotated[int, Form(ge=0, le=6)] = 0,
    send_time: Annotated[str, Form(max_length=5)] = "09:00",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    runtime = runtime_of(request)
    try:
        body = SubscriptionIn(
            name=name,
            recipients=[r.strip() for r in recipients.replace(",", "\n").splitlines() if r.strip()],
            survey_id=survey_id,
            weekday=weekday,
            send_time=send_time,
        )
    except ValueError as exc:
        return subscriptions_page(request, user, error=str(exc))
    fields = body.model_dump()
    fields["timezone"] = runtime.settings.report_timezone
    store.create_subscription(runtime.db, **fields)
    return RedirectResponse("/app/subscriptions", status_code=303)


@router.post("/subscriptions/{sub_id}/toggle", dependencies=CSRF)
def subscription_toggle(request: Request, sub_id: int, user: Analyst) -> Response:
    db = runtime_of(request).db
    sub = store.get_subscription(db, sub_id)
    if sub is not None:
        store.update_subscription(db, sub_id, active=not sub.active)
    return RedirectResponse("/app/subscriptions", status_code=303)


@router.post("/subscriptions/{sub_id}/delete", dependencies=CSRF)
def subscription_delete(request: Request, sub_id: int, user: Analyst) -> Response:
    store.delete_subscription(runtime_of(request).db, sub_id)
    return RedirectResponse("/app/subscriptions", status_code=303)


@router.get("/subscriptions/{sub_id}/preview", response_class=HTMLResponse)
def subscription_preview(request: Request, sub_id: int, user: Viewer) -> Response:
    """The report the subscription would send next (the last complete week), as the recipients will see it."""
    runtime = runtime_of(request)
    sub = store.get_subscription(runtime.db, sub_id)
    survey_id = sub.survey_id if sub else None
    if sub is not None and survey_id is None:
        found = store.newest_stream_survey(runtime.db, sub.stream or "")
        survey_id = found.id if found else None
    if sub is None or survey_id is None:
        return render(
            request,
            "error.html",
            {"title": "プレビューできません", "message": "対象の調査がありません。"},
            404,
        )
    week = last_complete_week(datetime.now(zone(sub.timezone)).date())
    try:
        report = report_for_survey(runtime, survey_id, week, support_survey_id=sub.support_survey_id)
    except KoeError as exc:
        return render(request, "error.html", {"title": "プレビューできません", "message": str(exc)}, 422)
    return HTMLResponse(
        render_weekly_standalone(report), headers={"Content-Security-Policy": "script-src 'none'"}
    )


# --- users and API keys (admin) ---------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, user: Admin, message: str | None = None, new_key: str | None = None
) -> Response:
    db = runtime_of(request).db
    ctx = {
        "users": list_users(db),
        "keys": list_keys(db),
        "ROLES": ROLES,
        "SCOPES": SCOPES,
        "message": message,
        "new_key": new_key,
    }
    return render(request, "admin.html", ctx)


@router.post("/admin/users", dependencies=CSRF)
def admin_user_create(
    request: Request,
    user: Admin,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=20)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        create_user(runtime_of(request).db, email, password, role, name)
    except UserRejected as exc:
        return admin_page(request, user, message=exc.japanese)
    return RedirectResponse("/app/admin", status_code=303)


@router.post("/admin/users/{user_id}", dependencies=CSRF)
def admin_user_update(
    request: Request,
    user_id: int,
    user: Admin,
    role: Annotated[str | None, Form(max_length=20)] = None,
    disabled: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    db = runtime_of(request).db
    if user_id == user.id and (disabled == "1" or (role and role != "admin")):
        return admin_page(request, user, message="自分自身の無効化や権限の変更はできません。")
    try:
        if role:
            set_role(db, user_id, role)
        if disabled is not None:
            set_disabled(db, user_id, disabled == "1")
    except UserRejected as exc:
        return admin_page(request, user, message=exc.japanese)
    return RedirectResponse("/app/admin", status_code=303)


@router.post("/admin/keys", dependencies=CSRF)
async def admin_key_create(request: Request, user: Admin) -> Response:
    form = await request.form()
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        _, key = create_key(runtime_of(request).db, str(form.get("name", "")), scopes)
    except Refused as exc:
        return admin_page(request, user, message=exc.japanese)
    return admin_page(request, user, new_key=key)  # shown once, never stored


@router.post("/admin/keys/{key_id}/revoke", dependencies=CSRF)
def admin_key_revoke(request: Request, key_id: int, user: Admin) -> Response:
    revoke_key(runtime_of(request).db, key_id)
    return RedirectResponse("/app/admin", status_code=303)
