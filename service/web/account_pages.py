"""The signed-in user's own account: who they are, and a password change (current password required).

A new password follows the same policy as ``create_user``. Changing it ends every other session of the
account (their cookies carry the old password's stamp) and renews this one. Wrong current passwords
count towards the sign-in lock (``sign_in_throttle``), so a stolen session cannot guess the password.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.web import session
from service.web.deps import check_csrf, render, runtime_of, signed_in
from service.web.sign_in_throttle import clear_failures, client_of, locked_for, locked_page, record_failure
from service.web.users import MIN_PASSWORD, UserInfo, UserRejected, change_password

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
CSRF = [Depends(check_csrf())]


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, user: Viewer, changed: bool = False) -> Response:
    return render(request, "account.html", {"changed": changed, "min_password": MIN_PASSWORD})


@router.post("/account/password", response_class=HTMLResponse, dependencies=CSRF)
def password_change(
    request: Request,
    user: Viewer,
    current_password: Annotated[str, Form(max_length=1000)],
    new_password: Annotated[str, Form(max_length=1000)],
    new_password_confirm: Annotated[str, Form(max_length=1000)],
) -> Response:
    runtime = runtime_of(request)
    db, settings, client = runtime.db, runtime.settings, client_of(request)
    ctx = {"min_password": MIN_PASSWORD}
    if wait := locked_for(db, settings, user.email, client):
        return locked_page(request, "account.html", ctx, wait)
    if new_password != new_password_confirm:
        return render(request, "account.html", {**ctx, "error": "確認用のパスワードが一致しません。"}, 422)
    try:
        changed = change_password(db, user.id, current_password, new_password)
    except UserRejected as exc:
        return render(request, "account.html", {**ctx, "error": exc.japanese}, 422)
    if changed is None:
        record_failure(db, settings, user.email, client)
        if wait := locked_for(db, settings, user.email, client):
            return locked_page(request, "account.html", ctx, wait)
        return render(request, "account.html", {**ctx, "error": "現在のパスワードが違います。"}, 422)
    clear_failures(db, user.email, client)
    response = RedirectResponse("/app/account?changed=true", status_code=303)
    session.start_session(settings, request, response, changed.id, changed.password_stamp)
    return response
