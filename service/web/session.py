"""Sign-in sessions and CSRF tokens for the dashboard.

* Session: a signed, timestamped cookie (itsdangerous) holding the user id and a stamp of the password hash;
  HttpOnly, SameSite=Lax, Secure over https (or when KOE_COOKIE_SECURE says so), expiring after
  KOE_SESSION_HOURS. The user is re-read on every request, so a disabled account or a changed password ends
  its sessions at once.
* CSRF: a random value in its own cookie, and in every form the HMAC of that value under the secret key
  (a signed double-submit token). A cross-site page can neither read the cookie nor forge the HMAC. The value
  is replaced at sign-in, so a token planted before it does not survive.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.config import Settings

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "clear_session",
    "csrf_token",
    "csrf_valid",
    "ensure_csrf_cookie",
    "read_session",
    "secret_key",
    "start_session",
]

SESSION_COOKIE = "koe_session"
CSRF_COOKIE = "koe_csrf"


@lru_cache(maxsize=16)
def _secret_from_file(path: Path) -> bytes:
    """The generated key in data_dir, created once (0600) so that sessions survive a restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_urlsafe(48).encode("ascii"))
    return path.read_bytes().strip()


def secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    return _secret_from_file(settings.data_dir / "secret_key")


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt="koe-dashboard-session")


def _secure(settings: Settings, request: Request) -> bool:
    return settings.cookie_secure if settings.cookie_secure is not None else request.url.scheme == "https"


def start_session(settings: Settings, request: Request, response: Response, user_id: int, stamp: str) -> None:
    value = _serializer(settings).dumps({"uid": user_id, "pw": stamp})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(settings, request),
        path="/",
    )
    _set_csrf_cookie(settings, request, response, secrets.token_urlsafe(24))  # fresh token after sign-in


def read_session(settings: Settings, request: Request) -> tuple[int, str] | None:
    """(user id, password stamp) of a valid, unexpired session cookie."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        data: Any = _serializer(settings).loads(value, max_age=int(settings.session_hours * 3600))
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        return None
    return data["uid"], str(data.get("pw", ""))


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _set_csrf_cookie(settings: Settings, request: Request, response: Response, value: str) -> None:
    request.state.csrf_value = value
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="strict", secure=_secure(settings, request), path="/"
    )


def _csrf_value(request: Request) -> str | None:
    return getattr(request.state, "csrf_value", None) or request.cookies.get(CSRF_COOKIE)


def ensure_csrf_cookie(settings: Settings, request: Request, response: Response) -> None:
    if not request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_value", None):
        _set_csrf_cookie(settings, request, response, _csrf_value(request) or secrets.token_urlsafe(24))


def csrf_token(settings: Settings, request: Request) -> str:
    """The token for this visitor's forms (a new cookie value is made up here when there is none yet)."""
    value = _csrf_value(request)
    if not value:
        value = secrets.token_urlsafe(24)
        request.state.csrf_value = value
    return hmac.new(secret_key(settings), f"csrf:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(settings: Settings, request: Request, token: str | None) -> bool:
    value = request.cookies.get(CSRF_COOKIE)
    if not value or not token:
        return False
    expected = hmac.new(secret_key(settings), f"csrf:{value}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, token)
