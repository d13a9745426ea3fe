"""Dependencies of the dashboard pages: the signed-in user by role, the CSRF check, and page rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from service.errors import APIError
from service.runtime import Runtime
from service.storage.tables import Job, Survey
from service.survey_queries import analysed_survey
from service.web import session
from service.web.users import UserInfo, get_user

__all__ = [
    "CsrfFailed",
    "Forbidden",
    "LoginRequired",
    "analysed_or_error_page",
    "check_csrf",
    "render",
    "runtime_of",
    "signed_in",
]

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")  # autoescapes .html
ROLE_LABELS = {"admin": "管理者", "analyst": "アナリスト", "viewer": "閲覧者"}
TEMPLATES.env.globals["ROLE_LABELS"] = ROLE_LABELS


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Forbidden(Exception):
    def __init__(self, role: str) -> None:
        self.role = role


class CsrfFailed(Exception):
    pass


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current_user(request: Request) -> UserInfo | None:
    runtime = runtime_of(request)
    found = session.read_session(runtime.settings, request)
    if found is None:
        return None
    user = get_user(runtime.db, found[0])
    if user is None or user.disabled or user.password_stamp != found[1]:
        return None
    return user


def signed_in(role: str = "viewer") -> Callable[[Request], UserInfo]:
    """A dependency: the signed-in user if their role allows ``role``; otherwise sign-in page or 403."""

    def check(request: Request) -> UserInfo:
        user = current_user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        request.state.user = user
        if not user.allows(role):
            raise Forbidden(role)
        return user

    return check


def check_csrf() -> Callable[[Request], Awaitable[None]]:
    """A dependency for every POST: the form field ``csrf_token`` or the header ``X-CSRF-Token``."""

    async def check(request: Request) -> None:
        token = request.headers.get("x-csrf-token")
        if token is None:
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
        if not session.csrf_valid(runtime_of(request).settings, request, token):
            raise CsrfFailed()

    return check


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    settings = runtime_of(request).settings
    ctx = {
        "user": getattr(request.state, "user", None),
        "csrf_token": session.csrf_token(settings, request),
        **(context or {}),
    }
    response = TEMPLATES.TemplateResponse(request, name, ctx, status_code=status)
    session.ensure_csrf_cookie(settings, request, response)
    response.headers["Cache-Control"] = "no-store"
    return response


def analysed_or_error_page(request: Request, survey_id: str) -> tuple[Survey, Job] | Response:
    """The survey and the job it serves, or the error page (404 unknown, 409 not analysed yet) to return."""
    try:
        return analysed_survey(runtime_of(request), survey_id)
    except APIError as exc:
        return render(request, "error.html", {"title": "表示できません", "message": exc.detail}, exc.status)


def install_page_errors(app: Any) -> None:
    async def login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("accept", "").startswith("application/json"):
            return Response(status_code=401)
        return RedirectResponse(f"/app/login?next={quote(exc.next_url, safe='')}", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        label = ROLE_LABELS.get(exc.role, exc.role)
        return render(
            request,
            "error.html",
            {"title": "権限がありません", "message": f"この操作には{label}以上の権限が必要です。"},
            403,
        )

    async def csrf(request: Request, exc: Exception) -> Response:
        message = "フォームの有効期限が切れたか、別のサイトから送信されました。ページを再読み込みしてやり直してください。"
        return render(
            request, "error.html", {"title": "送信を受け付けられません (CSRF)", "message": message}, 403
        )

    app.add_exception_handler(LoginRequired, login)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfFailed, csrf)
