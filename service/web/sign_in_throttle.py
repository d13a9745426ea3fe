"""Sign-in throttling: after ``KOE_LOGIN_MAX_FAILURES`` wrong passwords for one e-mail address from one
client within ``KOE_LOGIN_LOCK_MINUTES``, that pair is refused (HTTP 429) until the oldest of those
failures is that old. Wrong current passwords on the password change page count too, so a stolen session
cannot be used to guess the password either.

Failures live in the database (``sign_in_failures``), so a lock holds across restarts and across API
instances. The pair is stored as a SHA-256, never the address or the client in the clear. Attempts made
while locked are not checked and not counted, so a lock ends on time even under a steady stream of them.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import delete, select

from service.config import Settings
from service.storage.db import Database, as_utc
from service.storage.tables import SignInFailure
from service.web.deps import render

__all__ = ["clear_failures", "client_of", "locked_for", "locked_page", "record_failure"]


def _key(email: str, client: str) -> str:
    return hashlib.sha256(f"{email.strip().lower()}\x00{client}".encode()).hexdigest()


def locked_for(db: Database, settings: Settings, email: str, client: str) -> timedelta | None:
    """How long the pair stays locked, or None if it may try now."""
    window = timedelta(minutes=settings.login_lock_minutes)
    now = datetime.now(UTC)
    with db.session() as s:
        recent = list(
            s.scalars(
                select(SignInFailure.failed_at)
                .where(SignInFailure.key == _key(email, client), SignInFailure.failed_at > now - window)
                .order_by(SignInFailure.failed_at.desc())
                .limit(settings.login_max_failures)
            )
        )
    if len(recent) < settings.login_max_failures:
        return None
    return max(as_utc(recent[-1]) + window - now, timedelta(seconds=1))


def record_failure(db: Database, settings: Settings, email: str, client: str) -> None:
    """Count a failure; failures older than the window are dropped on the way."""
    now = datetime.now(UTC)
    with db.session() as s:
        s.execute(
            delete(SignInFailure).where(
                SignInFailure.failed_at < now - timedelta(minutes=settings.login_lock_minutes)
            )
        )
        s.add(SignInFailure(key=_key(email, client), failed_at=now))


def clear_failures(db: Database, email: str, client: str) -> None:
    """A successful sign-in forgets the pair's failures."""
    with db.session() as s:
        s.execute(delete(SignInFailure).where(SignInFailure.key == _key(email, client)))


def client_of(request: Request) -> str:
    """The client's address (uvicorn's proxy_headers fill it in from a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def locked_page(request: Request, template: str, ctx: dict[str, Any], wait: timedelta) -> Response:
    """``template`` with the lock explained in Japanese, as 429 with Retry-After."""
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    error = (
        "ログインの失敗が続いたため、このメールアドレスでのログインを一時的に止めています。"
        f"約{minutes}分後にもう一度お試しください。"
    )
    response = render(request, template, {**ctx, "error": error}, 429)
    response.headers["Retry-After"] = str(math.ceil(wait.total_seconds()))
    return response
