"""FastAPI dependencies: the process runtime, settings, and API-key checks by scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.config import Settings
from service.errors import APIError
from service.jobs.runner import JobRunner
from service.metrics import Metrics
from service.runtime import Runtime
from service.storage.keys import KeyInfo, authenticate

__all__ = ["MetricsDep", "RunnerDep", "RuntimeDep", "SettingsDep", "require"]

_bearer = HTTPBearer(auto_error=False, description="an API key from `koe apikey create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _settings(request: Request) -> Settings:
    return _runtime(request).settings


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[Settings, Depends(_settings)]
RunnerDep = Annotated[JobRunner, Depends(_runner)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


def require(scope: str) -> Callable[..., KeyInfo | None]:
    """A dependency that lets a request through only with a valid key allowed ``scope`` (admin allows all)."""

    def check(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> KeyInfo | None:
        if not runtime.settings.auth_required:
            return None
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise APIError(
                401, "an API key is required: send 'Authorization: Bearer <key>'", headers=_CHALLENGE
            )
        key = authenticate(runtime.db, credentials.credentials)
        if key is None:
            raise APIError(401, "the API key is unknown or revoked", headers=_CHALLENGE)
        if not key.allows(scope):
            raise APIError(
                403,
                f"this API key (scopes: {', '.join(sorted(key.scopes))}) is not allowed '{scope}'",
                scope=scope,
            )
        return key

    return check
