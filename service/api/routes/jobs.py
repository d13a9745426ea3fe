"""GET /v1/jobs/{id}: state, rows done/total, ETA and errors of an analysis."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from service.api.views import job_out
from service.deps import RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.schemas import JobOut

router = APIRouter(
    prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require("upload"))], responses=AUTH_PROBLEMS
)


@router.get("/{job_id}", response_model=JobOut, responses=problem_responses({404: "unknown job"}))
def get_job(job_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    job = runtime.repo.get_job(job_id)
    if job is None:
        raise APIError(404, f"no job with id '{job_id}'")
    return job_out(runtime.repo, job)
