"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers call them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import MetricsDep, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "models not loaded or database unreachable"}})
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the models are loaded and the database answers."""
    checks: dict[str, Any] = {"database": runtime.db.ping(), "models": runtime.models_loaded()}
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(runtime: RuntimeDep, m: MetricsDep) -> Response:
    counts = runtime.repo.job_counts()
    for state in ("queued", "planning", "running", "succeeded", "failed"):
        m.jobs.labels(state=state).set(counts.get(state, 0))
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
