"""Stored records -> response bodies (progress, ETA and timestamps are derived here, nothing else)."""

from __future__ import annotations

from typing import Any

from service.storage.db import as_utc, iso
from service.storage.repository import Repository, now
from service.storage.tables import Job, Survey

__all__ = ["job_out", "survey_out"]


def job_out(repo: Repository, job: Job) -> dict[str, Any]:
    rows_done, chunks_done = repo.progress(job.id)
    total = job.rows_total
    eta = None
    if job.state == "running" and job.started_at and total and 0 < rows_done < total:
        elapsed = (now() - as_utc(job.started_at)).total_seconds()
        eta = round(elapsed / rows_done * (total - rows_done), 1)
    elif job.state == "succeeded":
        eta = 0.0
    return {
        "id": job.id,
        "survey_id": job.survey_id,
        "kind": job.kind,
        "state": job.state,
        "taxonomy_version": job.taxonomy_version,
        "rows_total": total,
        "rows_done": rows_done,
        "chunks_total": job.chunks_total,
        "chunks_done": chunks_done,
        "progress": round(rows_done / total, 4) if total else (1.0 if job.state == "succeeded" else 0.0),
        "eta_seconds": eta,
        "row_issues": repo.issue_count(job.survey_id) if job.state not in ("queued", "planning") else 0,
        "error": job.error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def survey_out(survey: Survey) -> dict[str, Any]:
    return {
        "id": survey.id,
        "filename": survey.filename,
        "content_hash": survey.content_hash,
        "size_bytes": survey.size_bytes,
        "options": survey.options,
        "rows_total": survey.rows_total,
        "current_job_id": survey.current_job_id,
        "created_at": iso(survey.created_at),
    }
